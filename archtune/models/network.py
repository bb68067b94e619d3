"""The network every family is wrapped in: the input side (numeric columns, categorical
embeddings, text and image encoders, the wide part) around a family's body, and the output
layer matched to the task."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from archtune.errors import InvalidParameterError
from archtune.blocks import initialize_linear
from archtune.models.cnn import build_image_encoder
from archtune.models.embeddings import PeriodicEmbeddings, PiecewiseLinearEmbeddings
from archtune.models.registry import get_family
from archtune.models.sequence import SequenceEncoder
from archtune.models.tabm import LinearEnsemble
from archtune.models.wide import WideLevels
from archtune.quantiles import monotone

if TYPE_CHECKING:
    from archtune.config import ModelConfig


def embedding_dim(cardinality: int) -> int:
    """fastai's rule of thumb for an embedding's width, capped at 50."""
    return int(min(50, max(2, round(1.6 * cardinality**0.56))))


@dataclass(frozen=True)
class InputSpec:
    """The input side of a network, derived from the data.

    The input tensor has ``n_numeric`` float columns (the first ``n_continuous`` of them the
    scaled numeric features, then missing-value indicators and one-hot columns) followed by
    one column per embedded categorical feature holding its integer code (0 = missing or
    unseen) as a float, then text codes and image pixels. ``bins`` are the piecewise-linear
    embedding's bin edges of each numeric feature, computed on the training rows.
    """

    n_numeric: int
    cardinalities: tuple[int, ...] = ()
    embedding_dims: tuple[int, ...] = ()
    text: tuple[tuple[int, int], ...] = ()  # (vocabulary, length) of each text column, after the codes
    images: tuple[tuple[int, int, int], ...] = ()  # (C, H, W) of each image-path column, after the text
    n_continuous: int = 0
    bins: tuple[tuple[float, ...], ...] = ()

    @classmethod
    def auto(cls, n_numeric: int, cardinalities: tuple[int, ...],
             text: tuple[tuple[int, int], ...] = (), images: tuple[tuple[int, int, int], ...] = (),
             n_continuous: int = 0, bins: Sequence[Sequence[float]] = ()) -> "InputSpec":
        return cls(n_numeric, tuple(cardinalities), tuple(embedding_dim(c) for c in cardinalities),
                   tuple((int(v), int(n)) for v, n in text), tuple(tuple(int(d) for d in s) for s in images),
                   int(n_continuous), tuple(tuple(float(v) for v in edges) for edges in bins))

    @property
    def n_columns(self) -> int:
        return (self.n_numeric + len(self.cardinalities) + sum(n for _, n in self.text)
                + sum(c * h * w for c, h, w in self.images))

    @property
    def width(self) -> int:
        """Features after encoding, without numeric embeddings and text encoders (their widths
        depend on the config)."""
        return self.n_numeric + sum(self.embedding_dims)


def numeric_embedding(config: "ModelConfig", spec: InputSpec, generator: torch.Generator | None) -> nn.Module | None:
    """The numeric embedding a config asks for over the spec's numeric features (or None)."""
    kind = config.numeric.kind
    if kind is None or spec.n_continuous == 0 or "numeric_embedding" not in get_family(config.arch).uses:
        return None
    if kind == "piecewise_linear":
        if len(spec.bins) != spec.n_continuous:
            raise InvalidParameterError("numeric_embedding='piecewise_linear' needs the bins of every numeric "
                                        "feature (computed from the training rows in fit)")
        return PiecewiseLinearEmbeddings(spec.bins, config.numeric.d_embedding, generator)
    return PeriodicEmbeddings(spec.n_continuous, config.numeric.d_embedding, config.numeric.n_frequencies,
                              config.numeric.frequency_init_scale, lite=kind == "periodic_lite", generator=generator)


WIDE_GAIN = 10.0


class TabularNetwork(nn.Module):
    """Input encoding, a family's body, and a linear output layer.

    ``forward`` returns logits for classification (the sigmoid / softmax is fused into the
    loss for numerical stability) and values for regression; ``predict_proba`` applies the
    output activation.
    """

    def __init__(self, spec: InputSpec, body: nn.Module, body_width: int, n_outputs: int, task: str,
                 wide: tuple[int, ...] = (), deep: tuple[int, ...] = (), crosses: tuple[tuple[int, int], ...] = (),
                 text_encoders: list[nn.Module] | None = None, image_encoders: list[nn.Module] | None = None,
                 numeric_embedding: nn.Module | None = None, feature_scale: int = 0,
                 wide_levels: WideLevels | None = None):
        super().__init__()
        self.n_numeric = spec.n_numeric
        self.n_continuous = spec.n_continuous if numeric_embedding is not None else 0
        self.numeric_embedding = numeric_embedding
        # RealMLP's front scale: one learned factor per input feature of the body, from 1.
        self.feature_scale = nn.Parameter(torch.ones(feature_scale)) if feature_scale else None
        self.text_lengths = tuple(n for _, n in spec.text)
        self.text_encoders = nn.ModuleList(text_encoders or [])
        self.image_sizes = tuple(c * h * w for c, h, w in spec.images)
        self.image_encoders = nn.ModuleList(image_encoders or [])
        self.task = task
        self.embeddings = nn.ModuleList(
            nn.Embedding(card, dim) for card, dim in zip(spec.cardinalities, spec.embedding_dims)
        )
        self.body = body
        # Wide&Deep: the wide features (and products of pairs of them) skip the body and join
        # its last hidden layer right before the output, so the deep path cannot drown them.
        # Categorical wide columns and their crosses are one-hot weights in ``wide_levels``.
        self.wide = tuple(wide)
        self.wide_levels = wide_levels
        self.deep = tuple(deep)
        self.crosses = tuple(crosses)
        # TabM: a body of k members ([B, k, width]) gets k output layers, and its outputs are
        # averaged at prediction (see forward).
        self.ensemble_size = int(getattr(body, "ensemble_size", 0))  # 0: not an ensemble
        # Quantile regression: n_outputs is targets x levels, made non-crossing in forward
        # (archtune.quantiles.monotone); build_model sets it. 0: plain outputs.
        self.n_quantiles = 0
        self.head = (nn.Linear(body_width, n_outputs) if not self.ensemble_size
                     else LinearEnsemble(body_width, n_outputs, self.ensemble_size))
        if self.wide:
            # Zero-initialised, and scaled by WIDE_GAIN: with Adam a weight moves about one
            # learning rate per step, so a wide weight of 1 would take 1000 steps; the gain is a
            # 10x rate for the wide part alone (the paper trains it with its own optimiser, FTRL).
            self.wide_head = nn.Linear(len(self.wide) + len(self.crosses), n_outputs, bias=False)
            nn.init.zeros_(self.wide_head.weight)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        parts = self._parts(x)
        h = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        return h * self.feature_scale if self.feature_scale is not None else h

    def _parts(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.numeric_embedding is not None:
            parts = [self.numeric_embedding(x[:, :self.n_continuous]), x[:, self.n_continuous:self.n_numeric]]
        else:
            parts = [x[:, :self.n_numeric]]
        if not self.embeddings and not self.text_encoders and not self.image_encoders:
            return parts if self.numeric_embedding is not None else [x]
        n_codes = len(self.embeddings)
        codes = x[:, self.n_numeric:self.n_numeric + n_codes].long()
        parts += [emb(codes[:, i]) for i, emb in enumerate(self.embeddings)]
        start = self.n_numeric + n_codes
        for encoder, length in zip(self.text_encoders, self.text_lengths):
            parts.append(encoder(x[:, start:start + length]))
            start += length
        for encoder, size in zip(self.image_encoders, self.image_sizes):
            parts.append(encoder(x[:, start:start + size]))
            start += size
        return parts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits or values [B, outputs]; a TabM network in training mode returns every
        member's [B, k, outputs] (the loss averages the members' losses)."""
        if not self.wide and self.wide_levels is None:
            out = self.head(self.body(self.encode(x)))
        else:
            out = self.head(self.body(self.encode(x[:, list(self.deep)]))) + WIDE_GAIN * self.wide_part(x)
        if self.n_quantiles > 1:  # before TabM's mean: a mean of non-crossing members does not cross
            out = monotone(out, self.n_quantiles)
        if not self.ensemble_size or self.training:
            return out
        return ensemble_mean(out, self.task)

    def wide_part(self, x: torch.Tensor) -> torch.Tensor:
        """The wide part's contribution [B, outputs], before WIDE_GAIN: numeric wide features and
        their products through ``wide_head``, categorical ones through ``wide_levels``."""
        out = 0
        if self.wide:
            wide = [x[:, list(self.wide)], *(x[:, [a]] * x[:, [b]] for a, b in self.crosses)]
            out = self.wide_head(torch.cat(wide, dim=1))
        if self.wide_levels is not None:
            out = out + self.wide_levels(x)
        return out

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.forward(x)
        if self.task == "multilabel":
            return torch.sigmoid(logits)
        if self.task == "binary":
            p = torch.sigmoid(logits)
            return torch.cat([1 - p, p], dim=1)
        return torch.softmax(logits, dim=1)

    def hidden_linears(self) -> list[nn.Linear]:
        """The body's Linear layers: those that max-norm constrains."""
        return [m for m in self.body.modules() if isinstance(m, nn.Linear)]


def ensemble_mean(out: torch.Tensor, task: str) -> torch.Tensor:
    """Members' outputs [B, k, o] as one prediction [B, o] in the same form: the logits of the
    mean probability (classification) or the mean value (regression)."""
    k = math.log(out.shape[1])
    if task == "multiclass":
        return torch.logsumexp(torch.log_softmax(out, dim=-1), dim=1) - k
    if task in ("binary", "multilabel"):  # per label: the logit of the members' mean probability
        log_p = torch.logsumexp(F.logsigmoid(out), dim=1) - k
        log_q = torch.logsumexp(F.logsigmoid(-out), dim=1) - k
        return log_p - log_q
    return out.mean(dim=1)


def build_model(
    config: "ModelConfig",
    spec: InputSpec,
    n_outputs: int,
    task: str,
    generator: torch.Generator | None = None,
) -> TabularNetwork:
    """Build the network a `ModelConfig` describes, with weights drawn from ``generator``."""
    if config.arch == "wide_deep":
        if not config.wide.active:
            raise InvalidParameterError("arch='wide_deep' needs inputs={'wide': [columns]}: the features that "
                                        "go straight to the output layer")
        # The deep path sees its own columns (numeric ones first, in the order given, then
        # indicators); categorical and text codes (always deep) stay last.
        n_codes = (len(spec.cardinalities) + sum(n for _, n in spec.text)
                   + sum(c * h * w for c, h, w in spec.images))
        continuous = [p for p in config.wide.deep_columns if p < spec.n_continuous]
        spec = InputSpec(len(config.wide.deep_columns) - n_codes, spec.cardinalities, spec.embedding_dims, spec.text,
                         spec.images, len(continuous), tuple(spec.bins[p] for p in continuous) if spec.bins else ())
    embedding = numeric_embedding(config, spec, generator)
    encoders = [SequenceEncoder(vocabulary, length, config, generator) for vocabulary, length in spec.text]
    images = [build_image_encoder(config, shape, generator) for shape in spec.images]
    in_width = (spec.width + sum(e.width for e in encoders) + sum(width for _, width in images)
                + (embedding.width - spec.n_continuous if embedding is not None else 0))
    arch = config.arch
    if arch == "cnn" and not config.image_shape and spec.images:
        # A table whose image-path columns are read by conv encoders (built from the same
        # conv_blocks, filters, ... as arch='cnn'): after them, the dense layers.
        arch = "mlp"
    body, width = get_family(arch).build(config, in_width, generator)
    n_targets = n_outputs
    n_outputs = n_targets * max(1, len(config.quantiles))  # one unit per target and quantile level
    wide = config.wide
    levels = (WideLevels(wide.wide_categorical, wide.wide_category_crosses, wide.wide_mixed_crosses, n_outputs)
              if wide.wide_categorical else None)
    net = TabularNetwork(spec, body, width, n_outputs, task, wide.wide_columns, wide.deep_columns,
                         wide.crosses, encoders, [encoder for encoder, _ in images], embedding,
                         in_width if config.feature_scale else 0, levels)
    net.n_quantiles = len(config.quantiles)
    for emb in net.embeddings:
        with torch.no_grad():
            emb.weight.normal_(0.0, 1.0, generator=generator)
    if not net.ensemble_size:
        # The output layer is linear in its inputs: Glorot keeps the logits' scale moderate.
        initialize_linear(net.head, "glorot_uniform", generator)
    else:
        for member in range(net.ensemble_size):
            bound = 1 / math.sqrt(width)
            with torch.no_grad():
                net.head.weight[member].uniform_(-bound, bound, generator=generator)
                net.head.bias[member].uniform_(-bound, bound, generator=generator)
    return net
