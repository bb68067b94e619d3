"""The categorical half of Wide&Deep's wide part: one-hot columns and their crosses.

The network takes one float matrix, in which a categorical column travels as an integer code
(0 = missing or unseen) or as a one-hot block. A linear layer over a one-hot encoding is a
table lookup, so each categorical wide column, each cross of two of them and each cross of
one with a numeric column is an ``nn.Embedding`` of width ``n_outputs`` indexed by a code
computed here from the matrix: the one-hot is never materialised.

A cross of two categorical columns is one-hot over pairs of levels (Cheng et al. 2016's
cross-product transformation). The pair gets an exact code while the two columns have at most
`CROSS_BUCKETS` pairs of levels; beyond that the pair is hashed into `CROSS_BUCKETS` buckets,
and pairs that share a bucket share a weight.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

CROSS_BUCKETS = 2**16
# A prime above any realistic level count, so that (a * prime + b) tells pairs apart before the
# modulo and stays far below int64's range (2^63 > 1e7 levels x 1e6).
HASH_PRIME = 1_000_003


def cross_size(cardinality_a: int, cardinality_b: int) -> int:
    """Rows of a cross's table: every pair of levels plus code 0, or the hash buckets plus 0."""
    pairs = (cardinality_a - 1) * (cardinality_b - 1)
    return pairs + 1 if pairs <= CROSS_BUCKETS else CROSS_BUCKETS + 1


def cross_codes(a: torch.Tensor, b: torch.Tensor, cardinality_a: int, cardinality_b: int) -> torch.Tensor:
    """The code of each row's pair of levels (0 when either level is missing or unseen)."""
    present = (a > 0) & (b > 0)
    levels_b = cardinality_b - 1
    if (cardinality_a - 1) * levels_b <= CROSS_BUCKETS:
        code = (a - 1) * levels_b + b
    else:
        code = (a * HASH_PRIME + b) % CROSS_BUCKETS + 1
    return torch.where(present, code, torch.zeros_like(code))


class WideLevels(nn.Module):
    """Weights per level of the categorical wide columns and of their crosses.

    Parameters
    ----------
    sources : sequence of (start, width, cardinality)
        Each categorical wide column: its code column (width 1) or one-hot block (width = its
        levels) in the input matrix, and its levels + 1.
    category_crosses : sequence of (i, j)
        Pairs of indices into ``sources``: a weight per pair of levels.
    mixed_crosses : sequence of (i, position)
        A slope of the numeric column at ``position`` per level of source ``i``.
    n_outputs : int

    Every table starts at zero and row 0 (missing, unseen) stays zero: no active level.
    """

    def __init__(self, sources: Sequence[tuple[int, int, int]], category_crosses: Sequence[tuple[int, int]],
                 mixed_crosses: Sequence[tuple[int, int]], n_outputs: int):
        super().__init__()
        self.sources = tuple(tuple(int(v) for v in s) for s in sources)
        self.category_crosses = tuple(tuple(int(v) for v in c) for c in category_crosses)
        self.mixed_crosses = tuple(tuple(int(v) for v in c) for c in mixed_crosses)
        cards = [card for _, _, card in self.sources]
        sizes = (cards + [cross_size(cards[i], cards[j]) for i, j in self.category_crosses]
                 + [cards[i] for i, _ in self.mixed_crosses])
        self.tables = nn.ModuleList(nn.Embedding(size, n_outputs, padding_idx=0) for size in sizes)
        for table in self.tables:
            nn.init.zeros_(table.weight)

    def codes(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each source's integer codes [B] (a one-hot block's active level, 1-based)."""
        out = []
        for start, width, card in self.sources:
            if width == 1:
                code = x[:, start].long()
            else:
                levels = torch.arange(1, width + 1, dtype=x.dtype, device=x.device)
                code = (x[:, start:start + width] @ levels).long()
            # A code beyond the table (a matrix built for another model) counts as unseen.
            out.append(torch.where((code > 0) & (code < card), code, torch.zeros_like(code)))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The categorical wide part's contribution [B, n_outputs]."""
        codes = self.codes(x)
        cards = [card for _, _, card in self.sources]
        tables = iter(self.tables)
        total = sum(next(tables)(code) for code in codes)
        for i, j in self.category_crosses:
            total = total + next(tables)(cross_codes(codes[i], codes[j], cards[i], cards[j]))
        for i, position in self.mixed_crosses:
            total = total + next(tables)(codes[i]) * x[:, position:position + 1]
        return total


__all__ = ["CROSS_BUCKETS", "WideLevels", "cross_codes", "cross_size"]
