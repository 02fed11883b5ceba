r"""Caption decoding speed: greedy decoding of 32 tokens with and without the KV cache.

  python -m bench.decode --out FILE [--batch 16 --variant mu/8 --res 96]

Writes {"max_len", "batch", "rows": [{"mode": "cached"|"uncached", "tokens_per_s", "seconds_per_batch"}],
"speedup"}. The model is the demo model (random init: speed does not depend on the weights).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from absl import app
from absl import flags

from bench import common
from rsvlm_jax.evaluate import decode
from rsvlm_jax.models import rsvlm

_OUT = flags.DEFINE_string("out", "bench_results/decode.json", "Output JSON.")
_BATCH = flags.DEFINE_integer("batch", 16, "Images per batch.")
_LEN = flags.DEFINE_integer("max_len", 32, "Tokens decoded per caption.")
_VARIANT = flags.DEFINE_string("variant", "mu/8", "ViT variant.")
_RES = flags.DEFINE_integer("res", 96, "Image resolution.")


def main(argv):
  del argv
  tower = {"width": 128, "depth": 2, "num_heads": 4, "mlp_dim": 512, "max_len": _LEN.value}
  model = rsvlm.Model(vocab_size=1000, image={"variant": _VARIANT.value, "posemb_grid": (16, 16)}, text=tower,
                      decoder=tower, embed_dim=128)
  images = jnp.zeros((_BATCH.value, _RES.value, _RES.value, 3))
  text = jnp.ones((_BATCH.value, _LEN.value), jnp.int32)
  params = model.init(jax.random.key(0), {"image": images, "text": text})["params"]
  _, img = jax.jit(lambda p, x: model.apply({"params": p}, x, method=rsvlm.Model.encode_image))(params, images)
  tokens = img["tokens"]
  rows = []
  for mode, cache in (("cached", True), ("uncached", False)):
    fn = jax.jit(lambda p, t, c=cache: decode.greedy(model, p, t, _LEN.value, use_cache=c))
    sec = common.timeit(lambda: fn(params, tokens), min_time=3.0)
    rows.append({"mode": mode, "seconds_per_batch": sec, "tokens_per_s": _BATCH.value * _LEN.value / sec})
  common.write_json(_OUT.value, {"max_len": _LEN.value, "batch": _BATCH.value, "rows": rows,
                                 "speedup": rows[0]["tokens_per_s"] / rows[1]["tokens_per_s"]})


if __name__ == "__main__":
  app.run(main)
