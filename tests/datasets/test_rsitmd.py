"""TFDS harness test of the RSITMD builder on its dummy data (needs tensorflow)."""
import tensorflow_datasets as tfds

from rsvlm_datasets.rsitmd import rsitmd_dataset_builder

DUMMY = rsitmd_dataset_builder.Builder.code_path.parent / "dummy_data"


class RsitmdTest(tfds.testing.DatasetBuilderTestCase):
  """Config `default`."""
  DATASET_CLASS = rsitmd_dataset_builder.Builder
  EXAMPLE_DIR = DUMMY  # Used as manual_dir (the builder has MANUAL_DOWNLOAD_INSTRUCTIONS).
  BUILDER_CONFIG_NAMES_TO_TEST = ["default"]
  SPLITS = {"train": 4, "validation": 3, "test": 3}


class RsitmdDedupTest(tfds.testing.DatasetBuilderTestCase):
  """Config `dedup`."""
  DATASET_CLASS = rsitmd_dataset_builder.Builder
  EXAMPLE_DIR = DUMMY  # Used as manual_dir (the builder has MANUAL_DOWNLOAD_INSTRUCTIONS).
  BUILDER_CONFIG_NAMES_TO_TEST = ["dedup"]
  SPLITS = {"train": 4, "validation": 3, "test": 2}


if __name__ == "__main__":
  tfds.testing.test_main()
