"""The one trainer: sharded init, jit'd donated train step per bucket, checkpoints, eval hook, metrics.

Losses, evaluators and models are chosen by name in the config; DRIS buckets arrive as batches of
different static shapes, each compiled once, or (dris.mixed_buckets) as one mixed batch per step holding
a static sub-batch of every bucket, compiled once in all (compilations are counted and logged).
"""
from __future__ import annotations

import json
import os
import shutil
import time
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from flax import traverse_util

from rsvlm_jax import config_schema
from rsvlm_jax.runtime import mixed_batch
from rsvlm_jax.data import pipeline as pipeline_lib
from rsvlm_jax.data import run_files
from rsvlm_jax.data import sources
from rsvlm_jax.data import tokenizer as tokenizer_lib
from rsvlm_jax.losses import registry as loss_registry
from rsvlm_jax.models import rsvlm
from rsvlm_jax.runtime import compile_counter
from rsvlm_jax.runtime import mesh as mesh_lib
from rsvlm_jax.runtime import checkpoint as checkpoint_lib
from rsvlm_jax.train import metric_writer
from rsvlm_jax.train import optimizer as optimizer_lib
from rsvlm_jax.train import preemption
from rsvlm_jax.runtime import run_lock
from rsvlm_jax.train import run_record


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  opt_state: Any


class NonFiniteLossError(RuntimeError):
  pass


def _check_dataset_built(config: ml_collections.ConfigDict) -> None:
  """The training split of input.dataset opens under input.data_dir; else a ConfigError naming the build
  command (raised before the workdir is created or locked)."""
  split = dict(config.input.splits).get("train", "train")
  try:
    sources.open_source(config.input.dataset, split, config.input.data_dir)
  except (FileNotFoundError, ValueError) as e:
    raise config_schema.ConfigError(f"Config keys input.dataset={config.input.dataset!r}, input.data_dir="
                                    f"{config.input.data_dir!r}: {e}") from e


# Records whose captions are measured against input.text_len at the start of a run (evenly spaced).
TRUNCATION_SAMPLE = 256


def truncated_captions(pipe: pipeline_lib.InputPipeline, max_records: int = TRUNCATION_SAMPLE) -> tuple[int, int, int]:
  """(captions longer than input.text_len tokens, captions measured, records read) over up to `max_records`
  evenly spaced training records, tokenized with the run's tokenizer (EOS/SOT included)."""
  n = len(pipe.source("train"))
  indices = np.unique(np.linspace(0, n - 1, min(n, max_records)).astype(int)) if n else []
  text_len, long, total = int(pipe.cfg.text_len), 0, 0
  for i in indices:
    for caption in sources.as_text_list(pipe.record("train", i)["captions"]):
      total += 1
      ids = np.flatnonzero(pipe.tokenizer.encode(caption, 4 * text_len + 64))
      long += int(len(ids) and ids[-1] + 1 > text_len)  # The last id (EOS) ends the text; 0 pads it.
  return long, total, len(indices)


def warn_truncated_captions(pipe: pipeline_lib.InputPipeline) -> None:
  """A warning when more than 1% of the (sampled) training captions are cut at input.text_len."""
  long, total, records = truncated_captions(pipe)
  if total and long > 0.01 * total:
    logging.warning("%d of %d captions (%.1f%%) of %d training records are longer than input.text_len=%d tokens "
                    "and are cut: raise config key input.text_len (with model.text.max_len and "
                    "model.decoder.max_len)", long, total, 100 * long / total, records, pipe.cfg.text_len)


def _dummy_batch(pipe: pipeline_lib.InputPipeline, batch_size: int) -> dict[str, np.ndarray]:
  ex = pipe.load_examples("train", [0], 0, seed=(0,), train=True)
  return {k: np.zeros((batch_size,) + v.shape[1:], v.dtype) for k, v in ex.items() if not k.startswith("_")}


class Trainer:
  """Builds everything a run needs from `config` and runs `train()`; evaluation is the job's
  (rsvlm_jax.job), which shares `tracker` so inference compilations are counted with training's."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str, *, write_record: bool = True,
               read_only: bool | None = None):
    """`read_only` (default: `not write_record`) writes nothing into the workdir (evaluating a finished or
    read-only run, using it as a DRIS scorer's teacher): no lock, record or quarantine, and the pipeline's
    caches (tokenizer, DRIS scores) are read from a scratch copy. Otherwise the workdir is locked
    (run_lock) and its record (config.json, run_info.json) written once the checkpoints fit this config.

    `config` has passed the config gate (config_schema.gate: job.run does it; a test may call it), which
    completed and checked it; the trainer reads it as it is."""
    _check_dataset_built(config)  # Before anything is written into the workdir.
    self.config, self.workdir = config, workdir
    self.read_only = (not write_record) if read_only is None else read_only
    self.model_init = None  # {"source", "step"} once config.model_init's params are loaded.
    n = int(config.num_devices)
    self.mesh = mesh_lib.make_mesh(jax.devices()[:n] if n else None)
    self._lock = None
    self._scratch = None
    if not self.read_only and jax.process_index() == 0:
      self._lock = run_lock.WorkdirLock(workdir).acquire()
    try:
      self._build()
    except BaseException:
      self.close()
      raise

  def _build(self):
    config, workdir = self.config, self.workdir
    self.active_losses = loss_registry.active(config.losses)
    if self.read_only:
      self._scratch = run_files.scratch_copy(workdir)
    self._adopt_model_init_tokenizer(self._scratch or workdir)
    with run_files.naming_run_dir(self._scratch, workdir):
      self.pipe = pipeline_lib.InputPipeline(config, self._scratch or workdir,
                                             need_phrases="local_alignment" in self.active_losses,
                                             need_objects="object_alignment" in self.active_losses)
    if not self.read_only and jax.process_index() == 0:
      warn_truncated_captions(self.pipe)
    self.model = rsvlm.make_model(config, self.pipe.tokenizer.vocab_size,
                                  **tokenizer_lib.special_ids(self.pipe.tokenizer))
    self.total_steps = int(config.total_steps)
    self.tx = optimizer_lib.make_optimizer(config.optim, self.total_steps)
    self.schedule = optimizer_lib.lr_schedule(config.optim, self.total_steps)
    self.tracker = compile_counter.Tracker()
    self.ckpt = checkpoint_lib.Checkpointer(os.path.join(workdir, "checkpoints"),
                                            max_to_keep=config.keep_checkpoints,
                                            async_save=config.async_checkpoint,
                                            read_only=self.read_only)
    self._init_state()
    self.ckpt.check_latest_fits(self.abstract_state)  # Before anything of the run is rewritten.
    if not self.read_only:
      run_record.write(workdir, config)

  def close(self) -> None:
    """Releases the workdir lock and removes the read-only scratch copy (also done at exit)."""
    if self._lock is not None:
      self._lock.release()
    if self._scratch is not None:
      shutil.rmtree(self._scratch, ignore_errors=True)
      self._scratch = None

  # -- state -------------------------------------------------------------------------------------
  def _init_state(self):
    cfg = self.config
    dummy = _dummy_batch(self.pipe, cfg.input.batch_size)

    def init(rng):
      params = self.model.init(rng, dummy)["params"]
      return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=self.tx.init(params))

    abstract = jax.eval_shape(init, jax.random.key(cfg.seed))
    if cfg.fsdp:
      shardings = mesh_lib.fsdp_sharding(self.mesh, abstract)
    else:
      shardings = jax.tree.map(lambda _: mesh_lib.replicated(self.mesh), abstract)
    self.state_sharding = shardings
    self.abstract_state = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                                       abstract, shardings)
    self.state = jax.jit(init, out_shardings=shardings)(jax.random.key(cfg.seed))
    n = rsvlm.count_params(self.state.params)
    logging.info("Model: %s parameters (%.1fM)", f"{n:,}", n / 1e6)

  def restore(self) -> dict[str, Any] | None:
    """Restores the newest readable checkpoint in the workdir, if any; returns its data state. One that does
    not fit this config raises checkpoint.CheckpointMismatchError; corrupt ones are quarantined."""
    restored = self.ckpt.restore_latest(self.abstract_state)
    if restored is None:
      return None
    step, self.state, data_state = restored
    logging.info("Resumed from checkpoint at step %d (%s)", step, self.ckpt.directory)
    return data_state

  def _adopt_model_init_tokenizer(self, target: str):
    """With config.model_init, the token ids must be the source run's: its tokenizer file (tokenizer.model,
    or the CLIP BPE merges of converted open_clip weights) is copied into a workdir that has none (before the
    pipeline would train one), and a different one already there fails."""
    source = self.config.model_init
    if not source or self.config.input.tokenizer_path:
      return
    src = tokenizer_lib.source_tokenizer(source)
    if src is None:
      logging.warning("config.model_init=%s has no tokenizer.model next to it: this run trains its own from "
                      "the training captions, which matches only if the data and vocab_size are the same", source)
      return
    dst = os.path.join(target, os.path.basename(src))
    with open(src, "rb") as f:
      data = f.read()
    if os.path.exists(dst):
      with open(dst, "rb") as f:
        if f.read() != data and not os.path.isdir(os.path.join(self.workdir, "checkpoints")):
          raise ValueError(f"{dst} differs from the tokenizer of config.model_init ({src}): the model's token "
                           "ids would not match; use a fresh workdir or set input.tokenizer_path")
      return
    if jax.process_index() == 0 or target != self.workdir:  # A read-only run's scratch copy is per process.
      os.makedirs(target, exist_ok=True)
      with open(dst + ".tmp", "wb") as f:
        f.write(data)
      os.replace(dst + ".tmp", dst)
      logging.info("Tokenizer of config.model_init: %s -> %s", src, dst)

  def init_from_model(self) -> bool:
    """Loads config.model_init's params (a run's workdir or checkpoint directory; its newest complete
    step) into the fresh state: fine-tuning from a finished run, or evaluating its weights under this
    config (e.g. a fixed-resolution run served with DRIS). False when config.model_init is empty."""
    source = self.config.model_init
    if not source:
      return False
    fresh = self.config.model_init_fresh
    step, loaded, new = checkpoint_lib.restore_params(source, self.abstract_state.params, fresh=fresh,
                                                      skip=self.config.model_init_skip)
    if new:  # Params the source lacks (config.model_init_fresh) keep their initial values.
      init = traverse_util.flatten_dict(self.state.params, sep="/")
      flat = traverse_util.flatten_dict(loaded, sep="/")
      flat.update({k: init[k] for k in new})
      loaded = traverse_util.unflatten_dict(flat, sep="/")
      logging.info("config.model_init: %d params not in %s start from their initialisation "
                   "(model_init_fresh=%r): %s", len(new), source, fresh,
                   ", ".join(new[:8]) + (" ..." if len(new) > 8 else ""))
    params = jax.device_put(loaded, self.state_sharding.params)
    opt_state = jax.jit(self.tx.init, out_shardings=self.state_sharding.opt_state)(params)
    self.state = self.state.replace(params=params, opt_state=opt_state)
    self.model_init = {"source": os.path.abspath(os.path.expanduser(source)), "step": step}
    if new:
      self.model_init["fresh"] = new
    logging.info("Initialised params from config.model_init=%s (step %d)", source, step)
    return True

  def restore_or_init(self) -> bool:
    """The workdir's newest checkpoint, else config.model_init's params; False when there is neither."""
    return self.restore() is not None or self.init_from_model()

  # -- training ----------------------------------------------------------------------------------
  def _train_step_fn(self):
    ctx = loss_registry.LossContext(mesh=self.mesh, axis_name=mesh_lib.DATA_AXIS)
    losses_cfg = self.config.losses

    def step_fn(state: TrainState, batch):

      def loss_fn(params):
        _, out = self.model.apply({"params": params}, batch, train=True)
        return loss_registry.total_loss(out, batch, losses_cfg, ctx)

      (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
      updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
      params = optax.apply_updates(state.params, updates)
      metrics.update(loss=loss, grad_norm=optax.tree.norm(grads), lr=self.schedule(state.step),
                     temperature=jnp.exp(state.params["logit_scale"]))
      return TrainState(step=state.step + 1, params=params, opt_state=opt_state), metrics

    return jax.jit(step_fn, donate_argnums=(0,), out_shardings=(self.state_sharding, mesh_lib.replicated(self.mesh)))

  def train(self, stop_after: int | None = None,
            on_eval: Callable[[Any], dict[str, dict[str, Any]]] | None = None,
            signals: preemption.Signals | None = None) -> dict[str, Any]:
    """Trains to config.total_steps (or stops after step `stop_after`), resuming from the workdir.

    Every config.eval_every steps (not at the last one) `on_eval(params)` returns {eval name: results},
    whose numbers are written to the metrics at that step; without it there are no mid-training evals.
    A SIGTERM or the first SIGINT (`signals`, the caller's, or one held for this call) saves the current step
    and stops (summary "preempted", "signal"); one during a mid-training evaluation stops it at once.
    """
    signals = signals or preemption.Signals()
    with signals:
      return self._train(stop_after, on_eval, signals)

  def _train(self, stop_after, on_eval, signals: preemption.Signals) -> dict[str, Any]:
    cfg = self.config
    data_state = self.restore()
    if data_state is None:
      self.init_from_model()
    start = int(jax.device_get(self.state.step))
    writer = metric_writer.MetricWriter(self.workdir, tensorboard=cfg.tensorboard)
    if start >= self.total_steps:
      logging.info("Checkpoint at step %d already reaches total_steps=%d: nothing to train", start,
                   self.total_steps)
      writer.close()
      return {}
    dataset = self.pipe.train_dataset(self.total_steps, shards=self.mesh.shape[mesh_lib.DATA_AXIS])
    it = iter(dataset)
    if data_state is not None:
      try:
        it.set_state(data_state["iterator"])
      except Exception as e:  # pylint: disable=broad-except
        raise ValueError(f"The data iterator state of the checkpoint at step {start} in {self.ckpt.directory} "
                         f"does not fit this input pipeline ({checkpoint_lib.summarize_error(e)}): was config.input "
                         "changed? Restore it, or use a new --workdir") from e
    logging.info("Train buckets: %s", json.dumps(self.pipe.bucket_report("train", training=True)))
    step_fn = self._train_step_fn()
    progress = metric_writer.Progress(self.total_steps, start, cfg.progress_every)
    # Metrics stay on device and are fetched every host_sync_every steps in one transfer (dispatch runs ahead of
    # the host meanwhile); every step's loss is still checked, so a non-finite one is named exactly, and
    # nothing is checkpointed or evaluated before the steps up to it are checked.
    pending = []  # [(step, bucket, device metrics)]
    ckpt_every = int(cfg.ckpt_every)
    eval_every = int(cfg.eval_every or 0)
    sync_every = int(cfg.host_sync_every)
    log_every = int(cfg.log_every)
    t_start = time.time()

    def flush():
      if not pending:
        return
      rows = jax.device_get([m for _, _, m in pending])
      steps = [(step, bucket) for step, bucket, _ in pending]
      pending.clear()
      for (step, bucket), m in zip(steps, rows):
        loss = float(m["loss"])
        if not np.isfinite(loss):
          latest = self.ckpt.latest_step()
          kept = (f"The last good checkpoint (step {latest}) in {self.ckpt.directory} is left intact."
                  if latest is not None else f"No checkpoint was written yet (in {self.ckpt.directory}).")
          raise NonFiniteLossError(f"Non-finite loss {loss} at step {step}; stopping. {kept}")
        if step % log_every == 0 or step == self.total_steps:
          writer.write(step, {**m, "bucket": bucket})
        progress(step, loss)

    def save(step):
      flush()
      self.ckpt.save(step, self.state, {"iterator": it.get_state(), "step": step}, force=True)

    step = start
    failed = True
    try:
      for step in range(start + 1, self.total_steps + 1):
        batch = next(it)
        bucket = int(batch.pop("_bucket"))
        if int(batch.pop("_step")) != step - 1:
          raise RuntimeError("Data iterator is out of sync with the train step")
        arrays = mesh_lib.global_batch(batch, self.mesh)
        key = "train:" + mixed_batch.shape_key(arrays)
        self.state, metrics = self.tracker.call(key, step_fn, self.state, arrays)
        pending.append((step, bucket, metrics))
        if len(pending) >= sync_every:
          flush()
        saved = step % ckpt_every == 0 or step == self.total_steps or signals.requested
        if saved:
          save(step)
        if stop_after is not None and step >= stop_after:
          break
        if (on_eval is not None and eval_every and step % eval_every == 0 and step != self.total_steps
            and not signals.requested):
          flush()
          try:
            with signals.interruptible():
              results = on_eval(self.state.params)
            writer.write(step, _flat(results))
          except preemption.Interrupted as e:
            logging.warning("%s during the evaluation at step %d: evaluation stopped", e, step)
        if signals.requested:
          if not saved:
            save(step)
          self.ckpt.wait()
          logging.warning("%s received: saved checkpoint at step %d, exiting cleanly (the same command "
                          "resumes from it)", signals.name, step)
          writer.write(step, {"preempted": 1})
          break
      flush()
      failed = False
    finally:
      try:
        self.ckpt.wait()
      except checkpoint_lib.CheckpointWriteError:
        if not failed:
          raise
        logging.exception("A background checkpoint write failed too")
      writer.close()
    elapsed = time.time() - t_start
    summary = {"steps": step - start, "train_seconds": elapsed, "compilations": self.tracker.summary(),
               "preempted": signals.requested, "signal": signals.name}
    logging.info("Trained %d steps in %.1fs; compilations per (function, shapes): %s", step - start, elapsed,
                 json.dumps(self.tracker.summary()))
    return summary


def _flat(results: dict[str, Any]) -> dict[str, float]:
  out = {}
  for name, res in results.items():
    for k, v in res.items():
      if isinstance(v, (int, float)) and not isinstance(v, bool):
        out[f"{name}/{k}"] = v
  return out
