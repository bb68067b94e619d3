"""An explicit layer list ("layers"), compiled to a torch module with shape inference.

For users who want to declare the network themselves, in the vocabulary of Keras:

    from archtune import NeuralClassifier
    from archtune.models.layer_list import Dense, Dropout, BatchNorm, Activation
    model = NeuralClassifier(arch="layers", layers=[Dense(128), BatchNorm(), Activation("relu"),
                                                    Dropout(0.2), Dense(64, activation="relu")])

Shapes exclude the batch dimension and follow Keras: a sequence is (steps, features) and an
image (channels, height, width). The list is the body: archtune adds the task's output layer.
Each layer is a frozen dataclass, so estimators stay cloneable and bundles store the list as
JSON (every layer but `Lambda`, which holds code: archtune never pickles).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from archtune.errors import InvalidParameterError, nearest
from archtune.blocks import ACTIVATIONS, canonical_activation, initialize_linear, make_activation
from archtune.models.registry import register_model

if TYPE_CHECKING:
    from archtune.config import ModelConfig

Shape = tuple[int, ...]


class LayerError(InvalidParameterError):
    """What is wrong with one layer; `check_layers` and `compile_layers` re-raise it as an
    `InvalidParameterError` that starts with the layer's position, ``layers[i]: ``."""


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


# ------------------------------------------------------------------ argument rules
# Every argument of every layer has a rule (a function of the argument's name and value that
# returns what is wrong, or None); `validate_layer` applies them all before any shape work.


def _is_int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(float(value))


def _positive_int(name: str, value: Any) -> str | None:
    if not _is_int(value) or value < 1:
        return f"{name} must be a positive integer; got {name}={value!r}"
    return None


def _at_least_2(name: str, value: Any) -> str | None:
    if not _is_int(value) or value < 2:
        return f"{name} must be an integer >= 2 (code 0 is padding); got {name}={value!r}"
    return None


def _rate(name: str, value: Any) -> str | None:
    if not _is_number(value) or not 0 <= value < 1:
        return f"{name} must be in [0, 1); got {name}={value!r}"
    return None


def _non_negative(name: str, value: Any) -> str | None:
    if not _is_number(value) or value < 0:
        return f"{name} must be a finite number >= 0; got {name}={value!r}"
    return None


def _finite(name: str, value: Any) -> str | None:
    if not _is_number(value):
        return f"{name} must be a finite number; got {name}={value!r}"
    return None


def _flag(name: str, value: Any) -> str | None:
    if not isinstance(value, bool):
        return f"{name} must be True or False; got {name}={value!r}"
    return None


def _positive_ints(name: str, value: Any) -> str | None:
    if not isinstance(value, (tuple, list)) or not value or not all(_is_int(v) and v >= 1 for v in value):
        return f"{name} must be a non-empty tuple of positive integers; got {name}={value!r}"
    return None


def _required_activation(name: str, value: Any) -> str | None:
    if not isinstance(value, str) or canonical_activation(value) not in ACTIVATIONS:
        hint = nearest(value, ACTIVATIONS) if isinstance(value, str) else ""
        return f"{name} must be one of {', '.join(ACTIVATIONS)}; got {name}={value!r}{hint}"
    return None


def _activation_name(name: str, value: Any) -> str | None:
    """An activation name, or None for none (a linear layer)."""
    return None if value is None else _required_activation(name, value)


def _one_of(*options: str) -> Callable[[str, Any], str | None]:
    def rule(name: str, value: Any) -> str | None:
        if not isinstance(value, str) or value not in options:
            hint = nearest(value, options) if isinstance(value, str) else ""
            return f"{name} must be {' or '.join(repr(o) for o in options)}; got {name}={value!r}{hint}"
        return None
    return rule


def _callable(name: str, value: Any) -> str | None:
    return None if callable(value) else f"{name} must be a function of a tensor; got {name}={value!r}"


def validate_layer(layer: Any) -> None:
    """Check every argument of one layer against its class's rules (LayerError if one is bad)."""
    for field in dataclasses.fields(layer):
        value = getattr(layer, field.name)
        why = type(layer).RULES[field.name](field.name, value)
        if why:
            raise LayerError(f"{layer!r}: {why}")


def _init(module: nn.Module, activation: str | None, state: dict) -> nn.Module:
    """The initialiser matched to the activation (He for the ReLU family, Glorot without
    one), drawn from the network's generator as the built-in families do."""
    name = canonical_activation(activation) if activation else "linear"
    initialize_linear(module, ACTIVATIONS[name].auto_init if name in ACTIVATIONS else "glorot_uniform",  # type: ignore[arg-type]
                      state.get("generator"))
    return module


class _ChannelsLast(nn.Module):
    """Runs a channels-first torch module on a (batch, steps, channels) sequence."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.transpose(1, 2)).transpose(1, 2)


class _Fn(nn.Module):
    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


class _Permute(nn.Module):
    def __init__(self, dims: tuple[int, ...]):
        super().__init__()
        self.order = (0, *dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.order)


class _Repeat(nn.Module):
    def __init__(self, n: int):
        super().__init__()
        self.n = n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(1).expand(-1, self.n, -1)


class _GlobalPool1D(nn.Module):
    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.max(dim=1).values if self.kind == "max" else x.mean(dim=1)


class _Repeat1D(nn.Module):
    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.repeat_interleave(self.size, dim=1)


class _Codes(nn.Module):
    """Float token codes from the input matrix as embedding indices (out-of-range -> clamped)."""

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


class _Recurrent(nn.Module):
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


# ------------------------------------------------------------------ the layers


@dataclass(frozen=True)
class Dense:
    units: int
    activation: str | None = None
    RULES = {"units": _positive_int, "activation": _activation_name}

    def build(self, shape: Shape, state: dict) -> tuple[list[nn.Module], Shape]:
        return [_init(nn.Linear(shape[-1], self.units), self.activation, state), *_activation(self.activation)], \
            (*shape[:-1], self.units)


@dataclass(frozen=True)
class Activation:
    name: str
    RULES = {"name": _required_activation}

    def build(self, shape, state):
        return _activation(self.name), shape


@dataclass(frozen=True)
class Dropout:
    rate: float
    RULES = {"rate": _rate}

    def build(self, shape, state):
        return [nn.Dropout(self.rate)], shape


@dataclass(frozen=True)
class SpatialDropout1D:
    rate: float
    RULES = {"rate": _rate}

    def build(self, shape, state):
        _need_rank(self, shape, 2)  # it drops whole channels of a sequence
        return [_ChannelsLast(nn.Dropout1d(self.rate))], shape


@dataclass(frozen=True)
class SpatialDropout2D:
    rate: float
    RULES = {"rate": _rate}

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
            return [_ChannelsLast(nn.BatchNorm1d(shape[1]))], shape
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
    RULES = {"target_shape": _positive_ints}

    def build(self, shape, state):
        target = tuple(self.target_shape)
        if math.prod(target) != math.prod(shape):
            raise _fail(self, shape, f"{math.prod(shape)} values cannot be reshaped to {target}")
        return [nn.Unflatten(1, target) if len(shape) == 1 else nn.Sequential(nn.Flatten(), nn.Unflatten(1, target))], target


@dataclass(frozen=True)
class Permute:
    dims: tuple[int, ...]  # 1-based, as in Keras
    RULES = {"dims": _positive_ints}

    def build(self, shape, state):
        dims = tuple(self.dims)
        if sorted(dims) != list(range(1, len(shape) + 1)):
            raise _fail(self, shape, f"dims must be a permutation of 1..{len(shape)}")
        return [_Permute(dims)], tuple(shape[d - 1] for d in dims)


@dataclass(frozen=True)
class RepeatVector:
    n: int
    RULES = {"n": _positive_int}

    def build(self, shape, state):
        _need_rank(self, shape, 1)  # it repeats a vector
        return [_Repeat(self.n)], (self.n, shape[0])


@dataclass(frozen=True)
class Masking:
    mask_value: float = 0.0
    RULES = {"mask_value": _finite}

    def build(self, shape, state):
        state["mask_value"] = self.mask_value  # read by the next recurrent layer
        return [], shape


@dataclass(frozen=True)
class Lambda:
    function: Callable[[torch.Tensor], torch.Tensor]
    RULES = {"function": _callable}

    def build(self, shape, state):
        with torch.no_grad():
            out = self.function(torch.zeros(2, *shape))
        return [_Fn(self.function)], tuple(out.shape[1:])


@dataclass(frozen=True)
class ActivityRegularization:
    l1: float = 0.0
    l2: float = 0.0
    RULES = {"l1": _non_negative, "l2": _non_negative}

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
    RULES = {"filters": _positive_int, "kernel_size": _positive_int, "strides": _positive_int,
             "padding": _one_of("same", "valid"), "activation": _activation_name}

    def build(self, shape, state):
        _need_rank(self, shape, 2)
        conv = _init(nn.Conv1d(shape[1], self.filters, self.kernel_size, self.strides,
                               _padding(self, self.kernel_size, self.padding)), self.activation, state)
        steps = _conv_out(shape[0], self.kernel_size, self.strides, self.padding)
        return [_ChannelsLast(conv), *_activation(self.activation)], (steps, self.filters)


@dataclass(frozen=True)
class Conv2D:
    filters: int
    kernel_size: int
    strides: int = 1
    padding: str = "same"
    activation: str | None = None
    RULES = {"filters": _positive_int, "kernel_size": _positive_int, "strides": _positive_int,
             "padding": _one_of("same", "valid"), "activation": _activation_name}

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
        RULES = {"pool_size": _positive_int}

        def build(self, shape, state):
            _need_rank(self, shape, dims + 1)
            cls = {("max", 1): nn.MaxPool1d, ("avg", 1): nn.AvgPool1d,
                   ("max", 2): nn.MaxPool2d, ("avg", 2): nn.AvgPool2d}[kind, dims]
            module = cls(self.pool_size)
            if dims == 1:
                return [_ChannelsLast(module)], (shape[0] // self.pool_size, shape[1])
            return [module], (shape[0], shape[1] // self.pool_size, shape[2] // self.pool_size)

    Pool.__name__ = Pool.__qualname__ = f"{kind.capitalize()}Pool{dims}D"
    return Pool


MaxPool1D, AvgPool1D, MaxPool2D, AvgPool2D = _pool("max", 1), _pool("avg", 1), _pool("max", 2), _pool("avg", 2)


@dataclass(frozen=True)
class GlobalPool1D:
    kind: str = "max"  # "max" or "avg", over the steps
    RULES = {"kind": _one_of("max", "avg")}

    def build(self, shape, state):
        _need_rank(self, shape, 2)
        return [_GlobalPool1D(self.kind)], (shape[1],)


@dataclass(frozen=True)
class GlobalAvgPool2D:
    RULES: ClassVar[dict] = {}

    def build(self, shape, state):
        _need_rank(self, shape, 3)
        return [nn.AdaptiveAvgPool2d(1), nn.Flatten()], (shape[0],)


@dataclass(frozen=True)
class UpSampling1D:
    size: int = 2
    RULES = {"size": _positive_int}

    def build(self, shape, state):
        _need_rank(self, shape, 2)
        return [_Repeat1D(self.size)], (shape[0] * self.size, shape[1])


@dataclass(frozen=True)
class UpSampling2D:
    size: int = 2
    RULES = {"size": _positive_int}

    def build(self, shape, state):
        _need_rank(self, shape, 3)
        return [nn.Upsample(scale_factor=self.size, mode="nearest")], (shape[0], shape[1] * self.size, shape[2] * self.size)


def _recurrent(cls: type[nn.RNNBase]):
    @dataclass(frozen=True)
    class Recurrent:
        units: int
        return_sequences: bool = False
        bidirectional: bool = False
        RULES = {"units": _positive_int, "return_sequences": _flag, "bidirectional": _flag}

        def build(self, shape, state):
            _need_rank(self, shape, 2)
            rnn = cls(shape[1], self.units, batch_first=True, bidirectional=self.bidirectional)
            width = self.units * (2 if self.bidirectional else 1)
            out = (shape[0], width) if self.return_sequences else (width,)
            return [_Recurrent(rnn, self.return_sequences, state.pop("mask_value", None))], out

    Recurrent.__name__ = Recurrent.__qualname__ = cls.__name__
    return Recurrent


LSTM, GRU = _recurrent(nn.LSTM), _recurrent(nn.GRU)


@dataclass(frozen=True)
class Embedding:
    input_dim: int  # vocabulary size: codes 0 .. input_dim - 1 (0 is padding)
    output_dim: int
    RULES = {"input_dim": _at_least_2, "output_dim": _positive_int}

    def build(self, shape, state):
        _need_rank(self, shape, 1)  # a vector of token codes
        emb = nn.Embedding(self.input_dim, self.output_dim, padding_idx=0)
        return [_Codes(self.input_dim - 1), emb], (shape[0], self.output_dim)


LAYERS: dict[str, type] = {cls.__name__: cls for cls in (
    Dense, Activation, Dropout, SpatialDropout1D, SpatialDropout2D, BatchNorm, LayerNorm, Flatten, Reshape,
    Permute, RepeatVector, Masking, Lambda, ActivityRegularization, Conv1D, Conv2D, MaxPool1D, AvgPool1D,
    MaxPool2D, AvgPool2D, GlobalPool1D, GlobalAvgPool2D, UpSampling1D, UpSampling2D, LSTM, GRU, Embedding)}


def _is_layer(layer: Any) -> bool:
    return type(layer).__name__ in LAYERS and hasattr(layer, "build") and hasattr(type(layer), "RULES")


def check_layers(layers: Any) -> tuple[Any, ...]:
    """The layer list with every argument checked, as layer objects: a dict in the bundle's JSON
    form (``{"type": "Dense", "units": 16, "activation": "relu"}``) is converted. Raises an
    `InvalidParameterError` that starts with ``layers[i]: `` for the first bad layer."""
    if isinstance(layers, Mapping):
        raise InvalidParameterError(f"layers must be a list of layers; got one dict {dict(layers)!r} "
                                    "(wrap it in [...])")
    if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
        raise InvalidParameterError(f"layers must be a list of layers (Dense(64), ...); got layers={layers!r}")
    out = []
    for i, layer in enumerate(layers):
        try:
            if isinstance(layer, Mapping):
                layer = layer_from_dict(layer)
            if not _is_layer(layer):
                raise LayerError(f"{layer!r} is not an archtune layer; use {', '.join(LAYERS)} from "
                                 "archtune.models.layer_list (or their JSON form, {\"type\": \"Dense\", ...})")
            validate_layer(layer)
        except LayerError as exc:
            raise InvalidParameterError(f"layers[{i}]: {exc}") from None
        out.append(layer)
    return tuple(out)


def compile_layers(layers: Sequence[Any], shape: Shape,
                   generator: torch.Generator | None = None) -> tuple[nn.Sequential, Shape]:
    """The torch module of a layer list for inputs of ``shape``, and its output shape.

    Every argument is checked first (`check_layers`), then each layer infers its output shape
    and is run once on a zero batch of its input shape, so that a mismatch is reported here,
    with the layer's position, and not by torch in the middle of training."""
    layers = check_layers(layers)
    modules: list[nn.Module] = []
    state: dict = {"generator": generator}
    shape = tuple(shape)
    sample = torch.zeros(2, *shape)
    for i, layer in enumerate(layers):
        try:
            built, out_shape = layer.build(shape, state)
            out_shape = tuple(out_shape)
        except LayerError as exc:
            raise InvalidParameterError(f"layers[{i}]: {exc}") from None
        except InvalidParameterError:
            raise
        except Exception as exc:  # a Lambda's own code, or torch refusing the arguments
            raise InvalidParameterError(f"layers[{i}]: {layer!r} cannot take input of shape {shape}: "
                                        f"{_one_line(exc)}") from None
        if min(out_shape, default=1) < 1:
            raise InvalidParameterError(f"layers[{i}]: {layer!r} leaves an empty output of shape {out_shape} "
                                        f"from input of shape {shape}")
        try:
            with torch.no_grad():
                for module in built:
                    module.eval()
                    sample = module(sample)
        except Exception as exc:
            raise InvalidParameterError(f"layers[{i}]: {layer!r} cannot take input of shape {shape}: "
                                        f"{_one_line(exc)}") from None
        finally:
            for module in built:
                module.train()
        if sample.dim() == 0 or sample.shape[0] != 2:
            # A Lambda that flattens or slices the batch: every later layer and the loss would
            # see the wrong number of rows.
            raise InvalidParameterError(f"layers[{i}]: {layer!r} changes the batch dimension (2 rows in, "
                                        f"{tuple(sample.shape)} out); layers must keep one output per row")
        if tuple(sample.shape[1:]) != out_shape:
            raise InvalidParameterError(f"layers[{i}]: {layer!r} gives an output of shape {tuple(sample.shape[1:])} "
                                        f"on input of shape {shape}, not the {out_shape} it declares")
        modules += built
        shape = out_shape
    return nn.Sequential(*modules), shape


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def layer_to_dict(layer: Any) -> dict[str, Any]:
    if isinstance(layer, Mapping):  # already in the JSON form (layers=[{"type": ...}])
        layer = layer_from_dict(layer)
    if isinstance(layer, Lambda):
        raise InvalidParameterError("a Lambda layer holds code and cannot be saved (archtune never pickles)")
    fields = {f.name: getattr(layer, f.name) for f in dataclasses.fields(layer)}

    def plain(v: Any) -> Any:
        if isinstance(v, (tuple, list)):
            return [plain(x) for x in v]
        return v.item() if hasattr(v, "item") and not isinstance(v, (bool, int, float, str)) else v

    return {"type": type(layer).__name__, **{k: plain(v) for k, v in fields.items()}}


def layer_from_dict(data: Mapping[str, Any]) -> Any:
    """A layer from its JSON form, ``{"type": "Dense", "units": 16, "activation": "relu"}``.
    Its arguments are checked by `validate_layer` (through `check_layers`), not here."""
    shown = dict(data)
    data = dict(data)
    kind = data.pop("type", None)
    if kind == "Lambda":
        raise LayerError("a Lambda layer holds code and cannot be given as JSON; build it in Python")
    if kind not in LAYERS:
        known = [k for k in LAYERS if k != "Lambda"]
        hint = nearest(kind, known) if isinstance(kind, str) else ""
        what = "has no 'type'" if kind is None else f"has unknown type {kind!r}{hint}"
        raise LayerError(f"{shown!r} {what}; "
                         f"choose from {', '.join(known)}")
    cls = LAYERS[kind]
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            raise LayerError(f"{shown!r}: {kind} has no argument {key!r}{nearest(key, names)}; "
                             f"its arguments are {', '.join(names) or 'none'}")
    missing = [f.name for f in dataclasses.fields(cls)
               if f.name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise LayerError(f"{shown!r}: {kind} needs {' and '.join(repr(m) for m in missing)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


@register_model("layers", uses=("layers",))
def build_layer_list(config: "ModelConfig", in_width: int, generator: torch.Generator | None) -> tuple[nn.Module, int]:
    if not config.layers:
        raise InvalidParameterError("arch='layers' needs layers=[...] (Dense, Conv2D, LSTM, ... from "
                                    "archtune.models.layer_list)")
    # Images (C, H, W) and series (T, F) arrive as flat rows: the list starts from their shape.
    shape: Shape = tuple(config.image_shape or config.series_shape) or (in_width,)
    body, out = compile_layers(config.layers, shape, generator)
    if len(shape) > 1:
        body = nn.Sequential(nn.Unflatten(1, shape), *body)
    if len(out) != 1:
        body = nn.Sequential(*body, nn.Flatten())
    return body, math.prod(out)


def input_scaling(layers: Sequence[Any], arch: str, scaling: str | None) -> str | None:
    """The numeric scaling a network's input gets: none when a declared layer list starts with
    Embedding (token codes must reach it unscaled) or Masking (scaled 0.0 padding would no
    longer equal mask_value, and nothing would be masked); ``scaling`` otherwise."""
    first = check_layers(layers)[:1] if arch == "layers" and layers else ()
    if first and isinstance(first[0], (Embedding, Masking)):
        return None
    return scaling
