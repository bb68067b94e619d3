"""Figures drawn from the report's data objects (archtune/report/data_types.py), with matplotlib.

matplotlib is an optional extra (``pip install 'archtune[plot]'``), imported when a figure is
drawn. Figures are built as `matplotlib.figure.Figure` objects, not through pyplot: no global
figure registry, no GUI backend, safe in a server or a thread, and rendered by Agg when saved.
"""

from __future__ import annotations

import io
import math
from typing import Any

from archtune.errors import ArchtuneError
from archtune.report.data_types import (DoctorData, HoldoutData, Importances, LeaderboardData, LearningCurves,
                                        LRFinderData, OptimizationHistory, PermutationData)

PLOT_EXTRA = "pip install 'archtune[plot]'"
FIG_SIZE = (6.4, 3.6)
# 640 x 360 pixels for FIG_SIZE, shown at that size: matplotlib's 10-point labels come out at
# about 14 pixels, as large as the page's table text (at 80 dpi they were 11, below it); a PNG
# stays a few tens of kB.
DPI = 100
# The leaderboard chart: its first rows (the candidates a reader compares) and the longest name.
LEADERBOARD_ROWS = 8
NAME_CHARS = 38
# The leaderboard's states and their colours in its chart (networks, classical models, the
# ensemble, bagged refits): matplotlib's default cycle, so that they match the other charts.
STATE_COLOURS = {"COMPLETE": "C0", "BASELINE": "C7", "ENSEMBLE": "C2", "BAG": "C1"}
STATE_NAMES = {"COMPLETE": "network", "BASELINE": "classical model", "ENSEMBLE": "ensemble", "BAG": "bag"}


class PlottingUnavailableError(ArchtuneError, ImportError):
    """matplotlib is not installed: drawing needs the ``plot`` extra."""


def figure(size: tuple[float, float] = FIG_SIZE) -> Any:
    """A new, detached matplotlib Figure.

    Raises
    ------
    PlottingUnavailableError
        matplotlib cannot be imported (an ImportError naming ``archtune[plot]``).
    """
    try:
        # "import matplotlib.figure" (not "from matplotlib.figure import"): it imports the package
        # itself too, so a missing package fails here even when the submodule is cached.
        import matplotlib.figure
    except ImportError as exc:
        raise PlottingUnavailableError(f"plotting needs matplotlib, which is not installed: {PLOT_EXTRA}") from exc
    return matplotlib.figure.Figure(figsize=size, layout="constrained")


def png_bytes(fig: Any) -> bytes:
    """The figure as PNG bytes (Agg)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def draw_learning_curves(data: LearningCurves) -> Any:
    """Loss per epoch (train and validation) and, on a second axis, the validation metric;
    the best epoch marked; the best trials' validation curves dashed behind."""
    fig = figure((6.4, 4.0) if data.trials else FIG_SIZE)
    axes = fig.subplots(1, 2)
    loss_ax, metric_ax = axes
    for name in ("train_loss", "val_loss"):
        if name in data.series:
            loss_ax.plot(data.epochs, _nan(data.series[name]), marker=".", label=name)
    metrics = [n for n in data.series if n.startswith("val_") and n not in ("val_loss", "val_output_std")]
    for name in metrics:
        metric_ax.plot(data.epochs, _nan(data.series[name]), marker=".", label=f"{name} (saved network)")
    for trial in data.trials:
        metric_ax.plot(trial["epochs"], trial["scores"], linestyle="--", alpha=0.5, label=f"trial #{trial['number']}")
    for ax in axes:
        if data.best_epoch:
            ax.axvline(data.best_epoch, color="k", linestyle=":", alpha=0.7, label=f"best epoch {data.best_epoch}")
        ax.set_xlabel("epoch")
        ax.legend(fontsize="x-small")
    loss_ax.set_title("loss", fontsize="small")
    metric_ax.set_title("validation score", fontsize="small")
    return fig


def draw_optimization_history(data: OptimizationHistory) -> Any:
    """Each trial's score against the time it ended (trial number when Optuna did not record
    times), the best so far as a step line, pruned and failed trials marked on the floor."""
    fig = figure()
    ax = fig.add_subplot()
    timed = all(t["seconds"] is not None for t in data.trials)
    x = [t["seconds"] if timed else t["number"] for t in data.trials]
    done = [(xi, t["value"]) for xi, t in zip(x, data.trials) if t["value"] is not None]
    values = [v for _, v in done]
    floor = min(values) if values else 0.0
    if done:
        ax.scatter(*zip(*done), label="completed", zorder=3)
        best = [(xi, t["best_so_far"]) for xi, t in zip(x, data.trials) if t["best_so_far"] is not None]
        ax.step(*zip(*best), where="post", color="k", alpha=0.6, label="best so far")
    for state, marker in (("PRUNED", "v"), ("FAIL", "x")):
        points = [xi for xi, t in zip(x, data.trials) if t["state"] == state]
        if points:
            ax.scatter(points, [floor] * len(points), marker=marker, label=state.lower(), zorder=3)
    ax.set_xlabel("seconds since the search started" if timed else "trial")
    ax.set_ylabel("validation score")
    ax.legend(fontsize="x-small")
    return fig


def draw_param_importances(data: Importances) -> Any:
    """Horizontal bars: each hyperparameter's share of the importance."""
    names = list(data.importances)[::-1]
    fig = figure((6.4, max(1.6, 0.35 * len(names) + 0.8)))
    ax = fig.add_subplot()
    ax.barh(names, [data.importances[n] for n in names])
    ax.set_xlabel(f"importance ({data.evaluator}, sums to 1)")
    return fig


def draw_confusion_matrix(data: HoldoutData) -> Any:
    """Counts of held-out rows by true (rows) and predicted (columns) label."""
    if data.confusion is None:
        raise ValueError("the held-out evaluation has no confusion matrix (a regression run?)")
    n = len(data.confusion)
    fig = figure((max(3.2, 0.6 * n + 2), max(2.8, 0.6 * n + 1.6)))
    ax = fig.add_subplot()
    ax.imshow(data.confusion, cmap="Blues")
    peak = max(max(row) for row in data.confusion) or 1
    for i, row in enumerate(data.confusion):
        for j, count in enumerate(row):
            ax.text(j, i, str(count), ha="center", va="center", color="white" if count > peak / 2 else "black",
                    fontsize="small")
    labels = [str(v) for v in data.labels or range(n)]
    ax.set_xticks(range(n), labels, rotation=45 if n > 4 else 0, fontsize="small")
    ax.set_yticks(range(n), labels, fontsize="small")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    return fig


def draw_calibration(data: HoldoutData) -> Any:
    """The reliability curve of a binary classifier: observed share of positives against the
    mean predicted probability per bin, with the diagonal of perfect calibration."""
    if data.calibration is None:
        raise ValueError("the held-out evaluation has no calibration curve (it needs two classes)")
    fig = figure((4.4, 3.6))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle=":", color="k", alpha=0.6, label="perfect")
    ax.plot(data.calibration["prob_pred"], data.calibration["prob_true"], marker="o", label="network")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("share of positives")
    ax.legend(fontsize="x-small")
    return fig


def draw_residuals(data: HoldoutData) -> Any:
    """Predicted against actual (with the diagonal) and residuals against predicted."""
    if data.points is None:
        raise ValueError("the held-out evaluation has no predicted-vs-actual points (a classification run?)")
    actual, predicted, residual = data.points["actual"], data.points["predicted"], data.points["residual"]
    fig = figure()
    left, right = fig.subplots(1, 2)
    left.scatter(actual, predicted, s=6, alpha=0.5)
    low, high = min(actual + predicted), max(actual + predicted)
    left.plot([low, high], [low, high], color="k", linestyle=":", alpha=0.7)
    left.set_xlabel("actual")
    left.set_ylabel("predicted")
    right.scatter(predicted, residual, s=6, alpha=0.5)
    right.axhline(0.0, color="k", linestyle=":", alpha=0.7)
    right.set_xlabel("predicted")
    right.set_ylabel("actual - predicted")
    for ax in (left, right):  # large values (prices) would crowd the default ticks
        ax.locator_params(axis="x", nbins=4)
    return fig


def draw_prediction_intervals(data: HoldoutData) -> Any:
    """A regressor's conformal prediction intervals on held-out rows: one bar per row from its
    lower to its upper bound, rows sorted by prediction (the line), the true values as dots, red
    where outside their interval; the title gives the empirical coverage."""
    found = data.prediction_interval
    if found is None:
        raise ValueError("the held-out evaluation has no prediction intervals (a classifier, or no calibration)")
    rows = found["rows"]
    order = list(range(len(rows["predicted"])))
    outside = [not (lo <= a <= hi) for lo, a, hi in zip(rows["lower"], rows["actual"], rows["upper"])]
    fig = figure()
    ax = fig.add_subplot()
    ax.vlines(order, rows["lower"], rows["upper"], color="C0", alpha=0.35, linewidth=2,
              label=f"{found['coverage']:.0%} interval")
    ax.plot(order, rows["predicted"], color="C0", linewidth=1.2, label="prediction")
    for miss, colour, label in ((False, "k", "true value, inside"), (True, "C3", "true value, outside")):
        points = [(i, a) for i, a, m in zip(order, rows["actual"], outside) if m == miss]
        if points:
            ax.scatter(*zip(*points), s=9, color=colour, zorder=3, label=label)
    ax.set_xlabel(f"held-out rows sorted by prediction ({len(order)} of {found['n_rows']} drawn)")
    ax.set_ylabel("target")
    ax.set_title(f"{found['coverage']:.0%} intervals hold {found['covered']:.1%} of {found['n_rows']} held-out rows",
                 fontsize="medium")
    ax.legend(fontsize="x-small", loc="upper left")
    return fig


def draw_leaderboard(data: LeaderboardData, top: int = LEADERBOARD_ROWS) -> Any:
    """The validation score of the leaderboard's first ``top`` scored rows (best at the top)
    with their 95% bootstrap intervals where the search kept them; networks, classical models
    and the ensemble in their own colours. The best network is always drawn (last when it is
    below the first rows): the verdict compares it."""
    scored = [r for r in data.rows if r.get("val_score") is not None]
    if not scored:
        raise ValueError("no leaderboard row has a validation score")
    rows = scored[:top]
    network = next((r for r in scored if r.get("state") == "COMPLETE"), None)
    if network is not None and network not in rows:
        rows = rows[:top - 1] + [network]
    fig = figure((6.4, max(2.4, 0.3 * len(rows) + 1.4)))
    ax = fig.add_subplot()
    positions = list(range(len(rows)))[::-1]
    seen: set[str] = set()
    for y, row in zip(positions, rows):
        state = row.get("state") or ""
        colour = STATE_COLOURS.get(state, "C4")
        label = STATE_NAMES.get(state, state.lower())
        low, high = row.get("val_low"), row.get("val_high")
        if low is not None and high is not None:
            ax.hlines(y, low, high, color=colour, linewidth=2, alpha=0.5)
        ax.scatter([row["val_score"]], [y], color=colour, zorder=3, label=None if label in seen else label)
        seen.add(label)
    ax.set_yticks(positions, [_cut(str(r.get("model")), NAME_CHARS) for r in rows], fontsize="small")
    ax.set_xlabel(f"validation {data.metric or 'score'} (lines: 95% bootstrap interval)")
    fig.legend(fontsize="x-small", loc="outside upper center", ncols=len(seen), frameon=False)
    return fig


def draw_permutation_importance(data: PermutationData, top: int = 20) -> Any:
    """The mean drop in the score per shuffled feature (error bars: one standard deviation),
    the ``top`` features."""
    features, mean, std = data.features[:top][::-1], data.mean[:top][::-1], data.std[:top][::-1]
    fig = figure((6.4, max(1.6, 0.3 * len(features) + 0.9)))
    ax = fig.add_subplot()
    ax.barh(features, mean, xerr=std)
    ax.axvline(0.0, color="k", linewidth=0.8)
    ax.set_xlabel(f"drop in {data.metric} when shuffled ({data.n_rows} held-out rows, {data.n_repeats} repeats)")
    return fig


def draw_lr_finder(data: LRFinderData) -> Any:
    """Loss against learning rate (log axis) with the suggestions marked, as
    `LRFinderResult.plot` draws it."""
    if not data.lrs:
        raise ValueError("no learning-rate finder curve was saved with this run")
    from archtune.doctor.lr_finder import draw_curve

    fig = figure()
    draw_curve(fig.add_subplot(), data, legend_size="x-small")
    return fig


def draw_doctor(data: DoctorData) -> Any:
    """How many trials the doctor flagged with each finding code (a search's trials)."""
    counts: dict[str, int] = {}
    for trial in data.trials:
        for code in trial["codes"]:
            counts[code] = counts.get(code, 0) + 1
    if not counts:
        raise ValueError("no trial had a finding")
    fig = figure((6.4, max(1.6, 0.35 * len(counts) + 0.8)))
    ax = fig.add_subplot()
    names = sorted(counts, key=counts.get)
    ax.barh(names, [counts[n] for n in names])
    ax.set_xlabel(f"trials with the finding (of {len(data.trials)} diagnosed)")
    return fig


def _cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def _nan(values: list[float | None]) -> list[float]:
    """None (a missing value in the JSON) as NaN, which matplotlib leaves as a gap."""
    return [math.nan if v is None else v for v in values]


__all__ = ["PLOT_EXTRA", "PlottingUnavailableError", "draw_calibration", "draw_confusion_matrix", "draw_doctor",
           "draw_leaderboard", "draw_learning_curves", "draw_lr_finder", "draw_optimization_history",
           "draw_param_importances", "draw_permutation_importance", "draw_prediction_intervals", "draw_residuals",
           "figure", "png_bytes"]
