"""rsitmd dataset (TFDS builder)."""
