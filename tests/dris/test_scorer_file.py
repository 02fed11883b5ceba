"""A DRIS scorer path (config key dris.scorer) to a file that is not a scorer .npz: an error naming
the file and the key."""
import numpy as np
import pytest

from rsvlm_jax.dris import learned as dris_learned


def test_scorer_that_is_not_a_scorer_npz_names_file_and_config_key(tmp_path):
  text, npy, other = str(tmp_path / "s.txt"), str(tmp_path / "s.npy"), str(tmp_path / "o.npz")
  with open(text, "w") as f:
    f.write("not a scorer\n")
  np.save(npy, np.zeros(3))
  np.savez(other, a=np.zeros(3))
  for path, why in ((text, "not a readable .npz archive"), (npy, "a single .npy array"),
                    (other, "it lacks ['b1', 'b2', 'mean', 'score_size', 'std', 'version', 'w1', 'w2']")):
    with pytest.raises(ValueError) as e:
      dris_learned.load(path)
    assert str(e.value).startswith(f"DRIS scorer {path} (config key dris.scorer) is not a scorer .npz")
    assert why in str(e.value) and "allow_pickle" not in str(e.value)
