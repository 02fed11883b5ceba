r"""Per-device memory of the real model definitions: params, optimizer state, activations per DRIS bucket.

  python -m rsvlm_jax.tools.memory_table --variants=B/16,L/14,So400m/14 --resolutions=224,336,448,672 \
      --batch_per_device=32 --devices=64 [--fsdp] [--out table.md]

Params and AdamW state (two moments, float32) come from `jax.eval_shape` of the model's init; with --fsdp
both are divided over the data axis (as the trainer's FSDP sharding does for large arrays). Activations
are XLA's own figure: the temporary buffer size from `memory_analysis()` of the compiled image-tower
training step (forward + backward, remat off) at --act_batch images, scaled linearly to
--batch_per_device. Nothing is executed, only compiled, so it runs on a CPU.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from absl import flags

from rsvlm_jax.models import rsvlm
from rsvlm_jax.models import vit
from rsvlm_jax import vit_variants
from rsvlm_jax.runtime import cli

FLAGS = flags.FlagValues()  # This command's flags only (runtime/cli.py): importing it defines no global flag.
_VARIANTS = flags.DEFINE_list("variants", ["B/16", "L/14", "So400m/14"], "ViT variants.", flag_values=FLAGS)
_RES = flags.DEFINE_list("resolutions", ["224", "336", "448", "672"], "Bucket resolutions (px).", flag_values=FLAGS)
_BATCH = flags.DEFINE_integer("batch_per_device", 32, "Images per device.", lower_bound=1, flag_values=FLAGS)
_ACT_BATCH = flags.DEFINE_integer("act_batch", 2, "Batch compiled to measure activations (scaled up).",
                                  lower_bound=1, flag_values=FLAGS)
_DEVICES = flags.DEFINE_integer("devices", 64, "Data-axis size (for FSDP division).", lower_bound=1,
                                flag_values=FLAGS)
_FSDP = flags.DEFINE_bool("fsdp", False, "Shard params and optimizer state over the data axis.", flag_values=FLAGS)
_OUT = flags.DEFINE_string("out", "", "Also write the markdown table here.", flag_values=FLAGS)

GIB = 1024 ** 3

flags.register_validator(_RES, lambda rs: bool(rs) and all(r.isdigit() and int(r) > 0 for r in rs),
                         "--resolutions must be positive integers (pixels), e.g. 224,336", flag_values=FLAGS)


def text_tower_for(variant: str) -> dict:
  width = vit_variants.decode(variant)["width"]
  return {"width": width, "depth": 12, "num_heads": max(1, width // 64), "mlp_dim": 4 * width, "max_len": 64}


def model_for(variant: str, resolution: int) -> rsvlm.Model:
  patch = vit_variants.decode(variant)["patch_size"]
  grid = resolution // patch
  return rsvlm.Model(vocab_size=32000, image={"variant": variant, "posemb_grid": (grid, grid)},
                     text=text_tower_for(variant), decoder=None, embed_dim=vit_variants.decode(variant)["width"])


def param_bytes(variant: str) -> int:
  model = model_for(variant, 224)
  batch = {"image": jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32),
           "text": jax.ShapeDtypeStruct((1, 64), jnp.int32)}
  shapes = jax.eval_shape(lambda b: model.init(jax.random.key(0), b), batch)["params"]
  return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(shapes))


def activation_bytes(variant: str, resolution: int, batch: int) -> int:
  """XLA temp bytes of the image tower's forward+backward at `batch` images."""
  model = model_for(variant, resolution)
  tower = vit.ViT(variant=variant, posemb_grid=model.image["posemb_grid"])
  x = jax.ShapeDtypeStruct((batch, resolution, resolution, 3), jnp.float32)
  params = jax.eval_shape(lambda v: tower.init(jax.random.key(0), v), x)["params"]

  def loss(p, img):
    pooled, _ = tower.apply({"params": p}, img)
    return jnp.mean(pooled ** 2)

  compiled = jax.jit(jax.grad(loss)).lower(params, x).compile()
  return int(compiled.memory_analysis().temp_size_in_bytes)


def table(variants, resolutions, batch_per_device, act_batch, devices, fsdp) -> str:
  head = ["variant", "params", "optimizer"] + [f"act @{r}px" for r in resolutions] + [f"total @{resolutions[-1]}px"]
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  div = devices if fsdp else 1
  for v in variants:
    p = param_bytes(v) / div
    opt = 2 * p
    acts = [activation_bytes(v, int(r), act_batch) * batch_per_device / act_batch for r in resolutions]
    cells = [v, f"{p / GIB:.2f} GiB", f"{opt / GIB:.2f} GiB"] + [f"{a / GIB:.1f} GiB" for a in acts]
    cells.append(f"{(p + opt + p + acts[-1]) / GIB:.1f} GiB")  # + gradients (same size as params).
    lines.append("| " + " | ".join(cells) + " |")
  note = (f"\nPer device, float32, batch {batch_per_device} images/device, "
          f"{'FSDP over ' + str(devices) + ' devices' if fsdp else 'replicated params'}; activations of the image "
          f"tower (forward+backward) from XLA memory_analysis at batch {act_batch}, scaled linearly.\n")
  return "\n".join(lines) + "\n" + note


def main(argv):
  del argv
  if _OUT.value:
    cli.check_output_file(_OUT.value, "--out")  # Before the compiles.
  md = table(_VARIANTS.value, _RES.value, _BATCH.value, _ACT_BATCH.value, _DEVICES.value, _FSDP.value)
  print(md)
  if _OUT.value:
    with open(_OUT.value, "w") as f:
      f.write(md)


if __name__ == "__main__":
  cli.run(main, FLAGS, "memory_table")
