"""bench/train_step.py --ablations and bench/step_profile.py on a tiny model (no timing claims, no open_clip)."""
import pytest

from bench import step_profile
from bench import train_step


def test_summary_ratios_come_from_the_medians():
  times = {"default": [[2.0, 2.0], [4.0]], "fast": [[1.0], [2.0, 2.0]], "open_clip": [[3.0], [5.0]]}
  rows = {r["name"]: r for r in train_step.summarize_ablations(times, batch=8)}
  d, f, oc = rows["default"], rows["fast"], rows["open_clip"]
  assert (d["seconds_per_step"], f["seconds_per_step"], oc["seconds_per_step"]) == (2.0, 2.0, 4.0)
  assert (d["n"], f["n"], oc["n"]) == (3, 3, 2)
  assert f["images_per_s"] == 4.0 and oc["images_per_s"] == 2.0
  assert d["ratio_vs_default"] == 1.0 and f["ratio_vs_default"] == 1.0 and oc["ratio_vs_default"] == 0.5
  # Paired per round: round 0 default 2.0 / fast 1.0, round 1 default 4.0 / fast 2.0.
  assert f["round_ratios"] == [2.0, 2.0] and oc["round_ratios"] == [2.0 / 3.0, 4.0 / 5.0]
  assert f["round_ratio_median"] == 2.0 and oc["round_ratio_median"] == pytest.approx((2.0 / 3.0 + 0.8) / 2)
  assert f["ratio_vs_default_best"] == 2.0 and oc["ratio_vs_default_best"] == 2.0 / 3.0  # Best: 2.0, 1.0, 3.0.
  assert d["speed_ratio_vs_open_clip"] == 2.0 and "speed_ratio_vs_open_clip" not in oc
  assert f["p10_s"] == pytest.approx(1.2) and f["p90_s"] == pytest.approx(2.0)
  assert not f["spread_apart_from_default"] and oc["spread_apart_from_default"] is False
  slow = train_step.summarize_ablations({"default": [[1.0], [1.1]], "slow": [[3.0], [3.3]]}, batch=2)[1]
  assert slow["spread_apart_from_default"] and slow["ratio_vs_default"] == pytest.approx(1.05 / 3.15)


def test_ablations_on_a_tiny_model():
  names = ["default", "host_sync_every_step", "pool_gap", "pool_tok"]
  out = train_step.run_ablations("pico/8", 32, 2, names=names[::-1], rounds=2, min_time=0.0, steps_per_sample=2,
                                 vocab=64, text_len=8, text_depth=1, log=lambda _: None)
  rows = {r["name"]: r for r in out["rows"]}
  assert out["rows"][0]["name"] == "default" and set(rows) == set(names)
  for r in rows.values():
    assert r["impl"] == "rsvlm_jax" and r["n"] == 2 and len(r["round_ratios"]) == 2
    assert r["ratio_vs_default"] == pytest.approx(rows["default"]["seconds_per_step"] / r["seconds_per_step"])
    assert r["images_per_s"] == pytest.approx(2 / r["seconds_per_step"]) and r["p10_s"] <= r["p90_s"]
  assert rows["default"]["settings"] == {"pool": "map", "fused_attention": True, "compute_dtype": "float32",
                                         "remat": False, "sync_every": train_step.DEFAULT_SYNC_EVERY}
  assert rows["host_sync_every_step"]["settings"]["sync_every"] == 1
  # The MAP head's params (probe, attention, LayerNorm, MLP) vs none (gap) vs class token + its posemb (tok).
  img = {n: rows[n]["params"]["image_tower"] for n in ("default", "pool_gap", "pool_tok")}
  assert img["pool_tok"] - img["pool_gap"] == 2 * 64 and img["default"] > img["pool_tok"]
  assert rows["host_sync_every_step"]["params"] == rows["default"]["params"]


def test_hlo_names_and_components():
  hlo = """HloModule m
%fused_computation.1 (p: f32[2,2]) -> f32[2,2] {
  %p = f32[2,2]{1,0} parameter(0)
  ROOT %dot.9 = f32[2,2]{1,0} dot(%p, %p), metadata={op_name="jit(step)/jvp(Model)/img/encoder/block3/attn/query/dot"}
}

ENTRY %main (a: f32[2,2]) -> f32[2,2] {
  %a = f32[2,2]{1,0} parameter(0)
  %ynn_fusion.1 = f32[2,2]{1,0} fusion(%a), kind=kCustom, calls=%fused_computation.1
  ROOT %add.2 = f32[2,2]{1,0} add(%ynn_fusion.1, %a), metadata={op_name="jit(step)/add"}
}
"""
  ops = step_profile.hlo_ops(hlo)
  assert ops["ynn_fusion.1"]["opcode"] == "fusion:kCustom/dot"
  assert ops["ynn_fusion.1"]["op_name"].endswith("block3/attn/query/dot")
  assert step_profile.classify(ops["ynn_fusion.1"]["op_name"]) == ("forward", "image/attention")
  assert step_profile.classify("jit(step)/transpose(jvp(Model))/Model.encode_text/txt/encoder/block0/mlp/x") == (
      "backward", "text/mlp")
  assert step_profile.classify(ops["add.2"]["op_name"]) == ("optimizer/other", "optimizer")
  s = step_profile.summarize_ops({"ynn_fusion.1": 3e6, "add.2": 1e6}, ops, steps=2)
  assert s["thread_ms_per_step"] == 2.0 and s["top_ops"][0]["thread_ms_per_step"] == 1.5
  assert s["top_ops"][0]["source"] == "jvp(Model)/img/encoder/block*/attn/query/dot"
  assert {r["name"]: r["share"] for r in s["by_pass"]} == {"forward": 0.75, "optimizer/other": 0.25}


def test_profile_of_a_tiny_step(tmp_path):
  kw = {"vocab": 64, "text_len": 8, "text_depth": 1}
  out = step_profile.profile(lambda: train_step.build_ours("pico/8", 32, 2, pool="map", **kw), None,
                             str(tmp_path), min_time=0.0, rounds=2, steps=1, attention_shape=(2, 16, 2, 32),
                             log=lambda _: None)
  xla = out["xla_ops"]
  assert xla["thread_ms_per_step"] > 0 and xla["top_ops"] and (tmp_path / "jax_step.hlo.txt").exists()
  comps = {r["name"] for r in xla["by_component"]}
  assert {"image/attention", "image/mlp", "text/mlp", "optimizer"} <= comps
  sub = out["substeps"]["rsvlm_jax"]
  assert set(sub) == {"image_tower_fwd_bwd", "text_tower_fwd_bwd", "loss_fwd_bwd", "optimizer_update", "full_step"}
  assert all(v["num_steps"] >= 2 and v["median_s"] > 0 for v in sub.values())
  assert len(out["attention_core"]["seconds"]) == 2  # jax.nn and flax; torch's only with open_clip.
