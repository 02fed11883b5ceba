"""The sweep runner: overrides, the results table, and the MS-VLAM ablation run end to end (smoke size)."""
import json
import os
import subprocess
import sys

import pytest

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
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")
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
