"""Config arg parsing and the demo config."""
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
  assert len(c.input.resolutions) == 3
  c.lock()
  with pytest.raises(AttributeError, match="no_such_key"):
    c.no_such_key = 1  # pylint: disable=attribute-defined-outside-init


def test_steps_from():
  assert config_lib.steps_from(epochs=2, dataset_size=100, batch_size=10) == 20
  assert config_lib.steps_from(examples=640, batch_size=64) == 10
  with pytest.raises(ValueError):
    config_lib.steps_from(3, epochs=1)
