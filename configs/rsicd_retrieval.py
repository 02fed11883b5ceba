r"""RSICD cross-modal retrieval (two towers + MS-VLAM global/local, no caption decoder loss).

  python -m rsvlm_jax.main --config=configs/rsicd_retrieval.py:data_dir=/data/tfds --workdir=DIR
  python -m rsvlm_jax.main --config=configs/rsicd_retrieval.py:runlocal=True,data_dir=D --workdir=DIR

Takes the args of configs/caption_dataset.py (runlocal, data_dir, variant, dris, steps, batch, seed).
For the RSICD/RSITMD-deduplicated test split build `rsicd/dedup` (see datasets/rsicd/README.md) and pass
dataset=rsicd/dedup.
"""
from rsvlm_jax import config as config_lib

caption_dataset = config_lib.import_config("caption_dataset")


def get_config(arg=None):
  """caption_dataset's args; dataset defaults to rsicd, and retrieval_only is on."""
  arg = config_lib.parse_arg(arg, **{**caption_dataset.ARGS, "dataset": "rsicd"})
  return caption_dataset.config(**{**arg, "retrieval_only": True})
