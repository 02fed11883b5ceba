"""open_clip state dicts -> rsvlm_jax params, with every key accounted for.

Reads a plain state dict (`.pt`/`.bin`/`.pth` through `torch.load(weights_only=True)`, never a full
pickle), an open_clip training checkpoint (`{"state_dict": {"module.visual....": ...}}`) or safetensors
(read without torch; recognised by its header whatever the file is called). The mapping consumes each key
exactly once; a key the model needs and the file lacks, or a key the file holds and the mapping does not use,
is an error that names it.

Layout facts used (open_clip's `CLIP`): conv1 is OIHW without bias -> HWIO; Linear weights are (out, in) ->
transposed; `attn.in_proj_weight` (3W, W) is q, k, v stacked -> three [W, heads, W/heads] kernels;
`visual.positional_embedding` (1 + grid^2, W) is the class token's row then the grid row-major;
`visual.proj` and `text_projection` multiply from the right (x @ proj); `logit_scale` is in log space, as ours.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

# Scalars OpenAI's original state dicts carry next to the weights (not parameters); dropped with a note.
OPENAI_METADATA_KEYS = ("input_resolution", "context_length", "vocab_size")


def check_readable(path: str) -> None:
  """Raises a clear error unless `path` is a readable file (before any slow work)."""
  if os.path.isdir(path):
    raise IsADirectoryError(f"--checkpoint {path} is a directory; give the checkpoint file")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"Checkpoint file not found: {path}")
  with open(path, "rb"):
    pass


def is_safetensors(path: str) -> bool:
  """Whether the file is safetensors by its header, whatever its name: an 8-byte little-endian header length
  that fits in the file, then the header's JSON object."""
  with open(path, "rb") as f:
    head = f.read(9)
  if len(head) < 9 or head[8:9] != b"{":
    return False
  return 2 <= int.from_bytes(head[:8], "little") <= os.path.getsize(path) - 8


def read_state_dict(path: str) -> dict[str, np.ndarray]:
  """{key: float32 array} from a safetensors file (by its header or its .safetensors name), or a .pt/.bin/.pth
  state dict or training checkpoint."""
  check_readable(path)
  if path.endswith(".safetensors") or is_safetensors(path):
    from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
    try:
      raw = load_file(path)
    except Exception as e:  # pylint: disable=broad-except
      raise ValueError(f"{path}: cannot read as safetensors ({e})") from e
    sd = {k: np.asarray(v, np.float32) for k, v in raw.items()}
  else:
    try:
      import torch  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise ImportError(f"Reading {path} needs torch (pip install -e '.[convert]'); .safetensors files are read "
                        "without it") from e
    try:
      obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pylint: disable=broad-except
      raise ValueError(f"{path}: torch.load(weights_only=True) refused it ({str(e).splitlines()[0]}). Only plain "
                       "state dicts and open_clip training checkpoints are read (never a full pickle); a "
                       "TorchScript archive such as OpenAI's original ViT-B-32.pt is not: use open_clip's "
                       ".safetensors or .bin of the same weights") from e
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
      obj = obj["state_dict"]  # open_clip training checkpoint: {"epoch", "state_dict", "optimizer", ...}.
    if not isinstance(obj, dict) or not all(hasattr(v, "numpy") for v in obj.values()):
      raise ValueError(f"{path}: expected a state dict of tensors (or {{'state_dict': ...}}), got {type(obj).__name__}"
                       + (f" with keys {sorted(obj)[:8]}" if isinstance(obj, dict) else ""))
    sd = {k: v.detach().to(torch.float32).numpy() for k, v in obj.items()}
  if sd and all(k.startswith("module.") for k in sd):  # Saved from DistributedDataParallel.
    sd = {k[len("module."):]: v for k, v in sd.items()}
  return sd


class _Keys:
  """Takes keys out of a state dict once each; collects missing ones so all are reported together."""

  def __init__(self, sd: dict[str, np.ndarray], source: str):
    self.sd, self.source = sd, source
    self.used: set[str] = set()
    self.missing: list[str] = []

  def __call__(self, key: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    if key not in self.sd:
      self.missing.append(key)
      return np.zeros((0,) if shape is None else shape, np.float32)  # Reported by check().
    self.used.add(key)
    value = self.sd[key]
    if shape is not None and tuple(value.shape) != tuple(shape):
      raise ValueError(f"{self.source}: key {key} has shape {tuple(value.shape)}, the architecture needs "
                       f"{tuple(shape)} (wrong --model?)")
    return value

  def check(self) -> None:
    unused = sorted(k for k in self.sd if k not in self.used and k not in OPENAI_METADATA_KEYS)
    if self.missing or unused:
      parts = []
      if self.missing:
        parts.append(f"{len(self.missing)} missing key(s): " + ", ".join(self.missing[:10]))
      if unused:
        parts.append(f"{len(unused)} unused key(s): " + ", ".join(unused[:10]))
      raise ValueError(f"{self.source} does not match the architecture: " + "; ".join(parts)
                       + (" ..." if len(self.missing) > 10 or len(unused) > 10 else ""))


def _layer_norm(take: _Keys, prefix: str, width: int) -> dict[str, np.ndarray]:
  return {"scale": take(prefix + ".weight", (width,)), "bias": take(prefix + ".bias", (width,))}


def _dense(take: _Keys, prefix: str, d_in: int, d_out: int) -> dict[str, np.ndarray]:
  return {"kernel": take(prefix + ".weight", (d_out, d_in)).T, "bias": take(prefix + ".bias", (d_out,))}


def _blocks(take: _Keys, prefix: str, width: int, depth: int, heads: int, mlp_dim: int) -> dict[str, Any]:
  """open_clip ResidualAttentionBlocks `prefix.resblocks.{i}` -> our Encoder's block{i} params."""
  hd = width // heads
  out = {}
  for i in range(depth):
    p = f"{prefix}.resblocks.{i}."
    w_in = take(p + "attn.in_proj_weight", (3 * width, width))
    b_in = take(p + "attn.in_proj_bias", (3 * width,))
    attn = {}
    for j, name in enumerate(("query", "key", "value")):
      w = w_in[j * width:(j + 1) * width]
      attn[name] = {"kernel": w.T.reshape(width, heads, hd), "bias": b_in[j * width:(j + 1) * width].reshape(heads, hd)}
    attn["out"] = {"kernel": take(p + "attn.out_proj.weight", (width, width)).T.reshape(heads, hd, width),
                   "bias": take(p + "attn.out_proj.bias", (width,))}
    out[f"block{i}"] = {
        "LayerNorm_0": _layer_norm(take, p + "ln_1", width), "attn": attn,
        "LayerNorm_1": _layer_norm(take, p + "ln_2", width),
        "mlp": {"Dense_0": _dense(take, p + "mlp.c_fc", width, mlp_dim),
                "Dense_1": _dense(take, p + "mlp.c_proj", mlp_dim, width)}}
  return out


def to_params(sd: dict[str, np.ndarray], model: dict[str, Any], vocab_size: int, *, source: str = "checkpoint",
              logit_bias: float = -10.0) -> dict[str, Any]:
  """open_clip state dict -> params of `models.rsvlm.Model` built from `model` (open_clip_archs.model_config).

  Besides open_clip's weights the tree holds `img_token_proj` (a copy of visual.proj: patch tokens projected
  into the shared space, as MaskCLIP does, for the MS-VLAM region/object levels) and `logit_bias` (used only
  by the sigmoid loss)."""
  take = _Keys(sd, source)
  im, tx, embed = model["image"], model["text"], int(model["embed_dim"])
  w, p, g = im["width"], int(im["variant"].split("/")[1]), im["posemb_grid"][0]
  pos = take("visual.positional_embedding", (1 + g * g, w))
  proj = take("visual.proj", (w, embed))
  img = {
      "embedding": {"kernel": take("visual.conv1.weight", (w, 3, p, p)).transpose(2, 3, 1, 0)},
      "cls_token": take("visual.class_embedding", (w,)).reshape(1, 1, w),
      "cls_pos_embedding": pos[:1].reshape(1, 1, w),
      "pos_embedding": {"pos_embedding": pos[1:].reshape(1, g, g, w)},
      "encoder": {**_blocks(take, "visual.transformer", w, im["depth"], im["num_heads"], im["mlp_dim"]),
                  "encoder_norm": _layer_norm(take, "visual.ln_post", w)},
  }
  if im.get("ln_pre", True):
    img["ln_pre"] = _layer_norm(take, "visual.ln_pre", w)
  tw, length = tx["width"], tx["max_len"]
  txt = {
      "embedding": {"embedding": take("token_embedding.weight", (vocab_size, tw))},
      "pos_embedding": take("positional_embedding", (length, tw))[None],
      "encoder": {**_blocks(take, "transformer", tw, tx["depth"], tx["num_heads"], tx["mlp_dim"]),
                  "encoder_norm": _layer_norm(take, "ln_final", tw)},
  }
  params = {
      "img": img, "txt": txt, "img_proj": {"kernel": proj}, "img_token_proj": {"kernel": proj.copy()},
      "txt_proj": {"kernel": take("text_projection", (tw, embed))},
      "logit_scale": take("logit_scale", ()).reshape(()), "logit_bias": np.asarray(logit_bias, np.float32),
  }
  take.check()
  return _as_float32(params)


def _as_float32(tree):
  if isinstance(tree, dict):
    return {k: _as_float32(v) for k, v in tree.items()}
  return np.array(tree, dtype=np.float32, order="C")  # A copy (0-d stays 0-d).
