"""Numeric feature embeddings: each numeric column becomes a small vector before the body.

Both follow Gorishniy, Rubachev and Babenko (2022), "On Embeddings for Numerical Features in
Tabular Deep Learning" (yandex-research/rtdl-num-embeddings), and the TabM paper (Gorishniy
et al., ICLR 2025) for the piecewise-linear variant:

- `PeriodicEmbeddings` ("PLR"): per feature i, ``ReLU(Linear_i([cos(2 pi w_i x_i),
  sin(2 pi w_i x_i)]))`` with ``n_frequencies`` trainable frequencies ``w_i ~ N(0, sigma^2)``
  (``frequency_init_scale`` = sigma, truncated at 3 sigma as in the package). "Lite" shares one
  Linear across the features.
- `PiecewiseLinearEmbeddings` (version "B" of the package, as in TabM): a linear embedding of
  the value plus a zero-initialised linear map of its piecewise-linear encoding over bins
  computed on the training rows (`compute_bins`: quantiles, or a decision tree's thresholds).

Both take the [batch, n_features] numeric block and return [batch, n_features * d_embedding].
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from archtune.config_groups import BIN_METHODS, NUMERIC_EMBEDDINGS

# "No clipping" for the piecewise-linear encoding's outer bins: finite, so that a network's
# buffers stay finite (checkpoints refuse non-finite state).
UNBOUNDED = 1e30


def _uniform(shape: tuple[int, ...], bound: float, generator: torch.Generator | None) -> torch.Tensor:
    return torch.empty(shape).uniform_(-bound, bound, generator=generator)


class PeriodicEmbeddings(nn.Module):
    """PLR (or PLR-lite) embeddings of ``n_features`` numeric columns.

    Parameters
    ----------
    n_features : int
    d_embedding : int
        Output size per feature (24 in the paper's package).
    n_frequencies : int
        Frequencies per feature (48).
    frequency_init_scale : float
        sigma of the frequencies' initial normal distribution (0.01 by default; the papers
        tune it in [0.01, 1] or wider, log scale).
    lite : bool
        One Linear shared by all features instead of one per feature.
    """

    def __init__(self, n_features: int, d_embedding: int = 24, n_frequencies: int = 48,
                 frequency_init_scale: float = 0.01, lite: bool = False,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.n_features, self.d_embedding, self.lite = n_features, d_embedding, lite
        sigma = frequency_init_scale
        frequencies = torch.randn(n_features, n_frequencies, generator=generator) * sigma
        self.frequencies = nn.Parameter(frequencies.clamp(-3 * sigma, 3 * sigma))
        bound = 1 / math.sqrt(2 * n_frequencies)
        if lite:
            self.weight = nn.Parameter(_uniform((2 * n_frequencies, d_embedding), bound, generator))
            self.bias = nn.Parameter(_uniform((d_embedding,), bound, generator))
        else:
            self.weight = nn.Parameter(_uniform((n_features, 2 * n_frequencies, d_embedding), bound, generator))
            self.bias = nn.Parameter(_uniform((n_features, d_embedding), bound, generator))

    @property
    def width(self) -> int:
        return self.n_features * self.d_embedding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return periodic(x, self.frequencies, self.weight, self.bias, self.lite)


def periodic(x: torch.Tensor, frequencies: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
             lite: bool) -> torch.Tensor:
    """The PLR arithmetic, for one network ([B, F] -> [B, F*d]) or a stack of K (leading K
    dimension on every argument but x)."""
    stacked = frequencies.dim() == 3
    p = 2 * math.pi * x.unsqueeze(-1) * (frequencies.unsqueeze(1) if stacked else frequencies)  # [(K,) B, F, n]
    z = torch.cat([torch.cos(p), torch.sin(p)], dim=-1)  # cos first, then sin: [(K,) B, F, 2n]
    if lite:
        h = z @ (weight.unsqueeze(1) if stacked else weight) + (bias[:, None, None, :] if stacked else bias)
    elif stacked:
        h = torch.einsum("kbfi,kfid->kbfd", z, weight) + bias.unsqueeze(1)
    else:
        h = torch.einsum("bfi,fid->bfd", z, weight) + bias
    return torch.relu(h).flatten(-2)


class PiecewiseLinearEmbeddings(nn.Module):
    """Piecewise-linear embeddings (version "B") of numeric columns over fixed bins.

    Parameters
    ----------
    bins : sequence of sequences of float
        For each feature, its sorted bin edges b_0 < ... < b_T (at least two).
    d_embedding : int
        Output size per feature.

    The encoding of x over edges b is, per bin t = 1..T, ``(x - b_{t-1}) / (b_t - b_{t-1})``
    clipped to [0, 1], except that the first component is only clipped from above and the
    last only from below (values outside the training range extrapolate linearly), and a
    single bin is not clipped at all. The embedding is ``bias + weight * x + encoding @ W``
    with W zero at initialisation.
    """

    def __init__(self, bins: Sequence[Sequence[float]], d_embedding: int = 16,
                 generator: torch.Generator | None = None):
        super().__init__()
        n_features = len(bins)
        n_bins = max(len(edges) - 1 for edges in bins)
        self.n_features, self.d_embedding, self.n_bins = n_features, d_embedding, n_bins
        left = torch.zeros(n_features, n_bins, dtype=torch.float64)
        width = torch.ones(n_features, n_bins, dtype=torch.float64)
        lower = torch.zeros(n_features, n_bins, dtype=torch.float64)
        upper = torch.ones(n_features, n_bins, dtype=torch.float64)
        mask = torch.zeros(n_features, n_bins, dtype=torch.float64)
        for j, edges in enumerate(bins):
            e = torch.tensor([float(v) for v in edges], dtype=torch.float64)
            t = len(e) - 1
            left[j, :t], width[j, :t], mask[j, :t] = e[:-1], e[1:] - e[:-1], 1.0
            lower[j, 0] = -UNBOUNDED  # the first bin extrapolates below the first edge
            upper[j, t - 1] = UNBOUNDED  # the last bin extrapolates above the last edge
        for name, value in (("bin_left", left), ("bin_width", width), ("clip_low", lower), ("clip_high", upper),
                            ("bin_mask", mask)):
            self.register_buffer(name, value.float())
        bound = 1 / math.sqrt(d_embedding)
        self.weight = nn.Parameter(_uniform((n_features, d_embedding), bound, generator))
        self.bias = nn.Parameter(_uniform((n_features, d_embedding), bound, generator))
        self.encoding_weight = nn.Parameter(torch.zeros(n_features, n_bins, d_embedding))

    @property
    def width(self) -> int:
        return self.n_features * self.d_embedding

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The piecewise-linear encoding [B, F, T] (zeros past a feature's own bins)."""
        return piecewise_linear_encoding(x, *self.bin_buffers())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return piecewise_linear(x, *self.bin_buffers(), self.weight, self.bias, self.encoding_weight)

    def bin_buffers(self) -> tuple[torch.Tensor, ...]:
        """Left edges, widths, clip bounds and mask, each [F, T]."""
        return self.bin_left, self.bin_width, self.clip_low, self.clip_high, self.bin_mask


def piecewise_linear_encoding(x: torch.Tensor, left: torch.Tensor, width: torch.Tensor, lower: torch.Tensor,
                              upper: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    t = (x.unsqueeze(-1) - left.to(x.dtype)) / width.to(x.dtype)
    return torch.clamp(t, min=lower.to(x.dtype), max=upper.to(x.dtype)) * mask.to(x.dtype)


def piecewise_linear(x: torch.Tensor, left: torch.Tensor, width: torch.Tensor, lower: torch.Tensor,
                     upper: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                     encoding_weight: torch.Tensor) -> torch.Tensor:
    """One network's embedding, [B, F] -> [B, F*d] (a stack's: `StackedNetwork._piecewise_linear`)."""
    encoded = piecewise_linear_encoding(x, left, width, lower, upper, mask)  # [B, F, T]
    linear = bias + weight * x.unsqueeze(-1)
    return (linear + torch.einsum("bft,ftd->bfd", encoded, encoding_weight)).flatten(-2)


def compute_bins(X: np.ndarray, n_bins: int = 48, method: str = "quantile", y: np.ndarray | None = None,
                 regression: bool = True, min_samples_leaf: int = 64) -> list[list[float]]:
    """Bin edges for each column of X (training rows): the ``n_bins + 1`` quantiles with
    duplicates removed, or (``method="tree"``) the split thresholds of a decision tree with at
    most ``n_bins`` leaves fitted to y on that column alone, plus the column's min and max.
    A constant column gets the single bin [v, v + 1]."""
    edges: list[list[float]] = []
    for j in range(X.shape[1]):
        column = np.asarray(X[:, j], dtype=np.float64)
        low, high = float(column.min()), float(column.max())
        if high <= low:
            edges.append([low, low + 1.0])
            continue
        if method == "quantile":
            values = np.unique(np.quantile(column, np.linspace(0.0, 1.0, n_bins + 1)))
        else:
            from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

            tree_class = DecisionTreeRegressor if regression else DecisionTreeClassifier
            tree = tree_class(max_leaf_nodes=n_bins, min_samples_leaf=min(min_samples_leaf, max(1, len(column) // 4)),
                              random_state=0).fit(column.reshape(-1, 1), y)
            split = tree.tree_.children_left != tree.tree_.children_right
            values = np.unique(np.concatenate([[low, high], tree.tree_.threshold[split]]))
        edges.append([float(v) for v in values])
    return edges


__all__ = ["BIN_METHODS", "NUMERIC_EMBEDDINGS", "PeriodicEmbeddings", "PiecewiseLinearEmbeddings", "compute_bins",
           "periodic", "piecewise_linear", "piecewise_linear_encoding"]
