"""Sequence encoders for text columns: embedding, spatial dropout, then a 1-D convolution with
global max pooling ("conv"), or an LSTM / GRU ("lstm", "gru", optionally bidirectional) that
skips the padding. Each text column gets one; its output joins the other features before the
body, so any family (mlp, resnet, wide_deep) reads text the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from archtune.blocks import initialize_linear, make_activation, resolve_initializer

if TYPE_CHECKING:
    from archtune.config import ModelConfig

SEQUENCE_KINDS = ("conv", "lstm", "gru")
CONV_KERNEL = 5  # five-token windows: phrases such as "not at all good"
EMBED_INIT = 0.05  # Keras' uniform(-0.05, 0.05)


class SequenceEncoder(nn.Module):
    def __init__(self, vocabulary: int, length: int, config: "ModelConfig", generator: torch.Generator | None):
        super().__init__()
        self.kind = config.sequence.sequence
        self.vocabulary = vocabulary
        self.embedding = nn.Embedding(vocabulary, config.sequence.embedding_dim, padding_idx=0)
        with torch.no_grad():
            self.embedding.weight.uniform_(-EMBED_INIT, EMBED_INIT, generator=generator)
            self.embedding.weight[0] = 0.0
        self.dropout = nn.Dropout1d(config.dropout)  # SpatialDropout1D: whole embedding channels
        units = config.sequence.sequence_units
        if self.kind == "conv":
            self.conv = nn.Conv1d(config.sequence.embedding_dim, units, CONV_KERNEL, padding=CONV_KERNEL // 2)
            initialize_linear(self.conv, resolve_initializer(config.initializer, config.activation), generator)  # type: ignore[arg-type]
            self.activation = make_activation(config.activation)
            self.width = units
        else:
            rnn = nn.LSTM if self.kind == "lstm" else nn.GRU
            self.rnn = rnn(config.sequence.embedding_dim, units, batch_first=True, bidirectional=config.sequence.bidirectional)
            self.width = units * (2 if config.sequence.bidirectional else 1)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        codes = codes.round().clamp(0, self.vocabulary - 1).long()
        h = self.dropout(self.embedding(codes).transpose(1, 2))  # [batch, embedding, steps]
        present = codes > 0
        if self.kind == "conv":
            h = self.activation(self.conv(h))
            # Max over real tokens only; an empty text gives zeros.
            h = h.masked_fill(~present.unsqueeze(1), float("-inf")).max(dim=2).values
            return torch.where(torch.isfinite(h), h, torch.zeros_like(h))
        lengths = present.sum(dim=1).clamp_min(1)
        packed = nn.utils.rnn.pack_padded_sequence(h.transpose(1, 2), lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        _, hidden = self.rnn(packed)
        last = hidden[0] if isinstance(hidden, tuple) else hidden  # [directions, batch, units]
        return torch.cat([last[-2], last[-1]], dim=1) if self.rnn.bidirectional else last[-1]


class SeriesEncoder(nn.Module):
    """Time series rows (T*F values) -> features: Conv1d over the steps + global max pooling,
    or an LSTM / GRU whose last state is the output."""

    def __init__(self, config: "ModelConfig", generator: torch.Generator | None):
        super().__init__()
        self.steps, self.features = config.series_shape
        self.kind = config.sequence.sequence
        units = config.sequence.sequence_units
        if self.kind == "conv":
            self.conv = nn.Conv1d(self.features, units, CONV_KERNEL, padding=CONV_KERNEL // 2)
            initialize_linear(self.conv, resolve_initializer(config.initializer, config.activation), generator)  # type: ignore[arg-type]
            self.activation = make_activation(config.activation)
            self.width = units
        else:
            rnn = nn.LSTM if self.kind == "lstm" else nn.GRU
            self.rnn = rnn(self.features, units, batch_first=True, bidirectional=config.sequence.bidirectional)
            self.width = units * (2 if config.sequence.bidirectional else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(len(x), self.steps, self.features)
        if self.kind == "conv":
            return self.activation(self.conv(x.transpose(1, 2))).max(dim=2).values
        _, hidden = self.rnn(x)
        last = hidden[0] if isinstance(hidden, tuple) else hidden
        return torch.cat([last[-2], last[-1]], dim=1) if self.rnn.bidirectional else last[-1]
