"""Losses and validation metrics, matched to the task.

Binary classification: one logit per row and binary cross-entropy (the sigmoid is fused into
the loss); multiclass: logits and softmax cross-entropy; regression: mse, mae or huber on the
standardised target.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def make_loss(task: str, name: str, class_weights: torch.Tensor | None = None, device: torch.device | str = "cpu",
              label_smoothing: float = 0.0) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``loss(outputs, targets)`` for the task; class weights give a weighted mean, and
    ``label_smoothing`` mixes that share of a uniform distribution into the class targets.

    Outputs of shape [B, k, o] (the k members of a TabM network in training) give the mean of
    the members' losses, as the TabM paper trains them."""
    weights = class_weights.to(device) if class_weights is not None else None
    smoothing = float(label_smoothing)
    if task == "binary":
        def binary(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            target = y.unsqueeze(1).expand_as(logits) if logits.dim() == 3 else y
            if smoothing:
                target = target * (1 - smoothing) + smoothing / 2
            if weights is None:
                return F.binary_cross_entropy_with_logits(logits, target)
            w = weights[y.long()]
            w = w.unsqueeze(1).expand_as(logits) if logits.dim() == 3 else w
            per_row = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
            return (w * per_row).sum() / w.sum()

        return binary
    if task == "multiclass":
        def multiclass(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            if logits.dim() == 3:
                logits, y = logits.reshape(-1, logits.shape[-1]), y.repeat_interleave(logits.shape[1])
            return F.cross_entropy(logits, y, weight=weights, label_smoothing=smoothing)

        return multiclass
    elementwise = {"mae": F.l1_loss, "huber": F.huber_loss}.get(name, F.mse_loss)
    return lambda pred, y: elementwise(pred, y.unsqueeze(1).expand_as(pred) if pred.dim() == 3 else y)


def make_metric(task: str) -> Callable[[torch.Tensor, torch.Tensor], float]:
    """The validation metric: accuracy for classification, R^2 (mean over outputs) for regression."""
    if task == "binary":
        return lambda logits, y: float(((logits > 0).float() == y).float().mean())
    if task == "multiclass":
        return lambda logits, y: float((logits.argmax(dim=1) == y).float().mean())

    def r2(pred: torch.Tensor, y: torch.Tensor) -> float:
        residual = ((y - pred) ** 2).sum(dim=0)
        total = ((y - y.mean(dim=0)) ** 2).sum(dim=0).clamp_min(1e-12)
        return float((1 - residual / total).mean())

    return r2


def constant_prediction_loss(task: str, n_classes: int = 2) -> float:
    """Roughly the loss of predicting the prior (classification) or the mean (standardised
    regression): the yardstick against which a loss counts as exploded."""
    import math

    if task in ("binary", "multiclass"):
        return math.log(max(2, n_classes))
    return 1.0


# --------------------------------------------------------------------------- per member


def make_member_loss(task: str, name: str, class_weights: torch.Tensor | None = None,
                     device: torch.device | str = "cpu",
                     label_smoothing: float = 0.0) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Like `make_loss`, for stacked outputs [K, batch, outputs]: one loss per member, [K]."""
    weights = class_weights.to(device) if class_weights is not None else None
    smoothing = float(label_smoothing)
    if task == "binary":
        def binary(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            target = y.expand_as(logits)
            if smoothing:
                target = target * (1 - smoothing) + smoothing / 2
            per_row = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
            if weights is None:
                return per_row.mean(dim=(1, 2))
            w = weights[y.long()]
            return (w * per_row).sum(dim=(1, 2)) / w.sum()

        return binary
    if task == "multiclass":
        def multiclass(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            target = y.expand(logits.shape[0], -1)
            per_row = F.cross_entropy(logits.transpose(1, 2), target, weight=weights, reduction="none",
                                      label_smoothing=smoothing)
            if weights is None:
                return per_row.mean(dim=1)
            return per_row.sum(dim=1) / weights[y].sum()

        return multiclass
    elementwise = {"mae": F.l1_loss, "huber": F.huber_loss}.get(name, F.mse_loss)
    return lambda pred, y: elementwise(pred, y.expand_as(pred), reduction="none").mean(dim=(1, 2))


def make_member_metric(task: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Like `make_metric`, for stacked outputs: accuracy or mean R^2 per member, [K]."""
    if task == "binary":
        return lambda logits, y: ((logits > 0).float() == y).float().mean(dim=(1, 2))
    if task == "multiclass":
        return lambda logits, y: (logits.argmax(dim=2) == y).float().mean(dim=1)

    def r2(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        residual = ((y - pred) ** 2).sum(dim=1)
        total = ((y - y.mean(dim=0)) ** 2).sum(dim=0).clamp_min(1e-12)
        return (1 - residual / total).mean(dim=1)

    return r2
