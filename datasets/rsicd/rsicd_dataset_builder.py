"""RSICD: remote sensing image captioning dataset (Lu et al. 2017), manual download."""
import tensorflow_datasets as tfds

from rsvlm_datasets import caption_formats


class Builder(caption_formats.CaptionBuilder):
  """RSICD: 10,921 images (224x224 JPEG), five captions each, Karpathy-style JSON."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = caption_formats.caption_configs(with_dedup=True, other="RSITMD")
  DEFAULT_BUILDER_CONFIG_NAME = "default"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
  Download RSICD (https://github.com/201528014227051/RSICD_optimal) and place in manual_dir:
    manual_dir/
      dataset_rsicd.json      # {"images": [{"filename", "imgid", "split", "sentences"}]}
      RSICD_images/           # the .jpg images named by "filename"
      dataset_RSITMD.json     # `dedup` configs only (or in manual_dir/rsitmd/ or ../rsitmd/)
  """
  ANNOTATION_FILE = "dataset_rsicd.json"
  IMAGE_DIR = "RSICD_images"
  HOMEPAGE = "https://github.com/201528014227051/RSICD_optimal"
  CLASS_FROM_FILENAME = True
  DEDUP_AGAINST = ("rsitmd", "dataset_RSITMD.json")
