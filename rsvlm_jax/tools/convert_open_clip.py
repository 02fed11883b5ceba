r"""Convert an open_clip checkpoint (OpenAI CLIP, RemoteCLIP, GeoRSCLIP, SkyCLIP, ...) into an rsvlm_jax model.

  python -m rsvlm_jax.tools.convert_open_clip --model ViT-B-32 --checkpoint RemoteCLIP-ViT-B-32.pt \
      --out /models/remoteclip_b32 [--quick_gelu]

--checkpoint: a plain state dict (.pt/.bin/.pth, read with torch.load(weights_only=True)), an open_clip
training checkpoint ({"state_dict": {"module.visual...."}}) or safetensors (recognised by its header whatever the
file is called; read without torch).
--model: ViT-B-32, ViT-B-16, ViT-L-14, ViT-L-14-336, ViT-H-14 (or NAME-quickgelu); --model_config: open_clip's
JSON config of any other ViT architecture. --quick_gelu: the weights were trained with QuickGELU (OpenAI's
originals; a fine-tune keeps whatever activation it was trained with). The activation is written into the
model config and never guessed later. Where to download each checkpoint, with its activation: docs/open_clip.md.

The output directory is what `config.model_init=DIR` (fine-tuning, configs/clip_finetune.py) and
`rsvlm_jax.load(DIR)` accept: config.json (model config, native resolution, open_clip preprocessing),
tokenizer_bpe.txt.gz (the CLIP BPE merges, from the installed open_clip or --bpe_vocab), checkpoints/0/
(orbax params) and conversion.json (source file, its SHA-256, architecture, activation; written last). It is
written to OUT.partial-PID and renamed into place only when complete (convert/output_dir.py); partial
directories of killed conversions are removed by the next conversion to the same OUT. `--overwrite` replaces
only a directory this converter wrote; anything else at --out is refused before the checkpoint is read.
"""
from __future__ import annotations

import datetime
import json
import os
import shutil

from absl import flags
from absl import logging

from rsvlm_jax.convert import open_clip_archs
from rsvlm_jax.convert import open_clip_weights
from rsvlm_jax.convert import output_dir
from rsvlm_jax.data import tokenizer as tokenizer_lib
from rsvlm_jax.runtime import cli
from rsvlm_jax.runtime import file_hash
from rsvlm_jax.runtime import library_logs

FLAGS = flags.FlagValues()  # This command's flags only (runtime/cli.py): importing it defines no global flag.
flags.DEFINE_string("model", "", "open_clip architecture name, e.g. ViT-B-32 (or ViT-B-32-quickgelu).",
                    flag_values=FLAGS)
flags.DEFINE_string("model_config", "", "open_clip JSON config of the architecture (instead of --model).",
                    flag_values=FLAGS)
flags.DEFINE_string("checkpoint", None, "State dict (.pt/.bin/.pth), open_clip training checkpoint or .safetensors.",
                    flag_values=FLAGS)
flags.DEFINE_string("out", None, "Output directory (model_init / rsvlm_jax.load).", flag_values=FLAGS)
flags.DEFINE_bool("quick_gelu", False, "The weights were trained with QuickGELU (OpenAI's original CLIP).",
                  flag_values=FLAGS)
flags.DEFINE_string("bpe_vocab", "", "CLIP BPE merges file; default: the one inside the installed open_clip.",
                    flag_values=FLAGS)
flags.DEFINE_bool("overwrite", False, "Replace an existing --out directory written by this converter "
                  "(anything else is refused).", flag_values=FLAGS)
flags.mark_flags_as_required(["checkpoint", "out"], flag_values=FLAGS)


def default_bpe_vocab() -> str:
  """The BPE merges file shipped inside the installed open_clip package (no torch import needed)."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.find_spec("open_clip")
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError("No --bpe_vocab given and open_clip is not installed: pass --bpe_vocab "
                            "bpe_simple_vocab_16e6.txt.gz (it ships with open_clip and OpenAI's CLIP repositories)")
  path = os.path.join(list(spec.submodule_search_locations)[0], "bpe_simple_vocab_16e6.txt.gz")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"open_clip is installed but has no {path}: pass --bpe_vocab")
  return path


def converted_config(model_cfg: dict, size: int, record: dict) -> dict:
  """The config.json of a converted model: what `rsvlm_jax.load` and configs/clip_finetune.py read."""
  return {"model": model_cfg, "compute_dtype": "float32",
          "input": {"text_len": model_cfg["text"]["max_len"], "preprocess": "clip"},
          "dris": {"resolutions": [size]}, "converted_from": record}


def convert(checkpoint: str, out: str, *, model: str = "", model_config: str = "", quick_gelu: bool = False,
            bpe_vocab: str = "", overwrite: bool = False) -> str:
  """Converts `checkpoint` into the directory `out` (see module doc); returns `out`."""
  import jax  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.runtime import checkpoint as checkpoint_lib  # pylint: disable=g-import-not-at-top

  out = os.path.abspath(os.path.expanduser(out))
  output_dir.remove_stale(out)  # First: it may put back the model a killed conversion had moved aside.
  output_dir.check_out(out, overwrite)
  arch, named_quick = open_clip_archs.arch_from_name_or_file(model, model_config)
  quick = bool(quick_gelu or named_quick)
  model_cfg = open_clip_archs.model_config(arch, quick, source=model_config)
  size = open_clip_archs.native_size(arch)
  bpe_vocab = bpe_vocab or default_bpe_vocab()
  tok = tokenizer_lib.from_file(bpe_vocab)
  if tok.vocab_size != open_clip_archs.vocab_size(arch):
    raise ValueError(f"--bpe_vocab {bpe_vocab} gives {tok.vocab_size} ids, the architecture's vocab is "
                     f"{open_clip_archs.vocab_size(arch)}")
  open_clip_weights.check_readable(checkpoint)

  logging.info("Reading %s", checkpoint)
  sd = open_clip_weights.read_state_dict(checkpoint)
  params = open_clip_weights.to_params(sd, model_cfg, tok.vocab_size, source=checkpoint)
  record = {"checkpoint": os.path.abspath(checkpoint), "sha256": file_hash.file_sha256(checkpoint),
            "model": model or None, "model_config_file": model_config or None, "open_clip_config": arch,
            "activation": "quick_gelu" if quick else "gelu", "num_keys": len(sd),
            "converted_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
  logging.info("Activation: %s. OpenAI's original CLIP weights and fine-tunes started from them with open_clip's "
               "pretrained='openai' (GeoRSCLIP ViT-B-32) use QuickGELU; open_clip's plain configs (RemoteCLIP, "
               "LAION weights) use GELU", record["activation"])

  tmp = f"{out}.partial-{os.getpid()}"
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  try:
    output_dir.write_owner(tmp)
    config = converted_config(model_cfg, size, record)
    _check_against_model(config, tok, params)
    with open(os.path.join(tmp, "config.json"), "w") as f:
      json.dump(config, f, indent=2)
    tok.save(os.path.join(tmp, tokenizer_lib.CLIP_BPE_FILE))
    ckpt = checkpoint_lib.Checkpointer(os.path.join(tmp, "checkpoints"), async_save=False)
    ckpt.save(0, {"params": jax.tree.map(jax.numpy.asarray, params)}, {"converted_from": record["checkpoint"]},
              force=True)
    ckpt.close()
    with open(os.path.join(tmp, output_dir.CONVERSION_JSON), "w") as f:  # Last: marks the directory complete.
      json.dump(record, f, indent=2)
    output_dir.publish(tmp, out, overwrite)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  logging.info("Converted %s (%d keys, %s) -> %s", checkpoint, len(sd), record["activation"], out)
  return out


def _check_against_model(config: dict, tok, params) -> None:
  """Every param the model creates exists in the converted tree with the same shape (and nothing else)."""
  from rsvlm_jax import loading  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.runtime import checkpoint as checkpoint_lib  # pylint: disable=g-import-not-at-top
  model = loading.build_model(loading.as_config_dict(config), tok)
  have = checkpoint_lib.array_shapes(params)
  want = checkpoint_lib.array_shapes(loading.abstract_params(
      model, config["dris"]["resolutions"][-1], config["input"]["text_len"], with_token_proj=True))
  bad = sorted(k for k in set(have) | set(want) if have.get(k) != want.get(k))
  if bad:
    raise AssertionError("Converted params do not fit the model (a converter bug): " + "; ".join(
        f"{k}: converted {have.get(k)} vs model {want.get(k)}" for k in bad[:5]))


def main(argv):
  del argv
  if not FLAGS.model and not FLAGS.model_config:
    raise cli.UserError("Pass --model NAME (e.g. ViT-B-32) or --model_config FILE.json")
  library_logs.quiet_library_logs()
  with cli.user_errors("convert_open_clip", cli.USER_ERRORS + (ImportError,)):  # torch missing for a .pt file.
    convert(FLAGS.checkpoint, FLAGS.out, model=FLAGS.model, model_config=FLAGS.model_config,
            quick_gelu=FLAGS.quick_gelu, bpe_vocab=FLAGS.bpe_vocab, overwrite=FLAGS.overwrite)


if __name__ == "__main__":
  cli.run(main, FLAGS, "convert_open_clip")
