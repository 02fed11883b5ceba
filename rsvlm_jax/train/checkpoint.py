"""orbax checkpoints holding the train state (params, optimizer state, step) AND the data iterator state.

Orbax writes each step into a temporary directory and renames it only once complete, so a crash
mid-save never leaves a partial checkpoint that `latest_step()` would pick up; `restore_latest`
additionally falls back to the previous step if the newest one cannot be read.
"""
from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp
from absl import logging


class Checkpointer:
  """Saves/restores {"state": pytree of arrays, "data": JSON-able iterator state} per step."""

  def __init__(self, directory: str, *, max_to_keep: int = 3, async_save: bool = True):
    self.directory = os.path.abspath(directory)
    self._mngr = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                             enable_async_checkpointing=async_save),
        item_names=("state", "data"))

  def save(self, step: int, state: Any, data_state: dict[str, Any], *, force: bool = False) -> bool:
    saved = self._mngr.save(int(step), args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state)), force=force)
    if saved:
      logging.info("Saving checkpoint for step %d to %s", step, self.directory)
    return saved

  def wait(self) -> None:
    self._mngr.wait_until_finished()

  def all_steps(self) -> list[int]:
    return sorted(self._mngr.all_steps())

  def latest_step(self) -> int | None:
    return self._mngr.latest_step()

  def restore(self, step: int, abstract_state: Any) -> tuple[Any, dict[str, Any]]:
    restored = self._mngr.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()))
    return restored["state"], restored["data"]

  def restore_latest(self, abstract_state: Any) -> tuple[int, Any, dict[str, Any]] | None:
    """(step, state, data_state) of the newest readable checkpoint, or None if there is none."""
    for step in reversed(self.all_steps()):
      try:
        state, data = self.restore(step, abstract_state)
        return step, state, data
      except Exception as e:  # pylint: disable=broad-except
        logging.error("Checkpoint at step %d in %s is unreadable (%s); trying the previous one", step,
                      self.directory, e)
    return None

  def close(self) -> None:
    self._mngr.wait_until_finished()
    self._mngr.close()


def abstract_like(tree: Any) -> Any:
  """ShapeDtypeStructs (with shardings) describing `tree`, as restore targets."""
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)),
                      tree)
