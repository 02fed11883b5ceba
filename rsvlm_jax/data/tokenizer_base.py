"""What every tokenizer shares (SentencePiece in tokenizer.py, CLIP BPE in clip_tokenizer.py): both import it."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def padded(ids: Sequence[int], max_len: int) -> np.ndarray:
  """int32 [max_len]: `ids` (at most max_len of them) followed by zeros (padding)."""
  out = np.zeros((max_len,), np.int32)
  out[:len(ids)] = ids
  return out


class TokenizerBase:
  """What every tokenizer offers besides `encode`, `decode`, `vocab_size` and its special ids."""

  def encode_batch(self, texts: Sequence[str], max_len: int) -> np.ndarray:
    return np.stack([self.encode(t, max_len) for t in texts]) if texts else np.zeros((0, max_len), np.int32)
