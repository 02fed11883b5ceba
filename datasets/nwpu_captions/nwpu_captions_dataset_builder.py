"""NWPU-Captions (Cheng et al. 2022), manual download."""
from etils import epath
import tensorflow_datasets as tfds

from rsvlm_datasets import caption_formats


class Builder(caption_formats.CaptionBuilder):
  """NWPU-Captions: 31,500 NWPU-RESISC45 images (256x256), five captions each, 45 classes."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = caption_formats.caption_configs()
  DEFAULT_BUILDER_CONFIG_NAME = "default"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
  Download NWPU-Captions (https://github.com/HaiyanHuang98/NWPU-Captions) and the NWPU-RESISC45
  images, and place in manual_dir:
    manual_dir/
      dataset_nwpu.json       # {class: [{"filename", "split", "raw", "raw_1", .., "raw_4", ...}]}
      NWPU_images/<class>/    # the .jpg images of each class, named by "filename"
  """
  ANNOTATION_FILE = "dataset_nwpu.json"
  IMAGE_DIR = "NWPU_images"
  HOMEPAGE = "https://github.com/HaiyanHuang98/NWPU-Captions"

  def _records(self, manual_dir: epath.Path, policy: caption_formats.RecordPolicy):
    return caption_formats.parse_nwpu(manual_dir / self.ANNOTATION_FILE,
                                      manual_dir / self.IMAGE_DIR, policy)
