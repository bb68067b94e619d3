"""Quantile regression: levels, the non-crossing output head, and the pinball loss.

``NeuralRegressor(loss="quantile", quantiles=(0.1, 0.5, 0.9))`` gives the network one output
per target and level, in the order (output 0: every level, output 1: every level, ...). The
raw outputs ``r`` become quantiles that cannot cross by construction: the first level is
``r_0`` and each following one the previous plus ``softplus(r_j)`` (a cumulative sum of
positive gaps, as the non-crossing heads of Cannon 2018, "Non-crossing nonlinear regression
quantiles by monotone composite quantile regression neural network", and of Chernozhukov et
al. 2010 reach by sorting). The head works in the standardised target space; un-standardising
multiplies by a positive scale, which keeps the order.

The loss is the pinball (check) loss of Koenker & Bassett 1978, ``max(tau * u, (tau - 1) * u)``
with ``u = y - q_tau``, averaged over levels and outputs; rows are weighted as every other loss
(archtune.train.losses). The validation metric stays R^2 of the point prediction: the level
nearest the median.

Kept free of archtune's model code so that the network, the losses and the estimator can all
import it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from archtune.errors import InvalidParameterError

DEFAULT_QUANTILES = (0.1, 0.5, 0.9)


def check_quantiles(quantiles: Any) -> tuple[float, ...]:
    """``quantiles`` as a tuple of floats, strictly increasing, each in (0, 1).

    Raises
    ------
    InvalidParameterError
        Not a non-empty sequence of such numbers.
    """
    problem = f"quantiles must be a non-empty tuple of levels in (0, 1), strictly increasing, such as (0.1, 0.5, 0.9); " \
              f"got quantiles={quantiles!r}"
    if isinstance(quantiles, (str, bytes)) or not isinstance(quantiles, Sequence) or not len(quantiles):
        raise InvalidParameterError(problem)
    levels = []
    for q in quantiles:
        if isinstance(q, bool) or not isinstance(q, (int, float, np.floating, np.integer)) or not 0 < q < 1:
            raise InvalidParameterError(problem)
        levels.append(float(q))
    if any(b <= a for a, b in zip(levels, levels[1:])):
        raise InvalidParameterError(problem)
    return tuple(levels)


def resolve_quantiles(loss: Any, quantiles: Any) -> tuple[float, ...]:
    """The levels an estimator's ``loss`` and ``quantiles`` ask for: () unless
    ``loss="quantile"`` (then `DEFAULT_QUANTILES` for ``quantiles=None``).

    Raises
    ------
    InvalidParameterError
        ``quantiles`` given with another loss, or invalid levels.
    """
    if loss != "quantile":
        if quantiles is not None:
            raise InvalidParameterError(f"quantiles applies to loss='quantile' only (quantile regression); got "
                                        f"quantiles={quantiles!r} with loss={loss!r}")
        return ()
    return DEFAULT_QUANTILES if quantiles is None else check_quantiles(quantiles)


def point_index(quantiles: Sequence[float]) -> int:
    """The level that serves as the point prediction: the one nearest 0.5 (the lower on a tie)."""
    return int(np.argmin([abs(q - 0.5) for q in quantiles]))


def monotone(raw: torch.Tensor, n_quantiles: int) -> torch.Tensor:
    """Raw outputs [..., outputs * n_quantiles] as non-decreasing quantiles per output: the
    first level free, each next one the previous plus softplus of its raw value."""
    if n_quantiles < 2:
        return raw
    grouped = raw.unflatten(-1, (-1, n_quantiles))
    steps = torch.cat([grouped[..., :1], F.softplus(grouped[..., 1:])], dim=-1)
    return torch.cumsum(steps, dim=-1).flatten(-2)


def pinball(pred: torch.Tensor, y: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """The pinball loss of each value: ``pred`` [B, outputs * n_q] or, for TabM's members,
    [B, k, outputs * n_q] against ``y`` [B, outputs]; returns [B, (k,) outputs, n_q]."""
    q = pred.unflatten(-1, (-1, levels.numel()))
    target = (y.unsqueeze(1) if pred.dim() == 3 else y).unsqueeze(-1)
    u = target - q
    return torch.maximum(levels * u, (levels - 1) * u)


def make_pinball_loss(quantiles: Sequence[float], device: torch.device | str = "cpu") -> Any:
    """``loss(outputs, targets, weight=None) -> scalar``: the mean pinball loss over levels,
    outputs (and TabM's members); with ``weight`` (one per row) the weighted mean
    ``sum(w_i l_i) / sum(w_i)`` of archtune.train.losses."""
    from archtune.train.losses import weighted_mean

    levels = torch.tensor(quantiles, dtype=torch.float32, device=device)

    def loss(pred: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        values = pinball(pred, y, levels.to(pred.dtype))
        if weight is None:
            return values.mean()
        return weighted_mean(values, weight, weight)

    return loss


def point(pred: torch.Tensor, quantiles: Sequence[float]) -> torch.Tensor:
    """The point prediction [B, outputs] of quantile outputs [B, outputs * n_q]."""
    return pred.unflatten(-1, (-1, len(quantiles)))[..., point_index(quantiles)]


def make_point_metric(metric: Any, quantiles: Sequence[float]) -> Any:
    """``metric`` (R^2) of the point prediction of quantile outputs."""

    def on_point(pred: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> Any:
        return metric(point(pred, quantiles), y, weight)

    return on_point


def decode(target: Any, outputs: np.ndarray, n_quantiles: int) -> np.ndarray:
    """Network outputs [n, outputs * n_q] (standardised) as quantiles in the target's units:
    shape (n, n_q) for a 1-D target, (n, outputs, n_q) otherwise. Clipping to the training
    range (``clamp_outputs``) is monotone, so the levels still do not cross."""
    values = outputs.reshape(len(outputs), -1, n_quantiles) * target.scale[:, None] + target.mean[:, None]
    if target.low is not None:
        values = np.clip(values, target.low[:, None], target.high[:, None])
    return values[:, 0, :] if target.one_d else values


__all__ = ["DEFAULT_QUANTILES", "check_quantiles", "decode", "make_pinball_loss", "make_point_metric", "monotone",
           "pinball", "point", "point_index", "resolve_quantiles"]
