"""Network surgery: which hidden units of a network can be removed, and removing them.

A *unit layer* is a layer whose output units (Linear outputs, convolution channels, the
shared outputs of TabM's BatchEnsemble layers) reach the next weighted layer only through
per-unit modules: norms, parametric activations, plain activations, dropout, pooling and a
flatten. Removing unit j then means slicing row j out of the layer (weight, bias, adapters),
entry j out of each per-unit module (norm weights and running statistics, the parametric
activation's alpha), and the columns unit j feeds out of the next layer (one column, or a
channel's spatial positions after a flatten). Layers whose outputs pass through anything
else (a residual block's skip connection, a series encoder, a separable convolution) are not
unit layers: their widths are tied to other layers' and are left as they are.

The result is a smaller network, not a masked one; with batch norm (in evaluation mode) or no
norm it computes exactly what the original computes with the removed units' outgoing weights
set to zero. Layer norm normalises over all units of a layer, so removing some changes the
others' values (fine-tuning recovers it).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from archtune.blocks import ParametricActivation
from archtune.models.tabm import LinearBatchEnsemble, LinearEnsemble, TabMBody

# Modules a unit passes through unchanged, one value (or one feature map) per unit.
PASS_THROUGH = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.ReLU, nn.LeakyReLU,
                nn.ELU, nn.SELU, nn.GELU, nn.SiLU, nn.Mish, nn.Tanh, nn.Sigmoid, nn.Softplus, nn.MaxPool2d,
                nn.AvgPool2d, nn.AdaptiveAvgPool2d)
PER_UNIT = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, ParametricActivation)


@dataclass
class UnitLayer:
    """A layer whose output units can be removed.

    producer : nn.Linear, nn.Conv2d or LinearBatchEnsemble
    followers : the per-unit modules with parameters after it (norms, parametric activations)
    consumer : the next weighted layer, or the network's output layer
    repeat : columns of the consumer's input per unit (a channel's H*W positions after a
        flatten; 1 otherwise)
    hidden_index : position in ``hidden_sizes`` (dense layers) or in the conv blocks
    """

    producer: nn.Module
    followers: list[nn.Module]
    consumer: nn.Module
    repeat: int
    kind: str  # "dense" or "conv"
    hidden_index: int

    @property
    def width(self) -> int:
        return int(self.producer.weight.shape[0])


def _sequence(module: nn.Module) -> list[nn.Module]:
    """The body's modules in forward order: Sequentials (and TabM's body) are opened, anything
    else is one opaque step."""
    if isinstance(module, nn.Sequential):
        return [m for child in module for m in _sequence(child)]
    if isinstance(module, TabMBody):
        return _sequence(module.layers)
    return [module]


def _is_producer(module: nn.Module) -> bool:
    return (isinstance(module, (nn.Linear, LinearBatchEnsemble))
            or (isinstance(module, nn.Conv2d) and module.groups == 1))


def _passes_units(module: nn.Module) -> bool:
    if isinstance(module, nn.PReLU):
        return module.num_parameters == 1
    return isinstance(module, PASS_THROUGH + PER_UNIT) or isinstance(module, nn.Flatten)


def unit_layers(net: nn.Module, example: torch.Tensor) -> list[UnitLayer]:
    """The unit layers of a `TabularNetwork`'s body, in forward order.

    Parameters
    ----------
    net : TabularNetwork
    example : tensor of shape (n_rows, n_columns)
        A few input rows; one forward pass in evaluation mode reads the feature-map size
        entering each flatten.
    """
    steps = _sequence(net.body)
    flat_in = _flatten_sizes(net, steps, example)
    layers: list[UnitLayer] = []
    n_dense = n_conv = 0
    for i, step in enumerate(steps):
        if not _is_producer(step):
            continue
        kind = "conv" if isinstance(step, nn.Conv2d) else "dense"
        index = n_conv if kind == "conv" else n_dense
        n_conv, n_dense = n_conv + (kind == "conv"), n_dense + (kind == "dense")
        followers, repeat, consumer = [], 1, None
        for later in steps[i + 1:]:
            if _is_producer(later):
                consumer = later
                break
            if not _passes_units(later):
                break  # an opaque module: this layer's width is tied to something else
            if isinstance(later, nn.Flatten):
                repeat = flat_in.get(id(later), 1)
            if isinstance(later, PER_UNIT):
                followers.append(later)
        else:
            consumer = net.head  # the last hidden layer feeds the output layer
        if consumer is not None and step.weight.shape[0] > 0:
            layers.append(UnitLayer(step, followers, consumer, repeat, kind, index))
    return layers


def _flatten_sizes(net: nn.Module, steps: list[nn.Module], example: torch.Tensor) -> dict[int, int]:
    """Positions per channel (H*W) entering each flatten of the body."""
    flattens = [m for m in steps if isinstance(m, nn.Flatten)]
    if not flattens:
        return {}
    sizes: dict[int, int] = {}
    hooks = [m.register_forward_hook(lambda mod, args, out: sizes.__setitem__(id(mod), int(args[0][0, 0].numel())))
             for m in flattens]
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            net(example[:1])
    finally:
        net.train(was_training)
        for hook in hooks:
            hook.remove()
    return sizes


def unit_view(layer: UnitLayer, consumer_input: torch.Tensor) -> torch.Tensor:
    """The consumer's input [B, ...] as [B, units, positions]: every value a unit feeds the
    next layer (one column, a channel's positions, or one value per TabM member)."""
    x = consumer_input
    if x.dim() == 4:  # a convolution's input [B, C, H, W]
        return x.flatten(2)
    if x.dim() == 3:  # TabM [B, k, units]
        return x.transpose(1, 2)
    return x.reshape(len(x), layer.width, layer.repeat)


def _slice_param(module: nn.Module, name: str, index: torch.Tensor, dim: int) -> None:
    old = getattr(module, name)
    new = old.detach().index_select(dim, index.to(old.device)).clone()
    if isinstance(old, nn.Parameter):
        setattr(module, name, nn.Parameter(new, requires_grad=old.requires_grad))
    else:  # a buffer (running statistics)
        setattr(module, name, new)


def _slice_outputs(module: nn.Module, keep: torch.Tensor) -> None:
    if isinstance(module, LinearBatchEnsemble):
        _slice_param(module, "weight", keep, 0)
        _slice_param(module, "s", keep, 1)
        _slice_param(module, "bias", keep, 1)
        return
    _slice_param(module, "weight", keep, 0)
    if module.bias is not None:
        _slice_param(module, "bias", keep, 0)
    if isinstance(module, nn.Linear):
        module.out_features = len(keep)
    else:
        module.out_channels = len(keep)


def _slice_follower(module: nn.Module, keep: torch.Tensor) -> None:
    if isinstance(module, ParametricActivation):
        _slice_param(module, "alpha", keep, 0)
        return
    for name in ("weight", "bias", "running_mean", "running_var"):
        if getattr(module, name, None) is not None:
            _slice_param(module, name, keep, 0)
    if isinstance(module, nn.LayerNorm):
        module.normalized_shape = (len(keep),)
    else:
        module.num_features = len(keep)


def _slice_inputs(module: nn.Module, keep: torch.Tensor, repeat: int) -> None:
    if repeat > 1:  # a channel's positions are consecutive columns after a flatten
        keep = (keep[:, None] * repeat + torch.arange(repeat)).flatten()
    if isinstance(module, LinearEnsemble):
        _slice_param(module, "weight", keep, 1)
    elif isinstance(module, LinearBatchEnsemble):
        _slice_param(module, "weight", keep, 1)
        _slice_param(module, "r", keep, 1)
    else:
        _slice_param(module, "weight", keep, 1)
        if isinstance(module, nn.Linear):
            module.in_features = len(keep)
        else:
            module.in_channels = len(keep)


def remove_units(net: nn.Module, example: torch.Tensor, keep: dict[int, torch.Tensor]) -> nn.Module:
    """A copy of ``net`` keeping, of unit layer i (in the order of `unit_layers`), the units
    ``keep[i]`` (indices into its current units; layers not in ``keep`` are untouched).
    ``net`` itself is not changed."""
    net = copy.deepcopy(net)
    layers = unit_layers(net, example)
    for i, kept in keep.items():
        layer = layers[i]
        kept = torch.as_tensor(sorted(int(j) for j in kept), dtype=torch.long)
        if len(kept) == 0:
            raise ValueError("a unit layer must keep at least one unit")
        _slice_outputs(layer.producer, kept)
        for follower in layer.followers:
            _slice_follower(follower, kept)
        _slice_inputs(layer.consumer, kept, layer.repeat)
    return net


def zero_outgoing(net: nn.Module, example: torch.Tensor, removed: dict[int, list[int]]) -> nn.Module:
    """A copy of ``net`` with the outgoing weights of the ``removed`` units set to zero (the
    masked network a pruned one must equal)."""
    net = copy.deepcopy(net)
    layers = unit_layers(net, example)
    with torch.no_grad():
        for i, units in removed.items():
            layer = layers[i]
            for j in units:
                columns = slice(j * layer.repeat, (j + 1) * layer.repeat)
                weight = layer.consumer.weight
                if isinstance(layer.consumer, LinearEnsemble):
                    weight[:, j, :] = 0
                else:
                    weight[:, columns] = 0
    return net


__all__ = ["UnitLayer", "remove_units", "unit_layers", "unit_view", "zero_outgoing"]
