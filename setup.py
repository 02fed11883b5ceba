"""rsvlm_jax: remote-sensing vision-language models in JAX (DRIS + MS-VLAM)."""
import setuptools

INSTALL_REQUIRES = [
    "jax>=0.10,<0.11",
    "flax>=0.12,<0.13",
    "optax>=0.2.8",
    "orbax-checkpoint>=0.12",
    "tensorflow-datasets>=4.9.10",
    "array-record>=0.8",
    "grain>=0.2.18",
    "ml-collections>=1.1",
    "einops>=0.8",
    "absl-py>=2.0",
    "numpy>=2.0",
    "pillow>=10",
    "importlib_resources>=6",
    "sentencepiece>=0.2",
    "tensorboardX>=2.6",
    # CLIP BPE tokenizer of converted open_clip weights (text cleaning and the CLIP pre-split regex), and
    # .safetensors checkpoints read without torch.
    "ftfy>=6.1",
    "regex>=2024.4",
    "safetensors>=0.4",
    # TIFF/GeoTIFF of any bit depth and band count (data/image_io.py).
    "tifffile>=2024.1",
]
# torch/open_clip are never needed to train or serve: the converter reads .pt/.bin with torch, and the tests
# use open_clip (with random weights, created locally) as the reference for parity. torch 2.14.1 and
# torchvision 0.29.1 are the pair whose wheels install offline on the reference machine.
_TORCH = ["torch==2.14.1", "torchvision==0.29.1", "open-clip-torch==3.3.0"]
EXTRAS = {
    # pycocoevalcap is the independent reference for the captioning metrics;
    # tensorflow-cpu is needed only by TFDS's own DatasetBuilderTestCase harness.
    # open_clip is the reference for the converted towers and the CLIP tokenizer.
    # filelock: the tests share one JAX compilation cache between workers (tests/conftest.py).
    # pypng writes the 16-bit colour PNGs that image_io must read at full depth (PIL cannot write them).
    "test": ["pytest>=8", "pycocoevalcap==1.2", "tensorflow-cpu>=2.21,<2.22", "dill", "faiss-cpu==1.15.1",
             "pytest-xdist>=3.5", "filelock>=3.12", "pypng==0.20220715.0", "webdataset==1.0.2",
             # A local GCS JSON API (tests/storage) and the fsspec client the path layer uses for gs://.
             "gcp-storage-emulator==2026.7.19", "gcsfs==2026.10.1"] + _TORCH,
    # Reading .pt/.bin checkpoints in tools/convert_open_clip (and open_clip's BPE merges file).
    "convert": _TORCH,
    # open_clip (PyTorch) is the reference that bench/train_step.py measures our training step against.
    # ...and faiss-cpu the one bench/index.py measures the retrieval index against.
    "bench": _TORCH + ["faiss-cpu==1.15.1"],
}

setuptools.setup(
    name="rsvlm_jax",
    version="0.1.0",
    description=__doc__,
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=(setuptools.find_packages(include=["rsvlm_jax", "rsvlm_jax.*"])
              + ["rsvlm_datasets"]
              + ["rsvlm_datasets." + p for p in setuptools.find_packages("datasets")]),
    # datasets/ installs as `rsvlm_datasets`, so it can never shadow HuggingFace `datasets`.
    package_dir={"rsvlm_datasets": "datasets"},
    include_package_data=True,
    package_data={"rsvlm_datasets": ["*/*.bib", "*/*.md", "*/dummy_data/**/*", "*/*.txt"]},
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
)
