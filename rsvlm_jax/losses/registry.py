"""Loss registry: each loss is `fn(out, batch, ctx, **kwargs) -> (scalar, metrics)`, chosen by name.

`config.losses` maps the names of LOSSES (an explicit dict of the built-in losses) to their kwargs plus a
`weight`; a weight of 0 switches the term off (it is then not computed at all). The total is the weighted sum.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp

from rsvlm_jax.losses import captioning
from rsvlm_jax.losses import msvlam

LossFn = Callable[..., tuple[jax.Array, dict[str, jax.Array]]]

LOSSES: dict[str, LossFn] = {
    "captioning": captioning.captioning_loss,
    "global_alignment": msvlam.global_alignment,
    "local_alignment": msvlam.local_alignment,
    "object_alignment": msvlam.object_alignment,
}


@dataclasses.dataclass(frozen=True)
class LossContext:
  """What a loss may need beyond model outputs and the batch: the device mesh for collectives."""
  mesh: Any = None
  axis_name: str = "data"


def get(name: str) -> LossFn:
  if name not in LOSSES:
    raise KeyError(f"Unknown loss {name!r} (config key losses.{name}); registered: {sorted(LOSSES)}")
  return LOSSES[name]


def active(losses_cfg) -> dict[str, dict[str, Any]]:
  """{name: kwargs} of the terms with a non-zero weight (validating every name)."""
  out = {}
  for name, cfg in dict(losses_cfg).items():
    cfg = dict(cfg)
    get(name)
    if float(cfg.get("weight", 1.0)) != 0.0:
      out[name] = cfg
  if not out:
    raise ValueError("config.losses switches every loss off")
  return out


def total_loss(out, batch, losses_cfg, ctx: LossContext):
  """Weighted sum of the active losses; metrics hold every term as `loss/<name>`."""
  total = jnp.zeros((), jnp.float32)
  metrics = {}
  for name, kwargs in active(losses_cfg).items():
    kwargs = dict(kwargs)
    weight = float(kwargs.pop("weight", 1.0))
    value, m = get(name)(out, batch, ctx, **kwargs)
    total = total + weight * value
    metrics[f"loss/{name}"] = value
    metrics.update({f"{name}/{k}": v for k, v in m.items()})
  return total, metrics
