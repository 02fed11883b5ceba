"""Sydney-Captions (Qu et al. 2016), manual download."""
import tensorflow_datasets as tfds

from rsvlm_datasets import caption_formats


class Builder(caption_formats.CaptionBuilder):
  """Sydney-Captions: 613 images (500x500 TIFF), five captions each, Karpathy-style JSON."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = caption_formats.caption_configs()
  DEFAULT_BUILDER_CONFIG_NAME = "default"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
  Download Sydney-Captions (https://github.com/201528014227051/RSICD_optimal) into manual_dir:
    manual_dir/
      dataset.json            # {"images": [{"filename", "imgid", "split", "sentences"}]}
      images/                 # the .tif images named by "filename"
  """
  ANNOTATION_FILE = "dataset.json"
  IMAGE_DIR = "images"
  HOMEPAGE = "https://github.com/201528014227051/RSICD_optimal"
