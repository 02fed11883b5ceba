"""The config schema: every key declared once, configs checked against it, older layouts upgraded."""
import ast
import json
import os
import re

import ml_collections
import pytest

from configs import demo
from rsvlm_jax import config as config_lib
from rsvlm_jax import config_schema

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("arg", ["", "runlocal=True", "dris=True", "dris=True,dris_at=serve", "serve_dris=false",
                                 "dris=True,resolutions=64;128,mixed=false"])
def test_demo_configs_hold_exactly_the_schema_keys(arg):
  c = demo.get_config(arg)
  config_schema.check(c)
  flat = {k for k, _, _ in config_schema.rows()}
  assert flat == set(_dotted(c.to_dict(), opens=_open_keys())), "demo config and schema differ"


@pytest.mark.parametrize("spec", ["caption_dataset.py:runlocal=True", "rsicd_retrieval.py:runlocal=True",
                                  "rs_gpt4v_b16.py:runlocal=True", "caption_dataset.py:dris=False"])
def test_dataset_configs_pass_the_check(spec):
  config_schema.check(config_lib.load_config(config_lib.config_path(spec)))


def test_unknown_keys_fail_naming_them():
  c = demo.get_config("runlocal=True")
  with c.unlocked():
    c.input.bogus = 1
  with pytest.raises(KeyError, match=r"'input.bogus'.*batch_size"):
    config_schema.check(c)
  c = demo.get_config("runlocal=True")
  c.model.image.widht = 64  # A typo in an open subtree: named with the module's real fields.
  with pytest.raises(KeyError, match=r"model.image.widht.*models.vit.ViT.*'width'"):
    config_schema.check(c)


def test_complete_fills_what_a_hand_written_config_lacks():
  c = ml_collections.ConfigDict({"seed": 3, "input": {"batch_size": 4}, "model": {"embed_dim": 8}})
  config_schema.complete(c)
  assert c.seed == 3 and c.input.batch_size == 4 and c.model.embed_dim == 8  # Kept.
  assert c.dris.resolutions == (64,) and c.dris.train == "buckets" and c.optim.b2 == 0.98  # Defaults.
  assert c.input.splits.train == "train" and c.model.image.variant == "mu/8"
  config_schema.check(c)


def test_upgrade_maps_the_older_layout():
  old = {"input": {"resolutions": [32, 48], "patch_size": 8, "dris_at": "serve", "scorer": "s.npz",
                   "budget": 0.6, "mixed_buckets": True, "train_split": "train[:50%]", "text_len": 16},
         "model": {"image": {"variant": "pico/8"}}}
  new = config_schema.upgrade(old)
  assert new["dris"] == {"resolutions": [32, 48], "scorer": "s.npz", "budget": 0.6, "mixed_buckets": True,
                         "train": "largest"}
  assert new["input"] == {"text_len": 16, "splits": {"train": "train[:50%]", "test": "test",
                                                     "validation": "validation"}}
  assert old["input"]["patch_size"] == 8  # The argument is left alone.
  c = config_schema.complete(ml_collections.ConfigDict(new))
  config_schema.check(c)
  assert config_schema.upgrade(new) == new  # Idempotent.


def test_upgrade_drops_coarse_to_fine_when_off_and_refuses_it_when_on():
  """The coarse-to-fine tiles are gone: an old config.json with the group off (num_tiles 0, as every run
  without tiles wrote it, also in the input.* layout) reads as today's config; one with tiles on is refused."""
  off = {"tile_grid": 2, "num_tiles": 0, "tile_size": 64}
  for old in ({"dris": {"budget": 0.6, "coarse_to_fine": off}}, {"input": {"coarse_to_fine": dict(off)}}):
    new = config_schema.upgrade(old)
    assert "coarse_to_fine" not in new["dris"] and "coarse_to_fine" not in new.get("input", {})
    config_schema.check(config_schema.complete(ml_collections.ConfigDict(new)))
  assert config_schema.upgrade({"dris": {"budget": 0.6, "coarse_to_fine": off}})["dris"] == {"budget": 0.6}
  for on, key in (({"dris": {"coarse_to_fine": dict(off, num_tiles=2)}}, "dris.coarse_to_fine.num_tiles=2"),
                  ({"input": {"coarse_to_fine": dict(off, num_tiles=1)}}, "dris.coarse_to_fine.num_tiles=1"),
                  ({"dris": {"coarse_to_fine": 3}}, "dris.coarse_to_fine=3")):
    with pytest.raises(config_schema.ConfigError, match=re.escape(key) + ": coarse-to-fine tiles were removed in "
                                                        "this version"):
      config_schema.upgrade(on)
  with pytest.raises(config_schema.UnknownKeyError, match="dris.coarse_to_fine"):  # No longer a key to set.
    c = config_schema.defaults()
    c.dris.coarse_to_fine = {"num_tiles": 0}
    config_schema.check(c)


def test_docs_config_md_is_generated_from_the_schema():
  with open(os.path.join(ROOT, "docs", "config.md"), encoding="utf-8") as f:
    assert f.read() == config_schema.markdown(), "run: python -m rsvlm_jax.config_schema > docs/config.md"


def test_readme_config_table_matches_the_schema():
  """Rows `| `key` | `default` | meaning |` in the README agree with the schema."""
  with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
    readme = f.read()
  declared = {k: (d, m) for k, d, m in config_schema.rows()}
  rows = re.findall(r"^\| `([a-z_.]+)` \| `([^`]*)` \| (.+?) \|$", readme, re.M)
  assert len(rows) >= 5, "README lost its config table"
  for key, default, meaning in rows:
    assert key in declared, f"README names {key!r}, which the schema does not declare"
    assert default == repr(declared[key][0]), f"README default of {key}: {default} vs {declared[key][0]!r}"
    assert meaning == declared[key][1], f"README meaning of {key} differs from the schema's"


def test_demo_docstring_documents_every_arg():
  for arg in demo.ARGS:
    assert re.search(rf"\b{arg}\b", demo.__doc__), f"configs/demo.py docstring does not mention arg {arg!r}"


def test_code_reads_only_declared_keys():
  """`config.<group>.<key>` and `cfg.<key>` reads of config groups in the package name declared keys."""
  declared = {k for k, _, _ in config_schema.rows()}
  groups = {k.split(".")[0] for k in declared if "." in k}
  bad = []
  for dirpath, _, files in os.walk(os.path.join(ROOT, "rsvlm_jax")):
    for name in files:
      if not name.endswith(".py"):
        continue
      path = os.path.join(dirpath, name)
      with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
      for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
            and isinstance(node.value.value, ast.Name) and node.value.value.id == "config"
            and node.value.attr in groups):
          key = f"{node.value.attr}.{node.attr}"
          if key not in declared and not any(d.startswith(key + ".") for d in declared):
            if node.attr not in ("get", "to_dict", "items", "keys", "values", "unlocked", "update"):
              bad.append(f"{os.path.relpath(path, ROOT)}:{node.lineno} config.{key}")
  assert not bad, bad


def _open_keys():
  return {k for k, v in _flatten_schema(config_schema.SCHEMA).items() if isinstance(v, config_schema.Open)}


def _flatten_schema(node, path=""):
  out = {}
  for k, v in node.items():
    if isinstance(v, dict):
      out.update(_flatten_schema(v, f"{path}{k}."))
    else:
      out[f"{path}{k}"] = v
  return out


def _dotted(d, prefix="", opens=()):
  out = []
  for k, v in d.items():
    key = f"{prefix}{k}"
    if isinstance(v, dict) and key not in opens and key != "input.splits":
      out += _dotted(v, key + ".", opens)
    else:
      out.append(key)
  return out


def test_json_round_trip_of_a_run_config(tmp_path):
  """What run_record writes (config.json) reads back, through upgrade + complete, as the same config."""
  c = demo.get_config("dris=True")
  path = tmp_path / "config.json"
  path.write_text(json.dumps(c.to_dict()))
  from rsvlm_jax import loading  # pylint: disable=g-import-not-at-top
  back = loading.read_config(str(tmp_path))
  assert back.dris.resolutions == [64, 96, 128] and back.dris.train == "buckets"
  config_schema.check(back)


def _numeric(value) -> bool:
  if isinstance(value, (tuple, list)):
    return bool(value) and all(_numeric(v) for v in value)
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def test_every_numeric_key_declares_its_allowed_values():
  undeclared = [k for k, default, _ in config_schema.rows() if (_numeric(default) or k == "dris.thresholds")
                and not config_schema.allowed_text(k)]
  assert not undeclared, undeclared
  config_schema.check(config_schema.defaults())  # Every default is allowed.


@pytest.mark.parametrize("key,value,allowed", [
    ("optim.lr", -1.0, "a number > 0"), ("optim.lr", float("nan"), "a number > 0"),
    ("optim.weight_decay", -0.1, "a number >= 0"), ("optim.b2", 1.0, r"a number in \[0, 1\)"),
    ("optim.warmup_steps", -1, "an integer >= 0"), ("input.batch_size", 0, "an integer >= 1"),
    ("total_steps", 0, "an integer >= 1"), ("ckpt_every", 0, "an integer >= 1"),
    ("ckpt_every", True, "an integer >= 1"), ("input.text_len", 1, "an integer >= 2"),
    ("dris.budget", 0.0, r"a number in \(0, 1\]"), ("dris.resolutions", (32, 0), r"an integer >= 1 \(each element\)"),
    ("losses.captioning.weight", -1.0, "a number >= 0"), ("evals.retrieval.batch_size", 0, "an integer >= 1"),
    ("model.text.depth", 0, "an integer >= 1")])
def test_a_value_outside_its_range_fails_naming_key_value_and_range(key, value, allowed):
  c = demo.get_config("runlocal=True")
  config_lib.set_key(c, key, value, "test")
  with pytest.raises(config_schema.ConfigError, match=rf"^Config key {re.escape(key)} must be {allowed}, got "
                                                      rf"{re.escape(repr(value))}$"):
    config_schema.check(c)
  with pytest.raises(ValueError):  # Callers catching ValueError (the earlier checks) still do.
    config_schema.gate(c)


def test_text_len_longer_than_the_towers_fails_naming_both_keys():
  c = demo.get_config("runlocal=True")
  c.input.text_len = c.model.text.max_len + 1
  with pytest.raises(config_schema.ConfigError, match=r"input.text_len=49 exceeds model.text.max_len=48"):
    config_schema.check(c)


def test_docs_config_md_shows_the_ranges():
  with open(os.path.join(ROOT, "docs", "config.md"), encoding="utf-8") as f:
    text = f.read()
  assert "| `optim.lr` | `0.001` | number > 0 |" in text
  assert "| `input.batch_size` | `64` | integer >= 1 |" in text


# -- The one config gate (issue 32). ------------------------------------------------------------------------

def _plain(**changes) -> ml_collections.ConfigDict:
  """The runlocal demo config as a plain (type-unchecked) dict config with dotted `changes`."""
  raw = demo.get_config("runlocal=True").to_dict()
  for dotted, value in changes.items():
    *parents, leaf = dotted.split("__")
    node = raw
    for p in parents:
      node = node[p]
    node[leaf] = value
  return ml_collections.ConfigDict(raw, type_safe=False)


@pytest.mark.parametrize("changes,named", [
    ({"tensorboard": "yes"}, "Config key tensorboard must be a bool, got 'yes'"),
    ({"input__dataset": 3}, "Config key input.dataset must be a string, got 3"),
    ({"input__splits": {"train": 1}}, "Config key input.splits must be a mapping of strings"),
    ({"dris__train": "smallest"}, "Config key dris.train must be one of ('buckets', 'largest'), got 'smallest'"),
    ({"decoding": "sample"}, "Config key decoding must be one of ('greedy', 'beam'), got 'sample'"),
    ({"input__preprocess": "crop"}, "Config key input.preprocess must be one of ('resize', 'clip')"),
    ({"dris__resolutions": 32}, "Config key dris.resolutions must be a tuple"),
    ({"dris__resolutions": (48, 32)}, "Config key dris.resolutions must be strictly ascending, got (48, 32)"),
    ({"dris__resolutions": (36,)}, "Config key dris.resolutions=(36,): 36 is not divisible by the patch size 8"),
    ({"model_from__resolutions": "half"}, "Config key model_from.resolutions must be one of"),
])
def test_gate_checks_every_key_type_choice_and_rule(changes, named):
  """Every key has a type (its default's) and allowed values; the checks the trainer, the pipeline, the
  buckets and the checkpointer made before are the gate's now, each error naming the key."""
  with pytest.raises(config_schema.ConfigError, match=re.escape(named)):
    config_schema.gate(_plain(**changes))


def test_every_key_declares_its_type_and_allowed_values():
  for key, default, _ in config_schema.rows():
    assert config_schema.allowed_text(key) or isinstance(default, dict) and not default, key


def test_batch_sizes_must_fit_the_devices_named_rule():
  c = config_schema.gate(demo.get_config("runlocal=True"), devices=4)  # Batches of 8.
  with pytest.raises(config_schema.ConfigError, match=r"Config key input.batch_size=8 is not divisible by the "
                                                      r"3 devices"):
    config_schema.batch_sizes_fit_devices(c, 3)
  with pytest.raises(config_schema.ConfigError, match=r"evals\.\w+\.batch_size=8 is not divisible by the 3"):
    config_schema.gate(_plain(input__batch_size=9), devices=3)


@pytest.mark.parametrize("old,every", [({"sync_every": 5}, 5), ({"sync_every": 5, "nan_check_every_step": True}, 1),
                                       ({"nan_check_every_step": False}, None), ({}, None)])
def test_upgrade_maps_sync_every_and_nan_check_onto_host_sync_every(tmp_path, old, every):
  """The two keys of one choice are one key; an older config.json with either still loads."""
  new = config_schema.upgrade(old)
  assert "sync_every" not in new and "nan_check_every_step" not in new
  assert new.get("host_sync_every") == every
  raw = demo.get_config("runlocal=True").to_dict()
  del raw["host_sync_every"]
  (tmp_path / "config.json").write_text(json.dumps({**raw, **old}))
  from rsvlm_jax import loading  # pylint: disable=g-import-not-at-top
  assert loading.read_config(str(tmp_path)).host_sync_every == (every or 10)


def test_configs_compose_by_importing_functions_and_read_no_file(tmp_path):
  """No config loads another by a "path:args" string; building clip_finetune's reads nothing (the converted
  directory is read by the gate, through model_from.dir)."""
  for name in os.listdir(os.path.join(ROOT, "configs")):
    if name.endswith(".py"):
      with open(os.path.join(ROOT, "configs", name), encoding="utf-8") as f:
        text = f.read()
      assert "load_config" not in text and "open(" not in text, name
  from configs import caption_dataset  # pylint: disable=g-import-not-at-top
  from configs import clip_finetune  # pylint: disable=g-import-not-at-top
  from configs import rsicd_retrieval  # pylint: disable=g-import-not-at-top
  assert (rsicd_retrieval.get_config("runlocal=True").to_dict() ==
          caption_dataset.config(runlocal=True, retrieval_only=True).to_dict())
  missing = str(tmp_path / "not_converted")
  c = clip_finetune.get_config(f"init={missing},runlocal=True")  # Builds: nothing is read yet.
  assert c.model_from.dir == missing
  with pytest.raises(config_schema.ConfigError, match=rf"Config key model_from.dir='{re.escape(missing)}': no "
                                                      r"config.json there"):
    config_schema.gate(c)


def test_gate_reads_the_architecture_of_model_from_once(tmp_path):
  src = demo.get_config("runlocal=True").to_dict()
  src["model"].update(decoder=None, embed_dim=24)
  src["model"]["text"].update(width=128, max_len=40)
  src["input"].update(text_len=40, preprocess="clip")
  src["dris"]["resolutions"] = [64]
  (tmp_path / "config.json").write_text(json.dumps(src))
  from configs import clip_finetune  # pylint: disable=g-import-not-at-top
  c = config_schema.gate(clip_finetune.get_config(f"init={tmp_path},dris=True"))
  assert c.model.embed_dim == 24 and c.input.text_len == 40 and c.input.preprocess == "clip"
  assert tuple(c.dris.resolutions) == (32, 48, 64)  # About 1/2, 3/4 and 1x the native grid of 8 patches.
  assert (c.model.decoder.width, c.model.decoder.num_heads, c.model.decoder.mlp_dim, c.model.decoder.max_len,
          c.model.decoder.depth) == (128, 2, 512, 40, 4)
  assert c.model_from.dir == "" and c.model_init == str(tmp_path)  # Read once; config.json records the result.
  assert config_schema.gate(c).to_dict() == c.to_dict()
  c = config_schema.gate(clip_finetune.get_config(f"init={tmp_path},decoder=False,res=48"))
  assert c.model.decoder is None and tuple(c.dris.resolutions) == (48,)


def test_gate_keeps_the_configs_run_options_over_model_from(tmp_path, monkeypatch, capsys):
  """`--config.model.*` overrides of run options (remat, region_windows) apply on top of model_from's weights, as
  before the gate read model_from; an architecture key set to another value than the weights' is refused,
  naming the key and both values (the same value is fine)."""
  from rsvlm_jax import main  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.runtime import cli  # pylint: disable=g-import-not-at-top
  src = demo.get_config("runlocal=True").to_dict()
  src["model"].update(decoder=None, embed_dim=24)
  (tmp_path / "config.json").write_text(json.dumps(src))
  monkeypatch.chdir(ROOT)
  gated = []
  gate = lambda argv: gated.append(config_schema.gate(main.FLAGS.config))
  spec = f"--config=configs/clip_finetune.py:init={tmp_path},runlocal=True"
  args = [spec, "--config.model.image.remat=True", "--config.model.text.remat=True",
          "--config.model.region_windows=2", "--config.model.embed_dim=24", "--workdir=w"]
  assert cli.call(gate, main.FLAGS, "main", args) == 0
  model = gated[0].model
  assert model.image.remat and model.text.remat and model.region_windows == 2
  assert (model.embed_dim, model.image.variant, model.text.width) == (
      24, src["model"]["image"]["variant"], src["model"]["text"]["width"])
  assert cli.call(gate, main.FLAGS, "main", [spec, "--config.model.embed_dim=32", "--workdir=w"]) == 2
  assert capsys.readouterr().err.startswith(
      f"main: error: Config key model.embed_dim=32 disagrees with model_from.dir='{tmp_path}', whose weights have "
      "model.embed_dim=24: the weights fix the architecture")
  from configs import clip_finetune  # pylint: disable=g-import-not-at-top
  c = clip_finetune.get_config(f"init={tmp_path}")
  c.model.image.width = 256  # A key the weights' model does not set.
  with pytest.raises(config_schema.ConfigError, match=r"model.image.width=256 disagrees .* whose weights set no "
                                                      r"model.image.width: "):
    config_schema.gate(c)


def test_auto_bool_args_are_typed():
  assert config_lib.parse_arg("", mixed=config_lib.AUTO_BOOL).mixed is None
  assert config_lib.parse_arg("mixed=auto", mixed=config_lib.AUTO_BOOL).mixed is None
  assert config_lib.parse_arg("mixed=False", mixed=config_lib.AUTO_BOOL).mixed is False
  assert demo.config(dris=True, runlocal=True, mixed=True).dris.mixed_buckets is True
  assert demo.config(dris=True, mixed=None).dris.mixed_buckets is True  # None = auto: on unless runlocal.
  assert demo.config(serve_dris=False).dris.resolutions == (64,)
  with pytest.raises(TypeError, match=r"configs/demo.py has no arg\(s\) \['mixd'\]"):
    demo.config(mixd=True)
