r"""RS-GPT4V (caption rows grouped per image: builder config `rs_gpt4v/captions`), ViT-B/16 with DRIS.

  python -m rsvlm_jax.build_dataset rs_gpt4v/captions --manual_dir=/data/RS-GPT4V --data_dir=/data/tfds
  python -m rsvlm_jax.main --config=configs/rs_gpt4v_b16.py:data_dir=/data/tfds --workdir=DIR

Takes the args of configs/caption_dataset.py (runlocal, data_dir, dris, steps, batch, seed).
"""
from rsvlm_jax import config as config_lib

caption_dataset = config_lib.import_config("caption_dataset")


def get_config(arg=None):
  """caption_dataset's args, with dataset rs_gpt4v/captions and variant B/16 by default."""
  defaults = {**caption_dataset.ARGS, "dataset": "rs_gpt4v/captions", "variant": "B/16"}
  return caption_dataset.config(**config_lib.parse_arg(arg, **defaults))
