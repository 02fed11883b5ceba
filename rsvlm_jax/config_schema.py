"""Every config key of a run, declared once: its default and what it means.

Config files (configs/*.py) start from `defaults()` and change values, reading no file. `gate` is the one place
a config is completed and checked, where a run or a load starts (job.run, rsvlm_jax.load, the tools' --config):
it reads `model_from.dir`'s architecture, fills the keys a hand-written config leaves out (`complete`) and
checks every key (`check`: an unknown key fails naming it; a value of the wrong type, outside its range or
choices, or breaking one of the named RULES fails naming the key). Code after the gate reads `config.a.b` and
never repeats a default or a check. Four subtrees are open, their keys being
declared by the code they configure: model.image (the fields of models.vit.ViT), model.text / model.decoder
(models.text.TextEncoder / CaptionDecoder; model.decoder=None drops the decoder), losses.<name> (a registered
loss: its `weight` plus its keyword args) and evals.<name> (a registered evaluator's keyword args).

Every key declares its type (its default's) and allowed values: a `Range` for numbers, `choices` for strings;
docs/config.md lists them.

`python -m rsvlm_jax.config_schema` prints the reference table (docs/config.md is that output).
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import fnmatch
import json
import math
import os
import sys
from typing import Any

import ml_collections
from absl import flags

from rsvlm_jax import vit_variants
from rsvlm_jax.dris import buckets as buckets_lib
from rsvlm_jax.dris import policy as policy_lib
from rsvlm_jax.runtime import cli


class ConfigError(ValueError):
  """A config value a run cannot use; the message names the key, the value and what is allowed."""


class UnknownKeyError(ConfigError, KeyError):
  """A config key the schema does not declare (a KeyError too, as before)."""

  def __str__(self):
    return str(self.args[0]) if self.args else ""


@dataclasses.dataclass(frozen=True)
class Range:
  """The allowed values of a numeric key (of each element, for a tuple): lo <(=) value <(=) hi.

  `integer` also requires an int (not a bool); `none_ok` lets the key be None.
  """
  lo: float | None = None
  hi: float | None = None
  lo_open: bool = False
  hi_open: bool = False
  integer: bool = False
  none_ok: bool = False

  def __str__(self) -> str:
    kind = "integer" if self.integer else "number"
    if self.lo is not None and self.hi is not None:
      text = f"{kind} in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"
    elif self.lo is not None:
      text = f"{kind} {'>' if self.lo_open else '>='} {self.lo:g}"
    elif self.hi is not None:
      text = f"{kind} {'<' if self.hi_open else '<='} {self.hi:g}"
    else:
      text = kind
    return text + (" or None" if self.none_ok else "")

  def allows(self, value) -> bool:
    if value is None:
      return self.none_ok
    if isinstance(value, bool) or not isinstance(value, (int, float)):
      return False
    if self.integer and not isinstance(value, int):
      return False
    if isinstance(value, float) and not math.isfinite(value):
      return False
    if self.lo is not None and not (value > self.lo if self.lo_open else value >= self.lo):
      return False
    return self.hi is None or (value < self.hi if self.hi_open else value <= self.hi)


STEPS = Range(1, integer=True)  # A positive count (steps, sizes, intervals).
COUNT = Range(0, integer=True)  # A count where 0 is meaningful (off, none, every).
NONNEG = Range(0)
POSITIVE = Range(0, lo_open=True)
UNIT = Range(0, 1)  # A fraction in [0, 1].
BETA = Range(0, 1, hi_open=True)


@dataclasses.dataclass(frozen=True)
class Key:
  """A key: its default (whose type is the key's type: bool, int, float, str, tuple or dict), its meaning, and
  the values it allows (a numeric `Range`, of each element for a tuple, or string `choices`)."""
  default: Any
  meaning: str
  allowed: Range | None = None  # For a tuple default: what each element allows.
  choices: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Open:
  """A subtree whose keys are declared by code (dataclass fields or registry kwargs), with its default."""
  default: Any
  meaning: str
  fields_of: str = ""  # "vit" | "text" | "decoder": keys must be fields of that flax module.
  allowed: tuple[tuple[str, Range], ...] = ()  # (fnmatch pattern of the dotted key below it, its range).


_TOWER = tuple((k, STEPS) for k in ("width", "depth", "num_heads", "mlp_dim", "max_len"))

SCHEMA: dict[str, Any] = {
    "seed": Key(0, "Seed of the parameter init and of the data order.", Range(integer=True)),
    "runlocal": Key(False, "Smoke mode marker set by configs' runlocal arg (tiny data and model)."),
    "model_init": Key("", "A trained run's workdir, or a converted open_clip directory: when this workdir has no "
                          "checkpoint, the params start from its newest complete step."),
    "model_init_fresh": Key("", "Regex over '/'-joined param names that model_init may lack; they keep their "
                                "initialisation (e.g. '^dec/' for a new caption decoder)."),
    "model_init_skip": Key("", "Regex over model_init's param names that this model may leave unused (logged)."),
    "model_from": {
        "dir": Key("", "A converted open_clip directory (or a run fine-tuned from one) whose architecture the run "
                       "takes, read once where the run starts (configs/clip_finetune.py): its model section, "
                       "input.text_len and input.preprocess replace this config's (model.decoder: see decoder), "
                       "but for the run options model.image.remat, model.image.fused_attention, "
                       "model.text.remat and model.region_windows, which stay the config's; another model key "
                       "the config sets must agree with dir's. The run's config.json holds what was read, with "
                       "dir ''."),
        "resolutions": Key("config", "With dir: dris.resolutions as set ('config'), dir's native (largest) one "
                                     "('native'), or buckets at about 1/2, 3/4 and 1x of it ('fractions').",
                           choices=("config", "native", "fractions")),
        "decoder": Key("dir", "With dir: model.decoder is dir's own ('dir'; None for converted towers), as set "
                              "('config'), or as set with dir's text tower width, width/64 heads and a 4x MLP "
                              "('text'); with 'config' and 'text' its max_len is input.text_len.",
                       choices=("dir", "config", "text")),
    },
    "total_steps": Key(800, "Training steps.", STEPS),
    "ckpt_every": Key(200, "Checkpoint every N steps (and at the end, and on SIGTERM).", STEPS),
    "keep_checkpoints": Key(3, "Checkpoints kept (0 keeps every one).", Range(0, integer=True, none_ok=True)),
    "async_checkpoint": Key(True, "Write checkpoints in the background while training goes on."),
    "eval_every": Key(0, "Run the evals every N steps during training (0 = only at the end).", Range(0, integer=True, none_ok=True)),
    "log_every": Key(1, "Write train metrics of every Nth step to metrics.jsonl / TensorBoard.", STEPS),
    "progress_every": Key(25, "Console progress line (loss, steps/s, ETA) every N steps.", STEPS),
    "host_sync_every": Key(10, "Fetch train metrics from the device every N steps in one transfer and check "
                               "every step's loss among them, so a non-finite one is named exactly; 1 = after "
                               "every step (slower, for debugging: stops at the first bad step at once). Older "
                               "config.json keys sync_every and nan_check_every_step map onto it.", STEPS),
    "compute_dtype": Key("float32", "Activation dtype of the towers: float32 or bfloat16 (params stay float32).",
                         choices=("float32", "bfloat16")),
    "fsdp": Key(False, "Shard params and optimizer state over the data axis (FSDP/ZeRO-3) instead of "
                       "replicating them."),
    "num_devices": Key(0, "Devices used: 0 = every device of every process; N = the first N.", COUNT),
    "tensorboard": Key(True, "Also write TensorBoard event files."),
    "decoding": Key("greedy", "Caption decoding.", choices=("greedy", "beam")),
    "beam_size": Key(4, "Beams when decoding=beam.", STEPS),
    "input": {
        "dataset": Key("synthetic_scenes/demo", "TFDS name[/config] of the dataset (see datasets/)."),
        "data_dir": Key("data", "TFDS data directory the dataset was built into."),
        "splits": Key({"train": "train", "test": "test", "validation": "validation"},
                      "TFDS split read for each split name, e.g. train='train[:90%]'."),
        "batch_size": Key(64, "Global batch size (split over all devices).", STEPS),
        "vocab_size": Key(1000, "Vocabulary of the SentencePiece tokenizer trained on the training captions.", Range(8, integer=True)),
        "tokenizer_path": Key("", "A tokenizer file to use instead of training one (tokenizer.model or CLIP "
                                  "BPE merges)."),
        "tokenizer_examples": Key(20000, "Training records whose captions train the tokenizer.", STEPS),
        "text_len": Key(32, "Caption tokens per text.", Range(2, integer=True)),
        "phrase_len": Key(8, "Tokens per phrase or object name (local and object alignment).", Range(2, integer=True)),
        "max_phrases": Key(6, "Phrases per caption for the local alignment level.", STEPS),
        "max_objects": Key(16, "Objects per image for the object alignment level (largest kept).", STEPS),
        "detail_res": Key(0, "> 0: images pass through this many px first (same tokens, capped detail).", COUNT),
        "preprocess": Key("resize", "resize (ours) or clip (open_clip's resize + center crop, converted "
                                    "weights).", choices=("resize", "clip")),
        "num_threads": Key(2, "grain read threads.", STEPS),
        "prefetch": Key(4, "grain prefetch buffer (batches).", COUNT),
        "workers": Key(0, "grain worker processes (0 = in the training process).", COUNT),
    },
    "dris": {
        "resolutions": Key((64,), "Ascending image sizes (px) of the DRIS buckets; one value = a fixed "
                                  "resolution. Each must be a multiple of the variant's patch size.", STEPS),
        "budget": Key(0.5, "Token budget: mean tokens per image as a fraction of the largest bucket's, met by "
                           "thresholds calibrated on the training split.", Range(0, 1, lo_open=True)),
        "scorer": Key("", "'' = the content-complexity score; a path = a learned scorer .npz "
                          "(python -m rsvlm_jax.tools.fit_dris_scorer)."),
        "score_size": Key(64, "Thumbnail size (px) of the complexity score.", Range(2, integer=True)),
        "thresholds": Key((), "Fixed K-1 score thresholds instead of calibrating them.", Range()),
        "train": Key("buckets", "Buckets in training: 'buckets' (by score) or 'largest' (every image at the "
                                "largest bucket).", choices=policy_lib.ASSIGNMENTS),
        "serve": Key("buckets", "Buckets at evaluation and serving: 'buckets' or 'largest'.", choices=policy_lib.ASSIGNMENTS),
        "eval_largest_too": Key(False, "Also evaluate every image at the largest bucket (same weights) and "
                                       "report it as the 'at_largest' row next to the DRIS one."),
        "mixed_buckets": Key(True, "Every training batch holds a static share of every bucket (one "
                                   "compilation); False = one bucket per batch (one compilation per bucket)."),
        "bucket_jitter": Key(0.0, "Mixed batches: share of each batch whose images swap buckets at random.", UNIT),
    },
    "model": {
        "embed_dim": Key(128, "Shared image-text embedding size.", STEPS),
        "region_windows": Key(3, "Region tokens per side for the local alignment level.", STEPS),
        "proj_bias": Key(True, "Bias in the image/text projections (open_clip's have none)."),
        "image": Open({"variant": "mu/8", "posemb_grid": (16, 16), "pool_type": "map", "remat": False},
                      "Image tower: fields of models.vit.ViT (variant NAME/PATCH sets the patch size).", "vit",
                      allowed=(("posemb_grid", STEPS),)),
        "text": Open({"width": 128, "depth": 2, "num_heads": 4, "mlp_dim": 512, "max_len": 32},
                     "Text tower: fields of models.text.TextEncoder.", "text", allowed=_TOWER),
        "decoder": Open({"width": 128, "depth": 2, "num_heads": 4, "mlp_dim": 512, "max_len": 32},
                        "Caption decoder: fields of models.text.CaptionDecoder, or None for none.", "decoder",
                        allowed=_TOWER),
    },
    "losses": Open({"global_alignment": {"weight": 1.0, "kind": "softmax"},
                    "local_alignment": {"weight": 0.0, "mode": "max_sim"},
                    "object_alignment": {"weight": 0.0},
                    "captioning": {"weight": 1.0}},
                   "MS-VLAM levels and captioning: registered loss name -> {weight, its kwargs}; weight 0 = off.",
                   allowed=(("*.weight", NONNEG),)),
    "optim": {
        "lr": Key(1e-3, "Peak learning rate (AdamW, linear warmup then cosine decay).", POSITIVE),
        "warmup_steps": Key(100, "Linear warmup steps.", COUNT),
        "end_lr_factor": Key(0.01, "Final learning rate as a fraction of lr.", NONNEG),
        "weight_decay": Key(1e-4, "AdamW weight decay.", NONNEG),
        "no_decay_regex": Key(r"pos_embedding|logit_|probe", "Params matching this regex get no weight decay."),
        "grad_clip_norm": Key(1.0, "Global gradient-norm clip (0 = none).", NONNEG),
        "b1": Key(0.9, "AdamW beta1.", BETA),
        "b2": Key(0.98, "AdamW beta2.", BETA),
        "lr_mult_regex": Key("", "Params matching this regex train at lr * lr_mult."),
        "lr_mult": Key(1.0, "Learning-rate multiplier for lr_mult_regex.", NONNEG),
    },
    "evals": Open({"retrieval": {"split": "test", "batch_size": 64, "complexity_groups": 3},
                   "captioning": {"split": "test", "batch_size": 64, "num_examples": 5, "complexity_groups": 3},
                   "efficiency": {"split": "test", "batch_size": 64}},
                  "Evaluators run after training: registered name -> its kwargs (split, batch_size, ...).",
                  allowed=(("*.batch_size", STEPS), ("*.num_examples", COUNT), ("*.complexity_groups", COUNT))),
    "converted_from": Open({}, "Set by tools.convert_open_clip: the source checkpoint, its SHA-256 and options."),
    "distributed": {
        "coordinator_address": Key("", "host:port of process 0 for jax.distributed (multi-host)."),
        "num_processes": Key(0, "Processes of a multi-host run (0 = single process).", COUNT),
        "process_id": Key(-1, "This process's index (-1 = from the environment).", Range(-1, integer=True)),
        "auto": Key(False, "jax.distributed.initialize() with the cluster's own discovery (TPU VMs, SLURM)."),
    },
}

# Keys of configs written before the DRIS keys had their own group (config.json of older runs and converted
# directories): old dotted key -> new dotted key.
MOVED = {f"input.{k}": f"dris.{k}" for k in ("resolutions", "budget", "scorer", "score_size", "thresholds",
                                             "mixed_buckets", "bucket_jitter", "coarse_to_fine")}
DROPPED = ("input.patch_size", "input.dris_at")  # Now derived (model.image.variant) or replaced (dris.train).


def _to_plain(node):
  if isinstance(node, Key):
    return copy.deepcopy(node.default)
  if isinstance(node, Open):
    return copy.deepcopy(node.default)
  return {k: _to_plain(v) for k, v in node.items()}


def defaults() -> ml_collections.ConfigDict:
  """A full config holding every key at its default."""
  return ml_collections.ConfigDict(_to_plain(SCHEMA))


def _open_fields(kind: str) -> tuple[str, set[str]]:
  """(module name, settable fields) of the flax module an open model subtree configures."""
  module = _module_of(kind)
  return f"{module.__module__}.{module.__name__}", set(_settable_defaults(module))


def _module_of(kind: str):
  from rsvlm_jax.models import text  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.models import vit  # pylint: disable=g-import-not-at-top
  return {"vit": vit.ViT, "text": text.TextEncoder, "decoder": text.CaptionDecoder}[kind]


def _settable_defaults(module) -> dict[str, Any]:
  """{field: its default} of the fields a config sets on flax `module` (None for a field without a default)."""
  return {f.name: None if f.default is dataclasses.MISSING else f.default for f in dataclasses.fields(module)
          if f.name not in ("parent", "name", "dtype", "vocab_size")}


# Keys of the model section that say how the model runs, not what it computes: with model_from.dir, the
# config's values of these stay (e.g. --config.model.image.remat=True); every other key is the weights'.
MODEL_RUN_OPTIONS = ("region_windows", "image.remat", "image.fused_attention", "text.remat")


def model_from_section(decoder) -> ml_collections.ConfigDict:
  """The model section of a config whose architecture model_from.dir gives (configs/clip_finetune.py): each
  architecture key a typed placeholder (None: the weights' value; `--config.model.KEY=V` may still name it, and
  the gate refuses a value the weights disagree with), the run options (MODEL_RUN_OPTIONS) at their defaults,
  and `decoder` (see model_from.decoder)."""
  def tower(kind: str, prefix: str) -> dict:
    out = {}
    for name, default in _settable_defaults(_module_of(kind)).items():
      run_option = f"{prefix}.{name}" in MODEL_RUN_OPTIONS
      out[name] = default if run_option else ml_collections.config_dict.placeholder(type(default))
    return out
  return ml_collections.ConfigDict({
      "embed_dim": ml_collections.config_dict.placeholder(int),
      "proj_bias": ml_collections.config_dict.placeholder(bool),
      "region_windows": SCHEMA["model"]["region_windows"].default,
      "image": tower("vit", "image"), "text": tower("text", "text"), "decoder": decoder})


def _walk_check(node, schema, path: str) -> None:
  for key in (node.keys() if hasattr(node, "keys") else ()):
    dotted = f"{path}{key}"
    if key not in schema:
      known = sorted(schema)
      raise UnknownKeyError(f"Unknown config key {dotted!r}; known keys under {path[:-1] or 'the top level'}: "
                            f"{known} (every key is declared in rsvlm_jax/config_schema.py, docs/config.md)")
    spec = schema[key]
    if isinstance(spec, Open):
      value = node[key]
      if spec.fields_of and value is not None:
        module, allowed = _open_fields(spec.fields_of)
        bad = sorted(set(value.keys()) - allowed)
        if bad:
          raise UnknownKeyError(f"Unknown config key(s) {[f'{dotted}.{b}' for b in bad]}: {dotted} takes the "
                                f"fields of {module}: {sorted(allowed)}")
      for sub, sub_value in _leaves(value, ""):
        for pattern, allowed_range in spec.allowed:
          if fnmatch.fnmatchcase(sub, pattern):
            _check_value(f"{dotted}.{sub}", sub_value, allowed_range)
    elif isinstance(spec, dict):
      if not hasattr(node[key], "keys"):
        raise ConfigError(f"Config key {dotted} must be a group of keys {sorted(spec)}, got {node[key]!r}")
      _walk_check(node[key], spec, dotted + ".")
    else:
      _check_key(dotted, node[key], spec)


def _leaves(node, path: str):
  """(dotted key below `node`, value) of every leaf of a nested dict (a non-dict node is no leaf)."""
  for key in (node.keys() if hasattr(node, "keys") else ()):
    if hasattr(node[key], "keys"):
      yield from _leaves(node[key], f"{path}{key}.")
    else:
      yield f"{path}{key}", node[key]


def _kind(default) -> tuple[str, Any]:
  """(what a key with this default holds, a test of a value) for a key without a Range or choices."""
  if isinstance(default, bool):
    return "a bool", lambda v: isinstance(v, bool)
  if isinstance(default, str):
    return "a string", lambda v: isinstance(v, str)
  if isinstance(default, dict):
    return "a mapping of strings", lambda v: hasattr(v, "items") and all(
        isinstance(k, str) and isinstance(x, str) for k, x in v.items())
  raise TypeError(f"Schema key of default {default!r} declares no Range or choices")  # Numbers have a Range.


def _check_key(dotted: str, value, spec: Key) -> None:
  """The key's type, and its Range (of each element, for a tuple) or choices."""
  if isinstance(spec.default, tuple) and not isinstance(value, (tuple, list)):
    raise ConfigError(f"Config key {dotted} must be a tuple (each element {spec.allowed}), got {value!r}")
  if spec.allowed is not None:
    _check_value(dotted, value, spec.allowed)
  elif spec.choices:
    if value not in spec.choices:
      raise ConfigError(f"Config key {dotted} must be one of {spec.choices}, got {value!r}")
  else:
    kind, ok = _kind(spec.default)
    if not ok(value):
      raise ConfigError(f"Config key {dotted} must be {kind}, got {value!r}")


def _check_value(dotted: str, value, allowed: Range) -> None:
  values = value if isinstance(value, (tuple, list)) else [value]
  if not all(allowed.allows(v) for v in values):
    each = " (each element)" if isinstance(value, (tuple, list)) else ""
    raise ConfigError(f"Config key {dotted} must be {'an' if str(allowed)[0] in 'ai' else 'a'} {allowed}{each}, "
                      f"got {value!r}")


# -- Rules: keys whose allowed values depend on other keys' (and on the devices the run uses). -----------------

def _get(node, *keys):
  for key in keys:
    node = node.get(key) if hasattr(node, "get") else None
  return node


def text_fits_towers(config) -> None:
  """input.text_len and input.phrase_len fit the position embeddings of the text tower and the decoder."""
  for key in ("text_len", "phrase_len"):
    length = _get(config, "input", key)
    for tower in ("text", "decoder"):
      max_len = _get(config, "model", tower, "max_len")
      if isinstance(length, int) and isinstance(max_len, int) and length > max_len:
        raise ConfigError(f"Config key input.{key}={length} exceeds model.{tower}.max_len={max_len} (the "
                          f"{tower} tower's position embeddings): raise model.{tower}.max_len or lower input.{key}")


def resolutions_fit_patches(config) -> None:
  """dris.resolutions: at least one, strictly ascending, each a multiple of model.image.variant's patch size."""
  resolutions = tuple(_get(config, "dris", "resolutions") or ())
  image = _get(config, "model", "image") or {}
  if not resolutions:
    raise ConfigError("Config key dris.resolutions must hold at least one image size, got ()")
  if list(resolutions) != sorted(set(resolutions)):
    raise ConfigError(f"Config key dris.resolutions must be strictly ascending, got {resolutions}")
  if "variant" not in image:
    return
  try:
    patch = vit_variants.patch_size(image)
  except ValueError as e:
    raise ConfigError(f"Config key model.image.variant: {e}") from e
  bad = [r for r in resolutions if r % patch]
  if bad:
    raise ConfigError(f"Config key dris.resolutions={resolutions}: {bad[0]} is not divisible by the patch size "
                      f"{patch} (from model.image.variant={image['variant']!r})")


RULES = (text_fits_towers, resolutions_fit_patches)


def batch_sizes_fit_devices(config, devices: int) -> None:
  """Every global batch (input.batch_size, evals.NAME.batch_size) splits evenly over the `devices` of the data
  axis (known once jax.distributed is up: job.run checks it then)."""
  sizes = {"input.batch_size": config.input.batch_size}
  sizes.update({f"evals.{name}.batch_size": e["batch_size"] for name, e in config.get("evals", {}).items()
                if "batch_size" in e})
  for key, size in sizes.items():
    if int(size) % devices:
      raise ConfigError(f"Config key {key}={size} is not divisible by the {devices} devices of the data axis "
                        "(set it to a multiple, or config.num_devices to use fewer devices)")


def check(config) -> None:
  """Fails on any key the schema does not declare (UnknownKeyError, naming it and the keys that exist there),
  on a value of the wrong type or outside its key's allowed range or choices, and on a broken RULE (each a
  ConfigError naming the key, the value and what is allowed)."""
  _walk_check(config, SCHEMA, "")
  for rule in RULES:
    rule(config)


def complete(config) -> ml_collections.ConfigDict:
  """`config` with every schema key it lacks added at its default (in place, unlocked; also returned)."""
  def fill(node, schema):
    for key, spec in schema.items():
      if key not in node:
        node[key] = _to_plain(spec)
      elif isinstance(spec, dict) and hasattr(node[key], "keys"):
        fill(node[key], spec)
  with config.unlocked() if hasattr(config, "unlocked") else contextlib.nullcontext():
    fill(config, SCHEMA)
  return config


def gate(config, *, devices: int | None = None) -> ml_collections.ConfigDict:
  """The one config gate, where a run or a load starts (job.run, rsvlm_jax.load, the tools' --config): reads
  model_from.dir's architecture into `config`, fills every key it lacks with its default and checks it (types,
  ranges, choices, RULES; with `devices`, also batch_sizes_fit_devices). Components after it (Trainer,
  InputPipeline, Checkpointer, the DRIS buckets) take the config as it is. Returns `config` (changed in place)."""
  if _get(config, "model_from", "dir"):
    with config.unlocked():
      _adopt_model_from(config)
  complete(config)
  check(config)
  if devices is not None:
    batch_sizes_fit_devices(config, devices)
  return config


def read_model_config(directory: str, key: str) -> dict:
  """DIRECTORY/config.json (upgraded to today's layout); a ConfigError naming config key `key` when missing."""
  path = os.path.join(os.path.expanduser(directory), "config.json")
  if not os.path.isfile(path):
    raise ConfigError(f"Config key {key}={directory!r}: no config.json there (convert the checkpoint first with "
                      "python -m rsvlm_jax.tools.convert_open_clip)")
  with open(path, encoding="utf-8") as f:
    try:
      raw = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
      raise ConfigError(f"Config key {key}={directory!r}: {path} is not valid JSON ({e})") from e
  if not isinstance(raw, dict) or not isinstance(raw.get("model"), dict):
    raise ConfigError(f"Config key {key}={directory!r}: {path} holds no model section")
  return upgrade(raw)


def _adopt_model_from(config) -> None:
  """model_from.dir's model section, input.text_len and input.preprocess (and, as model_from asks, its native
  resolution and text-tower width) into `config`; then model_from.dir = '' (read once)."""
  spec = config.model_from
  src = read_model_config(spec.dir, "model_from.dir")
  own_decoder = config.model.get("decoder")
  config.model = ml_collections.ConfigDict(_model_from_model(config.model, src["model"], spec.dir))
  text_len = int(src["input"]["text_len"])
  config.input.text_len = text_len
  config.input.preprocess = src["input"].get("preprocess", "resize")
  native = int(src["dris"]["resolutions"][-1])
  if spec.resolutions == "native":
    config.dris.resolutions = (native,)
  elif spec.resolutions == "fractions":
    config.dris.resolutions = buckets_lib.fractional_resolutions(native, vit_variants.patch_size(src["model"]["image"]))
  if spec.decoder != "dir":
    decoder = None if own_decoder is None else ml_collections.ConfigDict(dict(own_decoder))
    if decoder is not None:
      if spec.decoder == "text":
        width = int(src["model"]["text"]["width"])
        decoder.update(width=width, num_heads=max(1, width // 64), mlp_dim=4 * width)
      decoder.max_len = text_len
    config.model.decoder = decoder
  spec.dir = ""


def _model_from_model(own, theirs: dict, directory: str) -> dict:
  """model_from.dir's model section (`theirs`) with the config's run options (MODEL_RUN_OPTIONS). Any other key
  the config sets (not None) must agree with theirs: the weights fix the architecture; a ConfigError names the
  key and both values. The decoder is left to model_from.decoder."""
  model = copy.deepcopy(theirs)
  for key, value in _leaves(own, ""):
    if key == "decoder" or key.startswith("decoder."):
      continue
    *parents, leaf = key.split(".")
    node = model
    for part in parents:  # Run options may be missing in theirs (a config older than the option).
      node = node.setdefault(part, {}) if key in MODEL_RUN_OPTIONS else (node or {}).get(part)
    if key in MODEL_RUN_OPTIONS:
      node[leaf] = value
    elif value is not None and not (isinstance(node, dict) and _same(value, node.get(leaf, _MISSING))):
      has = isinstance(node, dict) and leaf in node
      weights = f"have model.{key}={node[leaf]!r}" if has else f"set no model.{key}"
      raise ConfigError(f"Config key model.{key}={value!r} disagrees with model_from.dir={directory!r}, whose "
                        f"weights {weights}: the weights fix the architecture (leave it unset; the run options "
                        f"{list(MODEL_RUN_OPTIONS)} are the config's)")
  return model


_MISSING = object()


def _same(a, b) -> bool:
  """Config values equal as JSON holds them (tuples as lists)."""
  plain = lambda v: list(v) if isinstance(v, (tuple, list)) else v
  return plain(a) == plain(b)


def upgrade(raw: dict) -> dict:
  """A config dict in an older layout (input.resolutions, input.dris_at, ...) -> today's layout (a copy).
  The removed dris.coarse_to_fine group is dropped when off (num_tiles 0) and a ConfigError when on."""
  raw = copy.deepcopy(raw)
  inp = raw.get("input", {})
  dris = raw.setdefault("dris", {})
  for old, new in MOVED.items():
    key = old.split(".")[1]
    if key in inp:
      dris.setdefault(new.split(".")[1], inp.pop(key))
  dris_at = inp.pop("dris_at", None)
  if dris_at == "serve":
    dris.setdefault("train", "largest")
  for old in DROPPED:
    inp.pop(old.split(".")[1], None)
  _drop_coarse_to_fine(dris)
  for split in ("train", "test", "validation"):  # input.<split>_split -> input.splits.<split>
    if f"{split}_split" in inp:
      inp.setdefault("splits", dict(SCHEMA["input"]["splits"].default))[split] = inp.pop(f"{split}_split")
  # sync_every and nan_check_every_step (one choice in two keys) -> host_sync_every.
  sync_every, every_step = raw.pop("sync_every", None), raw.pop("nan_check_every_step", None)
  if "host_sync_every" not in raw and (sync_every is not None or every_step):
    raw["host_sync_every"] = 1 if every_step else sync_every
  return raw


def _drop_coarse_to_fine(dris: dict) -> None:
  """dris.coarse_to_fine (tiles encoded next to the bucket; removed): dropped when it was off (num_tiles 0),
  else a ConfigError, since the run's model read tiles this version no longer makes."""
  if "coarse_to_fine" not in dris:
    return
  c2f = dris.pop("coarse_to_fine")
  key, num_tiles = ("dris.coarse_to_fine.num_tiles", c2f.get("num_tiles", 0)) if isinstance(c2f, dict) else (
      "dris.coarse_to_fine", c2f)
  if num_tiles != 0 or isinstance(num_tiles, bool):
    raise ConfigError(f"Config key {key}={num_tiles!r}: coarse-to-fine tiles were removed in this version; a "
                      "config that encodes tiles (num_tiles > 0) cannot be trained, evaluated or loaded here")


def rows(node=SCHEMA, path: str = "") -> list[tuple[str, Any, str]]:
  """(dotted key, default, meaning) of every declared key, in declaration order."""
  out = []
  for key, spec in node.items():
    if isinstance(spec, dict):
      out += rows(spec, f"{path}{key}.")
    else:
      out.append((f"{path}{key}", spec.default, spec.meaning))
  return out


def allowed_text(dotted: str) -> str:
  """What key `dotted` allows, for the reference table ('' for a key without a declared range)."""
  spec = SCHEMA
  for part in dotted.split("."):
    spec = spec[part]
  if isinstance(spec, Open):
    return "; ".join(f"{p}: {r}" for p, r in spec.allowed)
  if spec.choices:
    return "one of " + ", ".join(spec.choices)
  if spec.allowed is None:
    return _kind(spec.default)[0] if isinstance(spec.default, (bool, str, dict)) else ""
  return ("each: " if isinstance(spec.default, (tuple, list)) else "") + str(spec.allowed)


def markdown() -> str:
  """The reference table of every key (docs/config.md)."""
  lines = ["# Config reference", "",
           "Generated by `python -m rsvlm_jax.config_schema > docs/config.md` from rsvlm_jax/config_schema.py "
           "(a test checks it is current). Set any key from the command line: "
           "`--config.dris.budget=0.6`. A value outside a key's allowed range stops the run at start, naming the key.",
           "", "| key | default | allowed | meaning |", "|---|---|---|---|"]
  opens = {f"model.{k}": v.fields_of for k, v in SCHEMA["model"].items() if isinstance(v, Open)}
  for key, default, meaning in rows():
    if opens.get(key):
      meaning += " Fields: " + ", ".join(sorted(_open_fields(opens[key])[1])) + "."
    lines.append(f"| `{key}` | `{default!r}` | {allowed_text(key)} | {meaning} |".replace("\n", " "))
  return "\n".join(lines) + "\n"


def main(argv):
  """`python -m rsvlm_jax.config_schema` (no flags): the reference table on stdout (docs/config.md)."""
  del argv
  sys.stdout.write(markdown())


if __name__ == "__main__":
  cli.run(main, flags.FlagValues(), "config_schema")
