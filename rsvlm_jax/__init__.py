"""rsvlm_jax: remote-sensing vision-language models in JAX (DRIS + MS-VLAM).

`rsvlm_jax.load(DIR)` returns a trained workdir or converted open_clip weights as a model with
`tokenize`, `encode_images`, `encode_texts` and `caption` (see rsvlm_jax/loading.py).
"""


def load(path: str):
  """A trained workdir or a converted open_clip directory as a `loading.LoadedModel`."""
  from rsvlm_jax import loading  # pylint: disable=g-import-not-at-top  (keeps `import rsvlm_jax` light)
  return loading.load(path)
