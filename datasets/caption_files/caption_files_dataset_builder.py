"""caption_files: your own images and captions from one CSV or JSONL file, without writing a builder."""
import hashlib

import tensorflow_datasets as tfds

from rsvlm_datasets import caption_files_format as fmt
from rsvlm_datasets import caption_formats


class Builder(caption_formats.CaptionBuilder):
  """Images with captions listed in manual_dir/<one file>.csv or .jsonl (image, caption[, split][, class_name])."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = caption_formats.caption_configs()
  DEFAULT_BUILDER_CONFIG_NAME = "default"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
  Put ONE annotation file (.csv or .jsonl) in a folder and pass that folder as manual_dir:
    manual_dir/
      captions.csv            # image,caption[,split][,class_name] - one row per caption
      images/...              # image paths in the file are relative to manual_dir
  Rows of the same image merge into one example with several captions; rows without a split go to train.
  """

  def _records(self, manual_dir, policy):
    path = fmt.find_annotation_file(manual_dir)
    self.info.metadata["annotation_file"] = str(path)
    self.info.metadata["annotation_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    records = fmt.parse(path, policy)
    if not records:
      raise caption_formats.BadRecordError(f"{path}: no usable records ({len(policy.skipped)} skipped): "
                                           "nothing to build")
    return records
