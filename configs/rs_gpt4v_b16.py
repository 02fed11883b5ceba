r"""RS-GPT4V (caption rows grouped per image: builder config `rs_gpt4v/captions`), ViT-B/16 with DRIS.

  python -m rsvlm_jax.build_dataset rs_gpt4v/captions --manual_dir=/data/RS-GPT4V --data_dir=/data/tfds
  python -m rsvlm_jax.main --config=configs/rs_gpt4v_b16.py:data_dir=/data/tfds --workdir=DIR

Takes the args of configs/caption_dataset.py (runlocal, data_dir, dris, steps, batch, seed).
"""
from rsvlm_jax import config as config_lib


def get_config(arg=None):
  arg = ",".join(x for x in ("dataset=rs_gpt4v/captions,variant=B/16", arg or "") if x)
  return config_lib.load_config(config_lib.config_path("caption_dataset.py") + ":" + arg)
