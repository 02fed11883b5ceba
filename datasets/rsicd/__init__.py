"""rsicd dataset (TFDS builder)."""
