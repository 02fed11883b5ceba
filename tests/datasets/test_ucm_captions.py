"""TFDS harness test of the UCM-Captions builder on its dummy data (needs tensorflow)."""
import tensorflow_datasets as tfds

from rsvlm_datasets.ucm_captions import ucm_captions_dataset_builder

DUMMY = ucm_captions_dataset_builder.Builder.code_path.parent / "dummy_data"


class UcmCaptionsTest(tfds.testing.DatasetBuilderTestCase):
  """Config `default`."""
  DATASET_CLASS = ucm_captions_dataset_builder.Builder
  EXAMPLE_DIR = DUMMY  # Used as manual_dir (the builder has MANUAL_DOWNLOAD_INSTRUCTIONS).
  BUILDER_CONFIG_NAMES_TO_TEST = ["default"]
  SPLITS = {"train": 4, "validation": 3, "test": 3}


if __name__ == "__main__":
  tfds.testing.test_main()
