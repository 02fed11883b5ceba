"""The sweep runner: overrides, the results table, and the MS-VLAM ablation run end to end (smoke size)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.fixtures import xla_flags

from rsvlm_jax import sweep

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_apply_overrides_sets_and_rejects_unknown_keys():
  import ml_collections  # pylint: disable=g-import-not-at-top
  c = ml_collections.ConfigDict({"losses": {"local": {"weight": 0.0}}})
  sweep.apply_overrides(c, {"losses.local.weight": 0.5})
  assert c.losses.local.weight == 0.5
  with pytest.raises(KeyError, match="losses.locl.weight"):
    sweep.apply_overrides(c, {"losses.locl.weight": 1.0})


def test_ablation_config_has_the_four_rows_and_rejects_unknown_ones():
  from rsvlm_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  path = os.path.join(ROOT, "configs", "sweeps", "msvlam_ablation.py")
  c = config_lib.load_config(path)
  assert [r["name"] for r in c.runs] == ["global", "global+local", "global+object", "all"]
  assert len(c.seeds) >= 2
  weights = {r["name"]: (r["overrides"]["losses.local_alignment.weight"] > 0,
                         r["overrides"]["losses.object_alignment.weight"] > 0) for r in c.runs}
  assert weights == {"global": (False, False), "global+local": (True, False), "global+object": (False, True),
                     "all": (True, True)}
  with pytest.raises(ValueError, match="globl"):
    config_lib.load_config(path + ":runs=globl")


def test_results_markdown_mean_and_std_per_run():
  results = [{"name": "a", "seed": 0, "metrics": {"retrieval/t2i_R@1": 1.0}},
             {"name": "a", "seed": 1, "metrics": {"retrieval/t2i_R@1": 3.0}},
             {"name": "b", "seed": 0, "metrics": {"retrieval/t2i_R@1": 5.0}}]
  md = sweep.results_markdown(results, keys=("retrieval/t2i_R@1",))
  rows = md.strip().splitlines()[2:]
  assert rows == ["| a | 2 | 2.000 ± 1.000 |", "| b | 1 | 5.000 ± 0.000 |"]


def test_msvlam_ablation_command_writes_results(tiny_data_dir, tmp_path):
  """Two ablation rows (global-only and all levels), one seed, smoke size, through the command a user runs."""
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags(1))
  args = f"runlocal=True,seeds=1,quick_steps=2,runs=global;all,data_dir={tiny_data_dir}"
  proc = subprocess.run([sys.executable, "-m", "rsvlm_jax.sweep",
                         f"--config=configs/sweeps/msvlam_ablation.py:{args}", f"--workdir={tmp_path}", "--quick"],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  results = json.loads((tmp_path / "results.json").read_text())
  assert [r["name"] for r in results] == ["global", "all"]
  for r in results:
    assert r["seed"] == 0 and "retrieval/t2i_R@10" in r["metrics"] and "captioning/CIDEr-D" in r["metrics"]
  # Each run trained with its own loss weights: the object term is logged only where its weight is on.
  logged = {}
  for name in ("global", "all"):
    with open(tmp_path / name / "seed0" / "metrics.jsonl") as f:
      logged[name] = json.loads(f.readline())
  assert not any("object" in k for k in logged["global"]) and any("object" in k for k in logged["all"])
  assert "| all | 1 |" in (tmp_path / "results.md").read_text()


def test_check_runs_rejects_what_the_sweep_cannot_run():
  ok = {"name": "a", "args": "res=96", "overrides": {}}
  sweep.check_runs([ok, {"name": "b", "mode": "eval", "model_init_from": "a"}])
  for runs, match in [([ok, {"name": "b", "model_init_from": "c"}], "names no earlier run"),
                      ([{"name": "b", "model_init_from": "a"}, ok], "names no earlier run"),
                      ([ok, {"name": "a"}], "used twice"),
                      ([{"name": "a", "mode": "train"}], "mode 'train'"),
                      ([{"name": "a", "overides": {}}], r"unknown fields \['overides'\]")]:
    with pytest.raises(ValueError, match=match):
      sweep.check_runs(runs)


def test_run_sweep_honours_args_eval_runs_and_the_prepare_hook(tiny_data_dir, tmp_path):
  """A trained run with its own args, then an eval run of its weights (model_init_from); the prepare hook sees
  every run's final config and what it changes is what runs. A second call repeats only the eval run."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  from rsvlm_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.runtime import checkpoint  # pylint: disable=g-import-not-at-top
  c = ml_collections.ConfigDict()
  c.base = f"{config_lib.config_path('demo.py')}:runlocal=True,steps=2,ckpt_every=2,data_dir={tiny_data_dir}"
  c.seeds = (1,)
  c.runs = [{"name": "train", "args": "object_w=0"},
            {"name": "serve", "args": "object_w=0", "mode": "eval", "model_init_from": "train"}]
  seen = []

  def prepare(name, seed, config, rundir):
    seen.append((name, seed, rundir, config.model_init, config.losses.object_alignment.weight))
    config.total_steps = 3  # Base steps=2: the hook's change is what trains.

  results = sweep.run_sweep(c, str(tmp_path), prepare=prepare)
  train_dir, serve_dir = str(tmp_path / "train" / "seed1"), str(tmp_path / "serve" / "seed1")
  assert seen == [("train", 1, train_dir, "", 0.0), ("serve", 1, serve_dir, train_dir, 0.0)]
  assert [(r["name"], r["seed"], r["workdir"]) for r in results] == [("train", 1, train_dir), ("serve", 1, serve_dir)]
  metrics = {}
  for name in ("train", "serve"):
    with open(tmp_path / name / "seed1" / "metrics.json") as f:
      metrics[name] = json.load(f)
  with open(tmp_path / "train" / "seed1" / "metrics.jsonl") as f:
    logged = json.loads(f.readline())
  assert not any("object" in k for k in logged)  # args: object_w=0 reached training.
  assert metrics["train"]["step"] == 3 and metrics["serve"]["model_init"] == {"source": train_dir, "step": 3}
  assert not checkpoint.complete_steps(os.path.join(serve_dir, "checkpoints"))  # The eval run trained nothing.
  scores = lambda m: {k: v for k, v in m["retrieval"].items() if k != "eval_images_per_s"}
  assert scores(metrics["serve"]) == pytest.approx(scores(metrics["train"]), abs=1e-6)  # The same weights.
  stamps = {n: os.path.getmtime(os.path.join(d, "metrics.json")) for n, d in (("train", train_dir),
                                                                              ("serve", serve_dir))}
  seen.clear()
  sweep.run_sweep(c, str(tmp_path), prepare=prepare)
  assert [s[0] for s in seen] == ["train", "serve"]  # The hook sees finished runs too.
  assert os.path.getmtime(os.path.join(train_dir, "metrics.json")) == stamps["train"]  # Not repeated.
  assert os.path.getmtime(os.path.join(serve_dir, "metrics.json")) > stamps["serve"]  # Evaluated again.
  assert [r["name"] for r in json.loads((tmp_path / "results.json").read_text())] == ["train", "serve"]


def test_eval_run_reruns_on_its_own_workdir_but_refuses_trained_checkpoints(tmp_path):
  """An eval run (mode=eval, model_init_from, as bench.dris's dris_serve) that ran before leaves an empty
  checkpoints/ directory: a re-run (e.g. at another --budget) goes ahead. A complete checkpoint of its own
  would be evaluated instead of the weights it names: refused."""
  from rsvlm_jax.runtime import checkpoint as checkpoint_lib  # pylint: disable=g-import-not-at-top
  workdir = tmp_path / "dris_serve"
  sweep.refuse_own_checkpoints(str(workdir))  # Nothing there yet.
  (workdir / "checkpoints").mkdir(parents=True)
  (workdir / "checkpoints" / "7.orbax-checkpoint-tmp-1").mkdir()  # A save that never completed.
  sweep.refuse_own_checkpoints(str(workdir))
  ckpt = checkpoint_lib.Checkpointer(str(workdir / "checkpoints"), async_save=False)
  ckpt.save(5, {"w": np.zeros(3, np.float32)}, {"epoch": 0}, force=True)
  ckpt.close()
  assert checkpoint_lib.complete_steps(str(workdir / "checkpoints")) == [5]
  with pytest.raises(FileExistsError, match=r"dris_serve holds checkpoints of its own \(steps \[5\]"):
    sweep.refuse_own_checkpoints(str(workdir))
