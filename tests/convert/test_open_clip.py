"""Converted open_clip weights compute what open_clip computes (float32, random weights, no download)."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("open_clip")

import rsvlm_jax  # noqa: E402  pylint: disable=wrong-import-position
from rsvlm_jax.tools import convert_open_clip  # noqa: E402  pylint: disable=wrong-import-position
from tests.convert import open_clip_models as ocm  # noqa: E402  pylint: disable=wrong-import-position

TOL = 1e-4  # Max abs difference of L2-normalised embeddings.


def _images(n: int, size: int, seed: int = 0) -> np.ndarray:
  return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


@pytest.mark.parametrize("quick_gelu", [False, True], ids=["gelu", "quick_gelu"])
def test_custom_architecture_matches_open_clip(tmp_path, quick_gelu):
  """Heads of width 16, both activations: image and text embeddings equal open_clip's."""
  model = ocm.random_clip(quick_gelu=quick_gelu)
  ckpt = ocm.save_state_dict(model, str(tmp_path / "m.pt"))
  out = convert_open_clip.convert(ckpt, str(tmp_path / "out"),
                                  model_config=ocm.write_arch(tmp_path, quick_gelu=quick_gelu))
  loaded = rsvlm_jax.load(out)
  assert loaded.model.image["mlp_act"] == ("quick_gelu" if quick_gelu else "gelu")
  images = _images(5, 32)
  ref_i, ref_t = ocm.reference_embeddings(model, images, ocm.TEXTS)
  np.testing.assert_allclose(loaded.encode_images(images), ref_i, atol=TOL, rtol=0)
  np.testing.assert_allclose(loaded.encode_texts(ocm.TEXTS), ref_t, atol=TOL, rtol=0)
  # The activation is a real switch: the other one gives different embeddings.
  other = convert_open_clip.convert(ckpt, str(tmp_path / "other"),
                                    model_config=ocm.write_arch(tmp_path, quick_gelu=not quick_gelu))
  assert np.abs(rsvlm_jax.load(other).encode_images(images) - ref_i).max() > 10 * TOL


def test_vit_b_32_by_name_from_safetensors(tmp_path):
  """The published ViT-B-32 architecture with QuickGELU (OpenAI's), read from .safetensors (no torch needed)."""
  model = ocm.random_clip(name="ViT-B-32-quickgelu")
  ckpt = ocm.save_state_dict(model, str(tmp_path / "b32.safetensors"), "safetensors")
  loaded = rsvlm_jax.load(convert_open_clip.convert(ckpt, str(tmp_path / "out"), model="ViT-B-32", quick_gelu=True))
  images = _images(2, 224)
  texts = ocm.TEXTS[:3]
  ref_i, ref_t = ocm.reference_embeddings(model, images, texts)
  np.testing.assert_allclose(loaded.encode_images(images), ref_i, atol=TOL, rtol=0)
  np.testing.assert_allclose(loaded.encode_texts(texts), ref_t, atol=TOL, rtol=0)
  assert loaded.resolution == 224 and loaded.text_len == 77
  assert np.exp(float(loaded.params["logit_scale"])) == pytest.approx(np.exp(3.0), rel=1e-6)


def test_checkpoint_formats_give_the_same_params(tmp_path):
  """A plain state dict, an open_clip training checkpoint (module. prefix) and .safetensors convert alike."""
  import jax  # pylint: disable=g-import-not-at-top
  model = ocm.random_clip(seed=1)
  arch = ocm.write_arch(tmp_path)
  params = []
  for fmt, name in (("plain", "m.pt"), ("training", "epoch_3.pt"), ("safetensors", "m.safetensors")):
    ckpt = ocm.save_state_dict(model, str(tmp_path / name), fmt)
    params.append(rsvlm_jax.load(convert_open_clip.convert(ckpt, str(tmp_path / fmt), model_config=arch)).params)
  for other in params[1:]:
    jax.tree.map(np.testing.assert_array_equal, params[0], other)


def test_renamed_or_missing_keys_fail_naming_them(tmp_path):
  import torch  # pylint: disable=g-import-not-at-top
  sd = ocm.random_clip().state_dict()
  arch = ocm.write_arch(tmp_path)
  renamed = dict(sd)
  renamed["visual.ln_post.weightX"] = renamed.pop("visual.ln_post.weight")
  torch.save(renamed, str(tmp_path / "renamed.pt"))
  with pytest.raises(ValueError, match=r"1 missing key\(s\): visual.ln_post.weight; 1 unused key\(s\): "
                                       r"visual.ln_post.weightX"):
    convert_open_clip.convert(str(tmp_path / "renamed.pt"), str(tmp_path / "o1"), model_config=arch)
  missing = {k: v for k, v in sd.items() if k != "text_projection"}
  torch.save(missing, str(tmp_path / "missing.pt"))
  with pytest.raises(ValueError, match=r"missing key\(s\): text_projection"):
    convert_open_clip.convert(str(tmp_path / "missing.pt"), str(tmp_path / "o2"), model_config=arch)
  with pytest.raises(ValueError, match=r"visual.positional_embedding has shape \(17, 64\), the architecture "
                                       r"needs \(50, 768\) \(wrong --model"):
    convert_open_clip.convert(str(tmp_path / "missing.pt"), str(tmp_path / "o3"), model="ViT-B-32")
  assert not any(p.name.startswith("o") for p in tmp_path.iterdir())  # Nothing half-written.


def test_unsupported_architectures_are_refused_by_name(tmp_path):
  from rsvlm_jax.convert import open_clip_archs  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match="Unknown open_clip model 'ViT-Q-99'"):
    open_clip_archs.arch_from_name_or_file("ViT-Q-99")
  arch = {**ocm.TINY_ARCH, "vision_cfg": {**ocm.TINY_ARCH["vision_cfg"], "attentional_pool": True}}
  with pytest.raises(ValueError, match=r"vision_cfg.attentional_pool=True is not supported"):
    open_clip_archs.model_config(arch, False)
  arch = {**ocm.TINY_ARCH, "text_cfg": {**ocm.TINY_ARCH["text_cfg"], "hf_model_name": "roberta-base"}}
  with pytest.raises(ValueError, match=r"text_cfg.hf_model_name='roberta-base' is not supported"):
    open_clip_archs.model_config(arch, False)
  for name in ("ViT-B-32", "ViT-B-16", "ViT-L-14", "ViT-L-14-336", "ViT-H-14"):  # Every named one builds.
    arch, quick = open_clip_archs.arch_from_name_or_file(name + "-quickgelu")
    cfg = open_clip_archs.model_config(arch, quick)
    assert quick and cfg["image"]["mlp_act"] == "quick_gelu"
  assert cfg["image"]["num_heads"] == 16 and cfg["image"]["width"] == 1280  # ViT-H-14: head width 80.


def test_preprocessing_matches_open_clip_for_a_non_square_image(tmp_path):
  """A 300x200 JPEG through rsvlm_jax.load (bicubic short side, centre crop) vs open_clip's eval transform."""
  import open_clip  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  model = ocm.random_clip()
  out = convert_open_clip.convert(ocm.save_state_dict(model, str(tmp_path / "m.pt")), str(tmp_path / "out"),
                                  model_config=ocm.write_arch(tmp_path))
  path = str(tmp_path / "wide.png")
  Image.fromarray(np.random.default_rng(2).integers(0, 256, (200, 300, 3), dtype=np.uint8)).save(path)
  loaded = rsvlm_jax.load(out)
  transform = open_clip.image_transform(32, is_train=False)
  with Image.open(path) as im:
    x = transform(im)[None]
  with torch.no_grad():
    ref = model.encode_image(x, normalize=True).numpy()
  np.testing.assert_allclose(loaded.encode_images([path]), ref, atol=TOL, rtol=0)


def test_converted_tower_runs_at_every_dris_bucket_grid(tmp_path):
  """The grid position embedding is resampled per bucket (class token kept); the native grid is unchanged."""
  model = ocm.random_clip()
  loaded = rsvlm_jax.load(convert_open_clip.convert(ocm.save_state_dict(model, str(tmp_path / "m.pt")),
                                                    str(tmp_path / "out"), model_config=ocm.write_arch(tmp_path)))
  images = _images(3, 64)
  ref_i, _ = ocm.reference_embeddings(model, np.stack([loaded.preprocess(x) for x in images]), [""])
  np.testing.assert_allclose(loaded.encode_images(images), ref_i, atol=TOL, rtol=0)
  for res in (16, 24, 48):  # Grids 2, 3 and 6 of the native 4.
    z = loaded.encode_images(images, resolution=res)
    assert z.shape == (3, 32) and np.allclose(np.linalg.norm(z, axis=-1), 1.0, atol=1e-5)


def test_cli_writes_a_directory_and_fails_clearly(tmp_path):
  model = ocm.random_clip()
  ckpt = ocm.save_state_dict(model, str(tmp_path / "m.pt"))
  cmd = [sys.executable, "-m", "rsvlm_jax.tools.convert_open_clip", "--model_config", ocm.write_arch(tmp_path),
         "--checkpoint", ckpt, "--out", str(tmp_path / "out")]
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  run = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
  assert run.returncode == 0, run.stderr[-2000:]
  assert sorted(os.listdir(tmp_path / "out")) == ["checkpoints", "config.json", "conversion.json",
                                                  "tokenizer_bpe.txt.gz"]
  assert "orbax" not in run.stderr and "Converted " in run.stderr, run.stderr[-3000:]  # Library chatter hidden.
  again = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
  assert again.returncode == 2 and "already exists; pass --overwrite" in again.stderr
  (tmp_path / "junk.pt").write_text("not a checkpoint")
  bad = subprocess.run(cmd[:-4] + ["--checkpoint", str(tmp_path / "junk.pt"), "--out", str(tmp_path / "o2")],
                       capture_output=True, text=True, env=env, check=False)
  assert bad.returncode == 2 and "junk.pt: torch.load(weights_only=True) refused it" in bad.stderr
