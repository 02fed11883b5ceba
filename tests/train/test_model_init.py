"""config.model_init: start from a finished run's params; and a fixed run is exactly a dris_at=serve run."""
from __future__ import annotations

import jax
import numpy as np
import pytest

from tests.fixtures import tiny_config
from tests.fixtures import tiny_data_dir  # noqa: F401  pylint: disable=unused-import


def _assert_same(a, b):
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(a), jax.device_get(b))


def test_fixed_run_is_a_dris_at_serve_run_and_model_init_serves_it(tiny_data_dir, tmp_path):  # noqa: F811
  """dris.train=largest (demo arg dris_at=serve; even with mixed batches asked for) trains on the same batches as a fixed run at the
  largest bucket and initialises the same params, so a fixed run's weights are a serve run's; a serve
  config with model_init=<fixed run> loads exactly those weights and evaluates them with DRIS buckets."""
  from rsvlm_jax import job  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.data import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.runtime import checkpoint as checkpoint_lib  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.data import tokenizer as tokenizer_lib  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.train import trainer as trainer_lib  # pylint: disable=g-import-not-at-top
  fixed_dir = str(tmp_path / "fixed")
  fixed = tiny_config(tiny_data_dir, "steps=2,ckpt_every=2", num_devices=1, **{"dris.resolutions": (48,)})
  serve = tiny_config(tiny_data_dir, "dris=True,dris_at=serve,mixed=true,steps=2", num_devices=1,
                      model_init=fixed_dir)
  del serve.evals["captioning"]
  assert tuple(serve.dris.resolutions) == (32, 48) and serve.dris.mixed_buckets

  streams = [list(pipeline_lib.InputPipeline(c, str(tmp_path / n)).train_dataset(4))
             for c, n in ((fixed, "p_fixed"), (serve, "p_serve"))]
  for a, b in zip(*streams):
    assert int(a.pop("_bucket")) == 0 and int(b.pop("_bucket")) == 1  # The largest bucket of each.
    _assert_same(a, b)

  tf = trainer_lib.Trainer(fixed, fixed_dir)
  init_params = jax.device_get(tf.state.params)
  tf.train()
  ts = trainer_lib.Trainer(serve, str(tmp_path / "serve"))
  _assert_same(ts.state.params, init_params)  # Initialisation does not depend on the buckets.
  assert ts.restore_or_init() and ts.model_init == {"source": fixed_dir, "step": 2}
  assert int(ts.state.step) == 0  # Params only: a fresh step and optimizer state.
  _assert_same(ts.state.params, tf.state.params)
  served = job.evaluate(ts)["efficiency"]["histogram"]
  assert sum(served) == 16 and min(served) > 0
  # The token ids are the source run's: its tokenizer is found from any checkpoint path and adopted.
  fixed_tok = tmp_path / "fixed" / "tokenizer.model"
  assert tokenizer_lib.source_tokenizer(str(tmp_path / "fixed" / "checkpoints" / "2")) == str(fixed_tok)
  assert (tmp_path / "serve" / "tokenizer.model").read_bytes() == fixed_tok.read_bytes()
  other = tmp_path / "other"
  other.mkdir()
  (other / "tokenizer.model").write_bytes(fixed_tok.read_bytes()[:-1] + b"x")
  with pytest.raises(ValueError, match="tokenizer.model differs from the tokenizer of config.model_init"):
    trainer_lib.Trainer(serve, str(other))

  # Errors name what is wrong: a source without a complete checkpoint, and params of another shape.
  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(FileNotFoundError, match="No complete checkpoint in .*empty"):
    checkpoint_lib.restore_params(str(empty), ts.abstract_state.params)
  wider = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape[:-1] + (a.shape[-1] + 1,), a.dtype)
                       if a.ndim else a, ts.abstract_state.params)
  with pytest.raises(ValueError, match=r"fixed/checkpoints/2/state does not fit this model: \d+ params differ"):
    checkpoint_lib.restore_params(fixed_dir, wider)
