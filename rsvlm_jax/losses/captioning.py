"""Teacher-forced caption cross-entropy (token mean over the global batch)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def token_cross_entropy(logits, targets, label_smoothing: float = 0.0):
  """Mean cross-entropy over non-padding targets (id 0 = pad); returns (loss, token accuracy)."""
  mask = (targets != 0).astype(jnp.float32)
  vocab = logits.shape[-1]
  onehot = jax.nn.one_hot(targets, vocab)
  if label_smoothing:
    onehot = optax.smooth_labels(onehot, label_smoothing)
  ce = optax.softmax_cross_entropy(logits.astype(jnp.float32), onehot)
  n = jnp.maximum(mask.sum(), 1.0)
  acc = ((logits.argmax(-1) == targets) * mask).sum() / n
  return (ce * mask).sum() / n, acc


def captioning_loss(out, batch, ctx, label_smoothing: float = 0.0):
  del ctx  # A global-batch mean under jit needs no explicit collective.
  targets = out.get("caption_targets", batch["text"])
  loss, acc = token_cross_entropy(out["caption_logits"], targets, label_smoothing)
  return loss, {"token_accuracy": acc}
