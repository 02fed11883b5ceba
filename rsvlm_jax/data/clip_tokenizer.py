"""The CLIP byte-level BPE tokenizer (OpenAI CLIP, open_clip, RemoteCLIP, GeoRSCLIP, SkyCLIP), without torch.

Reads the merges file open_clip ships (`bpe_simple_vocab_16e6.txt.gz`; the converter copies it next to the
converted weights) and gives the ids `open_clip.get_tokenizer(name)(texts)` gives: text cleaned with ftfy,
HTML entities unescaped twice, whitespace collapsed, lowercased; pre-split by the CLIP regex; each piece's
UTF-8 bytes mapped to printable characters, the last one marked end-of-word, and merged by rank. Every text
becomes [SOT, pieces..., EOT] zero-padded to the context length; a longer one is cut and ends with EOT.
Id 0 doubles as padding (it is also the piece "!", as in open_clip).
"""
from __future__ import annotations

import functools
import gzip
import html
import os
from typing import Iterable

import ftfy
import numpy as np
import regex

from rsvlm_jax.data import tokenizer_base

# The merges file holds a header line, then merges; CLIP keeps the first 49152 - 256 - 2 of them, so that
# 256 byte symbols + 256 end-of-word byte symbols + merges + 2 special tokens = 49408 ids.
_NUM_MERGES = 49152 - 256 - 2
SOT, EOT = "<start_of_text>", "<end_of_text>"
VOCAB_FILE_NAME = "bpe_simple_vocab_16e6.txt.gz"


@functools.cache
def byte_symbols() -> dict[int, str]:
  """Byte -> one printable character (the GPT-2/CLIP byte alphabet), in vocabulary order: the 188 printable
  Latin-1 bytes stand for themselves and come first; the other 68 bytes follow in byte order, standing for
  the characters from U+0100 on."""
  keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
  table = {b: chr(b) for b in keep}
  for extra, b in enumerate(b for b in range(256) if b not in table):
    table[b] = chr(256 + extra)
  return table


def clean_text(text: str) -> str:
  """open_clip's 'lower' cleaning: ftfy, HTML unescaped twice, whitespace collapsed, lowercased."""
  text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
  return " ".join(text.split()).strip().lower()


class ClipBpeTokenizer(tokenizer_base.TokenizerBase):
  """CLIP BPE: `encode(text, max_len)`, `encode_batch`, `decode`; picklable (for grain workers)."""

  kind = "clip_bpe"
  pad_id = 0
  text_has_bos = True  # Every text starts with SOT.

  def __init__(self, merges_gz: bytes, source: str = "<bytes>"):
    self._gz = merges_gz
    self.source = source
    try:
      lines = gzip.decompress(merges_gz).decode("utf-8").split("\n")
    except (OSError, EOFError, UnicodeDecodeError) as e:
      raise ValueError(f"{source}: not a gzipped CLIP BPE merges file ({e})") from e
    merges = [tuple(line.split()) for line in lines[1:_NUM_MERGES + 1]]
    if len(merges) != _NUM_MERGES or any(len(m) != 2 for m in merges):
      raise ValueError(f"{source}: expected {_NUM_MERGES} merges of two symbols after the header line, "
                       f"found {len(merges)} lines (is it CLIP's {VOCAB_FILE_NAME}?)")
    symbols = list(byte_symbols().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + [SOT, EOT]
    self._ids = {piece: i for i, piece in enumerate(vocab)}
    self._pieces = vocab
    self._ranks = {m: r for r, m in enumerate(merges)}
    self.bos_id, self.eos_id = self._ids[SOT], self._ids[EOT]
    self._split = regex.compile(
        "|".join(regex.escape(t) for t in (SOT, EOT))
        + r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""", regex.IGNORECASE)
    self._bytes = byte_symbols()
    self._unbytes = {c: b for b, c in self._bytes.items()}
    self._cache: dict[str, list[int]] = {}

  @classmethod
  def from_file(cls, path: str) -> "ClipBpeTokenizer":
    if not os.path.isfile(path):
      raise FileNotFoundError(f"CLIP BPE merges file not found: {path}")
    with open(path, "rb") as f:
      return cls(f.read(), source=path)

  def __getstate__(self):
    return {"gz": self._gz, "source": self.source}

  def __setstate__(self, state):
    self.__init__(state["gz"], state["source"])

  @property
  def vocab_size(self) -> int:
    return len(self._pieces)

  def save(self, path: str) -> None:
    """Writes the merges file (the tokenizer's whole state) to `path` atomically."""
    with open(path + ".tmp", "wb") as f:
      f.write(self._gz)
    os.replace(path + ".tmp", path)

  def _merge(self, word: str) -> list[int]:
    """Ids of one pre-split piece (already in the byte alphabet), merged by rank; cached."""
    if word in self._cache:
      return self._cache[word]
    parts = list(word[:-1]) + [word[-1] + "</w>"]
    while len(parts) > 1:
      ranked = [(self._ranks.get(pair, None), i) for i, pair in enumerate(zip(parts, parts[1:]))]
      ranked = [(r, i) for r, i in ranked if r is not None]
      if not ranked:
        break
      best = min(ranked)[0]
      first, second = next(pair for pair in zip(parts, parts[1:]) if self._ranks.get(pair) == best)
      merged, i = [], 0
      while i < len(parts):
        if i + 1 < len(parts) and parts[i] == first and parts[i + 1] == second:
          merged.append(first + second)
          i += 2
        else:
          merged.append(parts[i])
          i += 1
      parts = merged
    ids = [self._ids[p] for p in parts]
    self._cache[word] = ids
    return ids

  def pieces(self, text: str) -> list[int]:
    """Ids of `text` without SOT/EOT (the literal special-token strings map to their ids, as in CLIP)."""
    out = []
    for piece in self._split.findall(clean_text(text)):
      if piece in (SOT, EOT):
        out.append(self._ids[piece])
        continue
      out.extend(self._merge("".join(self._bytes[b] for b in piece.encode("utf-8"))))
    return out

  def encode(self, text: str, max_len: int) -> np.ndarray:
    """Text -> int32 [max_len]: SOT, pieces, EOT; cut to max_len with EOT last; zero-padded."""
    ids = [self.bos_id] + self.pieces(text) + [self.eos_id]
    if len(ids) > max_len:
      ids = ids[:max_len]
      ids[-1] = self.eos_id
    return tokenizer_base.padded(ids, max_len)

  def decode(self, ids: Iterable[int]) -> str:
    """Ids -> text: stops at the first EOT, skips SOT; end-of-word marks become spaces."""
    raw = bytearray()
    for i in ids:
      i = int(i)
      if i == self.eos_id:
        break
      if i == self.bos_id or not 0 <= i < len(self._pieces):
        continue
      piece = self._pieces[i]
      end = piece.endswith("</w>")
      raw.extend(self._unbytes[c] for c in (piece[:-4] if end else piece))
      if end:
        raw.extend(b" ")
    return bytes(raw).decode("utf-8", errors="replace").strip()
