"""Losses given as callables to the estimators in tests/test_custom_losses.py (importable, so
that bundles can save them by their import path)."""

from __future__ import annotations

import torch


def log_cosh(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The mean log-cosh error: mse near 0, mae in the tails."""
    return torch.log(torch.cosh(outputs - targets)).mean()


def weighted_mse(outputs: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The weighted mean squared error, weights per row."""
    per_row = ((outputs - targets) ** 2).mean(dim=1)
    return (weight * per_row).sum() / weight.sum()


def focal(logits: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Multiclass focal loss (Lin et al. 2017) with gamma 2."""
    log_p = torch.log_softmax(logits, dim=1).gather(1, codes.view(-1, 1)).squeeze(1)
    return (-((1 - log_p.exp()) ** 2) * log_p).mean()


def not_a_scalar(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return (outputs - targets) ** 2


def plain_mse(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The mean squared error as archtune's own "mse" computes it (an oracle for the wiring)."""
    return torch.nn.functional.mse_loss(outputs, targets)
