"""Test setup: 8 fake CPU devices for every test (set before JAX is imported anywhere).

Tests that need one device build a mesh from `jax.devices()[:1]`. XLA compiles without LLVM's optimisation
passes (fixtures.FAST_COMPILE_XLA_FLAGS; processes that tests launch get the same through fixtures.xla_flags).

Every test process (the xdist workers and the processes tests launch, which inherit the environment) shares
one persistent JAX compilation cache in .pytest_cache/: most tests train the same tiny model, so after the
first compile of a program the others load it (about a third of the suite's time on 2 CPU cores). The cache
is keyed by the program, compile options, XLA flags and jax version, and never changes what a test computes
or counts (a cache hit still counts as one compilation in runtime/compile_counter.py). Set
JAX_COMPILATION_CACHE_DIR= (empty) to run without it.
"""
import os

from tests import fixtures  # pylint: disable=wrong-import-position  (imports no JAX)

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

os.environ.setdefault("XLA_FLAGS", fixtures.xla_flags(8))
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(_ROOT, ".pytest_cache", "jax_compilation_cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
# A size limit turns on eviction, and with it the file lock that makes concurrent writers and readers safe.
os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(2 << 30))

from tests.fixtures import tiny_data_dir  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import
