"""MS-VLAM alignment losses at three levels, with negatives from the global batch across devices.

Every loss has one core written for a shard of the batch plus an optional mesh axis: it all_gathers
what it contrasts against over the data axis, computes its local rows, and psums the sum of per-example
losses and the count of valid examples. With `mesh=None` the same core runs on the whole batch (axis
size 1); with a mesh it runs under `jax.shard_map`, so the collectives are explicit and the result
equals the single-device loss on the same global batch.

Levels:
  global   pooled image vs caption embeddings; softmax InfoNCE (CLIP) or sigmoid (SigLIP) with bias.
  local    region tokens vs caption phrases. "max_sim" is token-wise late interaction (FILIP):
           s_t2i(i, j) = mean over phrases p of text j of max over regions r of image i of <r, p>, and
           s_i2t(i, j) = mean over regions r of max over phrases p; image->text logits use s_i2t,
           text->image logits use s_t2i. "attention": each phrase attends over the regions with
           softmax(t <r, p>) weights and scores the attended region vector against itself; s is the mean
           over the phrases, used in both directions. Texts without any phrase are left out.
  object   features pooled inside object boxes vs object phrases, over all valid objects of the global
           batch; candidates with the same class label are positives (multi-positive InfoNCE with a
           uniform target over the positives), both directions.

Data without boxes: switch the object level off (weight 0) in the config; the local-region level still
aligns region tokens with the caption's phrases.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

NEG = -1e9


def _gather(x, axis):
  return x if axis is None else jax.lax.all_gather(x, axis, tiled=True)


def _psum(x, axis):
  return x if axis is None else jax.lax.psum(x, axis)


def _offset(local_size, axis):
  return 0 if axis is None else jax.lax.axis_index(axis) * local_size


def _run(core, mesh, axis_name, sharded_args, replicated_args):
  """Runs `core(*sharded, *replicated, axis=...)` directly (mesh None) or under shard_map."""
  if mesh is None:
    return core(*sharded_args, *replicated_args, axis=None)
  fn = jax.shard_map(functools.partial(core, axis=axis_name), mesh=mesh,
                     in_specs=(P(axis_name),) * len(sharded_args) + (P(),) * len(replicated_args), out_specs=P())
  return fn(*sharded_args, *replicated_args)


def _xent(logits, targets):
  """Row-wise cross-entropy with (soft) targets."""
  return -(targets * jax.nn.log_softmax(logits, axis=-1)).sum(-1)


# -- global -------------------------------------------------------------------------------------------
def _global_core(zimg, ztxt, logit_scale, logit_bias, *, kind, axis):
  b = zimg.shape[0]
  zimg_all, ztxt_all = _gather(zimg, axis), _gather(ztxt, axis)
  labels = _offset(b, axis) + jnp.arange(b)
  t = jnp.exp(logit_scale)
  i2t = t * zimg @ ztxt_all.T  # [b, B]
  if kind == "softmax":
    t2i = t * ztxt @ zimg_all.T
    onehot = jax.nn.one_hot(labels, zimg_all.shape[0])
    loss_sum = 0.5 * (_xent(i2t, onehot).sum() + _xent(t2i, onehot).sum())
  elif kind == "sigmoid":
    logits = i2t + logit_bias
    z = 2.0 * jax.nn.one_hot(labels, zimg_all.shape[0]) - 1.0
    loss_sum = -jax.nn.log_sigmoid(z * logits).sum()
  else:
    raise ValueError(f"Unknown global alignment kind {kind!r}; expected 'softmax' or 'sigmoid'")
  correct = (i2t.argmax(-1) == labels).sum()
  n = _psum(jnp.asarray(b, jnp.float32), axis)
  return _psum(loss_sum, axis) / n, _psum(correct.astype(jnp.float32), axis) / n


def global_contrastive(zimg, ztxt, logit_scale, logit_bias, *, kind: str = "softmax", mesh=None,
                       axis_name: str = "data"):
  """Image-caption contrastive loss over the global batch; zimg, ztxt [B, D] L2-normalized."""
  loss, acc = _run(functools.partial(_global_core, kind=kind), mesh, axis_name, (zimg, ztxt),
                   (logit_scale, logit_bias))
  return loss, {"i2t_accuracy": acc}


# -- local region -------------------------------------------------------------------------------------
def _late_interaction(regions, region_mask, phrases, phrase_mask):
  """s_i2t, s_t2i [I, J] for images [I,R,D] and texts [J,P,D]."""
  sim = jnp.einsum("ird,jpd->ijrp", regions, phrases)
  rm = region_mask[:, None, :, None]
  pm = phrase_mask[None, :, None, :]
  best_region = jnp.where(rm, sim, NEG).max(axis=2)  # [I,J,P]
  n_phr = jnp.maximum(phrase_mask.sum(-1), 1)[None, :]
  s_t2i = jnp.where(phrase_mask[None], best_region, 0.0).sum(-1) / n_phr
  best_phrase = jnp.where(pm, sim, NEG).max(axis=3)  # [I,J,R]
  n_reg = jnp.maximum(region_mask.sum(-1), 1)[:, None]
  has_phr = phrase_mask.any(-1)[None, :, None]
  s_i2t = jnp.where(region_mask[:, None, :] & has_phr, best_phrase, 0.0).sum(-1) / n_reg
  return s_i2t, s_t2i


def _attention_scores(regions, region_mask, phrases, phrase_mask, t):
  sim = jnp.einsum("ird,jpd->ijrp", regions, phrases)
  w = jax.nn.softmax(jnp.where(region_mask[:, None, :, None], t * sim, NEG), axis=2)
  attended = jnp.einsum("ijrp,ird->ijpd", w, regions)
  score = jnp.einsum("ijpd,jpd->ijp", attended, phrases)
  n_phr = jnp.maximum(phrase_mask.sum(-1), 1)[None, :]
  s = jnp.where(phrase_mask[None], score, 0.0).sum(-1) / n_phr
  return s, s


def _local_core(regions, region_mask, phrases, phrase_mask, logit_scale, *, mode, axis):
  b = regions.shape[0]
  t = jnp.exp(logit_scale)
  regions_all, region_mask_all = _gather(regions, axis), _gather(region_mask, axis)
  phrases_all, phrase_mask_all = _gather(phrases, axis), _gather(phrase_mask, axis)
  if mode == "max_sim":
    score_fn = _late_interaction
  elif mode == "attention":
    score_fn = functools.partial(_attention_scores, t=t)
  else:
    raise ValueError(f"Unknown local alignment mode {mode!r}; expected 'max_sim' or 'attention'")
  s_i2t, _ = score_fn(regions, region_mask, phrases_all, phrase_mask_all)  # local images x all texts
  _, s_t2i = score_fn(regions_all, region_mask_all, phrases, phrase_mask)  # all images x local texts
  labels = _offset(b, axis) + jnp.arange(b)
  onehot = jax.nn.one_hot(labels, regions_all.shape[0])
  text_valid_all = phrase_mask_all.any(-1)
  text_valid = phrase_mask.any(-1)
  i2t = jnp.where(text_valid_all[None, :], t * s_i2t, NEG)
  t2i = t * s_t2i.T  # [b local texts, B images]
  per_example = 0.5 * (_xent(i2t, onehot) + _xent(t2i, onehot))
  loss_sum = jnp.where(text_valid, per_example, 0.0).sum()
  n = _psum(text_valid.sum().astype(jnp.float32), axis)
  return _psum(loss_sum, axis) / jnp.maximum(n, 1.0), n


def local_region_alignment(region_emb, region_mask, phrase_emb, phrase_mask, logit_scale, *, mode: str = "max_sim",
                           mesh=None, axis_name: str = "data"):
  """Region tokens [B,R,D] vs caption phrases [B,P,D] (both L2-normalized), masks [B,R] / [B,P]."""
  loss, n = _run(functools.partial(_local_core, mode=mode), mesh, axis_name,
                 (region_emb, region_mask, phrase_emb, phrase_mask), (logit_scale,))
  return loss, {"num_texts": n}


# -- object -------------------------------------------------------------------------------------------
def _object_core(obj, txt, label, mask, logit_scale, *, axis):
  b, o, d = obj.shape
  t = jnp.exp(logit_scale)
  obj_l, txt_l = obj.reshape(b * o, d), txt.reshape(b * o, d)
  lab_l, mask_l = label.reshape(-1), mask.reshape(-1)
  obj_a, txt_a = _gather(obj_l, axis), _gather(txt_l, axis)
  lab_a, mask_a = _gather(lab_l, axis), _gather(mask_l, axis)
  positive = (lab_l[:, None] == lab_a[None, :]) & mask_a[None, :]
  target = positive / jnp.maximum(positive.sum(-1, keepdims=True), 1)
  o2t = jnp.where(mask_a[None, :], t * obj_l @ txt_a.T, NEG)
  t2o = jnp.where(mask_a[None, :], t * txt_l @ obj_a.T, NEG)
  per_object = 0.5 * (_xent(o2t, target) + _xent(t2o, target))
  loss_sum = jnp.where(mask_l, per_object, 0.0).sum()
  n = _psum(mask_l.sum().astype(jnp.float32), axis)
  return _psum(loss_sum, axis) / jnp.maximum(n, 1.0), n


def object_alignment(obj_emb, obj_text_emb, obj_label, obj_mask, logit_scale, *, mesh=None,
                     axis_name: str = "data"):
  """Object features [B,O,D] vs object phrase embeddings [B,O,D]; labels [B,O]; mask [B,O]."""
  loss, n = _run(_object_core, mesh, axis_name, (obj_emb, obj_text_emb, obj_label, obj_mask), (logit_scale,))
  return loss, {"num_objects": n}
