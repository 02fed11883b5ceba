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


@pytest.mark.parametrize("args,named", [
    (["--config.input.batch_size=0"], "Config key input.batch_size must be an integer >= 1, got 0"),
    (["--config.ckpt_every=0"], "Config key ckpt_every must be an integer >= 1, got 0"),
    (["--config.optim.lr=-1"], "Config key optim.lr must be a number > 0, got -1.0"),
    ([",total_steps=0"], "Config arg 'steps' must be a positive number of steps"),  # The config file's refusal.
])
def test_main_refuses_a_bad_value_in_one_line_with_status_2(tmp_path, args, named):
  """Config refusals are one line naming the key, status 2, no traceback, and nothing written."""
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  workdir = tmp_path / "run"
  config = f"--config=configs/demo.py:runlocal=True,data_dir={tmp_path}"
  if args[0].startswith(","):
    config, args = config + ",steps=0", []
  proc = subprocess.run([sys.executable, "-m", "rsvlm_jax.main", config, *args, f"--workdir={workdir}"],
                        cwd=root, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
  (line,) = [s for s in proc.stderr.splitlines() if named in s]
  assert line.startswith("main: error: "), line
  assert not workdir.exists()


def _converted_dir(tmp_path) -> str:
  """A directory holding only the config.json of a converted model (all clip_finetune's config reads)."""
  import json  # pylint: disable=g-import-not-at-top
  src = demo.get_config("runlocal=True").to_dict()
  (tmp_path / "clip").mkdir()
  (tmp_path / "clip" / "config.json").write_text(json.dumps(src))
  return str(tmp_path / "clip")


def test_clip_finetune_runlocal_uses_the_demo_build_and_honours_steps(tmp_path):
  spec = config_lib.config_path("clip_finetune.py") + f":init={_converted_dir(tmp_path)},dataset=synthetic"
  c = config_lib.load_config(spec + ",runlocal=True")
  assert c.input.dataset == "synthetic_scenes/demo"  # What `make demo` builds (was synthetic_scenes/tiny).
  assert dict(c.input.splits) == {"train": "train[:48]", "test": "test[:16]", "validation": "validation[:16]"}
  assert (c.total_steps, c.input.batch_size, c.optim.warmup_steps) == (3, 2, 1)
  c = config_lib.load_config(spec + ",runlocal=True,steps=7,batch=4,warmup=2")  # Given args are honoured.
  assert (c.total_steps, c.input.batch_size, c.optim.warmup_steps) == (7, 4, 2)
  c = config_lib.load_config(spec)
  assert (c.total_steps, c.input.batch_size, c.optim.warmup_steps) == (2000, 128, 100)
  assert c.input.splits.train == "train"
  with pytest.raises(ValueError, match="Config arg 'steps' must be positive"):
    config_lib.load_config(spec + ",steps=0")


def test_caption_dataset_runlocal_honours_steps():
  spec = config_lib.config_path("caption_dataset.py")
  assert config_lib.load_config(spec + ":runlocal=True").total_steps == 3
  assert config_lib.load_config(spec + ":runlocal=True,steps=5").total_steps == 5
  assert config_lib.load_config(spec).total_steps == 20000


def test_demo_text_len_covers_every_synthetic_caption(tiny_data_dir, tmp_path):
  """The demo's caption length (measured on the synthetic set with the run's tokenizer) cuts no caption of the
  tiny build, and the start-of-run count finds the cut ones when it is set lower."""
  import logging  # pylint: disable=g-import-not-at-top
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.data import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.train import trainer as trainer_lib  # pylint: disable=g-import-not-at-top
  from tests.fixtures import tiny_config  # pylint: disable=g-import-not-at-top
  c = tiny_config(tiny_data_dir)
  assert c.input.text_len == demo.TEXT_LEN == c.model.text.max_len == c.model.decoder.max_len == 48
  pipe = pipeline_lib.InputPipeline(c, str(tmp_path))
  assert trainer_lib.truncated_captions(pipe) == (0, 240, 48)
  c.input.text_len = 16
  pipe = pipeline_lib.InputPipeline(c, str(tmp_path))
  long, total, _ = trainer_lib.truncated_captions(pipe)
  assert total == 240 and long > 0.5 * total
  records = []
  handler = logging.Handler()
  handler.emit = records.append
  absl_logging.get_absl_logger().addHandler(handler)
  try:
    trainer_lib.warn_truncated_captions(pipe)
  finally:
    absl_logging.get_absl_logger().removeHandler(handler)
  (message,) = [r.getMessage() for r in records if r.levelno == logging.WARNING]
  assert f"{long} of 240 captions" in message and "input.text_len=16" in message
