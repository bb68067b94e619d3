"""Losses and validation metrics, matched to the task.

Binary classification: one logit per row and binary cross-entropy (the sigmoid is fused into
the loss); multi-label: one logit and binary cross-entropy per label (the metric is the subset
accuracy); multiclass: logits and softmax cross-entropy; regression: mse, mae or huber on the
standardised target.

Sample weights: every loss and metric takes an optional ``weight`` (one value per row, from
``fit(..., sample_weight=...)``). A batch's loss is then the weighted mean
``sum(w_i * l_i) / sum(w_i)``; with class weights c, ``sum(w_i c_i l_i) / sum(w_i c_i)``
(torch's own normalisation of class weights, so the two multiply). The mean rather than the
sum keeps the loss on the scale of the unweighted one whatever the weights' scale, so the
learning rate, the divergence limit and the optimiser's steps mean the same with and without
weights, and a weight of 2 equals a duplicated row within a batch. Without ``weight`` the
arithmetic is exactly the unweighted one. Accuracy and R^2 are weighted as scikit-learn's
``accuracy_score`` and ``r2_score`` weight them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def weighted_mean(values: torch.Tensor, numerator: torch.Tensor, denominator: torch.Tensor,
                  members: bool = False) -> torch.Tensor:
    """``sum_i(n_i * v_i) / sum_i(d_i)`` over the rows of ``values`` [B, ...], every other
    dimension (outputs, TabM's members) averaged; with ``members`` the rows are dimension 1
    of [K, B, ...] and the result has one value per member of a stack, [K]."""
    row_dim = 1 if members else 0
    shape = [1] * values.dim()
    shape[row_dim] = -1
    weighted = numerator.view(shape) * values
    per_row = values.numel() // (values.shape[0] * values.shape[1] if members else values.shape[0])
    total = denominator.sum() * per_row
    if members:
        return weighted.sum(dim=tuple(range(1, values.dim()))) / total
    return weighted.sum() / total


Loss = Callable[..., torch.Tensor]


def make_loss(task: str, name: str, class_weights: torch.Tensor | None = None, device: torch.device | str = "cpu",
              label_smoothing: float = 0.0) -> Loss:
    """``loss(outputs, targets, weight=None)`` for the task; class weights give a weighted mean,
    ``label_smoothing`` mixes that share of a uniform distribution into the class targets, and
    ``weight`` (one per row) gives the weighted mean of the module docstring.

    Outputs of shape [B, k, o] (the k members of a TabM network in training) give the mean of
    the members' losses, as the TabM paper trains them."""
    weights = class_weights.to(device) if class_weights is not None else None
    smoothing = float(label_smoothing)
    if task in ("binary", "multilabel"):  # multilabel: one logit and BCE per label, no class weights
        def binary(logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
            target = y.unsqueeze(1).expand_as(logits) if logits.dim() == 3 else y
            if smoothing:
                target = target * (1 - smoothing) + smoothing / 2
            if weights is None and weight is None:
                return F.binary_cross_entropy_with_logits(logits, target)
            per_row = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
            if weight is None:
                w = weights[y.long()]
                w = w.unsqueeze(1).expand_as(logits) if logits.dim() == 3 else w
                return (w * per_row).sum() / w.sum()
            rows = _row_weights(weight, weights, y.long().view(-1))
            return weighted_mean(per_row, rows, rows)

        return binary
    if task == "multiclass":
        def multiclass(logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
            if weight is not None:
                # One loss per row (and TabM member); torch already multiplies in the class weight.
                per_row = F.cross_entropy(logits.transpose(1, -1) if logits.dim() == 3 else logits,
                                          y.unsqueeze(1).expand(-1, logits.shape[1]) if logits.dim() == 3 else y,
                                          weight=weights, reduction="none", label_smoothing=smoothing)
                return weighted_mean(per_row, weight, _row_weights(weight, weights, y))
            if logits.dim() == 3:
                logits, y = logits.reshape(-1, logits.shape[-1]), y.repeat_interleave(logits.shape[1])
            return F.cross_entropy(logits, y, weight=weights, label_smoothing=smoothing)

        return multiclass
    elementwise = {"mae": F.l1_loss, "huber": F.huber_loss}.get(name, F.mse_loss)

    def regression(pred: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        target = y.unsqueeze(1).expand_as(pred) if pred.dim() == 3 else y
        if weight is None:
            return elementwise(pred, target)
        return weighted_mean(elementwise(pred, target, reduction="none"), weight, weight)

    return regression


def _row_weights(weight: torch.Tensor, class_weights: torch.Tensor | None, codes: torch.Tensor) -> torch.Tensor:
    """Each row's weight in the normaliser: its sample weight times its class's weight."""
    return weight if class_weights is None else weight * class_weights[codes]


def make_metric(task: str) -> Callable[..., float]:
    """The validation metric ``metric(outputs, targets, weight=None)``: accuracy for
    classification, R^2 (mean over outputs) for regression; weighted as scikit-learn weights
    them."""
    if task == "multilabel":  # subset accuracy: scikit-learn's accuracy_score on indicator matrices
        def subset(logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> float:
            correct = ((logits > 0).float() == y).all(dim=-1).float()
            return float(correct.mean() if weight is None else weighted_mean(correct, weight, weight))

        return subset
    if task == "binary":
        def binary(logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> float:
            correct = ((logits > 0).float() == y).float()
            return float(correct.mean() if weight is None else weighted_mean(correct, weight, weight))

        return binary
    if task == "multiclass":
        def multiclass(logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> float:
            correct = (logits.argmax(dim=1) == y).float()
            return float(correct.mean() if weight is None else weighted_mean(correct, weight, weight))

        return multiclass

    def r2(pred: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> float:
        if weight is not None:
            return float(_weighted_r2(pred.unsqueeze(0), y, weight)[0])
        residual = ((y - pred) ** 2).sum(dim=0)
        total = ((y - y.mean(dim=0)) ** 2).sum(dim=0).clamp_min(1e-12)
        return float((1 - residual / total).mean())

    return r2


def _weighted_r2(pred: torch.Tensor, y: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """R^2 per member of ``pred`` [K, n, o] against ``y`` [n, o] with row weights, as
    scikit-learn's ``r2_score(..., sample_weight=...)``: the mean over outputs, [K]."""
    w = weight.view(-1, 1).to(pred.dtype)
    mean = (w * y).sum(dim=0) / w.sum()
    residual = (w * (y - pred) ** 2).sum(dim=1)
    total = (w * (y - mean) ** 2).sum(dim=0).clamp_min(1e-12)
    return (1 - residual / total).mean(dim=1)


def constant_prediction_loss(task: str, n_classes: int = 2) -> float:
    """Roughly the loss of predicting the prior (classification) or the mean (standardised
    regression): the yardstick against which a loss counts as exploded."""
    import math

    if task == "multilabel":  # the mean BCE of each label's prior is at most log 2
        return math.log(2)
    if task in ("binary", "multiclass"):
        return math.log(max(2, n_classes))
    return 1.0


# --------------------------------------------------------------------------- per member


def make_member_loss(task: str, name: str, class_weights: torch.Tensor | None = None,
                     device: torch.device | str = "cpu", label_smoothing: float = 0.0) -> Loss:
    """Like `make_loss`, for stacked outputs [K, batch, outputs]: one loss per member, [K]."""
    weights = class_weights.to(device) if class_weights is not None else None
    smoothing = float(label_smoothing)
    if task in ("binary", "multilabel"):  # multilabel: one logit and BCE per label, no class weights
        def binary(logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
            target = y.expand_as(logits)
            if smoothing:
                target = target * (1 - smoothing) + smoothing / 2
            per_row = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
            if weight is not None:
                rows = _row_weights(weight, weights, y.long().view(-1))
                return weighted_mean(per_row, rows, rows, members=True)
            if weights is None:
                return per_row.mean(dim=(1, 2))
            w = weights[y.long()]
            return (w * per_row).sum(dim=(1, 2)) / w.sum()

        return binary
    if task == "multiclass":
        def multiclass(logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
            target = y.expand(logits.shape[0], -1)
            per_row = F.cross_entropy(logits.transpose(1, 2), target, weight=weights, reduction="none",
                                      label_smoothing=smoothing)
            if weight is not None:
                return weighted_mean(per_row, weight, _row_weights(weight, weights, y), members=True)
            if weights is None:
                return per_row.mean(dim=1)
            return per_row.sum(dim=1) / weights[y].sum()

        return multiclass
    elementwise = {"mae": F.l1_loss, "huber": F.huber_loss}.get(name, F.mse_loss)

    def regression(pred: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        per_value = elementwise(pred, y.expand_as(pred), reduction="none")
        if weight is None:
            return per_value.mean(dim=(1, 2))
        return weighted_mean(per_value, weight, weight, members=True)

    return regression


def make_member_metric(task: str) -> Callable[..., torch.Tensor]:
    """Like `make_metric`, for stacked outputs: accuracy or mean R^2 per member, [K]."""
    if task == "multilabel":
        def subset(logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
            correct = ((logits > 0).float() == y).all(dim=2).float()
            return correct.mean(dim=1) if weight is None else weighted_mean(correct, weight, weight, True)

        return subset
    if task == "binary":
        def binary(logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
            correct = ((logits > 0).float() == y).float()
            return correct.mean(dim=(1, 2)) if weight is None else weighted_mean(correct, weight, weight, True)

        return binary
    if task == "multiclass":
        def multiclass(logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
            correct = (logits.argmax(dim=2) == y).float()
            return correct.mean(dim=1) if weight is None else weighted_mean(correct, weight, weight, True)

        return multiclass

    def r2(pred: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        if weight is not None:
            return _weighted_r2(pred, y, weight)
        residual = ((y - pred) ** 2).sum(dim=1)
        total = ((y - y.mean(dim=0)) ** 2).sum(dim=0).clamp_min(1e-12)
        return (1 - residual / total).mean(dim=1)

    return r2


def make_padded_member_loss(task: str, name: str, class_weights: torch.Tensor | None = None,
                            device: torch.device | str = "cpu", label_smoothing: float = 0.0) -> Loss:
    """Like `make_member_loss`, for members that each have their own rows: ``loss(outputs
    [K, B, o], targets [K, B, ...], weight [K, B]) -> [K]``, each member's weighted mean over
    its own rows, ``sum(w c l) / sum(w c)`` (c: class weights). A padded row has weight 0 and
    adds nothing, so a member's batch of fewer than B real rows gets exactly the mean its
    fit alone takes (weight 1 for an unweighted row); a member with no real row gets 0."""
    weights = class_weights.to(device) if class_weights is not None else None
    smoothing = float(label_smoothing)

    def normalised(total: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
        return total / torch.where(denominator > 0, denominator, torch.ones_like(denominator))

    if task in ("binary", "multilabel"):
        def binary(logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
            target = y * (1 - smoothing) + smoothing / 2 if smoothing else y
            per_row = F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(dim=2)
            rows = weight if weights is None else weight * weights[y.long()[..., 0]]
            return normalised((rows * per_row).sum(dim=1), rows.sum(dim=1) * logits.shape[2])

        return binary
    if task == "multiclass":
        def multiclass(logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
            # torch multiplies each row's loss by its class weight already.
            per_row = F.cross_entropy(logits.transpose(1, 2), y, weight=weights, reduction="none",
                                      label_smoothing=smoothing)
            rows = weight if weights is None else weight * weights[y]
            return normalised((weight * per_row).sum(dim=1), rows.sum(dim=1))

        return multiclass
    elementwise = {"mae": F.l1_loss, "huber": F.huber_loss}.get(name, F.mse_loss)

    def regression(pred: torch.Tensor, y: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        per_row = elementwise(pred, y, reduction="none").sum(dim=2)
        return normalised((weight * per_row).sum(dim=1), weight.sum(dim=1) * pred.shape[2])

    return regression
