"""Resolution gain: how much a trained model's per-image loss grows when the image loses resolution.

For each image, the teacher (any trained run) scores it twice at its largest resolution R: as is, and
degraded (downsampled to `low_res` with antialiasing, upsampled back to R), so the token count and the
position embeddings are the same and only the detail differs. Per image:

  caption NLL  teacher-forced token cross-entropy, averaged over the image's captions;
  i2t          contrastive loss of the image against every caption in its chunk of images, averaged
               over its own captions (log-sum-exp over the chunk minus its own logit);
  gain         (NLL_degraded - NLL) + (i2t_degraded - i2t).

The gains are the training target of the learned DRIS scorer (dris/learned.py).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rsvlm_jax.data import sources
from rsvlm_jax.data import transforms as T
from rsvlm_jax.models import rsvlm
from rsvlm_jax.runtime import progress as progress_lib


def degrade(images: np.ndarray, low_res: int, *, upsample: bool = True) -> np.ndarray:
  """uint8 [B,R,R,3] -> resized to low_res (antialiased) and, if `upsample`, back to R: the pipeline's own
  resize, so the degraded view equals what input.detail_res=low_res feeds a model."""
  r = images.shape[1]
  return np.stack([T.resize(T.resize(im, low_res), r) if upsample else T.resize(im, low_res) for im in images])


def make_loss_fn(model: rsvlm.Model):
  """jit fn(params, image uint8 [B,R,R,3], text int32 [B,C,L]) -> (caption NLL [B], i2t loss [B])."""

  def fn(params, image, text):
    b, c, l = text.shape
    zimg, out = model.apply({"params": params}, image, method=rsvlm.Model.encode_image)
    ztxt = model.apply({"params": params}, text.reshape(b * c, l), method=rsvlm.Model.encode_text)
    logits = jnp.exp(params["logit_scale"]) * zimg @ ztxt.T  # [B, B*C]
    own = logits.reshape(b, b, c)[jnp.arange(b), jnp.arange(b)]  # [B, C]
    valid = (text[..., 0] != 0).astype(jnp.float32)  # Images with fewer captions pad with empty rows.
    n_valid = jnp.maximum(valid.sum(-1), 1.0)
    i2t = ((jax.nn.logsumexp(logits, -1)[:, None] - own) * valid).sum(-1) / n_valid
    tokens = jnp.repeat(out["tokens"], c, axis=0)
    inputs, flat = rsvlm.decoder_io(text.reshape(b * c, l), model.bos_id, model.text_has_bos)
    dec = model.apply({"params": params}, tokens, inputs, method=rsvlm.Model.decode_logits)
    ce = -jnp.take_along_axis(jax.nn.log_softmax(dec.astype(jnp.float32)), flat[..., None], -1)[..., 0]
    mask = (flat != 0).astype(jnp.float32)
    nll = ((ce * mask).sum(-1) / jnp.maximum(mask.sum(-1), 1.0)).reshape(b, c)
    return (nll * valid).sum(-1) / n_valid, i2t

  return jax.jit(fn)


def caption_tokens(pipe, split: str, indices, text_len: int, max_captions: int = 5) -> np.ndarray:
  """int32 [len(indices), max_captions, text_len]: each record's first non-empty captions, tokenized; images
  with fewer captions pad with empty rows (which the loss masks)."""
  text = np.zeros((len(indices), max_captions, text_len), np.int32)
  for row, i in enumerate(indices):
    caps = [c for c in sources.as_text_list(pipe.record(split, int(i))["captions"]) if c.strip()][:max_captions]
    text[row, :len(caps)] = pipe.tokenizer.encode_batch(caps, text_len)
  return text


def padded_chunks(n: int, batch: int) -> list[tuple[np.ndarray, np.ndarray]]:
  """(indices, the same padded to `batch` rows by repeating the first) for each chunk of range(n): every
  batch has one static shape, so the functions applied to them compile once."""
  chunks = []
  for start in range(0, n, batch):
    idx = np.arange(start, min(start + batch, n))
    chunks.append((idx, np.concatenate([idx, np.full((batch - len(idx),), idx[0])])))
  return chunks


def resolution_gains(model: rsvlm.Model, params, pipe, *, low_res: int, split: str = "train", max_images: int = 0,
                     batch_size: int = 64, max_captions: int = 5, native: bool = False) -> dict[str, np.ndarray]:
  """Per-image {"gain", "nll", "nll_low", "i2t", "i2t_low", "index"} of a trained model (e.g. `rsvlm_jax.load`'s
  model and params) on the images of `pipe` (an input pipeline with the model's tokenizer).

  Images are the first `max_images` of `split` (all if 0), encoded at the pipeline's largest bucket.
  """
  if model.decoder is None:
    raise ValueError("Resolution gains need a model with a caption decoder (config key model.decoder)")
  high = pipe.buckets.resolutions[-1]
  if not 0 < low_res < high:
    raise ValueError(f"low_res must be in (0, {high}) (the teacher's largest resolution), got {low_res}")
  n = len(pipe.source(split))
  n = min(n, max_images) if max_images else n
  loss_fn = make_loss_fn(model)
  text_len = pipe.cfg.text_len
  progress = progress_lib.ItemProgress(n, "Resolution gains (images)")
  cols = {k: [] for k in ("nll", "nll_low", "i2t", "i2t_low")}
  for idx, idx_p in padded_chunks(n, batch_size):
    images = pipe.load_examples(split, idx_p, pipe.buckets.num_buckets - 1, seed=(0,), train=False)["image"]
    text = caption_tokens(pipe, split, idx_p, text_len, max_captions)
    for suffix, imgs in (("", images), ("_low", degrade(images, low_res, upsample=not native))):
      nll, i2t = jax.device_get(loss_fn(params, imgs, text))
      cols["nll" + suffix].append(np.asarray(nll)[:len(idx)])
      cols["i2t" + suffix].append(np.asarray(i2t)[:len(idx)])
    progress.update(int(idx[-1]) + 1)
  out = {k: np.concatenate(v).astype(np.float32) for k, v in cols.items()}
  out["gain"] = (out["nll_low"] - out["nll"]) + (out["i2t_low"] - out["i2t"])
  out["index"] = np.arange(n, dtype=np.int64)
  return out
