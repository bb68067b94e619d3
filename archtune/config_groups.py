"""The configs of the parameter groups that several families share (`ConvConfig`,
`SequenceConfig`, `NumericEmbeddingConfig`, `WideConfig`) and their vocabularies, part of
a `ModelConfig` (archtune.config).

Kept free of PyTorch: archtune/models reads the vocabularies from here, so that checking a
configuration needs no network code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archtune.checks import check_choice, check_number
from archtune.errors import InvalidParameterError

NUMERIC_EMBEDDINGS = (None, "periodic", "periodic_lite", "piecewise_linear")
BIN_METHODS = ("quantile", "tree")
AUGMENTATIONS = ("shift", "flip", "rotate", "crop")
BACKBONES = ("resnet18", "mobilenet_v3_small")  # archtune/models/backbones.py
BACKBONE_WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt")


@dataclass(frozen=True)
class ConvConfig:
    """Convolutional blocks: the body of ``arch="cnn"`` and the encoder of each column of
    image paths (models/cnn.py). ``backbone`` ("resnet18", "mobilenet_v3_small") replaces the
    blocks by a pretrained architecture (models/backbones.py) whose weights fit reads from
    the local file ``backbone_weights`` (models/backbone_weights.py)."""

    conv_blocks: int = 2
    filters: int = 32
    kernel_size: int = 3
    strides: int = 1
    padding: str = "same"
    pooling: str = "max"
    separable: bool = False
    residual: bool = False
    augment: tuple[str, ...] = ("shift", "flip")
    backbone: str | None = None
    backbone_weights: str | None = None

    def __post_init__(self) -> None:
        check_number("conv_blocks", self.conv_blocks, 0, 10, integer=True)
        check_number("filters", self.filters, 1, 4096, integer=True)
        check_number("kernel_size", self.kernel_size, 1, 15, integer=True)
        check_number("strides", self.strides, 1, 8, integer=True)
        check_choice("padding", self.padding, ("same", "valid"))
        if self.kernel_size % 2 == 0 and self.padding == "same":
            raise InvalidParameterError(f"kernel_size must be odd with padding='same' (so that the padding is the "
                                        f"same on both sides); got kernel_size={self.kernel_size}; use an odd size "
                                        "or padding='valid'")
        check_choice("pooling", self.pooling, ("max", "avg", "none"))
        if self.residual and self.padding == "valid":
            raise InvalidParameterError("residual=True needs padding='same': a 'valid' convolution shrinks the "
                                        "image, and the skip connection could no longer be added to it")
        check_choice("separable", self.separable, (True, False))
        check_choice("residual", self.residual, (True, False))
        object.__setattr__(self, "augment", _augmentations(self.augment, AUGMENTATIONS))
        check_choice("backbone", self.backbone, (None, *BACKBONES))
        if self.backbone_weights is not None:  # checked as a path only: a bundle never reads the file
            object.__setattr__(self, "backbone_weights", check_weights_path(self.backbone_weights, self.backbone))


@dataclass(frozen=True)
class SequenceConfig:
    """Sequence encoders: each text column, and the series of ``arch="sequence"``
    (models/sequence.py)."""

    sequence: str = "conv"
    embedding_dim: int = 64
    sequence_units: int = 128
    bidirectional: bool = False

    def __post_init__(self) -> None:
        check_choice("sequence", self.sequence, ("conv", "lstm", "gru"))
        check_number("embedding_dim", self.embedding_dim, 1, 4096, integer=True)
        check_number("sequence_units", self.sequence_units, 1, 4096, integer=True)
        check_choice("bidirectional", self.bidirectional, (True, False))


@dataclass(frozen=True)
class WideConfig:
    """Wide&Deep (``arch="wide_deep"``): where the wide part's inputs sit in the input matrix.

    They are resolved from the estimator's ``inputs`` once the columns are known.

    wide_columns : positions of the numeric wide features (and their missing-value indicators).
    deep_columns : positions of the deep path's columns.
    crosses : pairs of numeric wide positions whose products join the wide part.
    wide_categorical : (start, width, cardinality) of each categorical wide column: its code
        column (width 1) or its one-hot block (width = its levels); cardinality counts the
        levels plus code 0 (missing or unseen, no active level).
    wide_category_crosses : pairs of indices into ``wide_categorical`` whose level pairs are
        one-hot encoded (Cheng et al.'s cross-product transformation).
    wide_mixed_crosses : (index into ``wide_categorical``, numeric position) pairs: a slope of
        the numeric feature per level of the categorical one.
    """

    wide_columns: tuple[int, ...] = ()
    deep_columns: tuple[int, ...] = ()
    crosses: tuple[tuple[int, int], ...] = ()
    wide_categorical: tuple[tuple[int, int, int], ...] = ()
    wide_category_crosses: tuple[tuple[int, int], ...] = ()
    wide_mixed_crosses: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "wide_columns", tuple(int(v) for v in self.wide_columns))
        object.__setattr__(self, "deep_columns", tuple(int(v) for v in self.deep_columns))
        for name in ("crosses", "wide_categorical", "wide_category_crosses", "wide_mixed_crosses"):
            object.__setattr__(self, name, tuple(tuple(int(v) for v in item) for item in getattr(self, name)))

    @property
    def active(self) -> bool:
        """Whether there is a wide part at all."""
        return bool(self.wide_columns or self.wide_categorical)


@dataclass(frozen=True)
class NumericEmbeddingConfig:
    """Numeric feature embeddings of the tabular families (models/embeddings.py): None,
    "periodic" (PLR), "periodic_lite" (one Linear shared by the features) or
    "piecewise_linear" (over ``n_bins`` bins from quantiles or a tree, ``binning``)."""

    numeric_embedding: str | None = None
    d_embedding: int = 24
    n_frequencies: int = 48
    frequency_init_scale: float = 0.01
    n_bins: int = 48
    binning: str = "quantile"

    def __post_init__(self) -> None:
        check_choice("numeric_embedding", self.numeric_embedding, NUMERIC_EMBEDDINGS)
        check_number("d_embedding", self.d_embedding, 1, 1024, integer=True)
        check_number("n_frequencies", self.n_frequencies, 1, 1024, integer=True)
        check_number("frequency_init_scale", self.frequency_init_scale, 0.0, low_open=True)
        check_number("n_bins", self.n_bins, 2, 1024, integer=True)
        check_choice("binning", self.binning, BIN_METHODS)

    @property
    def kind(self) -> str | None:
        return self.numeric_embedding


def _augmentations(value: object, known: tuple[str, ...]) -> tuple[str, ...]:
    """augment: True (shift and flip), False/None, a comma-separated string or a sequence."""
    if isinstance(value, (bool, int)) and value in (0, 1):
        return ("shift", "flip") if value else ()
    if value is None or value == "":
        return ()
    if not isinstance(value, (str, list, tuple)):
        raise InvalidParameterError(f"augment must be True, False, or a comma-separated list of {', '.join(known)}; "
                                    f"got augment={value!r}")
    kinds = tuple(v.strip() for v in value.split(",")) if isinstance(value, str) else tuple(value)
    for kind in kinds:
        check_choice("augment", kind, known)
    return kinds


def check_weights_path(path: Any, backbone: str | None) -> str:
    """``backbone_weights`` as a string path, checked without opening it (a bundle holds the
    path but never reads it): a str or path-like ending in .safetensors, .pth or .pt, given
    with a ``backbone``. Raises InvalidParameterError naming the parameter."""
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise InvalidParameterError(f"backbone_weights must be None or the path of a local .safetensors, .pth or .pt "
                                    f"file; got backbone_weights={path!r}")
    path = os.fspath(path)
    if backbone is None:
        raise InvalidParameterError(f"backbone_weights={path!r} needs backbone: the architecture the file holds "
                                    f"(one of {', '.join(map(repr, BACKBONES))})")
    if not path.lower().endswith(BACKBONE_WEIGHT_SUFFIXES):
        raise InvalidParameterError(f"backbone_weights={path!r} must be a .safetensors file or a torch state dict "
                                    f".pth / .pt file; got the suffix {Path(path).suffix or '(none)'!r}")
    return path


__all__ = ["AUGMENTATIONS", "BACKBONES", "BACKBONE_WEIGHT_SUFFIXES", "BIN_METHODS", "NUMERIC_EMBEDDINGS", "ConvConfig",
           "NumericEmbeddingConfig", "SequenceConfig", "WideConfig", "check_weights_path"]
