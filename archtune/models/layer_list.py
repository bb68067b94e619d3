"""An explicit layer list ("layers"): the layers, in the vocabulary of Keras.

For users who want to declare the network themselves:

    from archtune import NeuralClassifier
    from archtune.layers import Dense, Dropout, BatchNorm, Activation
    model = NeuralClassifier(arch="layers", layers=[Dense(128), BatchNorm(), Activation("relu"),
                                                    Dropout(0.2), Dense(64, activation="relu")])

Shapes exclude the batch dimension and follow Keras: a sequence is (steps, features) and an
image (channels, height, width). The list is the body: archtune adds the task's output layer.
Each layer is a frozen dataclass, so estimators stay cloneable and bundles store the list as
JSON (every layer but `Lambda`, which holds code: archtune never pickles). Its ``RULES`` say
what each argument must be (archtune.models.layer_rules); its ``build(shape, state)`` returns
the torch modules (archtune.models.layer_modules) for an input of ``shape`` and the output
shape. archtune.models.layer_compile checks a list, compiles it and gives its JSON form.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from archtune.blocks import ACTIVATIONS, canonical_activation, initialize_linear, make_activation
from archtune.models import layer_rules as rules
from archtune.models.layer_modules import (
    ActivityPenalty, ApplyFunction, ChannelsLast, PermuteAxes, PoolOverSteps, Recurrent, RepeatAsSteps,
    RepeatEachStep, TokenCodes,
)
from archtune.models.layer_rules import LayerError

Shape = tuple[int, ...]


def _fail(layer: Any, shape: Shape, why: str) -> LayerError:
    return LayerError(f"{layer!r} cannot take input of shape {shape}: {why}")


_RANKS = {1: "a vector of features", 2: "a (steps, channels) sequence", 3: "a (channels, height, width) image"}


def _need_rank(layer: Any, shape: Shape, rank: int) -> None:
    """Refuse an input of another rank, saying which rank the layer needs and which it got."""
    if len(shape) != rank:
        hint = f"; Reshape to {rank} dimensions first" if len(shape) == 1 else ""
        raise _fail(layer, shape, f"it needs {_RANKS[rank]} ({rank} dimension{'s' * (rank > 1)}), "
                                  f"got {len(shape)} dimension{'s' * (len(shape) != 1)}{hint}")


def _activation(name: str | None) -> list[nn.Module]:
    if name is None:
        return []
    name = canonical_activation(name)
    if name not in ACTIVATIONS:
        raise LayerError(f"unknown activation {name!r}; choose from {', '.join(ACTIVATIONS)}")
    return [make_activation(name)]


def _init(module: nn.Module, activation: str | None, state: dict) -> nn.Module:
    """The initialiser matched to the activation (He for the ReLU family, Glorot without
    one), drawn from the network's generator as the built-in families do."""
    name = canonical_activation(activation) if activation else "linear"
    initialize_linear(module, ACTIVATIONS[name].auto_init if name in ACTIVATIONS else "glorot_uniform",  # type: ignore[arg-type]
                      state.get("generator"))
    return module


# ------------------------------------------------------------------ the layers


@dataclass(frozen=True)
class Dense:
    units: int
    activation: str | None = None
    RULES = {"units": rules.positive_int, "activation": rules.activation_or_none}

    def build(self, shape: Shape, state: dict) -> tuple[list[nn.Module], Shape]:
        return [_init(nn.Linear(shape[-1], self.units), self.activation, state), *_activation(self.activation)], \
            (*shape[:-1], self.units)


@dataclass(frozen=True)
class Activation:
    name: str
    RULES = {"name": rules.activation}

    def build(self, shape, state):
        return _activation(self.name), shape


@dataclass(frozen=True)
class Dropout:
    rate: float
    RULES = {"rate": rules.rate}

    def build(self, shape, state):
        return [nn.Dropout(self.rate)], shape


@dataclass(frozen=True)
class SpatialDropout1D:
    rate: float
    RULES = {"rate": rules.rate}

    def build(self, shape, state):
        _need_rank(self, shape, 2)  # it drops whole channels of a sequence
        return [ChannelsLast(nn.Dropout1d(self.rate))], shape


@dataclass(frozen=True)
class SpatialDropout2D:
    rate: float
    RULES = {"rate": rules.rate}

    def build(self, shape, state):
        _need_rank(self, shape, 3)  # it drops whole feature maps of an image
        return [nn.Dropout2d(self.rate)], shape


@dataclass(frozen=True)
class BatchNorm:
    RULES: ClassVar[dict] = {}

    def build(self, shape, state):
        if len(shape) == 1:
            return [nn.BatchNorm1d(shape[0])], shape
        if len(shape) == 2:
            return [ChannelsLast(nn.BatchNorm1d(shape[1]))], shape
        if len(shape) == 3:
            return [nn.BatchNorm2d(shape[0])], shape
        raise _fail(self, shape, f"it needs 1 to 3 dimensions, got {len(shape)}")


@dataclass(frozen=True)
class LayerNorm:
    RULES: ClassVar[dict] = {}

    def build(self, shape, state):
        return [nn.LayerNorm(shape[-1])], shape


@dataclass(frozen=True)
class Flatten:
    RULES: ClassVar[dict] = {}

    def build(self, shape, state):
        return [nn.Flatten()], (math.prod(shape),)


@dataclass(frozen=True)
class Reshape:
    target_shape: tuple[int, ...]
    RULES = {"target_shape": rules.positive_ints}

    def build(self, shape, state):
        target = tuple(self.target_shape)
        if math.prod(target) != math.prod(shape):
            raise _fail(self, shape, f"{math.prod(shape)} values cannot be reshaped to {target}")
        return [nn.Unflatten(1, target) if len(shape) == 1 else nn.Sequential(nn.Flatten(), nn.Unflatten(1, target))], target


@dataclass(frozen=True)
class Permute:
    dims: tuple[int, ...]  # 1-based, as in Keras
    RULES = {"dims": rules.positive_ints}

    def build(self, shape, state):
        dims = tuple(self.dims)
        if sorted(dims) != list(range(1, len(shape) + 1)):
            raise _fail(self, shape, f"dims must be a permutation of 1..{len(shape)}")
        return [PermuteAxes(dims)], tuple(shape[d - 1] for d in dims)


@dataclass(frozen=True)
class RepeatVector:
    n: int
    RULES = {"n": rules.positive_int}

    def build(self, shape, state):
        _need_rank(self, shape, 1)  # it repeats a vector
        return [RepeatAsSteps(self.n)], (self.n, shape[0])


@dataclass(frozen=True)
class Masking:
    mask_value: float = 0.0
    RULES = {"mask_value": rules.finite}

    def build(self, shape, state):
        state["mask_value"] = self.mask_value  # read by the next recurrent layer
        return [], shape


@dataclass(frozen=True)
class Lambda:
    function: Callable[[torch.Tensor], torch.Tensor]
    RULES = {"function": rules.function}

    def build(self, shape, state):
        with torch.no_grad():
            out = self.function(torch.zeros(2, *shape))
        return [ApplyFunction(self.function)], tuple(out.shape[1:])


@dataclass(frozen=True)
class ActivityRegularization:
    l1: float = 0.0
    l2: float = 0.0
    RULES = {"l1": rules.non_negative, "l2": rules.non_negative}

    def build(self, shape, state):
        return [ActivityPenalty(self.l1, self.l2)], shape


def _conv_out(size: int, kernel: int, stride: int, padding: str) -> int:
    return math.ceil(size / stride) if padding == "same" else (size - kernel) // stride + 1


def _padding(layer: Any, kernel: int, padding: str) -> int:
    if padding == "same" and kernel % 2 == 0:
        raise LayerError(f"{layer!r}: padding='same' needs an odd kernel_size; got kernel_size={kernel}")
    return kernel // 2 if padding == "same" else 0


@dataclass(frozen=True)
class Conv1D:
    filters: int
    kernel_size: int
    strides: int = 1
    padding: str = "same"
    activation: str | None = None
    RULES = {"filters": rules.positive_int, "kernel_size": rules.positive_int, "strides": rules.positive_int,
             "padding": rules.one_of("same", "valid"), "activation": rules.activation_or_none}

    def build(self, shape, state):
        _need_rank(self, shape, 2)
        conv = _init(nn.Conv1d(shape[1], self.filters, self.kernel_size, self.strides,
                               _padding(self, self.kernel_size, self.padding)), self.activation, state)
        steps = _conv_out(shape[0], self.kernel_size, self.strides, self.padding)
        return [ChannelsLast(conv), *_activation(self.activation)], (steps, self.filters)


@dataclass(frozen=True)
class Conv2D:
    filters: int
    kernel_size: int
    strides: int = 1
    padding: str = "same"
    activation: str | None = None
    RULES = {"filters": rules.positive_int, "kernel_size": rules.positive_int, "strides": rules.positive_int,
             "padding": rules.one_of("same", "valid"), "activation": rules.activation_or_none}

    def build(self, shape, state):
        _need_rank(self, shape, 3)
        conv = _init(nn.Conv2d(shape[0], self.filters, self.kernel_size, self.strides,
                               _padding(self, self.kernel_size, self.padding)), self.activation, state)
        h, w = (_conv_out(s, self.kernel_size, self.strides, self.padding) for s in shape[1:])
        return [conv, *_activation(self.activation)], (self.filters, h, w)


def _pool(kind: str, dims: int):
    @dataclass(frozen=True)
    class Pool:
        pool_size: int = 2
        RULES = {"pool_size": rules.positive_int}

        def build(self, shape, state):
            _need_rank(self, shape, dims + 1)
            cls = {("max", 1): nn.MaxPool1d, ("avg", 1): nn.AvgPool1d,
                   ("max", 2): nn.MaxPool2d, ("avg", 2): nn.AvgPool2d}[kind, dims]
            module = cls(self.pool_size)
            if dims == 1:
                return [ChannelsLast(module)], (shape[0] // self.pool_size, shape[1])
            return [module], (shape[0], shape[1] // self.pool_size, shape[2] // self.pool_size)

    Pool.__name__ = Pool.__qualname__ = f"{kind.capitalize()}Pool{dims}D"
    return Pool


MaxPool1D, AvgPool1D, MaxPool2D, AvgPool2D = _pool("max", 1), _pool("avg", 1), _pool("max", 2), _pool("avg", 2)


@dataclass(frozen=True)
class GlobalPool1D:
    kind: str = "max"  # "max" or "avg", over the steps
    RULES = {"kind": rules.one_of("max", "avg")}

    def build(self, shape, state):
        _need_rank(self, shape, 2)
        return [PoolOverSteps(self.kind)], (shape[1],)


@dataclass(frozen=True)
class GlobalAvgPool2D:
    RULES: ClassVar[dict] = {}

    def build(self, shape, state):
        _need_rank(self, shape, 3)
        return [nn.AdaptiveAvgPool2d(1), nn.Flatten()], (shape[0],)


@dataclass(frozen=True)
class UpSampling1D:
    size: int = 2
    RULES = {"size": rules.positive_int}

    def build(self, shape, state):
        _need_rank(self, shape, 2)
        return [RepeatEachStep(self.size)], (shape[0] * self.size, shape[1])


@dataclass(frozen=True)
class UpSampling2D:
    size: int = 2
    RULES = {"size": rules.positive_int}

    def build(self, shape, state):
        _need_rank(self, shape, 3)
        return [nn.Upsample(scale_factor=self.size, mode="nearest")], (shape[0], shape[1] * self.size, shape[2] * self.size)


def _recurrent(cls: type[nn.RNNBase]):
    @dataclass(frozen=True)
    class RecurrentLayer:
        units: int
        return_sequences: bool = False
        bidirectional: bool = False
        RULES = {"units": rules.positive_int, "return_sequences": rules.flag, "bidirectional": rules.flag}

        def build(self, shape, state):
            _need_rank(self, shape, 2)
            rnn = cls(shape[1], self.units, batch_first=True, bidirectional=self.bidirectional)
            width = self.units * (2 if self.bidirectional else 1)
            out = (shape[0], width) if self.return_sequences else (width,)
            return [Recurrent(rnn, self.return_sequences, state.pop("mask_value", None))], out

    RecurrentLayer.__name__ = RecurrentLayer.__qualname__ = cls.__name__
    return RecurrentLayer


LSTM, GRU = _recurrent(nn.LSTM), _recurrent(nn.GRU)


@dataclass(frozen=True)
class Embedding:
    input_dim: int  # vocabulary size: codes 0 .. input_dim - 1 (0 is padding)
    output_dim: int
    RULES = {"input_dim": rules.vocabulary_size, "output_dim": rules.positive_int}

    def build(self, shape, state):
        _need_rank(self, shape, 1)  # a vector of token codes
        emb = nn.Embedding(self.input_dim, self.output_dim, padding_idx=0)
        return [TokenCodes(self.input_dim - 1), emb], (shape[0], self.output_dim)


LAYERS: dict[str, type] = {cls.__name__: cls for cls in (
    Dense, Activation, Dropout, SpatialDropout1D, SpatialDropout2D, BatchNorm, LayerNorm, Flatten, Reshape,
    Permute, RepeatVector, Masking, Lambda, ActivityRegularization, Conv1D, Conv2D, MaxPool1D, AvgPool1D,
    MaxPool2D, AvgPool2D, GlobalPool1D, GlobalAvgPool2D, UpSampling1D, UpSampling2D, LSTM, GRU, Embedding)}
