"""caption_files dataset (TFDS builder)."""
