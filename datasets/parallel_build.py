"""Parallel, resumable builds of datasets read from many input archives (`UnitBuilder`s).

  build_units(...)   each input unit (a .tar / .zip / folder) -> its own array_record file plus a `done.json`,
                     in worker processes; units are dealt out to machines by --num_shards/--shard_index
                     (unit i goes to shard i % num_shards) and, within a machine, to --workers processes.
  finalize(...)      once every unit is done: moves the unit files into the TFDS folder as the split's shards
                     (ordered by unit name, so the result does not depend on the number of workers or
                     machines), writes the builder's DatasetInfo and `build_summary.json`, removes the parts.

Work in progress lives in `<data_dir>/<name>/<config>/.parts-<version>/`: `settings.json` (the unit list and the
flags that change the data), and `units/<unit>/` per unit. A unit is finished when its `done.json` exists (written
last, by rename) and its input's size and mtime are unchanged; a rerun after a kill skips finished units and
redoes any other (a half-written unit folder is removed first). The examples of a unit keep the order of its
input; training shuffles.

A `UnitBuilder` also builds in one process through TFDS's own download_and_prepare (the dummy-data tests).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
import re
import time
import uuid
from typing import Any, Iterator

from absl import logging
from etils import epath
import tensorflow_datasets as tfds

from rsvlm_datasets import archive_samples
from rsvlm_datasets import caption_formats
from rsvlm_jax.runtime import cli

SUMMARY_FILE = "build_summary.json"


class StrictSkipLog(archive_samples.SkipLog):
  """A SkipLog that stops the build at the first bad record (configs with skip_bad_records=False)."""

  def add(self, unit, key, reason, detail):
    raise caption_formats.BadRecordError(f"{unit}: {key}: {reason}: {detail} (use a lenient config to skip "
                                         "and count bad records)")


@dataclasses.dataclass(eq=False)
class UnitConfig(tfds.core.BuilderConfig):
  skip_bad_records: bool = True  # Web data: lenient by default.


class UnitBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """A caption builder whose inputs are `archive_samples.Unit`s; subclasses define `_units` and `_unit_examples`."""

  def _units(self, manual_dir: epath.Path) -> list[archive_samples.Unit]:
    """The input units, each with its split; raises BadRecordError / FileNotFoundError before any slow work."""
    raise NotImplementedError

  def _unit_examples(self, unit: archive_samples.Unit, skips: archive_samples.SkipLog,
                     max_side: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """(key, example) of one unit; bad records go to `skips`."""
    raise NotImplementedError

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=caption_formats.caption_features(), homepage=getattr(self, "HOMEPAGE", ""),
        metadata=tfds.core.MetadataDict(skipped={}, first_skipped=[], max_side=0))

  def skip_log(self) -> archive_samples.SkipLog:
    return archive_samples.SkipLog() if self.builder_config.skip_bad_records else StrictSkipLog()

  def _split_generators(self, dl_manager):
    units = self.checked_units(epath.Path(dl_manager.manual_dir))
    skips = self.skip_log()
    self.info.metadata["skipped"] = skips.counts  # Filled while the examples are generated.
    self.info.metadata["first_skipped"] = skips.first
    splits = sorted({u.split for u in units})
    return {split: self._examples_of([u for u in units if u.split == split], skips) for split in splits}

  def _examples_of(self, units, skips):
    for unit in units:
      yield from self._unit_examples(unit, skips, 0)

  def _generate_examples(self):  # Unused: _split_generators returns generators.
    raise NotImplementedError

  def checked_units(self, manual_dir: epath.Path) -> list[archive_samples.Unit]:
    if not manual_dir.is_dir():
      raise FileNotFoundError(f"--manual_dir does not exist: {manual_dir}")
    units = sorted(self._units(manual_dir), key=lambda u: u.name)
    if not units:
      raise caption_formats.BadRecordError(f"{manual_dir}: no input files for {self.name}/"
                                           f"{self.builder_config.name}:\n{self.MANUAL_DOWNLOAD_INSTRUCTIONS}")
    return units


# --------------------------------------------------------------------------- paths and small files


def parts_dir(builder) -> epath.Path:
  data_dir = epath.Path(builder.data_dir)
  return data_dir.parent / f".parts-{data_dir.name}"


def unit_dir(parts: epath.Path, unit_name: str) -> epath.Path:
  safe = re.sub(r"[^A-Za-z0-9._-]+", "_", unit_name)[-80:]
  return parts / "units" / f"{safe}-{hashlib.sha1(unit_name.encode()).hexdigest()[:8]}"


def _write_json(path: epath.Path, data: Any) -> None:
  tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
  tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
  tmp.rename(path)


def _read_json(path: epath.Path) -> Any:
  try:
    return json.loads(path.read_text())
  except (FileNotFoundError, json.JSONDecodeError):
    return None


def _done(parts: epath.Path, unit: dict, check_input: bool = True) -> dict | None:
  """The unit's done.json if it is finished (files present, input unchanged), else None."""
  folder = unit_dir(parts, unit["name"])
  done = _read_json(folder / "done.json")
  if not done or not (folder / done["file"]).exists():
    return None
  if check_input and done["input"] != archive_samples.Unit(unit["name"], unit["path"]).stat():
    logging.warning("%s changed since its part was built; building it again", unit["path"])
    return None
  return done


# --------------------------------------------------------------------------- one unit (in a worker)

_BUILDERS = {}


def _builder(name: str, data_dir: str):
  if (name, data_dir) not in _BUILDERS:
    import rsvlm_datasets  # pylint: disable=g-import-not-at-top
    rsvlm_datasets.import_builder(name)
    _BUILDERS[name, data_dir] = tfds.builder(name, data_dir=data_dir, file_format="array_record")
  return _BUILDERS[name, data_dir]


def build_unit(name: str, data_dir: str, unit: dict, max_side: int) -> dict:
  """Writes one unit's examples to its own array_record file; returns its done.json record."""
  from array_record.python import array_record_module  # pylint: disable=g-import-not-at-top
  from tensorflow_datasets.core import example_serializer  # pylint: disable=g-import-not-at-top
  t0 = time.time()
  builder = _builder(name, data_dir)
  features = builder.info.features
  serializer = example_serializer.ExampleSerializer(features.get_serialized_info())
  folder = unit_dir(parts_dir(builder), unit["name"])
  if folder.exists():
    folder.rmtree()  # A unit killed half-way: start it again.
  folder.mkdir(parents=True)
  source = archive_samples.Unit(unit["name"], unit["path"], unit["split"])
  input_stat = source.stat()
  skips, count = builder.skip_log(), 0
  path = folder / f"{unit['split']}.array_record"
  writer = array_record_module.ArrayRecordWriter(os.fspath(path), "group_size:1")
  try:
    for _, example in builder._unit_examples(source, skips, max_side):  # pylint: disable=protected-access
      writer.write(serializer.serialize_example(features.encode_example(example)))
      count += 1
  finally:
    writer.close()
  done = {"unit": unit["name"], "input": input_stat, "split": unit["split"], "file": path.name,
          "num_examples": count, "num_bytes": path.stat().length, "seconds": round(time.time() - t0, 3),
          **skips.as_json()}
  _write_json(folder / "done.json", done)
  return done


def _build_unit_job(args) -> dict:
  return build_unit(*args)


# --------------------------------------------------------------------------- this machine's share


def _settings(builder, units, max_side: int, num_shards: int) -> dict:
  return {"dataset": f"{builder.name}/{builder.builder_config.name}", "version": str(builder.version),
          "max_side": max_side, "num_shards": num_shards,
          "units": [{"name": u.name, "path": os.fspath(u.path), "split": u.split} for u in units]}


def _check_settings(parts: epath.Path, settings: dict, overwrite: bool) -> None:
  """Creates parts/settings.json, or checks that an interrupted build used the same inputs and flags."""
  old = _read_json(parts / "settings.json")
  if old is None:
    parts.mkdir(parents=True, exist_ok=True)
    (parts / "units").mkdir(exist_ok=True)
    _write_json(parts / "settings.json", settings)
    return
  if old == settings:
    return
  diffs = [f"--{k} {old[k] or 'unset'} -> {settings[k] or 'unset'}" for k in ("max_side", "num_shards")
           if old[k] != settings[k]]
  if old["units"] != settings["units"]:
    before, now = {u["name"] for u in old["units"]}, {u["name"] for u in settings["units"]}
    diffs.append(f"inputs added: {sorted(now - before)[:5]}, removed: {sorted(before - now)[:5]}"
                 if before != now else "the inputs' paths or splits differ")
  if overwrite and settings["num_shards"] == 1:
    logging.warning("Starting %s afresh (--overwrite): %s", parts, "; ".join(diffs))
    parts.rmtree()
    _check_settings(parts, settings, False)
    return
  raise cli.UserError(f"An interrupted build in {parts} used other settings: {'; '.join(diffs)}. Rerun with its "
                      "flags to resume it, or delete that folder (on one machine: pass --overwrite) to start over")


def build_units(name: str, data_dir: str, manual_dir: str, *, workers: int = 1, num_shards: int = 1,
                shard_index: int = 0, max_side: int = 0, overwrite: bool = False) -> dict:
  """Builds this machine's unfinished units; returns {"built", "skipped_done", "units", "seconds", "examples"}."""
  builder = _builder(name, data_dir)
  units = builder.checked_units(epath.Path(manual_dir))
  settings = _settings(builder, units, max_side, num_shards)
  parts = parts_dir(builder)
  _check_settings(parts, settings, overwrite)
  mine = [u for i, u in enumerate(settings["units"]) if i % num_shards == shard_index]
  todo = [u for u in mine if overwrite or not _done(parts, u)]
  logging.info("%s: %d input(s), %d for shard %d/%d, %d already done", name, len(units), len(mine), shard_index,
               num_shards, len(mine) - len(todo))
  t0, examples = time.time(), 0
  jobs = [(name, data_dir, u, max_side) for u in todo]
  results = map(_build_unit_job, jobs) if workers == 1 else None
  pool = None
  if workers > 1 and jobs:
    pool = multiprocessing.get_context("spawn").Pool(min(workers, len(jobs)))
    results = pool.imap_unordered(_build_unit_job, jobs)
  try:
    for i, done in enumerate(results or (), 1):
      examples += done["num_examples"]
      skipped = sum(done["skipped"].values())
      print(f"[{i}/{len(todo)}] {done['unit']}: {done['num_examples']} examples, {skipped} skipped, "
            f"{done['seconds']:.1f}s", flush=True)
  finally:
    if pool is not None:
      pool.terminate()
      pool.join()
  return {"built": len(todo), "skipped_done": len(mine) - len(todo), "units": len(units),
          "seconds": time.time() - t0, "examples": examples}


# --------------------------------------------------------------------------- finalize


def finalize(name: str, data_dir: str, overwrite: bool = False):
  """Turns the finished units into the TFDS dataset (see the module docstring); returns the builder."""
  builder = _builder(name, data_dir)
  parts = parts_dir(builder)
  settings = _read_json(parts / "settings.json")
  if settings is None:
    raise cli.UserError(f"No build of {name} in progress under {data_dir} (looked for {parts}/settings.json); "
                        "build the units first (the same command without --finalize)")
  final = epath.Path(builder.data_dir)
  if builder.is_prepared() and not overwrite:
    raise cli.UserError(f"{name} is already built in {final}; pass --overwrite to replace it")
  dones, missing = [], []
  for i, unit in enumerate(settings["units"]):
    done = _done(parts, unit, check_input=False)  # The inputs may live on other machines.
    if done is None:
      missing.append((unit["name"], i % settings["num_shards"]))
    dones.append(done)
  if missing:
    shards = sorted({s for _, s in missing})
    raise cli.UserError(f"{len(missing)} of {len(dones)} input(s) are not built yet (e.g. "
                        f"{[m for m, _ in missing[:5]]}; --shard_index {shards} of --num_shards "
                        f"{settings['num_shards']}): run those, then --finalize again")
  staging = final.parent / f".finalize-{final.name}-{uuid.uuid4().hex[:8]}"
  staging.mkdir(parents=True)
  try:
    summary = _move_shards(builder, parts, settings, dones, staging)
    builder.info.metadata.update(skipped=summary["skipped"], first_skipped=summary["first_skipped"],
                                 max_side=settings["max_side"])
    builder.info.write_to_directory(staging)
    _write_json(staging / SUMMARY_FILE, summary)
    _swap_in(staging, final)
  finally:
    if staging.exists():
      staging.rmtree()
  parts.rmtree()
  _BUILDERS.pop((name, data_dir), None)
  return tfds.builder(name, data_dir=data_dir)


def _move_shards(builder, parts, settings, dones, staging) -> dict:
  """Moves the non-empty unit files into `staging` under TFDS's shard names; sets the split infos."""
  skips = archive_samples.SkipLog()
  by_split: dict[str, list[tuple[epath.Path, dict]]] = {}
  for unit, done in zip(settings["units"], dones):
    skips.merge(done["skipped"], done["first_skipped"])
    if done["num_examples"]:
      by_split.setdefault(done["split"], []).append((unit_dir(parts, unit["name"]) / done["file"], done))
  if not by_split:
    raise caption_formats.BadRecordError(f"{builder.name}: every record was skipped ({dict(skips.counts)}): "
                                         "nothing to build")
  infos = []
  for split, files in sorted(by_split.items()):
    template = tfds.core.naming.ShardedFileTemplate(
        data_dir=epath.Path(builder.data_dir), dataset_name=builder.name, split=split,
        filetype_suffix="array_record")
    for index, (path, _) in enumerate(files):
      path.rename(staging / template.sharded_filepath(shard_index=index, num_shards=len(files)).name)
    infos.append(tfds.core.SplitInfo(name=split, shard_lengths=[d["num_examples"] for _, d in files],
                                     num_bytes=sum(d["num_bytes"] for _, d in files), filename_template=template))
  builder.info.set_splits(tfds.core.SplitDict(infos))
  return {"dataset": settings["dataset"], "version": settings["version"], "inputs": len(dones),
          "max_side": settings["max_side"],
          "examples": {s.name: s.num_examples for s in infos},
          "unit_seconds": round(sum(d["seconds"] for d in dones), 3), **skips.as_json()}


def _swap_in(staging: epath.Path, final: epath.Path) -> None:
  """Renames staging to final; an old build is moved aside first and deleted only once the new one is in."""
  old = None
  if final.exists():
    old = final.parent / f".old-{final.name}-{uuid.uuid4().hex[:8]}"
    final.rename(old)
  try:
    staging.rename(final)
  except OSError:
    if old is not None:
      old.rename(final)
    raise
  if old is not None:
    old.rmtree()


def print_summary(builder) -> dict:
  """Prints the build summary (counts by reason, the first skipped records) and returns it."""
  summary = _read_json(epath.Path(builder.data_dir) / SUMMARY_FILE) or {}
  skipped = summary.get("skipped", {})
  print(f"{summary.get('dataset')}: {summary.get('examples')} examples from {summary.get('inputs')} input(s); "
        f"skipped {sum(skipped.values())}: {skipped or 'none'}", flush=True)
  for s in summary.get("first_skipped", [])[:5]:
    print(f"  skipped {s['unit']}: {s['key']}: {s['reason']}: {s['detail']}", flush=True)
  print(f"Summary: {epath.Path(builder.data_dir) / SUMMARY_FILE}", flush=True)
  return summary
