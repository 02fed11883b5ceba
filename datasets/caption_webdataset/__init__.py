"""caption_webdataset dataset (TFDS builder)."""
