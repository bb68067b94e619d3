"""The report's pictures from Python: each function takes a run (a fitted estimator, a fitted
AutoNeural* or a run folder) and returns a matplotlib Figure.

Each computes its data first (archtune.report.data: the numbers tests check), then draws it
(archtune.report.plots). matplotlib is the optional extra ``archtune[plot]``; without it these
functions raise `archtune.report.plots.PlottingUnavailableError`, an ImportError naming it.

    from archtune.plotting import plot_learning_curves
    fig = plot_learning_curves(model)          # or "runs/x"
    fig.savefig("curves.png")
"""

from __future__ import annotations

from typing import Any

from archtune.report import data as rd
from archtune.report import plots
from archtune.report.data_types import HoldoutData


def plot_learning_curves(run: Any) -> Any:
    """Train and validation loss and the validation metric per epoch of the network (and a
    search's best trials), the best epoch marked.

    Raises
    ------
    ValueError
        The network has no training history.
    """
    return plots.draw_learning_curves(_need(rd.learning_curves(rd.run_of(run)), "a training history"))


def plot_optimization_history(run: Any) -> Any:
    """Each trial's validation score over the search's time, the best so far, pruned and
    failed trials marked.

    Raises
    ------
    ValueError
        ``run`` is not a search (no Optuna study).
    """
    return plots.draw_optimization_history(_need(rd.optimization_history(rd.run_of(run)), "a search's study"))


def plot_param_importances(run: Any) -> Any:
    """Hyperparameter importances of a search (Optuna's PED-ANOVA, or fANOVA), summing to 1.

    Raises
    ------
    ValueError
        Not a search, or fewer than 3 completed trials whose parameters vary.
    """
    return plots.draw_param_importances(
        _need(rd.importances_data(rd.run_of(run)), "at least 3 completed trials whose parameters vary"))


def plot_confusion_matrix(run: Any, X: Any = None, y: Any = None) -> Any:
    """Counts of held-out rows by true and predicted class: rows (X, y) when given, else the
    run folder's held-out evaluation (evaluation.json).

    Raises
    ------
    ValueError
        No held-out rows (pass X and y), or a regressor.
    """
    return plots.draw_confusion_matrix(_holdout(run, X, y))


def plot_calibration(run: Any, X: Any = None, y: Any = None) -> Any:
    """The reliability curve of a binary classifier on held-out rows (see plot_confusion_matrix)."""
    return plots.draw_calibration(_holdout(run, X, y))


def plot_residuals(run: Any, X: Any = None, y: Any = None) -> Any:
    """Predicted against actual and the residuals of a regressor on held-out rows (see
    plot_confusion_matrix)."""
    return plots.draw_residuals(_holdout(run, X, y))


def plot_permutation_importance(run: Any, X: Any = None, y: Any = None) -> Any:
    """Permutation feature importance of the network on held-out rows (see plot_confusion_matrix;
    `sklearn.inspection.permutation_importance`, 3 repeats)."""
    found = rd.run_of(run)
    if X is not None:
        found.evaluation = rd.evaluate_rows(found, X, y, permutation=True)
    return plots.draw_permutation_importance(_need(rd.permutation_data(found), "held-out rows (pass X and y)"))


def plot_lr_finder(result: Any) -> Any:
    """The learning-rate finder's loss against learning rate, with its suggestions: ``result``
    is what `archtune.lr_find` returns (an LRFinderResult), or a run folder that saved one."""
    if hasattr(result, "lrs") and hasattr(result, "suggestion"):
        return plots.draw_lr_finder(rd.lr_finder_from_result(result))
    return plots.draw_lr_finder(_need(rd.lr_finder_data(rd.run_of(result)), "a learning-rate finder curve"))


def _holdout(run: Any, X: Any, y: Any) -> HoldoutData:
    found = rd.run_of(run)
    if X is not None:
        found.evaluation = rd.evaluate_rows(found, X, y, permutation=False)
    return _need(rd.holdout_data(found), "held-out rows (pass X and y, or a run folder saved with --holdout)")


def _need(value: Any, what: str) -> Any:
    if value is None:
        raise ValueError(f"nothing to plot: this needs {what}")
    return value


__all__ = ["plot_calibration", "plot_confusion_matrix", "plot_learning_curves", "plot_lr_finder",
           "plot_optimization_history", "plot_param_importances", "plot_permutation_importance", "plot_residuals"]
