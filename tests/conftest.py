"""Test setup: 8 fake CPU devices for every test (set before JAX is imported anywhere).

Tests that need one device build a mesh from `jax.devices()[:1]`.
"""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tests.fixtures import tiny_data_dir  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import
