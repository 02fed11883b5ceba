"""open_clip models created locally with random weights (no download), and their reference embeddings."""
from __future__ import annotations

import json
import os

import numpy as np

# A small custom architecture: heads of width 16 (not open_clip's default 64), 2 layers per tower.
TINY_ARCH = {"embed_dim": 32,
             "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 16},
             "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 48, "heads": 3, "layers": 2}}


def random_clip(arch: dict | None = None, *, quick_gelu: bool = False, name: str = "", seed: int = 0):
  """An open_clip CLIP in eval mode with random weights; LayerNorms, biases, the class token and the
  temperature are perturbed away from their initial constants so that every key's mapping matters."""
  import open_clip  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  torch.manual_seed(seed)
  if name:
    model = open_clip.create_model(name, pretrained=None)
  else:
    arch = arch or TINY_ARCH
    model = open_clip.model.CLIP(embed_dim=arch["embed_dim"], vision_cfg=arch["vision_cfg"],
                                 text_cfg=arch["text_cfg"], quick_gelu=quick_gelu)
  with torch.no_grad():
    for key, p in model.named_parameters():
      if key.endswith("bias") or ".ln" in key or key.startswith("ln_") or "class_embedding" in key:
        p.add_(0.2 * torch.randn_like(p))
    model.logit_scale.fill_(3.0)
  return model.eval()


def write_arch(tmp_path, arch: dict | None = None, quick_gelu: bool = False) -> str:
  path = os.path.join(str(tmp_path), "arch.json")
  with open(path, "w") as f:
    json.dump({**(arch or TINY_ARCH), **({"quick_gelu": True} if quick_gelu else {})}, f)
  return path


def save_state_dict(model, path: str, fmt: str = "plain") -> str:
  """fmt: plain (.pt state dict), training (open_clip's {"state_dict": {"module.…"}}), safetensors."""
  import torch  # pylint: disable=g-import-not-at-top
  sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
  if fmt == "plain":
    torch.save(sd, path)
  elif fmt == "training":
    torch.save({"epoch": 3, "name": "test", "state_dict": {"module." + k: v for k, v in sd.items()}}, path)
  elif fmt == "safetensors":
    from safetensors.torch import save_file  # pylint: disable=g-import-not-at-top
    save_file(sd, path)
  else:
    raise ValueError(fmt)
  return path


def reference_embeddings(model, images: np.ndarray, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
  """open_clip's own normalised encode_image (of uint8 [N,H,W,3] at the native size, OpenAI mean/std) and
  encode_text (of open_clip's tokenizer)."""
  import open_clip  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
  std = torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1)
  x = (torch.tensor(images).permute(0, 3, 1, 2).float() / 255.0 - mean) / std
  with torch.no_grad():
    zi = model.encode_image(x, normalize=True).numpy()
    zt = model.encode_text(open_clip.get_tokenizer("ViT-B-32")(texts), normalize=True).numpy()
  return zi, zt


TEXTS = ["a satellite photo of a harbor with many ships.", "", "Dense RESIDENTIAL area, roads & trees!",
         "an aerial image of a baseball field next to a parking lot with 23 cars",
         "Ünïcödé straße near 東京 port 🚢", "word " * 100]
