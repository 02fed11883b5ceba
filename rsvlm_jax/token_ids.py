"""The special token ids of the SentencePiece tokenizer, which the model also takes as its defaults.

A pure module below both data/ (tokenizer) and models/ (caption decoder), so neither imports the other.
"""
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
