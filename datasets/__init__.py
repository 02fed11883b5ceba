"""TFDS builders of rsvlm_jax, installed as `rsvlm_datasets` (never shadows HuggingFace `datasets`).

`BUILDER_MODULES` maps each dataset name to the module that defines (and so registers) its builder;
`import_builder(name)` imports it and fails with the list of known names otherwise.
"""
import importlib

BUILDER_MODULES = {
    "synthetic_scenes": "rsvlm_datasets.synthetic_scenes.synthetic_scenes_dataset_builder",
    "rsicd": "rsvlm_datasets.rsicd.rsicd_dataset_builder",
    "rsitmd": "rsvlm_datasets.rsitmd.rsitmd_dataset_builder",
    "ucm_captions": "rsvlm_datasets.ucm_captions.ucm_captions_dataset_builder",
    "sydney_captions": "rsvlm_datasets.sydney_captions.sydney_captions_dataset_builder",
    "nwpu_captions": "rsvlm_datasets.nwpu_captions.nwpu_captions_dataset_builder",
    "rs_gpt4v": "rsvlm_datasets.rs_gpt4v.rs_gpt4v_dataset_builder",
    "rsvqa_lr": "rsvlm_datasets.rsvqa_lr.rsvqa_lr_dataset_builder",
    "rsvqa_hr": "rsvlm_datasets.rsvqa_hr.rsvqa_hr_dataset_builder",
    "caption_files": "rsvlm_datasets.caption_files.caption_files_dataset_builder",
    "caption_webdataset": "rsvlm_datasets.caption_webdataset.caption_webdataset_dataset_builder",
}


def import_builder(name: str):
  """Imports the module registering TFDS builder `name` (the part before any '/config:version')."""
  base = name.split("/")[0].split(":")[0]
  if base not in BUILDER_MODULES:
    raise ValueError(f"Unknown dataset {name!r}; known: {sorted(BUILDER_MODULES)}")
  return importlib.import_module(BUILDER_MODULES[base])
