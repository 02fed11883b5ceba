"""Device mesh and shardings: one "data" axis over all devices (all processes)."""
from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def make_mesh(devices=None) -> Mesh:
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices).reshape(-1), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA_AXIS))


def fsdp_sharding(mesh: Mesh, tree, min_size: int = 2 ** 14):
  """Shards each large array's largest dimension divisible by the data-axis size (FSDP/ZeRO-3 style).

  Small arrays (and those with no divisible dimension) stay replicated.
  """
  n = mesh.shape[DATA_AXIS]

  def spec(x):
    shape = getattr(x, "shape", ())
    if n == 1 or int(np.prod(shape, dtype=np.int64)) < min_size:
      return NamedSharding(mesh, P())
    dims = sorted(range(len(shape)), key=lambda d: -shape[d])
    for d in dims:
      if shape[d] % n == 0:
        parts = [None] * len(shape)
        parts[d] = DATA_AXIS
        return NamedSharding(mesh, P(*parts))
    return NamedSharding(mesh, P())

  return jax.tree.map(spec, tree)


def global_batch(local, mesh: Mesh):
  """Process-local numpy batch (any pytree, e.g. with a mixed batch's per-bucket fields) -> global jax.Arrays
  sharded along the batch over the data axis."""
  sharding = batch_sharded(mesh)
  return jax.tree.map(lambda v: jax.make_array_from_process_local_data(sharding, v), local)
