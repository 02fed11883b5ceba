"""TFDS harness test of the Sydney-Captions builder on its dummy data (needs tensorflow)."""
import tensorflow_datasets as tfds

from rsvlm_datasets.sydney_captions import sydney_captions_dataset_builder

DUMMY = sydney_captions_dataset_builder.Builder.code_path.parent / "dummy_data"


class SydneyCaptionsTest(tfds.testing.DatasetBuilderTestCase):
  """Config `default`."""
  DATASET_CLASS = sydney_captions_dataset_builder.Builder
  EXAMPLE_DIR = DUMMY  # Used as manual_dir (the builder has MANUAL_DOWNLOAD_INSTRUCTIONS).
  BUILDER_CONFIG_NAMES_TO_TEST = ["default"]
  SPLITS = {"train": 4, "validation": 3, "test": 3}


if __name__ == "__main__":
  tfds.testing.test_main()
