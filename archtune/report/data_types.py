"""The data types of the report's sections: one small dataclass per section, the numbers it
shows. archtune/report/data.py computes them from a run, archtune/report/plots.py draws them,
and archtune/report/html.py embeds them as JSON (`archtune.report.data.to_json`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class LeaderboardData:
    """The verdict sentence (None for a plain fit) and the leaderboard rows, best first: each
    ``{"rank", "model", "params", "val_score", "val_low", "val_high", "fit_seconds", "n_params",
    "state", "note"}`` (missing values None; val_low and val_high: the 95% bootstrap interval of
    the validation score where the search kept the candidate's predictions), as in
    leaderboard.csv."""

    verdict: str | None
    metric: str | None
    rows: list[dict[str, Any]]


@dataclass
class LearningCurves:
    """The saved network's history per epoch: ``epochs`` (1-based), ``series`` (column name ->
    one value per epoch: train_loss, val_loss, val_<metric>, lr...; None where missing),
    ``best_epoch`` (the epoch whose weights were kept); and ``trials``: the validation score
    per epoch of the best trials of a search (`archtune.tune.history.trial_curves`)."""

    epochs: list[int]
    series: dict[str, list[float | None]]
    best_epoch: int | None
    trials: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class OptimizationHistory:
    """Every finished trial in order (`archtune.tune.history.trial_history`: number, state,
    value, seconds, best_so_far, note) and whether the score is maximised."""

    maximize: bool
    trials: list[dict[str, Any]]


@dataclass
class Importances:
    """Hyperparameter importances summing to 1, most important first, and the Optuna
    evaluator that computed them."""

    evaluator: str
    importances: dict[str, float]


@dataclass
class DoctorData:
    """The doctor's findings on the saved network (each ``{"code", "severity", "message",
    "evidence", "advice"}``), the checks it ran, and the summary stored on each trial
    (``{"number", "codes", "worst"}``)."""

    findings: list[dict[str, Any]]
    checked: list[str]
    trials: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class HoldoutData:
    """The held-out evaluation of the saved network (see `archtune.report.evaluation.evaluate`):
    ``task``, ``n_rows``, the run's held-out ``metrics``, ``interval`` (accuracy or R^2 with
    its 95% bootstrap interval, `archtune.report.evaluation.bootstrap_interval`), and
    ``labels`` + ``confusion`` + ``calibration`` (classification) or ``points`` (regression), and
    for a regressor with a conformal calibration ``prediction_interval`` (its intervals on the
    held-out rows and their empirical coverage, `archtune.report.evaluation.prediction_intervals`)."""

    task: str
    n_rows: int
    metrics: dict[str, float]
    interval: dict[str, Any] | None = None
    labels: list[Any] | None = None
    confusion: list[list[int]] | None = None
    calibration: dict[str, list[float]] | None = None
    points: dict[str, list[float]] | None = None
    prediction_interval: dict[str, Any] | None = None


@dataclass
class PermutationData:
    """Permutation feature importance on held-out rows: features by decreasing ``mean`` drop
    in ``metric``, ``std`` over ``n_repeats`` shuffles of ``n_rows`` rows."""

    features: list[str]
    mean: list[float]
    std: list[float]
    metric: str
    n_rows: int
    n_repeats: int
    seconds: float


@dataclass
class NetworkData:
    """The network's modules in forward order: each ``{"name", "type", "output_shape",
    "n_params"}`` (output_shape without the batch axis, None when the module did not run on
    the probe row); ``total_params`` counts every parameter once."""

    input_width: int
    layers: list[dict[str, Any]]
    total_params: int


@dataclass
class LRFinderData:
    """The learning-rate finder: a curve (``lrs``, ``losses``, ``smoothed``, the suggestions)
    when the run saved one (lr_finder.json), and each trial's suggestion from the search."""

    method: str | None = None
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    suggestion: float | None = None
    steepest: float | None = None
    largest_stable: float | None = None
    trials: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class SettingsData:
    """What reproduces the run: package ``versions``, the run's recorded settings (``run``:
    data, target, task, metric, timings, best parameters) and the network's ``params``."""

    versions: dict[str, str]
    run: dict[str, Any]
    params: dict[str, Any]


__all__ = ["DoctorData", "HoldoutData", "Importances", "LRFinderData", "LeaderboardData", "LearningCurves",
           "NetworkData", "OptimizationHistory", "PermutationData", "SettingsData"]
