"""bench.dris's runs as an rsvlm_jax.sweep config: which runs, and what differs between them."""
import pytest

from bench import dris as bench_dris
from rsvlm_jax import sweep


def _configs(c, workdir="/sweep"):
  sweep.check_runs(c.runs)
  return {r["name"]: sweep.run_config(c, r, c.seeds[0], workdir) for r in c.runs}


def test_dris_bench_runs_share_everything_but_the_dris_keys(tmp_path):
  """Same seed, steps and data; fixed runs have one resolution; dris_serve differs from dris only in dris.train
  and evaluates fixed_max's weights with the learned-scorer placeholder; dris_serve_at_max is the same with
  every image at the largest bucket."""
  c = bench_dris.sweep_config(40, str(tmp_path), 32, seed=3, serve=True)
  assert c.seeds == (3,)
  runs = _configs(c)
  assert list(runs) == ["fixed_max", "fixed_min", "dris", "dris_serve_at_max", "dris_serve"]
  assert {x.seed for x in runs.values()} == {3} and {x.total_steps for x in runs.values()} == {40}
  assert {x.input.data_dir for x in runs.values()} == {str(tmp_path)}
  assert {x.input.batch_size for x in runs.values()} == {32}
  # The recorded benchmark trains the global level and captioning only, and serves one way per run.
  assert {x.losses.local_alignment.weight for x in runs.values()} == {0.0}
  assert {x.losses.object_alignment.weight for x in runs.values()} == {0.0}
  assert tuple(runs["fixed_max"].dris.resolutions) == (128,) and tuple(runs["fixed_min"].dris.resolutions) == (64,)
  assert tuple(runs["dris"].dris.resolutions) == (64, 96, 128)
  assert runs["dris_serve"].dris.train == "largest" and runs["dris"].dris.train == "buckets"
  modes = {r["name"]: (r.get("mode", "train_and_eval"), r.get("model_init_from")) for r in c.runs}
  assert modes["dris"] == ("train_and_eval", None)
  assert modes["dris_serve"] == modes["dris_serve_at_max"] == ("eval", "fixed_max")
  assert runs["dris_serve"].model_init == "/sweep/fixed_max/seed3"
  serve = runs["dris_serve"].to_dict()
  assert serve["dris"]["scorer"] == bench_dris.LEARNED  # Fitted on fixed_max's weights by the bench's hook.
  serve["dris"].update(train="buckets", scorer="")
  serve["model_init"] = ""
  assert serve == runs["dris"].to_dict()
  at_max = runs["dris_serve_at_max"].to_dict()
  assert at_max["dris"]["serve"] == "largest" and at_max["dris"]["scorer"] == ""
  at_max["dris"].update(serve="buckets", scorer=bench_dris.LEARNED)
  assert at_max == runs["dris_serve"].to_dict()


def test_dris_bench_runs_flag_selects_and_budget_applies_to_every_dris_run(tmp_path):
  # --runs: a subset, always with fixed_max (every summary compares with it), dris_serve with its at_max twin;
  # unknown names fail clearly.
  pick = lambda names, **kw: [r["name"] for r in bench_dris.sweep_config(40, str(tmp_path), serve=True, runs=names,
                                                                         **kw).runs]
  assert pick(["dris_serve"]) == ["fixed_max", "dris_serve_at_max", "dris_serve"]
  assert pick(["fixed_min"]) == ["fixed_max", "fixed_min"]
  assert pick([], scorer="both", batching="both") == ["fixed_max", "fixed_min", "dris", "dris_homogeneous",
                                                      "dris_learned", "dris_serve_at_max", "dris_serve"]
  with pytest.raises(ValueError, match=r"--runs names \['dris_learned'\].*available"):
    pick(["dris_learned"])
  with pytest.raises(ValueError, match=r"--runs names \['dris_serve_at_max'\]"):
    pick(["dris_serve_at_max"])  # Not a run of its own: it comes with dris_serve.
  # --scorer learned: the dris run carries the placeholder the bench replaces by the scorer fitted on fixed_max.
  learned = _configs(bench_dris.sweep_config(40, str(tmp_path), scorer="learned"))
  assert learned["dris"].dris.scorer == bench_dris.LEARNED and learned["fixed_max"].dris.scorer == ""
  # --budget: every DRIS run's token budget; the fixed runs have one bucket, so no budget applies to them.
  at_06 = _configs(bench_dris.sweep_config(40, str(tmp_path), 32, serve=True, scorer="both", budget=0.6))
  assert {n: x.dris.budget for n, x in at_06.items() if n.startswith("dris")} == {
      "dris": 0.6, "dris_learned": 0.6, "dris_serve_at_max": 0.6, "dris_serve": 0.6}
  with pytest.raises(ValueError, match="--budget must be in"):
    bench_dris.sweep_config(40, str(tmp_path), 32, budget=1.5)
