"""nwpu_captions dataset (TFDS builder)."""
