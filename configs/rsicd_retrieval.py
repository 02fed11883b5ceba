r"""RSICD cross-modal retrieval (two towers + MS-VLAM global/local, no caption decoder loss).

  python -m rsvlm_jax.main --config=configs/rsicd_retrieval.py:data_dir=/data/tfds --workdir=DIR
  python -m rsvlm_jax.main --config=configs/rsicd_retrieval.py:runlocal=True,data_dir=D --workdir=DIR

Takes the args of configs/caption_dataset.py (runlocal, data_dir, variant, dris, steps, batch, seed).
For the RSICD/RSITMD-deduplicated test split build `rsicd/dedup` (see datasets/rsicd/README.md) and pass
dataset=rsicd/dedup.
"""
from rsvlm_jax import config as config_lib


def get_config(arg=None):
  arg = arg or ""
  if "dataset=" not in arg:
    arg = ",".join(x for x in ("dataset=rsicd", arg) if x)
  return config_lib.load_config(config_lib.config_path("caption_dataset.py") + ":" + arg + ",retrieval_only=True")
