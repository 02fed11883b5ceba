"""rsvqa_hr dataset (TFDS builder)."""
