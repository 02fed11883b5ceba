"""Converters from other projects' checkpoints into rsvlm_jax models (see tools/convert_open_clip.py)."""
