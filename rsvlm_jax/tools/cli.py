"""The commands' shared CLI helpers, rsvlm_jax/runtime/cli.py, under the name the tools first imported them by.

New code imports rsvlm_jax.runtime.cli (library code below the tools raises its UserError too).
"""
from rsvlm_jax.runtime.cli import call  # noqa: F401  pylint: disable=unused-import
from rsvlm_jax.runtime.cli import check_output_file  # noqa: F401  pylint: disable=unused-import
from rsvlm_jax.runtime.cli import check_writable_dir  # noqa: F401  pylint: disable=unused-import
from rsvlm_jax.runtime.cli import fail  # noqa: F401  pylint: disable=unused-import
from rsvlm_jax.runtime.cli import run  # noqa: F401  pylint: disable=unused-import
from rsvlm_jax.runtime.cli import USER_ERRORS  # noqa: F401  pylint: disable=unused-import
from rsvlm_jax.runtime.cli import user_errors  # noqa: F401  pylint: disable=unused-import
from rsvlm_jax.runtime.cli import UserError  # noqa: F401  pylint: disable=unused-import
