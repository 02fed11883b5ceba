"""RSVQA-HR: visual question answering on 15 cm aerial images (Lobry et al. 2020), manual download."""
from rsvlm_datasets import rsvqa_format


class Builder(rsvqa_format.RsvqaBuilder):
  """RSVQA-HR: 10,659 USGS aerial tiles (512 px, 15 cm); areas binned as scored, counts kept as numbers."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
  Download RSVQA-HR (https://zenodo.org/records/6344367) and unzip it in manual_dir as distributed:
    manual_dir/
      USGS_split_{train,val,test,test_phili}_questions.json  # {"questions": [{"id", "img_id", "type",
                                                             #   "question", "answers_ids", "active"}]}
      USGS_split_{train,val,test,test_phili}_answers.json    # {"answers": [{"id", "question_id", "answer",
                                                             #   "active"}]}
      Data/{img_id}.png
  """
  FILE_PREFIX = "USGS_split"
  SPLITS = {"train": "train", "validation": "val", "test": "test", "test_phili": "test_phili"}
  IMAGE_DIR = "Data"
  IMAGE_EXT = ".png"
  TYPES = ("area", "comp", "count", "presence")
  BINNED_TYPES = ("area",)
