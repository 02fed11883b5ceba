"""rs_gpt4v dataset (TFDS builder)."""
