"""A truncated or empty tokenizer .model file is an error naming the path."""
import pytest

from rsvlm_jax.data import tokenizer as tok_lib


@pytest.mark.parametrize("keep", [0.5, 0.0])
def test_truncated_model_file_names_the_path(tmp_path, keep):
  tok = tok_lib.train_tokenizer(["a small plane on a runway", "two ships in a harbor"] * 10, 40)
  proto = tok._proto  # pylint: disable=protected-access
  path = tmp_path / "tokenizer.model"
  path.write_bytes(proto[:int(len(proto) * keep)])
  with pytest.raises(ValueError, match=f"Tokenizer model {path}: Not a valid SentencePiece model"):
    tok_lib.load(str(path))
  path.write_bytes(proto)
  assert tok_lib.load(str(path)).vocab_size == tok.vocab_size
