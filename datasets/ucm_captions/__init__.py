"""ucm_captions dataset (TFDS builder)."""
