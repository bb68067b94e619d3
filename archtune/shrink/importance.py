"""Importance of hidden units, the ranking structured pruning removes the lowest of.

- ``"magnitude"``: the L1 norm of each unit's incoming weights (a convolution channel's whole
  kernel; a TabM unit's shared weight row times its members' mean |output adapter|), as in Li,
  Kadav, Durdanovic, Samet and Graf (2017), "Pruning Filters for Efficient ConvNets".
- ``"taylor"``: the first-order Taylor estimate of the change in loss when a unit's output is
  set to zero, ``|sum over the unit's values of activation x gradient|`` averaged over rows
  (Molchanov, Tyree, Karras, Aila and Kautz 2017, "Pruning Convolutional Neural Networks for
  Resource Efficient Inference"; Molchanov et al. 2019). The activation is what the unit feeds
  the next layer (after its norm, activation, pooling), so a unit whose output never reaches
  the loss (zero outgoing weights) scores 0.

Both return one score per unit of each unit layer (archtune.shrink.surgery), higher = more
important; `normalise` rescales each layer's scores to unit L2 norm, which makes them
comparable across layers for a global ranking (Molchanov et al. 2017).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from archtune.models.tabm import LinearBatchEnsemble
from archtune.shrink.surgery import UnitLayer, unit_view

IMPORTANCES = ("magnitude", "taylor")
BATCH = 512


def magnitude(layers: list[UnitLayer]) -> list[torch.Tensor]:
    """L1 norm of each unit's incoming weights, per layer: tensors of shape (units,)."""
    scores = []
    with torch.no_grad():
        for layer in layers:
            weight = layer.producer.weight.detach().float()
            score = weight.abs().flatten(1).sum(dim=1)
            if isinstance(layer.producer, LinearBatchEnsemble):
                score = score * layer.producer.s.detach().abs().mean(dim=0)
            scores.append(score.cpu())
    return scores


def taylor(net: nn.Module, layers: list[UnitLayer], X: torch.Tensor, y: torch.Tensor,
           loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> list[torch.Tensor]:
    """Mean over the rows of X of ``|sum over a unit's values of activation x d loss / d activation|``,
    per layer: tensors of shape (units,). The network is evaluated in evaluation mode (no
    dropout) and its weights are not changed.

    Parameters
    ----------
    net : TabularNetwork
    layers : its unit layers
    X : tensor of shape (n_rows, n_columns)
        Preprocessed input rows.
    y : tensor
        Their targets in training form.
    loss_fn : ``loss(outputs, targets) -> scalar``, the mean over rows
    """
    inputs: dict[int, torch.Tensor] = {}

    def keep_input(position: int) -> Callable:
        def hook(module: nn.Module, args: tuple) -> None:
            args[0].retain_grad()
            inputs[position] = args[0]
        return hook

    totals = [torch.zeros(layer.width, dtype=torch.float64) for layer in layers]
    hooks = [layer.consumer.register_forward_pre_hook(keep_input(i)) for i, layer in enumerate(layers)]
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    try:
        for start in range(0, len(X), BATCH):
            xb, yb = X[start:start + BATCH].to(device), y[start:start + BATCH].to(device)
            inputs.clear()
            net.zero_grad(set_to_none=True)
            # The sum over rows: each row's gradient is then its own loss's gradient.
            (loss_fn(net(xb), yb) * len(xb)).backward()
            for i, layer in enumerate(layers):
                a = inputs[i]
                contribution = unit_view(layer, a.detach() * a.grad).sum(dim=2)  # [B, units]
                totals[i] += contribution.abs().sum(dim=0).double().cpu()
    finally:
        for hook in hooks:
            hook.remove()
        net.zero_grad(set_to_none=True)
        net.train(was_training)
    return [(total / max(1, len(X))).float() for total in totals]


def normalise(scores: list[torch.Tensor]) -> list[torch.Tensor]:
    """Each layer's scores divided by their L2 norm (a layer of zeros stays zero)."""
    return [s / s.norm() if s.norm() > 0 else s for s in scores]


__all__ = ["IMPORTANCES", "magnitude", "normalise", "taylor"]
