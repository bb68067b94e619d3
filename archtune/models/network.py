"""The network every family is wrapped in: the input side (numeric columns, categorical
embeddings, text and image encoders, the wide part) around a family's body, and the output
layer matched to the task."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from archtune.errors import InvalidParameterError
from archtune.layers import initialize_linear
from archtune.models.cnn import build_image_encoder
from archtune.models.registry import get_family
from archtune.models.sequence import SequenceEncoder

if TYPE_CHECKING:
    from archtune.config import ModelConfig


def embedding_dim(cardinality: int) -> int:
    """fastai's rule of thumb for an embedding's width, capped at 50."""
    return int(min(50, max(2, round(1.6 * cardinality**0.56))))


@dataclass(frozen=True)
class InputSpec:
    """The input side of a network, derived from the data.

    The input tensor has ``n_numeric`` float columns followed by one column per categorical
    feature holding its integer code (0 = missing or unseen) as a float.
    """

    n_numeric: int
    cardinalities: tuple[int, ...] = ()
    embedding_dims: tuple[int, ...] = ()
    text: tuple[tuple[int, int], ...] = ()  # (vocabulary, length) of each text column, after the codes
    images: tuple[tuple[int, int, int], ...] = ()  # (C, H, W) of each image-path column, after the text

    @classmethod
    def auto(cls, n_numeric: int, cardinalities: tuple[int, ...],
             text: tuple[tuple[int, int], ...] = (), images: tuple[tuple[int, int, int], ...] = ()) -> "InputSpec":
        return cls(n_numeric, tuple(cardinalities), tuple(embedding_dim(c) for c in cardinalities),
                   tuple((int(v), int(n)) for v, n in text), tuple(tuple(int(d) for d in s) for s in images))

    @property
    def n_columns(self) -> int:
        return (self.n_numeric + len(self.cardinalities) + sum(n for _, n in self.text)
                + sum(c * h * w for c, h, w in self.images))

    @property
    def width(self) -> int:
        """Features after encoding, text encoders excluded (their width depends on the config)."""
        return self.n_numeric + sum(self.embedding_dims)


WIDE_GAIN = 10.0


class TabularNetwork(nn.Module):
    """Input encoding, a family's body, and a linear output layer.

    ``forward`` returns logits for classification (the sigmoid / softmax is fused into the
    loss for numerical stability) and values for regression; ``predict_proba`` applies the
    output activation.
    """

    def __init__(self, spec: InputSpec, body: nn.Module, body_width: int, n_outputs: int, task: str,
                 wide: tuple[int, ...] = (), deep: tuple[int, ...] = (), crosses: tuple[tuple[int, int], ...] = (),
                 text_encoders: list[nn.Module] | None = None, image_encoders: list[nn.Module] | None = None):
        super().__init__()
        self.n_numeric = spec.n_numeric
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
        self.wide = tuple(wide)
        self.deep = tuple(deep)
        self.crosses = tuple(crosses)
        self.head = nn.Linear(body_width, n_outputs)
        if self.wide:
            # Zero-initialised, and scaled by WIDE_GAIN: with Adam a weight moves about one
            # learning rate per step, so a wide weight of 1 would take 1000 steps; the gain is a
            # 10x rate for the wide part alone (the paper trains it with its own optimiser, FTRL).
            self.wide_head = nn.Linear(len(self.wide) + len(self.crosses), n_outputs, bias=False)
            nn.init.zeros_(self.wide_head.weight)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if not self.embeddings and not self.text_encoders and not self.image_encoders:
            return x
        n_codes = len(self.embeddings)
        codes = x[:, self.n_numeric : self.n_numeric + n_codes].long()
        parts = [x[:, : self.n_numeric]]
        parts += [emb(codes[:, i]) for i, emb in enumerate(self.embeddings)]
        start = self.n_numeric + n_codes
        for encoder, length in zip(self.text_encoders, self.text_lengths):
            parts.append(encoder(x[:, start : start + length]))
            start += length
        for encoder, size in zip(self.image_encoders, self.image_sizes):
            parts.append(encoder(x[:, start : start + size]))
            start += size
        return torch.cat(parts, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.wide:
            return self.head(self.body(self.encode(x)))
        wide = [x[:, list(self.wide)], *(x[:, [a]] * x[:, [b]] for a, b in self.crosses)]
        return (self.head(self.body(self.encode(x[:, list(self.deep)])))
                + WIDE_GAIN * self.wide_head(torch.cat(wide, dim=1)))

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.forward(x)
        if self.task == "binary":
            p = torch.sigmoid(logits)
            return torch.cat([1 - p, p], dim=1)
        return torch.softmax(logits, dim=1)

    def hidden_linears(self) -> list[nn.Linear]:
        """The body's Linear layers: those that max-norm constrains."""
        return [m for m in self.body.modules() if isinstance(m, nn.Linear)]


def build_model(
    config: "ModelConfig",
    spec: InputSpec,
    n_outputs: int,
    task: str,
    generator: torch.Generator | None = None,
) -> TabularNetwork:
    """Build the network a `ModelConfig` describes, with weights drawn from ``generator``."""
    if config.arch == "wide_deep":
        if not config.wide.wide_columns:
            raise InvalidParameterError("arch='wide_deep' needs inputs={'wide': [columns]}: the features that "
                                        "go straight to the output layer")
        # The deep path sees its own columns; categorical and text codes (always deep) stay last.
        n_codes = (len(spec.cardinalities) + sum(n for _, n in spec.text)
                   + sum(c * h * w for c, h, w in spec.images))
        spec = InputSpec(len(config.wide.deep_columns) - n_codes, spec.cardinalities, spec.embedding_dims, spec.text,
                         spec.images)
    encoders = [SequenceEncoder(vocabulary, length, config, generator) for vocabulary, length in spec.text]
    images = [build_image_encoder(config, shape, generator) for shape in spec.images]
    in_width = spec.width + sum(e.width for e in encoders) + sum(width for _, width in images)
    arch = config.arch
    if arch == "cnn" and not config.image_shape and spec.images:
        # A table whose image-path columns are read by conv encoders (built from the same
        # conv_blocks, filters, ... as arch='cnn'): after them, the dense layers.
        arch = "mlp"
    body, width = get_family(arch).build(config, in_width, generator)
    net = TabularNetwork(spec, body, width, n_outputs, task, config.wide.wide_columns, config.wide.deep_columns,
                         config.wide.crosses,
                         encoders, [encoder for encoder, _ in images])
    for emb in net.embeddings:
        with torch.no_grad():
            emb.weight.normal_(0.0, 1.0, generator=generator)
    # The output layer is linear in its inputs: Glorot keeps the logits' scale moderate.
    initialize_linear(net.head, "glorot_uniform", generator)
    return net
