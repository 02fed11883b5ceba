"""`rsvlm_jax.load(DIR)`: a trained workdir or converted open_clip weights as a ready-to-use model.

    model = rsvlm_jax.load("/runs/rsicd")            # or a directory written by tools/convert_open_clip
    ids = model.tokenize(["a port with many ships"])  # int32 [N, text_len]
    zi = model.encode_images(["a.jpg", "b.png"])      # or uint8 [N, H, W, 3]; L2-normalised, numpy
    zt = model.encode_texts(["a port with many ships"])
    caps = model.caption(images)                      # models with a caption decoder

One item (a path, PIL image or [H, W, 3] array; one text) is a batch of one. Calls run batches padded to a
few sizes (batch_buckets: powers of two up to batch_size), so a small call is fast and each resolution
compiles a bounded number of shapes (`model.compiles` counts them).

Only the directory is read: config.json (model config, resolutions, preprocessing), the tokenizer file
(tokenizer.model or tokenizer_bpe.txt.gz) and the newest complete checkpoint's params (orbax). The training
dataset need not exist. Nothing is written into the directory.
"""
from __future__ import annotations

import json
import os
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import traverse_util
from PIL import Image

from rsvlm_jax import config_schema
from rsvlm_jax.data import image_io
from rsvlm_jax.data import tokenizer as tokenizer_lib
from rsvlm_jax.data import transforms
from rsvlm_jax.dris import buckets as buckets_lib
from rsvlm_jax.dris import calibration
from rsvlm_jax.models import rsvlm
from rsvlm_jax.runtime import compile_counter


def as_config_dict(config: dict[str, Any]) -> ml_collections.ConfigDict:
  """A JSON config (a workdir's config.json, or a converted model's; older layouts upgraded) through the config
  gate: keys it lacks take their defaults, and every key is checked (a ConfigError names it)."""
  return config_schema.gate(ml_collections.ConfigDict(config_schema.upgrade(config)))


def read_config(directory: str) -> ml_collections.ConfigDict:
  """DIRECTORY/config.json as a full ConfigDict; a file of the wrong shape (not a JSON object, no model
  section, a key of the wrong type) is a ValueError naming the file and the key."""
  path = os.path.join(directory, "config.json")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{directory} is neither a trained workdir nor a converted model: no config.json")
  with open(path, encoding="utf-8") as f:
    try:
      raw = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
      raise ValueError(f"{path}: not valid JSON ({e})") from e
  check_config_shape(raw, path)
  try:
    return as_config_dict(raw)
  except config_schema.ConfigError as e:
    raise type(e)(f"{path}: {e}") from e


# Sections a model's config.json must hold: without them there is no model to build.
REQUIRED_SECTIONS = ("model", "model.image", "model.text")


def check_config_shape(raw: Any, path: str) -> None:
  """Raises a ValueError naming `path` and the key unless `raw` (a parsed config.json) is a JSON object
  holding the REQUIRED_SECTIONS, each key the schema declares being of its kind (object, list, string,
  number, boolean; null for an unset number), and the keys `load` reads being usable values."""
  if not isinstance(raw, dict):
    raise ValueError(f"{path}: expected a JSON object (a model config), got {_json_kind(raw)}")
  _check_node(raw, config_schema.SCHEMA, "", path)
  try:
    config = config_schema.upgrade(raw)
  except config_schema.ConfigError as e:
    raise type(e)(f"{path}: {e}") from e
  for key in REQUIRED_SECTIONS:
    if _get(config, key) is None:
      raise ValueError(f"{path}: config key {key!r} is missing; a model's config.json holds its model config "
                       "(written by training or tools.convert_open_clip)")
  positive = lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0
  for key, ok, want in (
      ("input.text_len", positive, "a positive integer"),
      ("model.embed_dim", positive, "a positive integer"),
      ("dris.resolutions", lambda v: isinstance(v, list) and v and all(positive(r) for r in v),
       "a non-empty list of positive integers (image sizes in px)"),
      ("input.preprocess", lambda v: v in ("resize", "clip"), "'resize' or 'clip'")):
    value = _get(config, key)
    if value is not None and not ok(value):
      raise ValueError(f"{path}: config key {key!r} should be {want}, got {_json_kind(value)}")


def _get(node: Any, dotted: str) -> Any:
  for part in dotted.split("."):
    node = node.get(part) if isinstance(node, dict) else None
  return node


def _json_kind(value: Any) -> str:
  """'a list', 'an object', or the JSON of a scalar (cut at 40 characters) with its kind."""
  if isinstance(value, dict):
    return "an object"
  if isinstance(value, (list, tuple)):
    return f"a list ({json.dumps(value, default=str)[:40]})"
  kind = ("null" if value is None else "a boolean" if isinstance(value, bool) else "a string"
          if isinstance(value, str) else "a number")
  return f"{kind} ({json.dumps(value, default=str)[:40]})" if value is not None else kind


def _check_node(node: dict, schema: dict, prefix: str, path: str) -> None:
  for key, spec in schema.items():
    if key not in node:
      continue
    value, dotted = node[key], prefix + key
    if isinstance(spec, dict):
      want = "an object"
      ok = isinstance(value, dict)
    elif isinstance(spec, config_schema.Open):
      want = "an object" + (" or null" if spec.fields_of == "decoder" else "")
      ok = isinstance(value, dict) or (value is None and spec.fields_of == "decoder")
    else:
      want, ok = _kind_ok(spec.default, value)
    if not ok:
      raise ValueError(f"{path}: config key {dotted!r} should be {want}, got {_json_kind(value)}")
    if isinstance(spec, dict):
      _check_node(value, spec, dotted + ".", path)


def _kind_ok(default: Any, value: Any) -> tuple[str, bool]:
  """(what a key with `default` holds, whether `value` is of that kind)."""
  number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
  if isinstance(default, bool):
    return "a boolean", isinstance(value, bool)
  if isinstance(default, int):
    return "an integer", (isinstance(value, int) and not isinstance(value, bool)) or value is None
  if isinstance(default, float):
    return "a number", number(value) or value is None
  if isinstance(default, str):
    return "a string", isinstance(value, str)
  if isinstance(default, dict):
    return "an object", isinstance(value, dict)
  if isinstance(default, (tuple, list)):
    return "a list of numbers", isinstance(value, (list, tuple)) and all(number(v) for v in value)
  return "", True


def build_model(config: ml_collections.ConfigDict, tok) -> rsvlm.Model:
  """The model of `config.model` with the tokenizer's vocabulary and special ids."""
  return rsvlm.make_model(config, tok.vocab_size, **tokenizer_lib.special_ids(tok))


def abstract_params(model: rsvlm.Model, size: int, text_len: int, *, with_token_proj: bool = False):
  """Shapes of the params the model creates for images of `size` px and texts of `text_len` tokens (with
  `with_token_proj`, also the MS-VLAM token projection)."""
  batch = {"image": jnp.zeros((1, size, size, 3), jnp.uint8), "text": jnp.zeros((1, text_len), jnp.int32)}
  if with_token_proj:
    batch["phrases"] = jnp.zeros((1, 1, min(text_len, 8)), jnp.int32)
  return jax.eval_shape(lambda: model.init(jax.random.key(0), batch))["params"]


def clip_preprocess(image: np.ndarray, size: int) -> np.ndarray:
  """open_clip's eval transform up to normalisation (which the model does): bicubic resize of the shorter
  side to `size`, then a centre crop of size x size. A size x size input is returned unchanged."""
  h, w = image.shape[:2]
  if (h, w) == (size, size):
    return image
  if w <= h:
    new_w, new_h = size, int(size * h / w)
  else:
    new_w, new_h = int(size * w / h), size
  pil = Image.fromarray(image)
  if (new_w, new_h) != (w, h):
    pil = pil.resize((new_w, new_h), Image.BICUBIC)
  top, left = int(round((new_h - size) / 2.0)), int(round((new_w - size) / 2.0))
  return np.asarray(pil.crop((left, top, left + size, top + size)))


class LoadedModel:
  """A model with its params and tokenizer; every method takes and returns numpy.

  Images are paths (read by data/image_io: JPEG, PNG, TIFF/GeoTIFF, 8/16-bit and float, any band count;
  `read_options` sets bands, stretch and size limits), PIL images or uint8 [H, W, 3] arrays (or one
  [N, H, W, 3] array). `dris=True` encodes each image at the bucket its DRIS score picks (thresholds
  calibrated in the workdir), otherwise at `resolution` (default: the largest configured one)."""

  def __init__(self, directory: str, config: ml_collections.ConfigDict, model: rsvlm.Model, params, tok, step: int):
    self.directory, self.config, self.model, self.params, self.tokenizer, self.step = (
        directory, config, model, params, tok, step)
    self.text_len = int(config.input.text_len)
    self.resolutions = tuple(int(r) for r in config.dris.resolutions)
    self.resolution = self.resolutions[-1]
    self.preprocessing = config.input.preprocess
    self.read_options = image_io.ReadOptions()
    encode = lambda p, b: model.apply({"params": p}, b["image"], method=rsvlm.Model.encode_image)
    self._encode_images = jax.jit(lambda p, b: encode(p, b)[0])
    self._encode_texts = jax.jit(lambda p, t: model.apply({"params": p}, t, method=rsvlm.Model.encode_text))
    self._encode = encode
    self._captioners = {}
    self._dris = None
    self.compiles = compile_counter.Tracker()  # Compilations per (function, resolution, padded batch size).

  def input_pipeline(self, config: ml_collections.ConfigDict | None = None, run_dir: str | None = None):
    """The run's input pipeline (data/pipeline.py) over its dataset, with the tokenizer and DRIS calibration
    of `run_dir` (default: this model's directory); `config` (default: the run's own) may change data keys
    such as input.data_dir or the dris policy (a config that passed config_schema.gate). Nothing is written there (the pipeline works on a scratch copy
    of the run's files)."""
    from rsvlm_jax.data import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top
    from rsvlm_jax.data import run_files  # pylint: disable=g-import-not-at-top
    config = config if config is not None else self.config.copy_and_resolve_references()  # Gated either way.
    run_dir = run_dir or self.directory
    scratch = run_files.scratch_copy(run_dir)
    with run_files.naming_run_dir(scratch, run_dir):
      return pipeline_lib.InputPipeline(config, scratch)

  def predictor(self, mesh=None, **kwargs):
    """(Predictor over `mesh` (default: every device), this model's params placed on it): the jitted
    encode/caption functions the evaluators use. kwargs go to evaluate.predictor.Predictor."""
    from rsvlm_jax.evaluate import predictor as predictor_lib  # pylint: disable=g-import-not-at-top
    from rsvlm_jax.runtime import mesh as mesh_lib  # pylint: disable=g-import-not-at-top
    mesh = mesh if mesh is not None else mesh_lib.make_mesh()
    params = jax.device_put(self.params, mesh_lib.replicated(mesh))
    return predictor_lib.Predictor.from_config(self.model, mesh, self.config, **kwargs), params

  @property
  def has_decoder(self) -> bool:
    return self.model.decoder is not None

  def tokenize(self, texts: Sequence[str] | str) -> np.ndarray:
    """int32 [N, text_len], exactly as training and evaluation tokenize captions."""
    texts = [texts] if isinstance(texts, str) else list(texts)
    return self.tokenizer.encode_batch(texts, self.text_len)

  def read(self, image) -> np.ndarray:
    """A path, PIL image or uint8 [H, W, 3] array -> the source image, uint8 [H, W, 3]."""
    if isinstance(image, (str, os.PathLike)):
      return image_io.read_image(os.fspath(image), self.read_options)
    if isinstance(image, Image.Image):
      return np.asarray(image.convert("RGB"))
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
      raise ValueError(f"Expected a uint8 [H, W, 3] image, got {image.dtype} {image.shape}")
    return image

  def preprocess(self, image, resolution: int | None = None) -> np.ndarray:
    """A path, PIL image or uint8 array -> uint8 [R, R, 3] as this model expects it."""
    return self._inputs(self.read(image), int(resolution or self.resolution))["image"]

  def _inputs(self, source: np.ndarray, r: int) -> dict[str, np.ndarray]:
    if self.preprocessing == "clip":
      return {"image": clip_preprocess(source, r)}
    return {"image": transforms.ResizeImage(r)({"image": source}, None)["image"]}

  def dris_resolutions(self, sources: Sequence[np.ndarray]) -> list[int]:
    """The DRIS bucket resolution of each source image: its score (the run's scorer) against the thresholds
    calibrated in the workdir (dris/thresholds.json, read only) or set in config.dris.thresholds."""
    if len(self.resolutions) == 1:
      return [self.resolution] * len(sources)
    if self._dris is None:
      cal = calibration.Calibration.from_config(self.directory, self.config, buckets_lib.from_config(self.config))
      self._dris = (cal.scorer, cal.saved_thresholds())
    scorer, thresholds = self._dris
    ids = buckets_lib.choose_bucket(np.array([scorer(s) for s in sources], np.float32), thresholds)
    return [self.resolutions[int(i)] for i in ids]

  def input_resolutions(self, sources: Sequence[np.ndarray], resolution: int | Sequence[int] | None = None,
                        dris: bool = False) -> list[int]:
    """The size (px) each source image is encoded at: its DRIS bucket (`dris`), `resolution` (one size for
    all, or one per image) or `self.resolution`."""
    if resolution is not None and not isinstance(resolution, (int, np.integer)):
      if dris:
        raise ValueError("Give per-image resolutions or dris=True, not both")
      res = [int(r) for r in resolution]
      if len(res) != len(sources):
        raise ValueError(f"{len(res)} resolutions for {len(sources)} images")
      return res
    if dris:
      return self.dris_resolutions(sources)
    return [int(resolution or self.resolution)] * len(sources)

  def _run(self, name: str, fn, images, batch_size: int, resolution, dris: bool) -> list[np.ndarray]:
    """fn(params, batch) over the images grouped by resolution, in batches of at most `batch_size` padded to
    a size of batch_buckets(batch_size) (so a small call runs a small batch, and each resolution compiles at
    most len(batch_buckets(batch_size)) shapes), in input order."""
    if batch_size < 1:
      raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    sources = [self.read(x) for x in as_image_list(images)]
    res = self.input_resolutions(sources, resolution, dris)
    out: list[np.ndarray | None] = [None] * len(sources)
    for r in sorted(set(res)):
      idx = [i for i, x in enumerate(res) if x == r]
      for start in range(0, len(idx), batch_size):
        chunk = idx[start:start + batch_size]
        exs = [self._inputs(sources[i], r) for i in chunk]
        size = padded_batch_size(len(chunk), batch_size)
        batch = {k: jnp.asarray(_pad_to(np.stack([e[k] for e in exs]), size)) for k in exs[0]}
        values = np.asarray(self.compiles.call(f"{name}/{r}px/batch{size}", fn, self.params, batch))
        for j, i in enumerate(chunk):
          out[i] = values[j]
    return out

  def encode_images(self, images, *, batch_size: int = 32, resolution: int | Sequence[int] | None = None,
                    dris: bool = False) -> np.ndarray:
    """L2-normalised image embeddings float32 [N, E] of a list of images (or of one: then N = 1)."""
    rows = self._run("encode_images", self._encode_images, images, batch_size, resolution, dris)
    return np.stack(rows) if rows else np.zeros((0, self.model.embed_dim), np.float32)

  def encode_texts(self, texts: Sequence[str] | str, *, batch_size: int = 256) -> np.ndarray:
    """L2-normalised text embeddings float32 [N, E] of a list of texts (or of one: then N = 1), in batches
    of at most `batch_size` padded to a size of batch_buckets(batch_size)."""
    if batch_size < 1:
      raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    tokens = self.tokenize(texts)
    out = []
    for start in range(0, len(tokens), batch_size):
      chunk = tokens[start:start + batch_size]
      size = padded_batch_size(len(chunk), batch_size)
      z = self.compiles.call(f"encode_texts/batch{size}", self._encode_texts, self.params,
                             jnp.asarray(_pad_to(chunk, size)))
      out.append(np.asarray(z)[:len(chunk)])
    return np.concatenate(out) if out else np.zeros((0, self.model.embed_dim), np.float32)

  def caption(self, images, *, beam: int = 0, batch_size: int = 16, resolution: int | Sequence[int] | None = None,
              dris: bool = False) -> list[str]:
    """Captions (greedy, or beam search with `beam` > 1) of a list of images (or of one: a list of one)."""
    if not self.has_decoder:
      raise ValueError(f"The model in {self.directory} has no caption decoder (converted open_clip towers get "
                       "one by fine-tuning with configs/clip_finetune.py)")
    from rsvlm_jax.evaluate import decode  # pylint: disable=g-import-not-at-top
    if beam not in self._captioners:
      model, max_len, encode = self.model, self.text_len, self._encode

      def fn(params, batch):
        _, img = encode(params, batch)
        if beam > 1:
          return decode.beam_search(model, params, img["tokens"], max_len, beam)
        return decode.greedy(model, params, img["tokens"], max_len)

      self._captioners[beam] = jax.jit(fn)
    rows = self._run(f"caption_beam{beam}", self._captioners[beam], images, batch_size, resolution, dris)
    return [self.tokenizer.decode(r) for r in rows]


def as_image_list(images) -> list:
  """One image (a path, os.PathLike, PIL image or [H, W, C] array) or many (a sequence of them, or one
  [N, H, W, C] array) as a list of images."""
  if isinstance(images, (str, bytes, os.PathLike, Image.Image)):
    return [images]
  if isinstance(images, np.ndarray):
    return [images] if images.ndim <= 3 else [images[i] for i in range(len(images))]
  return list(images)


def batch_buckets(max_batch: int) -> tuple[int, ...]:
  """The padded batch sizes of calls with at most `max_batch` items: powers of two below it, and itself."""
  sizes, n = [], 1
  while n < max_batch:
    sizes.append(n)
    n *= 2
  return tuple(sizes) + (max_batch,)


def padded_batch_size(n: int, max_batch: int) -> int:
  """The smallest of batch_buckets(max_batch) that holds `n` (<= max_batch) items."""
  return next(b for b in batch_buckets(max_batch) if b >= n)


def _pad_to(x: np.ndarray, n: int) -> np.ndarray:
  if len(x) == n:
    return x
  return np.concatenate([x, np.zeros((n - len(x),) + x.shape[1:], x.dtype)])


def load_run(workdir: str, config: ml_collections.ConfigDict | None = None) -> LoadedModel:
  """The weights a run evaluates: its newest complete checkpoint, else (none yet: a run that serves another
  run's weights) those of `config.model_init` (`config` defaults to the workdir's config.json)."""
  from rsvlm_jax.runtime import checkpoint as checkpoint_lib  # pylint: disable=g-import-not-at-top
  workdir = os.path.abspath(os.path.expanduser(workdir))
  if checkpoint_lib.complete_steps(os.path.join(workdir, "checkpoints")):
    return load(workdir)
  config = config if config is not None else read_config(workdir)
  if config.model_init:
    return load(config.model_init)
  raise FileNotFoundError(f"No checkpoint in {os.path.join(workdir, 'checkpoints')} and no config key "
                          "model_init: train the run first, or name the weights it serves in model_init")


def model_root(path: str) -> str:
  """The directory holding the config.json of the model at `path` (a trained workdir, its checkpoints/ or one
  step's directory, or a converted model); FileNotFoundError when `path` is no directory."""
  directory = os.path.abspath(os.path.expanduser(path))
  if not os.path.isdir(directory):
    raise FileNotFoundError(f"No such model directory: {directory}")
  root = directory
  for _ in range(2):  # A checkpoints/ or checkpoints/STEP path: the run's workdir holds config and tokenizer.
    if os.path.isfile(os.path.join(root, "config.json")):
      return root
    root = os.path.dirname(root)
  return root if os.path.isfile(os.path.join(root, "config.json")) else directory


def load(path: str) -> LoadedModel:
  """A trained workdir (or its checkpoints/ or one step's directory) or a converted open_clip directory.

  A config.json of the wrong shape is a ValueError naming the file and the key (see check_config_shape)."""
  from rsvlm_jax.runtime import checkpoint as checkpoint_lib  # pylint: disable=g-import-not-at-top
  directory = os.path.abspath(os.path.expanduser(path))
  root = model_root(directory)
  config = read_config(root)
  tok_path = tokenizer_lib.find_in_dir(root) or config.input.tokenizer_path or None
  if not tok_path:
    raise FileNotFoundError(f"{root} has no tokenizer file ({tokenizer_lib.SENTENCEPIECE_FILE} or "
                            f"{tokenizer_lib.CLIP_BPE_FILE})")
  tok = tokenizer_lib.from_file(tok_path)
  try:
    model = build_model(config, tok)
    want = checkpoint_lib.array_shapes(
        abstract_params(model, int(list(config.dris.resolutions)[-1]), int(config.input.text_len)))
  except (TypeError, KeyError, ValueError, AttributeError) as e:
    raise ValueError(f"{os.path.join(root, 'config.json')}: its model config does not make a model "
                     f"({type(e).__name__}: {e})") from e
  step, state_path, shapes = checkpoint_lib.params_metadata(directory)
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  flat = {k: jax.ShapeDtypeStruct(s, jnp.float32, sharding=device) for k, s in shapes.items()}
  abstract = traverse_util.unflatten_dict(flat, sep="/")
  bad = sorted(k for k, v in want.items() if v != shapes.get(k))
  if bad:
    raise ValueError(f"Checkpoint {state_path} does not fit the model of {root}/config.json: e.g. " + "; ".join(
        f"{k}: checkpoint {shapes.get(k)} vs model {want[k]}" for k in bad[:3]))
  step, params, _ = checkpoint_lib.restore_params(directory, abstract)
  return LoadedModel(root, config, model, params, tok, step)
