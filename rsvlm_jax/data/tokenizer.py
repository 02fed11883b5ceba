"""SentencePiece tokenizer: trained offline on the training captions, or loaded from a .model file.

Ids: 0 = pad, 1 = unk, 2 = bos, 3 = eos. `encode` appends EOS and pads/truncates to a fixed length.
"""
from __future__ import annotations

import io
import os
from typing import Iterable

import numpy as np
import sentencepiece as spm
from absl import logging

from rsvlm_jax.data import clip_tokenizer
from rsvlm_jax.data.tokenizer_base import TokenizerBase, padded  # Re-exported: tokenizer.padded.
from rsvlm_jax.token_ids import BOS_ID, EOS_ID, PAD_ID, UNK_ID  # Re-exported: tokenizer.BOS_ID, ...


class Tokenizer(TokenizerBase):
  """A thin, picklable wrapper around a SentencePiece model (serialized proto)."""

  kind = "sentencepiece"
  pad_id, bos_id, eos_id = PAD_ID, BOS_ID, EOS_ID
  text_has_bos = False  # Encoded texts are pieces + EOS; the decoder prepends BOS itself.

  def __init__(self, model_proto: bytes):
    self._proto = model_proto
    try:
      self._sp = spm.SentencePieceProcessor(model_proto=model_proto)
    except RuntimeError as e:  # SentencePiece's message is a C++ source location.
      raise ValueError(f"Not a valid SentencePiece model ({len(model_proto)} bytes: truncated or not a "
                       ".model file?)") from e
    if not self._sp.get_piece_size():
      raise ValueError("Not a valid SentencePiece model: empty (no pieces)")

  def __getstate__(self):
    return {"proto": self._proto}

  def __setstate__(self, state):
    self.__init__(state["proto"])

  @property
  def vocab_size(self) -> int:
    return self._sp.get_piece_size()

  def encode(self, text: str, max_len: int) -> np.ndarray:
    """Text -> int32 [max_len]: pieces + EOS, truncated (EOS kept) and zero-padded."""
    return padded(self._sp.encode(normalize_text(text))[:max_len - 1] + [EOS_ID], max_len)

  def decode(self, ids: Iterable[int]) -> str:
    """Ids -> text, stopping at the first EOS and ignoring padding/BOS."""
    keep = []
    for i in ids:
      i = int(i)
      if i == EOS_ID:
        break
      if i > EOS_ID:
        keep.append(i)
    return self._sp.decode(keep)


def normalize_text(text: str) -> str:
  return " ".join(text.lower().strip().split())


def train_tokenizer(captions: Iterable[str], vocab_size: int) -> Tokenizer:
  """Trains a unigram SentencePiece model on `captions` (vocab may end up smaller on tiny corpora)."""
  sentences = [normalize_text(c) for c in captions if c and c.strip()]
  if not sentences:
    raise ValueError("Cannot train a tokenizer: no non-empty training captions")
  model = io.BytesIO()
  spm.SentencePieceTrainer.train(
      sentence_iterator=iter(sentences), model_writer=model, vocab_size=vocab_size,
      model_type="unigram", character_coverage=1.0, hard_vocab_limit=False,
      pad_id=PAD_ID, unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID, num_threads=1,
      minloglevel=2)
  return Tokenizer(model.getvalue())


def load_or_train(path: str, captions_fn, vocab_size: int) -> Tokenizer:
  """Loads `path` if it exists, else trains on `captions_fn()` and saves to `path` (reused on restart)."""
  if os.path.exists(path):
    return load(path)  # A truncated or foreign file: an error naming the path.
  tok = train_tokenizer(captions_fn(), vocab_size)
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  tmp = path + ".tmp"
  with open(tmp, "wb") as f:
    f.write(tok._proto)  # pylint: disable=protected-access
  os.replace(tmp, path)
  logging.info("Trained SentencePiece tokenizer (vocab %d) -> %s", tok.vocab_size, path)
  return tok


def load(path: str) -> Tokenizer:
  """Loads a SentencePiece .model file; errors name the path."""
  if not os.path.exists(path):
    raise FileNotFoundError(f"Tokenizer model not found: {path}")
  with open(path, "rb") as f:
    proto = f.read()
  try:
    return Tokenizer(proto)
  except ValueError as e:
    raise ValueError(f"Tokenizer model {path}: {e}") from e


# A run's tokenizer, saved next to its checkpoints (and next to converted weights): SentencePiece trained on
# the run's captions, or the CLIP BPE merges file of open_clip models.
SENTENCEPIECE_FILE = "tokenizer.model"
CLIP_BPE_FILE = "tokenizer_bpe.txt.gz"


def from_file(path: str):
  """A tokenizer from its file: a SentencePiece `.model`, or CLIP's BPE merges (`*.txt.gz`)."""
  if path.endswith(".txt.gz"):
    return clip_tokenizer.ClipBpeTokenizer.from_file(path)
  if path.endswith(".model"):
    return load(path)
  raise ValueError(f"Unknown tokenizer file {path}: expected a SentencePiece .model or a CLIP BPE .txt.gz")


def find_in_dir(directory: str) -> str | None:
  """The tokenizer file kept in a workdir or converted-weights directory, or None."""
  for name in (CLIP_BPE_FILE, SENTENCEPIECE_FILE):
    path = os.path.join(directory, name)
    if os.path.isfile(path):
      return path
  return None


def source_tokenizer(source: str) -> str | None:
  """The tokenizer file (tokenizer.model, or the CLIP BPE merges of converted weights) of the run that
  `source` (a workdir, its checkpoints/ directory or one step's directory) belongs to, or None."""
  path = os.path.abspath(os.path.expanduser(source))
  for _ in range(3):  # workdir, workdir/checkpoints, workdir/checkpoints/STEP.
    found = find_in_dir(path)
    if found:
      return found
    path = os.path.dirname(path)
  return None


def special_ids(tok) -> dict:
  """The model's view of a tokenizer's special ids (kwargs of models.rsvlm.make_model)."""
  return {"bos_id": int(tok.bos_id), "eos_id": int(tok.eos_id), "text_has_bos": bool(tok.text_has_bos)}
