"""`rsvlm_jax.load(DIR)`: a trained workdir or converted open_clip weights as a ready-to-use model.

    model = rsvlm_jax.load("/runs/rsicd")            # or a directory written by tools/convert_open_clip
    ids = model.tokenize(["a port with many ships"])  # int32 [N, text_len]
    zi = model.encode_images(["a.jpg", "b.png"])      # or uint8 [N, H, W, 3]; L2-normalised, numpy
    zt = model.encode_texts(["a port with many ships"])
    caps = model.caption(images)                      # models with a caption decoder

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


def as_config_dict(config: dict[str, Any]) -> ml_collections.ConfigDict:
  """A JSON config (a workdir's config.json, or a converted model's; older layouts upgraded) as a full
  ConfigDict: keys it lacks take their defaults."""
  return config_schema.complete(ml_collections.ConfigDict(config_schema.upgrade(config)))


def read_config(directory: str) -> ml_collections.ConfigDict:
  path = os.path.join(directory, "config.json")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{directory} is neither a trained workdir nor a converted model: no config.json")
  with open(path, encoding="utf-8") as f:
    try:
      return as_config_dict(json.load(f))
    except json.JSONDecodeError as e:
      raise ValueError(f"{path}: not valid JSON ({e})") from e


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
    c2f = config.dris.coarse_to_fine
    self._tiles = (transforms.CoarseToFineTiles(c2f.num_tiles, c2f.tile_grid, c2f.tile_size)
                   if c2f.num_tiles > 0 else None)
    encode = lambda p, b: model.apply({"params": p}, b["image"], b.get("tiles"), b.get("tile_boxes"),
                                      method=rsvlm.Model.encode_image)
    self._encode_images = jax.jit(lambda p, b: encode(p, b)[0])
    self._encode_texts = jax.jit(lambda p, t: model.apply({"params": p}, t, method=rsvlm.Model.encode_text))
    self._encode = encode
    self._captioners = {}
    self._dris = None

  def input_pipeline(self, config: ml_collections.ConfigDict | None = None, run_dir: str | None = None):
    """The run's input pipeline (data/pipeline.py) over its dataset, with the tokenizer and DRIS calibration
    of `run_dir` (default: this model's directory); `config` (default: the run's own) may change data keys
    such as input.data_dir or the dris policy. Nothing is written there (the pipeline works on a scratch copy
    of the run's files)."""
    from rsvlm_jax.data import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top
    from rsvlm_jax.data import run_files  # pylint: disable=g-import-not-at-top
    config = config_schema.complete(config if config is not None else self.config.copy_and_resolve_references())
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
    ex = transforms.ResizeImage(r)({"image": source}, None)
    if self._tiles is not None:
      ex = self._tiles(ex, None)
    return {k: ex[k] for k in ("image", "tiles", "tile_boxes") if k in ex}

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

  def _run(self, fn, images, batch_size: int, resolution: int | None, dris: bool) -> list[np.ndarray]:
    """fn(params, batch) over the images grouped by resolution in fixed-size padded batches, in input order."""
    if isinstance(images, np.ndarray) and images.ndim == 3:
      images = images[None]
    items = [images[i] for i in range(len(images))] if isinstance(images, np.ndarray) else list(images)
    sources = [self.read(x) for x in items]
    res = self.dris_resolutions(sources) if dris else [int(resolution or self.resolution)] * len(sources)
    out: list[np.ndarray | None] = [None] * len(sources)
    for r in sorted(set(res)):
      idx = [i for i, x in enumerate(res) if x == r]
      for start in range(0, len(idx), batch_size):
        chunk = idx[start:start + batch_size]
        exs = [self._inputs(sources[i], r) for i in chunk]
        batch = {k: jnp.asarray(_pad_to(np.stack([e[k] for e in exs]), batch_size)) for k in exs[0]}
        values = np.asarray(fn(self.params, batch))
        for j, i in enumerate(chunk):
          out[i] = values[j]
    return out

  def encode_images(self, images, *, batch_size: int = 32, resolution: int | None = None,
                    dris: bool = False) -> np.ndarray:
    """L2-normalised image embeddings float32 [N, E]."""
    rows = self._run(self._encode_images, images, batch_size, resolution, dris)
    return np.stack(rows) if rows else np.zeros((0, self.model.embed_dim), np.float32)

  def encode_texts(self, texts: Sequence[str] | str, *, batch_size: int = 256) -> np.ndarray:
    """L2-normalised text embeddings float32 [N, E]."""
    tokens = self.tokenize(texts)
    out = [np.asarray(self._encode_texts(self.params, jnp.asarray(_pad_to(tokens[i:i + batch_size], batch_size))))
           [:len(tokens[i:i + batch_size])] for i in range(0, len(tokens), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, self.model.embed_dim), np.float32)

  def caption(self, images, *, beam: int = 0, batch_size: int = 16, resolution: int | None = None,
              dris: bool = False) -> list[str]:
    """Captions (greedy, or beam search with `beam` > 1)."""
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
    rows = self._run(self._captioners[beam], images, batch_size, resolution, dris)
    return [self.tokenizer.decode(r) for r in rows]


def _pad_to(x: np.ndarray, n: int) -> np.ndarray:
  if len(x) == n:
    return x
  return np.concatenate([x, np.zeros((n - len(x),) + x.shape[1:], x.dtype)])


def load_run(workdir: str, config: ml_collections.ConfigDict | None = None) -> LoadedModel:
  """The weights a run evaluates: its newest complete checkpoint, else (none yet: a run that serves another
  run's weights) those of `config.model_init` (`config` defaults to the workdir's config.json)."""
  from rsvlm_jax.train import checkpoint as checkpoint_lib  # pylint: disable=g-import-not-at-top
  workdir = os.path.abspath(os.path.expanduser(workdir))
  if checkpoint_lib.complete_steps(os.path.join(workdir, "checkpoints")):
    return load(workdir)
  config = config if config is not None else read_config(workdir)
  if config.model_init:
    return load(config.model_init)
  raise FileNotFoundError(f"No checkpoint in {os.path.join(workdir, 'checkpoints')} and no config key "
                          "model_init: train the run first, or name the weights it serves in model_init")


def load(path: str) -> LoadedModel:
  """A trained workdir (or its checkpoints/ or one step's directory) or a converted open_clip directory."""
  from rsvlm_jax.train import checkpoint as checkpoint_lib  # pylint: disable=g-import-not-at-top
  directory = os.path.abspath(os.path.expanduser(path))
  if not os.path.isdir(directory):
    raise FileNotFoundError(f"No such model directory: {directory}")
  root = directory
  for _ in range(2):  # A checkpoints/ or checkpoints/STEP path: the run's workdir holds config and tokenizer.
    if os.path.isfile(os.path.join(root, "config.json")):
      break
    root = os.path.dirname(root)
  config = read_config(root if os.path.isfile(os.path.join(root, "config.json")) else directory)
  tok_path = tokenizer_lib.find_in_dir(root) or config.input.tokenizer_path or None
  if not tok_path:
    raise FileNotFoundError(f"{root} has no tokenizer file ({tokenizer_lib.SENTENCEPIECE_FILE} or "
                            f"{tokenizer_lib.CLIP_BPE_FILE})")
  tok = tokenizer_lib.from_file(tok_path)
  model = build_model(config, tok)
  step, state_path, shapes = checkpoint_lib.params_metadata(directory)
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  flat = {k: jax.ShapeDtypeStruct(s, jnp.float32, sharding=device) for k, s in shapes.items()}
  abstract = traverse_util.unflatten_dict(flat, sep="/")
  want = checkpoint_lib.array_shapes(
      abstract_params(model, int(list(config.dris.resolutions)[-1]), int(config.input.text_len)))
  bad = sorted(k for k, v in want.items() if v != shapes.get(k))
  if bad:
    raise ValueError(f"Checkpoint {state_path} does not fit the model of {root}/config.json: e.g. " + "; ".join(
        f"{k}: checkpoint {shapes.get(k)} vs model {want[k]}" for k in bad[:3]))
  step, params, _ = checkpoint_lib.restore_params(directory, abstract)
  return LoadedModel(root, config, model, params, tok, step)
