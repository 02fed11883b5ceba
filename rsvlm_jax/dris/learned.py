"""DRIS learned scorer: a tiny MLP on coarse-pass features that predicts where more resolution helps.

The content-complexity score (complexity.py) ranks images by how busy they look. What DRIS should rank by is
how much a model loses when the image is encoded small: a calm sea with one small boat looks simple but
its caption ("a white boat in the upper left") needs the pixels, while a packed parking lot is described
as "many cars" at any resolution. The learned scorer is trained on exactly that signal:

  target  = resolution gain of a teacher model (analysis/resolution_gain.py): per-image loss with the
            image degraded to the smallest bucket minus the loss at the largest bucket;
  input   = `features(image)`: cheap numpy statistics from thumbnails (sorted complexity-map cells,
            sorted detail-lost-by-halving cells, colour moments), computed in the data workers;
  model   = standardise -> Dense(hidden) -> GELU -> Dense(1), fitted with optax (AdamW, MSE on the
            rank-normalised target: only the order matters, since thresholds are score quantiles).

Inference is numpy only (`LearnedScorer.__call__`), so data workers need no accelerator. The fitted scorer is
one .npz file; `dris.scorer=PATH` in a config makes the pipeline score images with it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import zipfile

import numpy as np
from PIL import Image

from rsvlm_jax.dris import complexity

FEATURE_VERSION = 1


def detail_map(image: np.ndarray, size: int = 128, cell: int = 16) -> np.ndarray:
  """float32 [size/cell]^2: mean |x - up(down(x))| per cell of a size-px grayscale view, where `down` halves
  the resolution: the detail an encoder loses at half the resolution."""
  x = complexity.thumbnail(image, size)
  half = Image.fromarray(x).resize((size // 2, size // 2), Image.BOX).resize((size, size), Image.BILINEAR)
  diff = np.abs(x - np.asarray(half, np.float32))
  g = size // cell
  return diff[:g * cell, :g * cell].reshape(g, cell, g, cell).mean(axis=(1, 3)).astype(np.float32)


def features(image: np.ndarray, score_size: int = 64) -> np.ndarray:
  """float32 [134]: sorted complexity-map cells (64), sorted detail-map cells (64), RGB mean and std (6).

  Sorting makes the features independent of where in the image the detail is (the score is per image)."""
  cmap = complexity.complexity_map(complexity.thumbnail(image, score_size))
  detail = detail_map(image)
  rgb = np.asarray(Image.fromarray(np.asarray(image, np.uint8)).resize((32, 32), Image.BOX), np.float32) / 255.0
  parts = [np.sort(cmap.reshape(-1))[::-1], np.sort(detail.reshape(-1))[::-1] * 10.0,
           rgb.reshape(-1, 3).mean(0), rgb.reshape(-1, 3).std(0)]
  return np.concatenate(parts).astype(np.float32)


def _gelu(x):
  return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x ** 3)))


@dataclasses.dataclass(frozen=True)
class LearnedScorer:
  """A fitted scorer: feature standardisation and the MLP weights (numpy); a dris.scorers.Scorer."""
  mean: np.ndarray
  std: np.ndarray
  w1: np.ndarray
  b1: np.ndarray
  w2: np.ndarray
  b2: np.ndarray
  score_size: int = 64
  source: str = ""  # The .npz it was loaded from ("" when fitted in this process).
  digest: str = ""  # SHA-1 of that file: caches of its scores are kept apart per file.

  @property
  def name(self) -> str:
    return self.source or "learned"

  @property
  def cache_tag(self) -> str:
    return f"-{self.digest[:12]}" if self.digest else ""

  def predict(self, feats: np.ndarray) -> np.ndarray:
    """[N, F] features -> [N] scores (higher = more resolution helps)."""
    x = (np.asarray(feats, np.float32) - self.mean) / self.std
    return (_gelu(x @ self.w1 + self.b1) @ self.w2 + self.b2)[..., 0].astype(np.float32)

  def __call__(self, image: np.ndarray) -> float:
    return float(self.predict(features(image, self.score_size)[None])[0])

  def save(self, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp.npz"
    np.savez(tmp, version=FEATURE_VERSION, score_size=self.score_size,
             **{k: getattr(self, k) for k in ("mean", "std", "w1", "b1", "w2", "b2")})
    os.replace(tmp, path)


_WEIGHTS = ("mean", "std", "w1", "b1", "w2", "b2")


def load(path: str) -> LearnedScorer:
  """Loads a scorer written by `LearnedScorer.save` (config key dris.scorer)."""
  if not os.path.exists(path):
    raise FileNotFoundError(f"DRIS scorer {path} not found (config key dris.scorer); fit one with "
                            "python -m rsvlm_jax.tools.fit_dris_scorer")
  not_a_scorer = (f"DRIS scorer {path} (config key dris.scorer) is not a scorer .npz written by "
                  "python -m rsvlm_jax.tools.fit_dris_scorer")
  try:
    z = np.load(path)
  except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
    raise ValueError(f"{not_a_scorer}: not a readable .npz archive") from e
  if not isinstance(z, np.lib.npyio.NpzFile):
    raise ValueError(f"{not_a_scorer}: a single .npy array, not a .npz archive")
  with z:
    missing = sorted({"version", "score_size", *_WEIGHTS} - set(z.files))
    if missing:
      raise ValueError(f"{not_a_scorer}: it lacks {missing}")
    if int(z["version"]) != FEATURE_VERSION:
      raise ValueError(f"DRIS scorer {path} uses feature version {int(z['version'])}, this code computes "
                       f"version {FEATURE_VERSION}: refit it")
    with open(path, "rb") as f:
      digest = hashlib.sha1(f.read()).hexdigest()
    return LearnedScorer(**{k: np.asarray(z[k], np.float32) for k in _WEIGHTS}, source=path, digest=digest,
                         score_size=int(z["score_size"]))


def rank_normalise(x: np.ndarray) -> np.ndarray:
  """Ranks scaled to [0, 1] (ties broken by index)."""
  x = np.asarray(x)
  r = np.empty(len(x), np.float64)
  r[np.argsort(x, kind="stable")] = np.arange(len(x))
  return (r / max(len(x) - 1, 1)).astype(np.float32)


def spearman(a, b) -> float:
  """Spearman rank correlation of two vectors."""
  ra, rb = rank_normalise(a).astype(np.float64), rank_normalise(b).astype(np.float64)
  ra, rb = ra - ra.mean(), rb - rb.mean()
  return float((ra * rb).sum() / max(np.sqrt((ra * ra).sum() * (rb * rb).sum()), 1e-12))


def fit(feats: np.ndarray, gains: np.ndarray, *, hidden: int = 16, steps: int = 300, lr: float = 3e-3,
        weight_decay: float = 0.1, seed: int = 0, score_size: int = 64) -> LearnedScorer:
  """Fits the MLP to the rank-normalised gains (full-batch AdamW on MSE; deterministic for a seed)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top

  feats = np.asarray(feats, np.float32)
  if feats.ndim != 2 or len(feats) != len(gains) or len(feats) < 2:
    raise ValueError(f"fit needs [N, F] features and N gains with N >= 2, got {feats.shape} and {len(gains)}")
  mean, std = feats.mean(0), feats.std(0) + 1e-6
  x = jnp.asarray((feats - mean) / std)
  y = jnp.asarray(rank_normalise(gains))
  k1, k2 = jax.random.split(jax.random.key(seed))
  f = feats.shape[1]
  params = {"w1": jax.random.normal(k1, (f, hidden)) / np.sqrt(f), "b1": jnp.zeros((hidden,)),
            "w2": jax.random.normal(k2, (hidden, 1)) / np.sqrt(hidden), "b2": jnp.full((1,), 0.5)}
  tx = optax.adamw(lr, weight_decay=weight_decay)

  def loss_fn(p):
    pred = (jax.nn.gelu(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"])[:, 0]
    return jnp.mean((pred - y) ** 2)

  @jax.jit
  def train(p):
    def step(carry, _):
      p, s = carry
      loss, g = jax.value_and_grad(loss_fn)(p)
      u, s = tx.update(g, s, p)
      return (optax.apply_updates(p, u), s), loss
    (p, _), losses = jax.lax.scan(step, (p, tx.init(p)), None, length=steps)
    return p, losses

  params, _ = train(params)
  params = {k: np.asarray(v, np.float32) for k, v in params.items()}
  return LearnedScorer(mean=mean, std=std.astype(np.float32), score_size=score_size, **params)
