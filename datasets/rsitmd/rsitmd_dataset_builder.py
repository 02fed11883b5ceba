"""RSITMD: remote sensing image-text match dataset (Yuan et al. 2022), manual download."""
import tensorflow_datasets as tfds

from rsvlm_datasets import caption_formats


class Builder(caption_formats.CaptionBuilder):
  """RSITMD: 4,743 images (256x256 TIFF), five captions each, Karpathy-style JSON."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = caption_formats.caption_configs(with_dedup=True, other="RSICD")
  DEFAULT_BUILDER_CONFIG_NAME = "default"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
  Download RSITMD (https://github.com/xiaoyuan1996/AMFMN/tree/master/RSITMD) into manual_dir:
    manual_dir/
      dataset_RSITMD.json     # {"images": [{"filename", "imgid", "split", "sentences"}]}
      images/                 # the .tif images named by "filename"
      dataset_rsicd.json      # only for the `dedup` configs (or in manual_dir/rsicd/ or ../rsicd/)
  """
  ANNOTATION_FILE = "dataset_RSITMD.json"
  IMAGE_DIR = "images"
  HOMEPAGE = "https://github.com/xiaoyuan1996/AMFMN/tree/master/RSITMD"
  CLASS_FROM_FILENAME = True
  DEDUP_AGAINST = ("rsicd", "dataset_rsicd.json")
