"""The knowledge-distillation loss (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in
a Neural Network"), as a `TaskSpec` that the one training path (`archtune.fitting.train`) uses
like any other.

Each row's target is one float vector: ``[hard target(s), hard-label weight, teacher output(s)]``
(`targets`); the loss splits it again. For classification

    loss = alpha * CE(y, student) + (1 - alpha) * T^2 * KL(softmax(t / T) || softmax(s / T))

with the student's own cross-entropy (its label smoothing and class weights) on the hard
labels, the teacher's logits t and the student's s. The T^2 keeps the soft term's gradients on
the hard term's scale as T changes (Hinton et al., section 2). Two classes use one logit and the
Bernoulli KL divergence, as does each label of a multi-label student (the mean over labels).
For regression, in the student's standardised target space,

    loss = alpha * loss(y, student) + (1 - alpha) * loss(teacher, student)

with the student's loss (mse, mae or huber). Rows without a label (``X_unlabeled``, augmented
rows) have hard-label weight 0: the hard term is the ordinary loss over the batch's labelled
rows times their share of the batch, so every row counts once in the mean. Sample weights
weight both terms. With ``alpha=1`` and every row labelled the loss is the ordinary one, to
the bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from archtune.prepared import TaskSpec
from archtune.train.losses import make_loss, make_metric, weighted_mean


def targets(hard: torch.Tensor, hard_weight: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """One float32 row per sample: ``[hard (1 or n_outputs columns), hard weight, teacher]``.

    hard : the student's training-form targets ([n] codes, [n, 1] binary 0/1, [n, o] values)
    hard_weight : [n], 1 for a labelled row, 0 for a row the student only imitates
    teacher : [n, k] the teacher's logits (classification) or standardised predictions
    """
    hard = hard.reshape(len(hard), -1).to(torch.float32)
    return torch.cat([hard, hard_weight.reshape(-1, 1).to(torch.float32), teacher.to(torch.float32)], dim=1)


@dataclass(frozen=True)
class DistillationTask(TaskSpec):
    """A `TaskSpec` whose loss is the distillation loss of the module docstring and whose
    metric is the ordinary one on the hard labels.

    temperature : float
        T > 0, softens both distributions (classification only).
    alpha : float
        Weight of the true labels in [0, 1]: 1 is ordinary training, 0 pure imitation.
    unlabeled : bool
        Some training rows have hard-label weight 0.
    """

    temperature: float = 2.0
    alpha: float = 0.5
    unlabeled: bool = False

    @property
    def n_hard(self) -> int:
        """Columns of the hard target in a row of `targets`."""
        return self.n_outputs if self.task in ("regression", "multilabel") else 1

    def split(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(hard targets in the ordinary loss's form, hard weights [B], teacher outputs [B, k])."""
        hard = y[:, :self.n_hard]
        if self.task == "multiclass":
            hard = hard[:, 0].long()
        return hard, y[:, self.n_hard], y[:, self.n_hard + 1:]

    def loss_fn(self, device: torch.device | str = "cpu") -> Any:
        """``loss(outputs, targets, weight=None) -> scalar``, outputs [B, o] or [B, k, o] (TabM)."""
        ordinary = make_loss(self.task, self.loss, self._weights(), device, self.label_smoothing)
        soft = _soft_loss(self.task, self.loss, float(self.temperature))
        alpha = float(self.alpha)

        def distillation(outputs: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
            hard, hard_weight, teacher = self.split(y)
            total = None
            if alpha > 0:
                total = self._hard_term(ordinary, outputs, hard, hard_weight, weight)
                if alpha == 1:
                    return total  # exactly the ordinary loss: the oracle of tests/test_distill.py
                total = alpha * total
            imitation = (1 - alpha) * soft(outputs, teacher, weight)
            return imitation if total is None else total + imitation

        return distillation

    def _hard_term(self, ordinary: Any, outputs: torch.Tensor, hard: torch.Tensor, hard_weight: torch.Tensor,
                   weight: torch.Tensor | None) -> torch.Tensor:
        if not self.unlabeled:
            return ordinary(outputs, hard) if weight is None else ordinary(outputs, hard, weight)
        rows = hard_weight if weight is None else hard_weight * weight
        labelled = rows.sum()
        if float(labelled) <= 0:  # a batch of teacher-labelled rows only
            return outputs.sum() * 0.0
        share = labelled / (len(rows) if weight is None else weight.sum())
        return ordinary(outputs, hard, rows) * share

    def metric_fn(self) -> Any:
        """The ordinary metric (accuracy or R^2) against the hard labels."""
        metric = make_metric(self.task)

        def on_labels(outputs: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> float:
            hard = self.split(y)[0]
            return metric(outputs, hard) if weight is None else metric(outputs, hard, weight)

        return on_labels

    def member_loss_fn(self, device: torch.device | str = "cpu") -> Any:
        raise NotImplementedError("distillation trains one network at a time, not a stacked cohort")


def _soft_loss(task: str, loss: str, temperature: float) -> Any:
    """``soft(outputs, teacher, weight=None)``: the mean imitation loss per row (times T^2 for
    classification), weighted by ``weight`` when given."""
    T = temperature

    def reduce(per_row: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
        return per_row.mean() if weight is None else weighted_mean(per_row, weight, weight)

    def like(teacher: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        return teacher.unsqueeze(1).expand_as(outputs) if outputs.dim() == 3 else teacher

    if task in ("binary", "multilabel"):  # multi-label: the Bernoulli KL of each label, averaged
        def binary(outputs: torch.Tensor, teacher: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
            t = like(teacher, outputs) / T
            p = torch.sigmoid(t)
            # KL(Bernoulli(p) || Bernoulli(q)) = cross-entropy(p, q) - entropy(p)
            kl = (F.binary_cross_entropy_with_logits(outputs / T, p, reduction="none")
                  - F.binary_cross_entropy_with_logits(t, p, reduction="none"))
            return T * T * reduce(kl, weight)

        return binary
    if task == "multiclass":
        def multiclass(outputs: torch.Tensor, teacher: torch.Tensor,
                       weight: torch.Tensor | None = None) -> torch.Tensor:
            log_p = F.log_softmax(like(teacher, outputs) / T, dim=-1)
            log_q = F.log_softmax(outputs / T, dim=-1)
            kl = (log_p.exp() * (log_p - log_q)).sum(dim=-1)
            return T * T * reduce(kl, weight)

        return multiclass
    elementwise = {"mae": F.l1_loss, "huber": F.huber_loss}.get(loss, F.mse_loss)

    def regression(outputs: torch.Tensor, teacher: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        return reduce(elementwise(outputs, like(teacher, outputs), reduction="none"), weight)

    return regression


__all__ = ["DistillationTask", "targets"]
