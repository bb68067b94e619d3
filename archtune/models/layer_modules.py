"""The small torch modules that declared layers build (archtune.models.layer_list).

Each runs on a batch in the layer list's shapes: a vector (batch, features), a sequence
(batch, steps, channels), an image (batch, channels, height, width). Their attribute names
are part of the bundles' state-dict keys (``inner``, ``rnn``): keep them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class ChannelsLast(nn.Module):
    """Runs a channels-first torch module on a (batch, steps, channels) sequence."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.transpose(1, 2)).transpose(1, 2)


class ApplyFunction(nn.Module):
    """A Lambda layer's function of the batch."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


class PermuteAxes(nn.Module):
    """Permute: reorders the axes after the batch's (``dims`` 1-based, as in Keras)."""

    def __init__(self, dims: tuple[int, ...]):
        super().__init__()
        self.order = (0, *dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.order)


class RepeatAsSteps(nn.Module):
    """RepeatVector: a (batch, features) vector repeated as ``n`` steps."""

    def __init__(self, n: int):
        super().__init__()
        self.n = n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(1).expand(-1, self.n, -1)


class PoolOverSteps(nn.Module):
    """GlobalPool1D: the max or the mean over a sequence's steps."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.max(dim=1).values if self.kind == "max" else x.mean(dim=1)


class RepeatEachStep(nn.Module):
    """UpSampling1D: each step of a sequence repeated ``size`` times."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.repeat_interleave(self.size, dim=1)


class TokenCodes(nn.Module):
    """Embedding's input: the float token codes of the input matrix as indices (out-of-range
    codes clamped)."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.round().clamp(0, self.limit).long()


class ActivityPenalty(nn.Module):
    """Identity that remembers l1 * |x| + l2 * x^2 of its last training input; the trainer
    adds it to the loss (Keras' ActivityRegularization)."""

    adds_to_loss = True  # the trainer's marker (train/ does not import models/)

    def __init__(self, l1: float, l2: float):
        super().__init__()
        self.l1, self.l2 = l1, l2
        self.penalty: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.penalty = self.l1 * x.abs().sum() / len(x) + self.l2 * x.pow(2).sum() / len(x)
        return x


class Recurrent(nn.Module):
    """LSTM/GRU over (batch, steps, features), returning the last step's output (or every
    step's). With a mask value (a `Masking` layer before it), trailing padding steps are
    skipped: each sequence's last real step is its output."""

    def __init__(self, rnn: nn.RNNBase, return_sequences: bool, mask_value: float | None):
        super().__init__()
        self.rnn, self.return_sequences, self.mask_value = rnn, return_sequences, mask_value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mask_value is None:
            out, _ = self.rnn(x)
            if self.return_sequences:
                return out
            if not self.rnn.bidirectional:
                return out[:, -1]
            half = out.shape[-1] // 2  # forward direction's last step, backward's first
            return torch.cat([out[:, -1, :half], out[:, 0, half:]], dim=1)
        real = (x != self.mask_value).any(dim=-1)
        lengths = real.long().sum(dim=1).clamp_min(1)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, hidden = self.rnn(packed)
        if self.return_sequences:
            return nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0]
        h = hidden[0] if isinstance(hidden, tuple) else hidden  # [layers * directions, batch, units]
        return torch.cat([h[-2], h[-1]], dim=1) if self.rnn.bidirectional else h[-1]
