"""Text columns: recognising them, a simple tokeniser, and vocabularies built from the
training text.

A text column becomes ``length`` columns of token codes in the network's input matrix: 0 is
padding (after the last token), 1 an unknown token, 2.. the vocabulary's tokens, commonest
first. The network embeds the codes and reads them with a sequence encoder
(models/sequence.py).
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pandas as pd

TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]", re.IGNORECASE)
PAD, UNKNOWN = 0, 1
MAX_VOCAB = 20000
MAX_LENGTH = 200
# A string column is text rather than categories when its values are mostly distinct and
# run to several words (SST-2 sentences: 10 words on average, 97% distinct; a "city" column:
# 1-2 words, repeated).
TEXT_MIN_WORDS = 3.0
TEXT_MIN_DISTINCT = 0.3


def tokenize(text: str) -> list[str]:
    """Lower-cased words (with contractions such as "n't" and "'s" kept) and punctuation."""
    return TOKEN.findall(text.lower())


def looks_like_text(values: pd.Series) -> bool:
    present = values.dropna().astype(str)
    if len(present) < 2:
        return False
    sample = present.iloc[:2000]
    words = sample.str.split().str.len().mean()
    return bool(words >= TEXT_MIN_WORDS and present.nunique() / len(present) >= TEXT_MIN_DISTINCT)


def build_vocabulary(values: pd.Series, max_vocab: int = MAX_VOCAB) -> tuple[list[str], int]:
    """(tokens commonest first, sequence length): the length covers 95% of the texts, at most
    MAX_LENGTH tokens, so that a few long texts do not pad every batch."""
    counts: Counter[str] = Counter()
    lengths = []
    for text in values.dropna().astype(str):
        tokens = tokenize(text)
        counts.update(tokens)
        lengths.append(len(tokens))
    vocabulary = [token for token, _ in counts.most_common(max_vocab)]
    length = int(np.clip(np.percentile(lengths, 95) if lengths else 1, 1, MAX_LENGTH))
    return vocabulary, length


def encode_texts(values: pd.Series, vocabulary: list[str], length: int) -> np.ndarray:
    """Token codes [n, length]: padded at the end, cut after ``length`` tokens."""
    lookup = {token: i + 2 for i, token in enumerate(vocabulary)}
    out = np.zeros((len(values), length), dtype=np.int64)
    for row, text in enumerate(values.to_numpy()):
        if not isinstance(text, str) and pd.isna(text):  # NaN, None, pd.NA: no tokens
            continue
        codes = [lookup.get(token, UNKNOWN) for token in tokenize(str(text))[:length]]
        out[row, :len(codes)] = codes
    return out
