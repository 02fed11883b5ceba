"""Writes small webdataset shards with the webdataset library itself (RS5M's layout and the common one)."""
import io

import numpy as np
from PIL import Image
import webdataset as wds


def jpeg(seed: int, size=(16, 12), mode="RGB") -> bytes:
  rng = np.random.default_rng(seed)
  shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
  buffer = io.BytesIO()
  Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(buffer, format="JPEG", quality=90)
  return buffer.getvalue()


def png(seed: int, size=(16, 12)) -> bytes:
  rng = np.random.default_rng(seed)
  buffer = io.BytesIO()
  Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(buffer, format="PNG")
  return buffer.getvalue()


def write_rs5m_shard(path, first: int, count: int, *, corrupt=(), no_caption=(), size=(16, 12)) -> list[str]:
  """Samples first..first+count-1 (img_content, img_name, caption); returns the keys written."""
  keys = []
  with wds.TarWriter(str(path)) as sink:
    for i in range(first, first + count):
      key = f"{i:09d}"
      image = b"\xff\xd8 this is not a jpeg" if i in corrupt else jpeg(i, size)
      sample = {"__key__": key, "img_content": image, "img_name": f"img_{i}.jpg"}
      if i not in no_caption:
        sample["caption"] = f"a scene number {i}"
      sink.write(sample)
      keys.append(key)
  return keys
