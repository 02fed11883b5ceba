"""rsvqa_lr dataset (TFDS builder)."""
