"""Composite RS vision-language model: image tower + text tower + caption decoder.

`Model.__call__(batch) -> (out["zimg"], out)`; the out dict carries every quantity a loss may read
(global embeddings, temperature/bias, caption logits, region/phrase and object embeddings), each
computed only when the batch holds its inputs, so new losses plug in without changing the model.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from rsvlm_jax.models import region_pool
from rsvlm_jax.models import text as text_lib
from rsvlm_jax.models import vit
from rsvlm_jax.runtime import mixed_batch
from rsvlm_jax.token_ids import BOS_ID, EOS_ID



def l2_normalize(x, axis=-1, eps=1e-6):
  return x / jnp.sqrt(jnp.sum(jnp.square(x), axis=axis, keepdims=True) + eps)


def shift_right(tokens, bos_id: int = BOS_ID):
  """Decoder inputs for teacher forcing: [BOS, t0, ..., t_{L-2}]."""
  bos = jnp.full(tokens.shape[:-1] + (1,), bos_id, tokens.dtype)
  return jnp.concatenate([bos, tokens[..., :-1]], axis=-1)


def decoder_io(text, bos_id: int, text_has_bos: bool):
  """(decoder inputs, targets) for teacher forcing: texts that start with their own BOS (CLIP's SOT) read
  text[:-1] and predict text[1:]; others read [bos_id, text[:-1]] and predict the whole text."""
  text = jnp.asarray(text)
  if text_has_bos:
    return text[:, :-1], text[:, 1:]
  return shift_right(text, bos_id), text


class Model(nn.Module):
  """Two towers with a shared embedding space plus an optional caption decoder."""
  vocab_size: int
  image: ml_collections.ConfigDict | dict
  text: ml_collections.ConfigDict | dict
  decoder: ml_collections.ConfigDict | dict | None = None
  embed_dim: int = 128
  region_windows: int = 3
  temperature_init: float = 10.0
  bias_init: float = -10.0
  dtype: Any = jnp.float32
  proj_bias: bool = True  # open_clip's visual.proj and text_projection have none.
  # Special ids of the tokenizer: the decoder starts from bos_id and stops at eos_id. With
  # text_has_bos (CLIP BPE: every text is [SOT, ..., EOT]) the decoder reads text[:-1] and predicts
  # text[1:]; otherwise it reads [bos_id, text[:-1]] and predicts the whole text.
  bos_id: int = BOS_ID
  eos_id: int = EOS_ID
  text_has_bos: bool = False

  def setup(self):
    self.image_tower = vit.ViT(**dict(self.image), dtype=self.dtype, name="img")
    self.text_tower = text_lib.TextEncoder(self.vocab_size, **dict(self.text), dtype=self.dtype, name="txt")
    self.img_proj = nn.Dense(self.embed_dim, use_bias=self.proj_bias, name="img_proj")
    self.img_token_proj = nn.Dense(self.embed_dim, use_bias=self.proj_bias, name="img_token_proj")
    self.txt_proj = nn.Dense(self.embed_dim, use_bias=self.proj_bias, name="txt_proj")
    if self.decoder is not None:
      self.caption_decoder = text_lib.CaptionDecoder(self.vocab_size, **dict(self.decoder), dtype=self.dtype,
                                                     name="dec")
    self.logit_scale = self.param("logit_scale", nn.initializers.constant(jnp.log(self.temperature_init)), ())
    self.logit_bias = self.param("logit_bias", nn.initializers.constant(self.bias_init), ())

  def encode_image(self, image, *, train=False):
    """-> (zimg [B,E] normalized, tower out dict)."""
    pooled, out = self.image_tower(image, train=train)
    return l2_normalize(self.img_proj(pooled).astype(jnp.float32)), out

  def encode_text(self, tokens, *, train=False):
    """Any leading shape: tokens [..., L] -> normalized embeddings [..., E]."""
    lead = tokens.shape[:-1]
    pooled, _ = self.text_tower(tokens.reshape(-1, tokens.shape[-1]), train=train)
    z = l2_normalize(self.txt_proj(pooled).astype(jnp.float32))
    return z.reshape(lead + (z.shape[-1],))

  def decode_logits(self, image_tokens, inputs, *, decode=False):
    """Caption decoder logits given image tokens (for teacher forcing or cached decoding)."""
    return self.caption_decoder(image_tokens, inputs, decode=decode)

  def decoder_io(self, text):
    """(decoder inputs, targets) for teacher forcing on tokenized captions `text` [B, L]."""
    return decoder_io(text, self.bos_id, self.text_has_bos)

  def __call__(self, batch, *, train: bool = False):
    """batch["image"] is one array, or a mixed batch's mixed_batch.PerBucket of per-bucket arrays: each part
    is encoded at its own shape and everything pooled per example is concatenated in bucket order."""
    out = {"logit_scale": self.logit_scale, "logit_bias": self.logit_bias}
    images = batch["image"]
    mixed = isinstance(images, mixed_batch.PerBucket)
    images = list(images.parts) if mixed else [images]
    starts = [0]
    for im in images:
      starts.append(starts[-1] + im.shape[0])
    rows = lambda x, k: x if not mixed else x[starts[k]:starts[k + 1]]  # Sub-batch k of a merged field.
    per = [self.encode_image(im, train=train) for im in images]
    zimg = jnp.concatenate([z for z, _ in per], 0)
    out["zimg"] = zimg
    if not mixed:
      out["img/tokens"] = per[0][1]["tokens"]
    grid_tokens = [(o["tokens"], o["grid"]) for _, o in per]
    if "text" in batch:
      out["ztxt"] = self.encode_text(batch["text"], train=train)
      if self.decoder is not None:
        io = [self.decoder_io(rows(batch["text"], k)) for k in range(len(per))]
        out["caption_logits"] = jnp.concatenate(
            [self.decode_logits(o["tokens"], inputs) for (_, o), (inputs, _) in zip(per, io)], 0)
        out["caption_targets"] = jnp.concatenate([targets for _, targets in io], 0)
    if "phrases" in batch:
      regions = jnp.concatenate([region_pool.window_pool(t, g, self.region_windows) for t, g in grid_tokens], 0)
      out["region_emb"] = l2_normalize(self.img_token_proj(regions).astype(jnp.float32))
      out["region_mask"] = jnp.ones(out["region_emb"].shape[:2], bool)
      out["phrase_emb"] = self.encode_text(batch["phrases"], train=train)
      out["phrase_mask"] = batch["phrases"][..., 0] != 0
    if "obj_boxes" in batch:
      pooled = jnp.concatenate([region_pool.box_pool(t, g, rows(batch["obj_boxes"], k), rows(batch["obj_mask"], k))
                                for k, (t, g) in enumerate(grid_tokens)], 0)
      out["object_emb"] = l2_normalize(self.img_token_proj(pooled).astype(jnp.float32))
      out["object_text_emb"] = self.encode_text(batch["obj_names"], train=train)
    return zimg, out


def make_model(config: ml_collections.ConfigDict, vocab_size: int, *, bos_id: int = BOS_ID, eos_id: int = EOS_ID,
               text_has_bos: bool = False) -> Model:
  """Builds the model described by `config.model` (see rsvlm_jax/config_schema.py); the special ids come from the
  tokenizer (`tokenizer.special_ids(tok)`)."""
  m = config.model
  dtype = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[config.compute_dtype]
  return Model(vocab_size=vocab_size, image=m.image.to_dict(), text=m.text.to_dict(),
               decoder=m.decoder.to_dict() if m.decoder else None, embed_dim=m.embed_dim,
               region_windows=m.region_windows, dtype=dtype, proj_bias=m.proj_bias,
               bos_id=bos_id, eos_id=eos_id, text_has_bos=text_has_bos)


def count_params(params) -> int:
  return sum(x.size for x in jax.tree.leaves(params))
