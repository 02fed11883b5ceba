"""caption_webdataset: image-caption pairs read straight from webdataset .tar shards (RS5M and the common layout).

  python -m rsvlm_jax.build_dataset caption_webdataset/rs5m --manual_dir=RS5M --data_dir=D --workers 8
"""
from __future__ import annotations

import dataclasses
import json
import posixpath
import re

import tensorflow_datasets as tfds

from rsvlm_datasets import archive_samples as samples
from rsvlm_datasets import parallel_build

RS5M_SHARD = re.compile(r"(pub11|rs3)-(train|val)-\d+\.tar")
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")


@dataclasses.dataclass(eq=False)
class WebDatasetConfig(parallel_build.UnitConfig):
  """layout 'rs5m' (img_content, img_name, caption) or 'common' (an image field plus txt or a json field)."""
  layout: str = "common"
  image_fields: tuple[str, ...] = ("jpg", "jpeg", "png", "tif", "tiff", "webp")
  caption_fields: tuple[str, ...] = ("txt",)
  json_caption_field: str = "caption"  # In the `json` member: a string or a list of strings.


class Builder(parallel_build.UnitBuilder):
  """Caption pairs from webdataset tars (features as every caption set: image, image_id, filename, captions,
  class_name); the split comes from the shard's name."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [
      WebDatasetConfig(name="rs5m", layout="rs5m", description=(
          "RS5M's own shards {pub11,rs3}-{train,val}-NNNN.tar (img_content, img_name, caption); val -> validation. "
          "Bad records skipped and counted.")),
      WebDatasetConfig(name="common", description=(
          "Any webdataset tars: image in jpg/jpeg/png/tif/tiff/webp, caption in txt or json['caption']; the split "
          "is the last of train/val/validation/test in the shard's path (else train). Bad records skipped and "
          "counted.")),
  ]
  DEFAULT_BUILDER_CONFIG_NAME = "common"
  HOMEPAGE = "https://github.com/webdataset/webdataset"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
  Pass the folder of the .tar shards (searched recursively; do not untar them) as manual_dir.
    rs5m:   {pub11,rs3}-{train,val}-NNNN.tar, samples with img_content, img_name, caption (RS5M as distributed)
    common: *.tar / *.tar.gz, samples with an image (jpg, jpeg, png, tif, tiff, webp) and txt or json{"caption"}
  """

  def _units(self, manual_dir):
    found = samples.find_files(manual_dir, TAR_SUFFIXES)
    if self.builder_config.layout != "rs5m":
      return [samples.Unit(name, str(path), samples.split_from_name(name)) for name, path in found]
    other = [name for name, _ in found if not RS5M_SHARD.fullmatch(posixpath.basename(name))]
    if other:
      raise ValueError(f"{manual_dir}: {len(other)} tar(s) not named like RS5M's shards "
                       f"{{pub11,rs3}}-{{train,val}}-NNNN.tar: {other[:5]} (use caption_webdataset/common for other "
                       "shards, or move them out)")
    return [samples.Unit(name, str(path), samples.split_from_name(posixpath.basename(name))) for name, path in found]

  def _unit_examples(self, unit, skips, max_side):
    stem = re.sub(r"(\.tar|\.tar\.gz|\.tgz)$", "", unit.name)
    seen = set()
    for sample in samples.tar_samples(unit.path):
      if sample.error:
        skips.add(unit.name, sample.key, samples.UNREADABLE_MEMBER, sample.error)
        continue
      if sample.key in seen:
        skips.add(unit.name, sample.key, samples.DUPLICATE_KEY, "a second sample with this key in the shard")
        continue
      seen.add(sample.key)
      try:
        yield sample.key, self._example(f"{stem}/{sample.key}", sample, max_side, f"{unit.name}:{sample.key}")
      except samples.SkipRecord as e:
        skips.add(unit.name, sample.key, e.reason, str(e))

  def _example(self, image_id, sample, max_side, source):
    fields = sample.fields
    if self.builder_config.layout == "rs5m":
      captions = [samples.text(fields.get("caption"))]
      image_field, filename = "img_content", samples.text(fields.get("img_name")) or sample.key
    else:
      captions = self._captions(fields)
      image_field = next((f for f in self.builder_config.image_fields if f in fields), None)
      filename = f"{posixpath.basename(sample.key)}.{image_field}"
    captions = [c for c in captions if c]
    if not captions:
      raise samples.SkipRecord(samples.NO_CAPTION, f"no caption (fields: {sorted(fields)})")
    if image_field not in fields:
      raise samples.SkipRecord(samples.NO_IMAGE, f"no image (fields: {sorted(fields)})")
    image = samples.prepare_image(fields[image_field], source, max_side)
    return {"image": image, "image_id": image_id, "filename": filename, "captions": captions, "class_name": ""}

  def _captions(self, fields):
    for field in self.builder_config.caption_fields:
      if field in fields:
        return [samples.text(fields[field])]
    if "json" not in fields:
      return []
    try:
      value = json.loads(samples.text(fields["json"]) or "{}")
    except json.JSONDecodeError as e:
      raise samples.SkipRecord(samples.NO_CAPTION, f"json member is not valid JSON: {e}") from e
    value = value.get(self.builder_config.json_caption_field) if isinstance(value, dict) else None
    if isinstance(value, str):
      return [value.strip()]
    if isinstance(value, list):
      return [v.strip() for v in value if isinstance(v, str)]
    return []
