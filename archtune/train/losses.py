"""Losses and validation metrics, matched to the task.

Binary classification: one logit per row and binary cross-entropy (the sigmoid is fused into
the loss); multiclass: logits and softmax cross-entropy; regression: mse, mae or huber on the
standardised target.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def make_loss(task: str, name: str, class_weights: torch.Tensor | None = None,
              device: torch.device | str = "cpu") -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``loss(outputs, targets)`` for the task; class weights give a weighted mean."""
    weights = class_weights.to(device) if class_weights is not None else None
    if task == "binary":
        if weights is None:
            return F.binary_cross_entropy_with_logits

        def weighted_bce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            w = weights[y.long()]
            per_row = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
            return (w * per_row).sum() / w.sum()

        return weighted_bce
    if task == "multiclass":
        if weights is None:
            return F.cross_entropy
        return lambda logits, y: F.cross_entropy(logits, y, weight=weights)
    if name == "mae":
        return F.l1_loss
    if name == "huber":
        return F.huber_loss
    return F.mse_loss


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
