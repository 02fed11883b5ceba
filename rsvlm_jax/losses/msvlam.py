"""MS-VLAM terms as losses (registry.LOSSES): global, local-region and object alignment.

Each reads the model's out dict and calls the cross-device array-level loss of `alignment.py`
(explicit shard_map + all_gather over the mesh's data axis).
"""
from __future__ import annotations

from rsvlm_jax.losses import alignment


def global_alignment(out, batch, ctx, kind: str = "softmax"):
  del batch
  return alignment.global_contrastive(out["zimg"], out["ztxt"], out["logit_scale"], out["logit_bias"],
                                      kind=kind, mesh=ctx.mesh, axis_name=ctx.axis_name)


def local_alignment(out, batch, ctx, mode: str = "max_sim"):
  del batch
  return alignment.local_region_alignment(out["region_emb"], out["region_mask"], out["phrase_emb"],
                                          out["phrase_mask"], out["logit_scale"], mode=mode, mesh=ctx.mesh,
                                          axis_name=ctx.axis_name)


def object_alignment(out, batch, ctx):
  return alignment.object_alignment(out["object_emb"], out["object_text_emb"], batch["obj_labels"],
                                    batch["obj_mask"], out["logit_scale"], mesh=ctx.mesh,
                                    axis_name=ctx.axis_name)
