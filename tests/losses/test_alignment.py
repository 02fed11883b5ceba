"""MS-VLAM losses: 8 devices == 1 device (loss and gradients), NumPy references, permutation and masks."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from rsvlm_jax.losses import alignment
from rsvlm_jax.runtime import mesh as mesh_lib

B, D, R, PH, O = 16, 8, 4, 3, 5


def _norm(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _inputs(seed=0):
  rng = np.random.default_rng(seed)
  phrase_mask = rng.random((B, PH)) < 0.7
  phrase_mask[3] = False  # A caption without phrases.
  obj_mask = rng.random((B, O)) < 0.6
  return {
      "zimg": _norm(rng.normal(size=(B, D))).astype(np.float32),
      "ztxt": _norm(rng.normal(size=(B, D))).astype(np.float32),
      "regions": _norm(rng.normal(size=(B, R, D))).astype(np.float32),
      "region_mask": np.ones((B, R), bool),
      "phrases": _norm(rng.normal(size=(B, PH, D))).astype(np.float32),
      "phrase_mask": phrase_mask,
      "obj": _norm(rng.normal(size=(B, O, D))).astype(np.float32),
      "obj_txt": _norm(rng.normal(size=(B, O, D))).astype(np.float32),
      "obj_label": rng.integers(0, 4, size=(B, O)).astype(np.int32),
      "obj_mask": obj_mask,
      "scale": np.float32(np.log(5.0)), "bias": np.float32(-2.0),
  }


LEVELS = {
    "global_softmax": (lambda x, mesh: alignment.global_contrastive(
        x["zimg"], x["ztxt"], x["scale"], x["bias"], kind="softmax", mesh=mesh)[0], ("zimg", "ztxt", "scale")),
    "global_sigmoid": (lambda x, mesh: alignment.global_contrastive(
        x["zimg"], x["ztxt"], x["scale"], x["bias"], kind="sigmoid", mesh=mesh)[0], ("zimg", "ztxt", "scale", "bias")),
    "local_max_sim": (lambda x, mesh: alignment.local_region_alignment(
        x["regions"], x["region_mask"], x["phrases"], x["phrase_mask"], x["scale"], mode="max_sim", mesh=mesh)[0],
                      ("regions", "phrases", "scale")),
    "local_attention": (lambda x, mesh: alignment.local_region_alignment(
        x["regions"], x["region_mask"], x["phrases"], x["phrase_mask"], x["scale"], mode="attention",
        mesh=mesh)[0], ("regions", "phrases", "scale")),
    "object": (lambda x, mesh: alignment.object_alignment(
        x["obj"], x["obj_txt"], x["obj_label"], x["obj_mask"], x["scale"], mesh=mesh)[0], ("obj", "obj_txt", "scale")),
}


def _loss_and_grads(name, inputs, mesh):
  fn, wrt = LEVELS[name]

  def f(diff, rest):
    return fn({**rest, **diff}, mesh)

  diff = {k: jnp.asarray(inputs[k]) for k in wrt}
  rest = {k: jnp.asarray(v) for k, v in inputs.items() if k not in wrt}
  if mesh is not None:
    shard = lambda v: jax.device_put(v, NamedSharding(mesh, P("data") if v.ndim else P()))
    diff, rest = jax.tree.map(shard, diff), jax.tree.map(shard, rest)
  loss, grads = jax.jit(jax.value_and_grad(f))(diff, rest)
  return float(loss), jax.tree.map(np.asarray, grads)


@pytest.mark.parametrize("name", sorted(LEVELS))
def test_eight_devices_equal_one(name):
  assert jax.device_count() == 8
  inputs = _inputs()
  loss1, g1 = _loss_and_grads(name, inputs, None)
  loss8, g8 = _loss_and_grads(name, inputs, mesh_lib.make_mesh(jax.devices()))
  np.testing.assert_allclose(loss8, loss1, rtol=1e-5, atol=1e-5)
  for k in g1:
    np.testing.assert_allclose(g8[k], g1[k], rtol=1e-5, atol=1e-5, err_msg=k)
  assert np.isfinite(loss1) and loss1 > 0


@pytest.mark.parametrize("name", sorted(LEVELS))
def test_batch_permutation_invariance(name):
  inputs = _inputs(1)
  perm = np.random.default_rng(2).permutation(B)
  permuted = {k: (v[perm] if np.ndim(v) else v) for k, v in inputs.items()}
  fn = LEVELS[name][0]
  np.testing.assert_allclose(float(fn(permuted, None)), float(fn(inputs, None)), rtol=1e-5)


# -- NumPy references (loops, float64) ------------------------------------------------------------------
def _log_softmax(row):
  row = np.asarray(row, np.float64)
  m = row.max()
  return row - (m + np.log(np.exp(row - m).sum()))


def np_global(x, kind):
  t = np.exp(float(x["scale"]))
  zi, zt = x["zimg"].astype(np.float64), x["ztxt"].astype(np.float64)
  logits = t * zi @ zt.T
  if kind == "softmax":
    return float(np.mean([-(_log_softmax(logits[i])[i] + _log_softmax(logits[:, i])[i]) / 2 for i in range(B)]))
  total = 0.0
  for i in range(B):
    for j in range(B):
      z = 1.0 if i == j else -1.0
      total += np.log1p(np.exp(-z * (logits[i, j] + float(x["bias"]))))
  return total / B


def np_local_max_sim(x):
  t = np.exp(float(x["scale"]))
  reg, phr, pm = x["regions"].astype(np.float64), x["phrases"].astype(np.float64), x["phrase_mask"]
  valid = [j for j in range(B) if pm[j].any()]
  s_i2t = np.zeros((B, B))
  s_t2i = np.zeros((B, B))
  for i in range(B):
    for j in valid:
      ps = [p for p in range(PH) if pm[j, p]]
      sims = np.array([[reg[i, r] @ phr[j, p] for p in ps] for r in range(R)])  # [R, P]
      s_t2i[i, j] = sims.max(axis=0).mean()
      s_i2t[i, j] = sims.max(axis=1).mean()
  total = 0.0
  for j in valid:
    row = np.array([t * s_i2t[j, k] for k in valid])  # image j vs valid texts
    total += -_log_softmax(row)[valid.index(j)] / 2
    col = t * s_t2i[:, j]  # text j vs all images
    total += -_log_softmax(col)[j] / 2
  return total / len(valid)


def np_object(x):
  t = np.exp(float(x["scale"]))
  obj = x["obj"].reshape(-1, D).astype(np.float64)
  txt = x["obj_txt"].reshape(-1, D).astype(np.float64)
  lab, m = x["obj_label"].reshape(-1), x["obj_mask"].reshape(-1)
  valid = np.flatnonzero(m)
  total = 0.0
  for a in valid:
    pos = [b for b in valid if lab[b] == lab[a]]
    o2t = _log_softmax(np.array([t * obj[a] @ txt[b] for b in valid]))
    t2o = _log_softmax(np.array([t * txt[a] @ obj[b] for b in valid]))
    idx = [list(valid).index(b) for b in pos]
    total += -(np.mean(o2t[idx]) + np.mean(t2o[idx])) / 2
  return total / len(valid)


def test_numpy_references():
  x = _inputs(3)
  np.testing.assert_allclose(float(LEVELS["global_softmax"][0](x, None)), np_global(x, "softmax"), rtol=1e-5)
  np.testing.assert_allclose(float(LEVELS["global_sigmoid"][0](x, None)), np_global(x, "sigmoid"), rtol=1e-5)
  np.testing.assert_allclose(float(LEVELS["local_max_sim"][0](x, None)), np_local_max_sim(x), rtol=1e-5)
  np.testing.assert_allclose(float(LEVELS["object"][0](x, None)), np_object(x), rtol=1e-5)


def test_padding_objects_and_phrases_do_not_change_the_loss():
  x = _inputs(4)
  padded = dict(x)
  rng = np.random.default_rng(5)
  for key, mask in (("obj", "obj_mask"), ("obj_txt", "obj_mask"), ("phrases", "phrase_mask")):
    noise = _norm(rng.normal(size=x[key].shape)).astype(np.float32)
    padded[key] = np.where(x[mask][..., None], x[key], noise)
  for name in ("object", "local_max_sim", "local_attention"):
    np.testing.assert_allclose(float(LEVELS[name][0](padded, None)), float(LEVELS[name][0](x, None)), rtol=1e-6)


def test_unknown_modes_fail_clearly():
  x = _inputs()
  with pytest.raises(ValueError, match="kind 'cosine'"):
    alignment.global_contrastive(x["zimg"], x["ztxt"], x["scale"], x["bias"], kind="cosine")
  with pytest.raises(ValueError, match="mode 'mean'"):
    alignment.local_region_alignment(x["regions"], x["region_mask"], x["phrases"], x["phrase_mask"], x["scale"],
                                     mode="mean")
