"""sydney_captions dataset (TFDS builder)."""
