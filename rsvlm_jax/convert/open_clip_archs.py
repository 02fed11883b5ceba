"""open_clip architectures as rsvlm_jax model configs.

The named architectures are open_clip's published model configs (embed dim, tower sizes, context length);
`--model_config FILE.json` takes any other config in open_clip's JSON format. Only the plain CLIP layout is
supported (ViT image tower with class-token pooling, causal text tower pooled at EOT); every option that
would change the computation beyond that is refused by name instead of being silently ignored.
"""
from __future__ import annotations

import json
import os
from typing import Any

# open_clip's image normalisation for OpenAI-derived weights (OPENAI_DATASET_MEAN / _STD), on the 0-1 scale.
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)

_TEXT_77 = {"context_length": 77, "vocab_size": 49408}
ARCHS: dict[str, dict[str, Any]] = {
    "ViT-B-32": {"embed_dim": 512, "vision_cfg": {"image_size": 224, "layers": 12, "width": 768, "patch_size": 32},
                 "text_cfg": {**_TEXT_77, "width": 512, "heads": 8, "layers": 12}},
    "ViT-B-16": {"embed_dim": 512, "vision_cfg": {"image_size": 224, "layers": 12, "width": 768, "patch_size": 16},
                 "text_cfg": {**_TEXT_77, "width": 512, "heads": 8, "layers": 12}},
    "ViT-L-14": {"embed_dim": 768, "vision_cfg": {"image_size": 224, "layers": 24, "width": 1024, "patch_size": 14},
                 "text_cfg": {**_TEXT_77, "width": 768, "heads": 12, "layers": 12}},
    "ViT-L-14-336": {"embed_dim": 768,
                     "vision_cfg": {"image_size": 336, "layers": 24, "width": 1024, "patch_size": 14},
                     "text_cfg": {**_TEXT_77, "width": 768, "heads": 12, "layers": 12}},
    "ViT-H-14": {"embed_dim": 1024,
                 "vision_cfg": {"image_size": 224, "layers": 32, "width": 1280, "head_width": 80, "patch_size": 14},
                 "text_cfg": {**_TEXT_77, "width": 1024, "heads": 16, "layers": 24}},
}

# Options of open_clip's configs and the only value this converter supports (None: ignored, training-only).
_VISION_FIXED = {"ls_init_value": None, "attentional_pool": False, "pool_type": "tok", "final_ln_after_pool": False,
                 "pos_embed_type": "learnable", "timm_model_name": None, "act_kwargs": None, "norm_kwargs": None,
                 "block_type": None, "qk_norm": False, "scaled_cosine_attn": False, "scale_heads": False,
                 "scale_attn_inner": False, "scale_attn": False, "scale_fc": False, "input_patchnorm": False}
_VISION_FREE = {"image_size", "layers", "width", "head_width", "mlp_ratio", "patch_size", "no_ln_pre",
                "patch_dropout", "output_tokens"}
_TEXT_FIXED = {"hf_model_name": None, "hf_tokenizer_name": None, "tokenizer_mode": None, "tokenizer_kwargs": None,
               "ls_init_value": None, "embed_cls": False, "pad_id": 0, "no_causal_mask": False,
               "final_ln_after_pool": False, "pool_type": "argmax", "proj_bias": False, "proj_type": "linear",
               "act_kwargs": None, "norm_kwargs": None, "block_type": None, "qk_norm": False,
               "scaled_cosine_attn": False, "scale_heads": False, "scale_attn_inner": False, "scale_attn": False,
               "scale_fc": False}
_TEXT_FREE = {"context_length", "vocab_size", "width", "heads", "layers", "mlp_ratio", "output_tokens"}
_TOP_FIXED = {"custom_text": False, "init_logit_bias": None}
_TOP_FREE = {"embed_dim", "vision_cfg", "text_cfg", "quick_gelu", "cast_dtype"}


def arch_from_name_or_file(model: str, model_config: str = "") -> tuple[dict[str, Any], bool]:
  """(open_clip config dict, quick_gelu named by it) for `--model NAME` or `--model_config FILE.json`.

  A name ending in "-quickgelu" (open_clip's spelling) selects QuickGELU, as does "quick_gelu": true in a
  JSON config."""
  if model_config:
    if not os.path.isfile(model_config):
      raise FileNotFoundError(f"--model_config file not found: {model_config}")
    with open(model_config, encoding="utf-8") as f:
      try:
        arch = json.load(f)
      except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"--model_config {model_config}: not valid JSON ({e})") from e
    check_shape(arch, f"--model_config {model_config}")
    return arch, bool(arch.get("quick_gelu", False))
  quick = model.endswith("-quickgelu")
  base = model[:-len("-quickgelu")] if quick else model
  if base not in ARCHS:
    raise ValueError(f"Unknown open_clip model {model!r}; supported by name: {sorted(ARCHS)} (each also as "
                     "NAME-quickgelu), or pass --model_config with open_clip's JSON config of the architecture")
  return json.loads(json.dumps(ARCHS[base])), quick


def check_shape(arch: Any, source: str) -> None:
  """An open_clip config is a JSON object with embed_dim and the vision_cfg / text_cfg objects."""
  if not isinstance(arch, dict):
    raise ValueError(f"{source}: expected open_clip's JSON object {{\"embed_dim\": ..., \"vision_cfg\": {{...}}, "
                     f"\"text_cfg\": {{...}}}}, got a JSON {type(arch).__name__}")
  for key in ("embed_dim", "vision_cfg", "text_cfg"):
    if key not in arch:
      raise ValueError(f"{source}: no key {key!r} (an open_clip model config has embed_dim, vision_cfg and "
                       "text_cfg)")
  for key in ("vision_cfg", "text_cfg"):
    if not isinstance(arch[key], dict):
      raise ValueError(f"{source}: {key} is a JSON {type(arch[key]).__name__}, expected an object")


def _number(cfg: dict[str, Any], key: str, default, where: str, kind=int):
  value = cfg.get(key, default)
  if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
    raise ValueError(f"open_clip config {where}{key}={value!r} is not {'an integer' if kind is int else 'a number'}")
  return kind(value)


def _check(cfg: dict[str, Any], fixed: dict[str, Any], free: set[str], where: str) -> None:
  for key, value in cfg.items():
    if key in free:
      continue
    if key not in fixed:
      raise ValueError(f"open_clip config key {where}{key}={value!r} is not supported by the converter")
    if value != fixed[key] and not (fixed[key] is None and value in ({}, [])):
      raise ValueError(f"open_clip config {where}{key}={value!r} is not supported (only {fixed[key]!r}): "
                       "the converted model would compute something else")


def _size(value) -> int:
  if isinstance(value, (list, tuple)):
    if len(value) != 2 or value[0] != value[1]:
      raise ValueError(f"Only square image sizes are supported, got {value}")
    value = value[0]
  return _number({"image_size": value}, "image_size", None, "vision_cfg.")


def model_config(arch: dict[str, Any], quick_gelu: bool, *, source: str = "") -> dict[str, Any]:
  """An open_clip config -> the `config.model` section of an rsvlm_jax model computing the same thing.

  Errors name the config key, prefixed by `source` (the --model_config file) when given."""
  try:
    return _model_config(arch, quick_gelu)
  except ValueError as e:
    raise ValueError(f"--model_config {source}: {e}" if source else str(e)) from e


def _model_config(arch: dict[str, Any], quick_gelu: bool) -> dict[str, Any]:
  check_shape(arch, "open_clip config")
  _check({k: v for k, v in arch.items()}, _TOP_FIXED, _TOP_FREE, "")
  v, t = dict(arch["vision_cfg"]), dict(arch["text_cfg"])
  _check(v, _VISION_FIXED, _VISION_FREE, "vision_cfg.")
  _check(t, _TEXT_FIXED, _TEXT_FREE, "text_cfg.")
  if isinstance(v.get("layers"), (list, tuple)):
    raise ValueError("ResNet image towers (vision_cfg.layers as a list) are not supported; use a ViT model")
  act = "quick_gelu" if quick_gelu else "gelu"
  vn = lambda key, default, kind=int: _number(v, key, default, "vision_cfg.", kind)
  tn = lambda key, default, kind=int: _number(t, key, default, "text_cfg.", kind)
  size, patch, width = _size(v.get("image_size", 224)), vn("patch_size", 16), vn("width", 768)
  if size % patch:
    raise ValueError(f"vision_cfg.image_size {size} is not divisible by patch_size {patch}")
  head_width = vn("head_width", 64)
  if width % head_width:
    raise ValueError(f"vision_cfg.width {width} is not divisible by head_width {head_width}")
  grid = size // patch
  twidth = tn("width", 512)
  image = {
      "variant": f"B/{patch}", "width": width, "depth": vn("layers", 12),
      "mlp_dim": int(width * vn("mlp_ratio", 4.0, float)), "num_heads": width // head_width,
      "posemb_grid": (grid, grid), "pool_type": "tok", "class_token": True, "ln_pre": not v.get("no_ln_pre", False),
      "patch_bias": False, "ln_eps": 1e-5, "mlp_act": act, "remat": False,
      "pixel_mean": tuple(255.0 * m for m in OPENAI_MEAN), "pixel_std": tuple(255.0 * s for s in OPENAI_STD)}
  text = {"width": twidth, "depth": tn("layers", 12), "num_heads": tn("heads", 8),
          "mlp_dim": int(twidth * tn("mlp_ratio", 4.0, float)), "max_len": tn("context_length", 77),
          "causal": True, "pool_type": "argmax", "ln_eps": 1e-5, "mlp_act": act, "remat": False}
  return {"embed_dim": _number(arch, "embed_dim", None, ""), "proj_bias": False, "region_windows": 3,
          "image": image, "text": text, "decoder": None}


def native_size(arch: dict[str, Any]) -> int:
  """The image size (px) the architecture was trained at."""
  return _size(arch["vision_cfg"].get("image_size", 224))


def vocab_size(arch: dict[str, Any]) -> int:
  return int(arch["text_cfg"].get("vocab_size", 49408))
