"""TFDS harness test of the RS-GPT4V builder on its dummy data (needs tensorflow)."""
import tensorflow_datasets as tfds

from rsvlm_datasets.rs_gpt4v import rs_gpt4v_dataset_builder

DUMMY = rs_gpt4v_dataset_builder.Builder.code_path.parent / "dummy_data"


class RsGpt4vTest(tfds.testing.DatasetBuilderTestCase):
  """Config `default`."""
  DATASET_CLASS = rs_gpt4v_dataset_builder.Builder
  EXAMPLE_DIR = DUMMY  # Used as manual_dir (the builder has MANUAL_DOWNLOAD_INSTRUCTIONS).
  BUILDER_CONFIG_NAMES_TO_TEST = ["default"]
  SPLITS = {"train": 8, "test": 8}


class RsGpt4vCaptionsTest(tfds.testing.DatasetBuilderTestCase):
  """Config `captions`."""
  DATASET_CLASS = rs_gpt4v_dataset_builder.Builder
  EXAMPLE_DIR = DUMMY  # Used as manual_dir (the builder has MANUAL_DOWNLOAD_INSTRUCTIONS).
  BUILDER_CONFIG_NAMES_TO_TEST = ["captions"]
  SPLITS = {"train": 2, "test": 3}


if __name__ == "__main__":
  tfds.testing.test_main()
