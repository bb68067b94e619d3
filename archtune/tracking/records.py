"""What experiment tracking records of a trained network, whatever the backend: one trial's
record (`TrialRecord`) and its per-epoch metrics, read from the training history.

The metric names are the history's columns (train_loss, val_loss, val_<metric>, lr) plus
``epoch_seconds``; the step of each is its epoch (1 = the first), as MLflow and TensorBoard
expect a step to be.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

# History columns that are not curves to plot: the epoch is the step, and the spread of the
# validation outputs is the dead-network check's input (archtune.tune.tuner.EpochReporter).
NOT_METRICS = ("epoch", "val_output_std")
RENAMED = {"seconds": "epoch_seconds"}
# MLflow's limits per call (and on old servers, per parameter value).
MAX_PARAM_CHARS = 500


@dataclass
class TrialRecord:
    """One finished trial of a search, as the trackers log it.

    Attributes
    ----------
    number : int
        The Optuna trial number.
    name : str
        The network's name on the leaderboard, e.g. ``"network #3 (mlp)"``.
    state : {"complete", "pruned", "failed"}
    value : float or None
        The trial's validation score (higher is better); None unless complete.
    params : dict
        The estimator parameters the trial trained with (its ``config``).
    searched : list of str
        The names among ``params`` that the sampler chose (the leaderboard's ``params``).
    attrs : dict
        The trial's other results: best_epoch, epochs_run, n_params, fit_seconds,
        pruned_at_epoch, fail_reason, diagnosis (the doctor's summary), ...
    history : list of dict
        The logs of every epoch of its first split, in order (``train_loss``, ``lr``,
        ``val_loss``, ``val_<metric>``, ``seconds``, ``epoch``).
    """

    number: int
    name: str
    state: str
    value: float | None
    params: dict[str, Any]
    searched: list[str] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)


def epoch_metrics(history: list[dict[str, Any]]) -> list[tuple[str, float, int]]:
    """(name, value, step) of every finite number in ``history``, step = the epoch.

    Parameters
    ----------
    history : list of dict
        One dict of logs per epoch, each with its ``epoch`` (1-based; an epoch's position in
        the list + 1 when missing).
    """
    out: list[tuple[str, float, int]] = []
    for position, logs in enumerate(history):
        step = int(logs.get("epoch", position + 1))
        for key, value in logs.items():
            if key in NOT_METRICS or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(float(value)):
                out.append((RENAMED.get(key, key), float(value), step))
    return out


def param_text(value: Any) -> str:
    """A parameter value as a tracking backend stores it: text, cut to `MAX_PARAM_CHARS`."""
    text = str(value)
    return text if len(text) <= MAX_PARAM_CHARS else text[:MAX_PARAM_CHARS - 3] + "..."


__all__ = ["TrialRecord", "epoch_metrics", "param_text"]
