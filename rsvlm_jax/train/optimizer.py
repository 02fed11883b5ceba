"""optax optimizer from config: AdamW with linear warmup + cosine decay, global-norm clipping.

Weight decay applies to matrices only (not biases, norms, position embeddings, temperature).
"""
from __future__ import annotations

import re

import jax
import ml_collections
import optax


def lr_schedule(cfg: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
  warmup = min(int(cfg.warmup_steps), max(total_steps - 1, 0))
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=cfg.lr, warmup_steps=warmup, decay_steps=max(total_steps, warmup + 1),
      end_value=cfg.lr * cfg.end_lr_factor)


def _decay_mask(params, no_decay_regex: str):
  pattern = re.compile(no_decay_regex)

  def keep(path, leaf):
    name = "/".join(str(getattr(k, "key", k)) for k in path)
    return leaf.ndim > 1 and not pattern.search(name)

  return jax.tree_util.tree_map_with_path(keep, params)


def _name_mask(params, regex: str):
  pattern = re.compile(regex)
  return jax.tree_util.tree_map_with_path(
      lambda path, _: bool(pattern.search("/".join(str(getattr(k, "key", k)) for k in path))), params)


def make_optimizer(cfg: ml_collections.ConfigDict, total_steps: int) -> optax.GradientTransformation:
  """cfg = config.optim: lr, warmup_steps, weight_decay, grad_clip_norm, b1, b2; optionally lr_mult_regex and
  lr_mult: params whose "/"-joined name matches the regex train at lr * lr_mult (e.g. a fresh caption
  decoder on top of pretrained towers fine-tuned at a small lr)."""
  sched = lr_schedule(cfg, total_steps)
  regex, mult = cfg.lr_mult_regex, float(cfg.lr_mult)
  return optax.chain(
      optax.clip_by_global_norm(cfg.grad_clip_norm) if cfg.grad_clip_norm else optax.identity(),
      optax.adamw(sched, b1=cfg.b1, b2=cfg.b2, weight_decay=cfg.weight_decay,
                  mask=lambda p: _decay_mask(p, cfg.no_decay_regex)),
      optax.masked(optax.scale(mult), lambda p: _name_mask(p, regex)) if regex and mult != 1.0 else optax.identity(),
  )
