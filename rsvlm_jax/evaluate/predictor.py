"""Jit-compiled inference functions of a model on a mesh (one compilation per bucket shape, counted)."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils

from rsvlm_jax.runtime import mixed_batch
from rsvlm_jax.data.transforms import IMAGE_KEYS
from rsvlm_jax.evaluate import decode
from rsvlm_jax.models import rsvlm
from rsvlm_jax.runtime import compile_counter
from rsvlm_jax.runtime import mesh as mesh_lib


class Predictor:
  """encode_images / encode_texts / caption over process-local numpy batches; returns global numpy."""

  def __init__(self, model: rsvlm.Model, mesh, *, max_len: int, decoding: str = "greedy", beam_size: int = 4,
               length_penalty: float = 0.6, tracker: compile_counter.Tracker | None = None):
    self.model, self.mesh, self.max_len = model, mesh, max_len
    self.tracker = tracker or compile_counter.Tracker()
    out_sh = mesh_lib.batch_sharded(mesh)

    def _encode_images(params, batch):
      z, _ = model.apply({"params": params}, batch["image"], method=rsvlm.Model.encode_image)
      return z

    def _encode_texts(params, tokens):
      return model.apply({"params": params}, tokens, method=rsvlm.Model.encode_text)

    def _caption(params, batch):
      _, img = model.apply({"params": params}, batch["image"], method=rsvlm.Model.encode_image)
      if decoding == "beam":
        return decode.beam_search(model, params, img["tokens"], max_len, beam_size, length_penalty)
      return decode.greedy(model, params, img["tokens"], max_len)

    self._fns = {name: jax.jit(fn, out_shardings=out_sh)
                 for name, fn in (("encode_images", _encode_images), ("encode_texts", _encode_texts),
                                  ("caption", _caption))}

  @classmethod
  def from_config(cls, model: rsvlm.Model, mesh, config, **kwargs) -> "Predictor":
    """A Predictor with the config's caption length (input.text_len), decoding and beam_size; kwargs win."""
    kwargs.setdefault("max_len", int(config.input.text_len))
    kwargs.setdefault("decoding", config.decoding)
    kwargs.setdefault("beam_size", config.beam_size)
    return cls(model, mesh, **kwargs)

  def _run(self, name, params, local: dict[str, np.ndarray]):
    arrays = mesh_lib.global_batch(local, self.mesh)
    key = f"{name}:" + mixed_batch.shape_key(arrays)
    out = self.tracker.call(key, self._fns[name], params, arrays if name != "encode_texts" else arrays["text"])
    return np.asarray(multihost_utils.process_allgather(out, tiled=True))

  def encode_images(self, params, batch):
    return self._run("encode_images", params, {k: batch[k] for k in IMAGE_KEYS if k in batch})

  def encode_texts(self, params, tokens: np.ndarray):
    return self._run("encode_texts", params, {"text": tokens})

  def caption(self, params, batch):
    return self._run("caption", params, {k: batch[k] for k in IMAGE_KEYS if k in batch})

  @functools.cache
  def encoder_gflops(self, shapes: tuple) -> float:
    """Image-encoder GFLOPs per image for one bucket, from XLA's cost analysis of the compiled encoder."""
    spec = {k: jax.ShapeDtypeStruct(s, jnp.uint8) for k, s in shapes}
    batch = next(iter(spec.values())).shape[0]
    fn = jax.jit(lambda p, b: self.model.apply({"params": p}, b["image"], method=rsvlm.Model.encode_image)[0])
    compiled = fn.lower(self._abstract_params, spec).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", 0.0)) / batch / 1e9

  def set_abstract_params(self, params):
    self._abstract_params = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)

