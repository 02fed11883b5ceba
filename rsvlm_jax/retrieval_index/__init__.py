"""Image search over your own folders: an on-disk embedding index, exact top-k search, contact sheets.

  store.py          the INDEX directory: index.json, manifest.jsonl, embeddings_NNNNN.npy shards
  search.py         exact top-k inner-product search (chunked jit'd matmul + lax.top_k) and faiss IndexFlatIP
  embed.py          embeds image files into a store (build / incremental add), skipping unreadable ones
  contact_sheet.py  a PNG grid of the hits with rank and score

The command line is rsvlm_jax/tools/index.py.
"""
