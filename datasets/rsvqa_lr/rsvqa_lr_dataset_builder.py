"""RSVQA-LR: visual question answering on Sentinel-2 images (Lobry et al. 2020), manual download."""
from rsvlm_datasets import rsvqa_format


class Builder(rsvqa_format.RsvqaBuilder):
  """RSVQA-LR: 772 Sentinel-2 RGB tiles (256 px, 10 m) over the Netherlands; counts binned as scored."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
  Download RSVQA-LR (https://zenodo.org/records/6344334) and unzip it in manual_dir as distributed:
    manual_dir/
      LR_split_{train,val,test}_questions.json  # {"questions": [{"id", "img_id", "type", "question",
                                                #   "answers_ids", "active"}]}
      LR_split_{train,val,test}_answers.json    # {"answers": [{"id", "question_id", "answer", "active"}]}
      Images_LR/{img_id}.tif
  """
  FILE_PREFIX = "LR_split"
  SPLITS = {"train": "train", "validation": "val", "test": "test"}
  IMAGE_DIR = "Images_LR"
  IMAGE_EXT = ".tif"
  TYPES = ("comp", "count", "presence", "rural_urban")
  BINNED_TYPES = ("count",)
