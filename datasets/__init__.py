"""TFDS builders of rsvlm_jax, installed as `rsvlm_datasets` (never shadows HuggingFace `datasets`).

`BUILDER_MODULES` maps each dataset name to the module that defines (and so registers) its builder;
`import_builder(name)` imports it and fails with the list of known names otherwise.
"""
import importlib

BUILDER_MODULES = {
    "synthetic_scenes": "rsvlm_datasets.synthetic_scenes.synthetic_scenes_dataset_builder",
}


def import_builder(name: str):
  """Imports the module registering TFDS builder `name` (the part before any '/config:version')."""
  base = name.split("/")[0].split(":")[0]
  if base not in BUILDER_MODULES:
    raise ValueError(f"Unknown dataset {name!r}; known: {sorted(BUILDER_MODULES)}")
  return importlib.import_module(BUILDER_MODULES[base])
