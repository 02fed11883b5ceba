"""orbax checkpoints holding the train state (params, optimizer state, step) AND the data iterator state.

Orbax writes each step into a temporary directory and renames it only once complete, so a crash
mid-save never leaves a partial checkpoint that `latest_step()` would pick up. `restore_latest` tells a
checkpoint that does not fit this model (CheckpointMismatchError: nothing is touched) from a corrupt one
(unreadable metadata, arrays or iterator state: moved to checkpoints/quarantine/, then the previous step).
A save that fails (a full disk, ...) raises CheckpointWriteError saying which step, where, why and which
complete step is the newest; its temporary directory is removed and the older steps are left as they were.
"""
from __future__ import annotations

import errno
import glob
import os
import re
import shutil
import time
from typing import Any

from etils import epath
from flax import traverse_util
import jax
import orbax.checkpoint as ocp
from absl import logging

QUARANTINE = "quarantine"


class CheckpointMismatchError(ValueError):
  """A readable checkpoint whose arrays do not fit this run's model or optimizer (a config change)."""


class CheckpointWriteError(RuntimeError):
  """A checkpoint could not be written (e.g. no space left on device); the older ones are intact."""


def _no_space(e: BaseException) -> bool:
  """Whether `e` (or an exception it was raised from) is a full disk: ENOSPC, or TensorStore's
  RESOURCE_EXHAUSTED text for it."""
  seen = set()
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
      return True
    text = str(e)
    if "No space left on device" in text or "ENOSPC" in text or "Disk quota exceeded" in text:
      return True
    e = e.__cause__ or e.__context__
  return False


def summarize_error(e: BaseException) -> str:
  """The first line of an exception, short (TensorStore errors carry a 60-line spec)."""
  text = (str(e).strip().splitlines() or [""])[0].split(" See full TensorStore details")[0]
  return f"{type(e).__name__}: {text[:300]}"


def array_shapes(tree) -> dict[str, tuple]:
  """{"opt_state/1/0/mu/...": shape}: one naming for a live state or params tree and its orbax metadata
  (dicts, lists, dataclass fields)."""
  name = lambda k: str(next((getattr(k, a) for a in ("key", "idx", "name") if hasattr(k, a)), k))
  return {"/".join(name(k) for k in path): tuple(v.shape) for path, v in jax.tree_util.tree_leaves_with_path(tree)}


def _check_data_state(step: int, data: Any) -> None:
  """The iterator state saved with `step` must be {"iterator": non-empty dict, "step": step}."""
  if not isinstance(data, dict) or not isinstance(data.get("iterator"), dict) or not data["iterator"]:
    raise ValueError(f"iterator state is not {{'iterator': {{...}}, 'step': {step}}}: {str(data)[:200]}")
  if data.get("step") != step:
    raise ValueError(f"iterator state belongs to step {data.get('step')!r}, not {step}")
  if data["iterator"].get("next_index", step) != step:  # The train dataset's index i is step i.
    raise ValueError(f"iterator state is at index {data['iterator']['next_index']!r}, not step {step}")


class Checkpointer:
  """Saves/restores {"state": pytree of arrays, "data": JSON-able iterator state} per step.

  `max_to_keep=0` keeps every checkpoint; orbax never deletes the newest. `read_only` opens an existing
  directory without creating, deleting or quarantining anything in it.
  """

  def __init__(self, directory: str, *, max_to_keep: int = 3, async_save: bool = True, read_only: bool = False):
    self.directory = os.path.abspath(directory)
    self.read_only = read_only
    self._in_flight = None  # The step an async save is still writing.
    extra = ({"read_only": True, "create": False, "save_interval_steps": 0} if read_only else
             {"create": True, "max_to_keep": max_to_keep or None})
    self._mngr = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(enable_async_checkpointing=async_save, **extra),
        item_names=("state", "data"))

  def save(self, step: int, state: Any, data_state: dict[str, Any], *, force: bool = False) -> bool:
    """Saves `step` (in the background with async_save). A failed write, this one's or the previous
    background one's, raises CheckpointWriteError."""
    try:
      saved = self._mngr.save(int(step), args=ocp.args.Composite(
          state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state)), force=force)
    except Exception as e:  # pylint: disable=broad-except
      raise self._write_error(self._in_flight or int(step), e) from e
    if saved:
      logging.info("Saving checkpoint for step %d to %s", step, self.directory)
      self._in_flight = int(step)
    return saved

  def wait(self) -> None:
    """Waits for a background save; its failure raises CheckpointWriteError."""
    try:
      self._mngr.wait_until_finished()
    except Exception as e:  # pylint: disable=broad-except
      raise self._write_error(self._in_flight, e) from e
    self._in_flight = None

  def _write_error(self, step: int | None, e: BaseException) -> CheckpointWriteError:
    """The error of a failed save of `step`, after removing its temporary directory (process 0)."""
    self._in_flight = None
    if step is not None and jax.process_index() == 0:
      for tmp in glob.glob(os.path.join(glob.escape(self.directory), f"{step}.orbax-checkpoint-tmp*")):
        shutil.rmtree(tmp, ignore_errors=True)
    why = "no space left on device" if _no_space(e) else summarize_error(e)
    done = complete_steps(self.directory)
    newest = f"the newest complete checkpoint is step {done[-1]}" if done else "no checkpoint was written yet"
    return CheckpointWriteError(f"Checkpoint of step {step} could not be written to {self.directory}: {why} "
                                f"({newest})")

  def all_steps(self) -> list[int]:
    return sorted(self._mngr.all_steps())

  def latest_step(self) -> int | None:
    return self._mngr.latest_step()

  def restore(self, step: int, abstract_state: Any) -> tuple[Any, dict[str, Any]]:
    restored = self._mngr.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()))
    return restored["state"], restored["data"]

  def state_shapes(self, step: int) -> dict[str, tuple]:
    """{"params/a/kernel": shape} of every array saved at `step`, from its metadata (no array is read)."""
    path = os.path.join(self.directory, str(step), "state")
    tree = ocp.StandardCheckpointHandler().metadata(epath.Path(path))
    return array_shapes(getattr(tree, "tree", tree))

  def check_fits(self, step: int, abstract_state: Any) -> None:
    """Raises CheckpointMismatchError naming the arrays whose shapes differ between checkpoint `step` and
    `abstract_state`. Unreadable metadata raises whatever orbax raises (a corrupt step)."""
    have, want = self.state_shapes(step), array_shapes(abstract_state)
    bad = sorted((k for k in set(have) | set(want) if have.get(k) != want.get(k)),
                 key=lambda k: (not k.startswith("params/"), k))  # Params first: they name the change.
    if bad:
      raise CheckpointMismatchError(
          f"Checkpoint {os.path.join(self.directory, str(step))} does not fit this run's model/optimizer: "
          f"{len(bad)} arrays differ, e.g. " + "; ".join(
              f"{k}: checkpoint {have.get(k, 'absent')} vs model {want.get(k, 'absent')}" for k in bad[:4])
          + ". The config differs from the one that trained this workdir (see its config.json): restore "
          "it, or use a new --workdir (config.model_init can start from this run's params).")

  def check_latest_fits(self, abstract_state: Any) -> None:
    """check_fits on the newest step with readable metadata (a corrupt one is left to restore_latest)."""
    for step in reversed(self.all_steps()):
      try:
        self.state_shapes(step)
      except Exception:  # pylint: disable=broad-except
        continue
      self.check_fits(step, abstract_state)
      return

  def restore_latest(self, abstract_state: Any) -> tuple[int, Any, dict[str, Any]] | None:
    """(step, state, data_state) of the newest readable checkpoint, or None if there is none.

    A step that does not fit `abstract_state` raises CheckpointMismatchError; a corrupt one (metadata,
    arrays or iterator state unreadable) is quarantined and the previous step tried."""
    for step in reversed(self.all_steps()):
      try:
        self.state_shapes(step)
      except Exception as e:  # pylint: disable=broad-except
        self.quarantine(step, f"unreadable metadata ({summarize_error(e)})")
        continue
      self.check_fits(step, abstract_state)
      try:
        state, data = self.restore(step, abstract_state)
        _check_data_state(step, data)
        return step, state, data
      except Exception as e:  # pylint: disable=broad-except
        self.quarantine(step, summarize_error(e))
    return None

  def quarantine(self, step: int, reason: str) -> None:
    """Moves corrupt `step` to checkpoints/quarantine/STEP-TIME (read-only: only logs it)."""
    src = os.path.join(self.directory, str(step))
    if self.read_only:
      logging.error("Checkpoint %s is corrupt (%s); skipping it (read-only: left in place)", src, reason)
      return
    dst = os.path.join(self.directory, QUARANTINE, f"{step}-{time.strftime('%Y%m%d-%H%M%S')}")
    multi = jax.process_count() > 1
    if multi:  # Every process has read the step before one of them moves it.
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      multihost_utils.sync_global_devices(f"rsvlm:quarantine:{step}")
    if jax.process_index() == 0:
      os.makedirs(os.path.dirname(dst), exist_ok=True)
      shutil.move(src, dst)
      with open(os.path.join(dst, "QUARANTINE_REASON.txt"), "w") as f:
        f.write(reason + "\n")
    if multi:
      multihost_utils.sync_global_devices(f"rsvlm:quarantined:{step}")
    self._mngr.reload()
    logging.error("Checkpoint %s is corrupt (%s): moved to %s; trying the previous step", src, reason, dst)

  def close(self) -> None:
    self._mngr.wait_until_finished()
    self._mngr.close()


def complete_steps(directory: str) -> list[int]:
  """Sorted steps with a complete checkpoint in `directory` (orbax's temporary directories are not listed);
  [] for a missing or empty directory, e.g. the one an eval-only run opens without saving into it."""
  if not os.path.isdir(directory):
    return []
  options = ocp.CheckpointManagerOptions(read_only=True, save_interval_steps=0, create=False)  # No warning.
  mngr = ocp.CheckpointManager(os.path.abspath(directory), options=options)
  steps = sorted(mngr.all_steps())
  mngr.close()
  return steps


def _step_dir(source: str) -> tuple[int, str]:
  """(step, directory) of the newest complete checkpoint under `source`: a run's workdir, its checkpoints/
  directory, or one step's directory."""
  source = os.path.abspath(os.path.expanduser(source))
  if os.path.isdir(os.path.join(source, "state")):
    name = os.path.basename(source.rstrip("/"))
    if not name.isdigit():
      raise ValueError(f"Checkpoint directory {source} is not named by its step")
    return int(name), source
  ckpts = os.path.join(source, "checkpoints")
  ckpts = ckpts if os.path.isdir(ckpts) else source
  if not os.path.isdir(ckpts):
    raise FileNotFoundError(f"No checkpoint directory at {source}")
  steps = complete_steps(ckpts)
  if not steps:
    raise FileNotFoundError(f"No complete checkpoint in {ckpts}")
  return steps[-1], os.path.join(ckpts, str(steps[-1]))


def params_metadata(source: str) -> tuple[int, str, dict[str, tuple]]:
  """(step, state directory, {"a/b/kernel": shape}) of the params in the newest complete checkpoint under
  `source` (see _step_dir), read from orbax metadata without loading any array."""
  step, directory = _step_dir(source)
  path = os.path.join(directory, "state")
  # The handler, not a Checkpointer: `state` is one item of a step, whose _CHECKPOINT_METADATA lies one level
  # up, and a Checkpointer warns about its absence on every read.
  tree = ocp.PyTreeCheckpointHandler().metadata(epath.Path(path))
  tree = getattr(tree, "item_metadata", tree)
  tree = getattr(tree, "tree", tree)
  if "params" not in tree:
    raise ValueError(f"Checkpoint {path} holds no params (keys: {sorted(tree)})")
  return step, path, array_shapes(tree["params"])


def restore_params(source: str, abstract_params: Any, *, fresh: str = "",
                   skip: str = "") -> tuple[int, Any, list[str]]:
  """(step, params, fresh names) of the newest complete checkpoint under `source` (see _step_dir); only the
  params are read, so the source run may have used another optimizer.

  Every checkpoint param must exist in the model with the same shape, except those whose "/"-joined name
  matches the regex `skip` (config key model_init_skip: e.g. a converted model's token projection when no
  MS-VLAM region/object level uses it), which are left unread. Model params the checkpoint lacks are an
  error unless their name matches the regex `fresh` (config key model_init_fresh, e.g. a caption decoder
  added on top of converted open_clip towers); their names are returned, for the caller to keep at their
  initial values."""
  step, path, have = params_metadata(source)
  want = array_shapes(abstract_params)
  if skip:
    skip_re = re.compile(skip)
    skipped = sorted(k for k in have if skip_re.search(k) and k not in want)
    if skipped:
      logging.info("config.model_init: %d params of %s not used by this model (model_init_skip=%r): %s",
                   len(skipped), path, skip, ", ".join(skipped[:8]))
    have = {k: v for k, v in have.items() if k not in skipped}
  fresh_re = re.compile(fresh) if fresh else None
  missing = sorted(k for k in want if k not in have)
  new = [k for k in missing if fresh_re is not None and fresh_re.search(k)]
  bad = sorted(k for k in set(have) | set(want) if have.get(k) != want.get(k) and k not in new)
  if bad:
    raise ValueError(f"Checkpoint {path} does not fit this model: {len(bad)} params differ, e.g. " + "; ".join(
        f"{k}: checkpoint {have.get(k)} vs model {want.get(k)}" for k in bad[:3])
        + ("" if not fresh else f" (config.model_init_fresh={fresh!r} lets only matching model params start fresh)"))
  flat = traverse_util.flatten_dict(abstract_params, sep="/")
  target = traverse_util.unflatten_dict({k: v for k, v in flat.items() if k not in new}, sep="/")
  restore_args = ocp.checkpoint_utils.construct_restore_args(target)
  handler = ocp.PyTreeCheckpointHandler()  # See params_metadata.
  out = handler.restore(epath.Path(path), args=ocp.args.PyTreeRestore(item={"params": target},
                                                                       restore_args={"params": restore_args},
                                                                       partial_restore=True))
  handler.close()
  return step, out["params"], new
