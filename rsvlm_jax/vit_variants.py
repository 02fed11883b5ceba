"""Named ViT sizes ("S/16", "B/16", ...): the one parser of variant names, for configs, models and DRIS buckets.

Pure Python (no JAX), so the data pipeline can derive the patch size of a config without importing a model.
"""
from __future__ import annotations

import re

DEFAULT = "mu/8"  # The image tower's default variant (models/vit.py).

# name -> (width, depth, mlp_dim, num_heads)
VARIANTS = {
    "pico": (64, 2, 128, 2),  # Smoke tests.
    "mu": (128, 4, 512, 4),   # CPU demo size.
    "Ti": (192, 12, 768, 3),
    "S": (384, 12, 1536, 6),
    "M": (512, 12, 2048, 8),
    "B": (768, 12, 3072, 12),
    "L": (1024, 24, 4096, 16),
    "H": (1280, 32, 5120, 16),  # open_clip ViT-H-14: head width 80.
    "So400m": (1152, 27, 4304, 16),
}


def decode(variant: str, **overrides: int) -> dict[str, int]:
  """"S/16" -> dict(width, depth, mlp_dim, num_heads, patch_size); clear error on unknown names.

  Non-zero `overrides` (width, depth, mlp_dim, num_heads) replace the variant's values, for towers that
  follow no named size (e.g. converted checkpoints of custom architectures)."""
  m = re.fullmatch(r"([A-Za-z0-9]+)/(\d+)", variant or "")
  if not m or m.group(1) not in VARIANTS:
    raise ValueError(f"Unknown ViT variant {variant!r}; expected NAME/PATCH with NAME in {sorted(VARIANTS)}")
  width, depth, mlp_dim, heads = VARIANTS[m.group(1)]
  cfg = dict(width=width, depth=depth, mlp_dim=mlp_dim, num_heads=heads, patch_size=int(m.group(2)))
  cfg.update({k: int(v) for k, v in overrides.items() if v})
  if cfg["width"] % cfg["num_heads"]:
    raise ValueError(f"ViT width {cfg['width']} is not divisible by num_heads {cfg['num_heads']}")
  return cfg


def patch_size(image_config) -> int:
  """The patch size of an image-tower config (a mapping with "variant", e.g. {"variant": "B/16"} -> 16)."""
  return decode(dict(image_config).get("variant", DEFAULT))["patch_size"]
