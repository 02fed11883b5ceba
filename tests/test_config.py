"""Config arg parsing and the demo config."""
import os

import pytest

from rsvlm_jax import config as config_lib
from configs import demo


def test_parse_arg_types():
  c = config_lib.parse_arg("steps=5,runlocal=True,lr=0.5,name=x", steps=1, runlocal=False, lr=1.0, name="a")
  assert (c.steps, c.runlocal, c.lr, c.name) == (5, True, 0.5, "x")
  assert isinstance(c.steps, int) and isinstance(c.lr, float)


def test_parse_arg_unknown_key_named():
  with pytest.raises(ValueError, match="bogus"):
    config_lib.parse_arg("bogus=1", steps=1)


def test_parse_arg_bad_bool():
  with pytest.raises(ValueError, match="runlocal"):
    config_lib.parse_arg("runlocal=maybe", runlocal=False)


def test_demo_config_args():
  c = demo.get_config("steps=7,ckpt_every=3,dris=True")
  assert c.total_steps == 7 and c.ckpt_every == 3
  assert len(c.dris.resolutions) == 3
  c.lock()
  with pytest.raises(AttributeError, match="no_such_key"):
    c.no_such_key = 1  # pylint: disable=attribute-defined-outside-init


def test_demo_mixed_bucket_arg():
  assert demo.get_config("dris=True").dris.mixed_buckets is True  # auto: on for real runs,
  assert demo.get_config("dris=True,runlocal=True").dris.mixed_buckets is False  # off in smoke mode,
  assert demo.get_config("dris=True,runlocal=True,mixed=true").dris.mixed_buckets is True  # unless asked.
  assert demo.get_config("dris=True,mixed=false").dris.mixed_buckets is False
  with pytest.raises(ValueError, match="'mixed' expects auto, true or false"):
    demo.get_config("mixed=sometimes")


def test_steps_from():
  assert config_lib.steps_from(epochs=2, dataset_size=100, batch_size=10) == 20
  assert config_lib.steps_from(examples=640, batch_size=64) == 10
  with pytest.raises(ValueError):
    config_lib.steps_from(3, epochs=1)


def test_unknown_override_names_the_key_and_the_known_ones():
  c = config_lib.load_config(config_lib.config_path("demo.py") + ":runlocal=True")
  assert config_lib.unknown_override(c, ["--config.input.batch_size=4", "--config.seed=1"]) is None
  msg = config_lib.unknown_override(c, ["--config.seed=1", "--config.input.bogus=1"])
  assert "'input.bogus'" in msg and "batch_size" in msg and "--config.input.bogus=1" in msg
  msg = config_lib.unknown_override(c, ["--config.optimm.lr=1"])
  assert "'optimm'" in msg and "the top level" in msg


def test_main_exits_naming_an_unknown_override(tmp_path):
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  proc = subprocess.run([sys.executable, "-m", "rsvlm_jax.main", "--config=configs/demo.py:runlocal=True",
                         "--config.input.bogus=1", f"--workdir={tmp_path}"], cwd=root, capture_output=True,
                        text=True, timeout=120)
  assert proc.returncode != 0
  assert "Unknown config key 'input.bogus'" in proc.stderr
