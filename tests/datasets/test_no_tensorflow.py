"""The runtime path (build through our CLI, read through tfds.data_source) must work without TensorFlow.

The test environment has TensorFlow (for TFDS's builder harness), so the subprocess blocks the import with
a path finder that does not see it, so `import tensorflow` fails as it does on the demo's venv.
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_SCRIPT = r"""
import sys


from importlib.machinery import PathFinder


class _PathFinderWithoutTensorFlow:  # sys.path as it would be on a machine without TensorFlow.
  def find_spec(self, name, path=None, target=None):
    if name == "tensorflow" or name.startswith("tensorflow."):
      return None
    return PathFinder.find_spec(name, path, target)

  def invalidate_caches(self):
    PathFinder.invalidate_caches()


sys.meta_path[:] = [_PathFinderWithoutTensorFlow() if f is PathFinder else f for f in sys.meta_path]
from rsvlm_jax import build_dataset
build_dataset.build("synthetic_scenes/tiny", sys.argv[1], None)
import tensorflow_datasets as tfds
src = tfds.data_source("synthetic_scenes/tiny", split="test", data_dir=sys.argv[1])
ex = src[0]
assert ex["image"].ndim == 3 and ex["image"].shape[-1] == 3, ex["image"].shape
assert len(ex["captions"]) == 5
assert "tensorflow" not in {m.split(".")[0] for m, v in sys.modules.items() if v is not None}
print("OK", len(src), ex["image"].shape)
"""


def test_build_and_read_without_tensorflow(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  proc = subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path)], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert proc.stdout.strip().splitlines()[-1].startswith("OK 16")
