"""A run folder: what a fit or a search leaves in its --out directory, written by library
functions that `archtune fit`, `archtune tune` (and `distill`) call.

A search's folder holds its artefact (archtune.bundles.search: the best network's bundle and, when
another model predicts, that model beside it), ``leaderboard.csv``, ``metrics.json`` (the
settings, validation and held-out metrics of the model that predicts), ``evaluation.json`` (the
held-out rows' confusion matrix or residuals and permutation importance, for the report),
``lr_finder.json`` when the learning rate was found, and the study (``study.db`` or
``study.log``) that `archtune leaderboard` and the report read.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from archtune.data.multilabel import is_multilabel
from archtune.files import atomic_write_bytes, json_bytes
from archtune.task import task_of

STUDY_FILE = "study.db"
JOURNAL_FILE = "study.log"  # the storage of a search run with workers
LEADERBOARD_FILE = "leaderboard.csv"
METRICS_FILE = "metrics.json"


def holdout_metrics(model: Any, X: Any, y: Any) -> dict[str, float]:
    """The metrics of ``model`` on held-out rows: accuracy, balanced accuracy, log loss (and ROC
    AUC for two classes) for a classifier; R^2, RMSE and MAE (averaged over outputs) for a
    regressor."""
    from sklearn import metrics

    if is_multilabel(model):
        return multilabel_metrics(model, X, y)
    if task_of(model).is_classification:
        proba = model.predict_proba(X)
        pred = model.classes_[proba.argmax(axis=1)]
        out = {"accuracy": metrics.accuracy_score(y, pred),
               "balanced_accuracy": metrics.balanced_accuracy_score(y, pred),
               "log_loss": metrics.log_loss(y, proba, labels=model.classes_)}
        if len(model.classes_) == 2:
            out["roc_auc"] = metrics.roc_auc_score(np.asarray(y) == model.classes_[1], proba[:, 1])
        return {k: float(v) for k, v in out.items()}
    pred = model.predict(X)
    return {"r2": float(metrics.r2_score(y, pred)),
            "rmse": float(np.sqrt(metrics.mean_squared_error(y, pred))),
            "mae": float(metrics.mean_absolute_error(y, pred))}


def multilabel_metrics(model: Any, X: Any, y: Any) -> dict[str, float]:
    """A multi-label classifier's held-out metrics (scikit-learn's multilabel conventions):
    subset accuracy, Hamming loss, F1 averaged over rows ("samples") and the macro mean of the
    per-label ROC AUCs (over labels with both values in ``y``)."""
    from sklearn import metrics

    from archtune.data.target import target_array

    truth = model.target_encoder_.encode(target_array(y), "y")
    proba, pred = model.predict_proba(X), model.predict(X)
    both = [j for j in range(truth.shape[1]) if 0 < truth[:, j].sum() < len(truth)]
    out = {"accuracy": metrics.accuracy_score(truth, pred), "hamming_loss": metrics.hamming_loss(truth, pred),
           "f1_samples": metrics.f1_score(truth, pred, average="samples", zero_division=0.0)}
    if both:
        out["roc_auc_macro"] = float(np.mean([metrics.roc_auc_score(truth[:, j], proba[:, j]) for j in both]))
    return {k: float(v) for k, v in out.items()}


def save_search_run(search: Any, out: Path, metadata: dict[str, Any], X_hold: Any = None, y_hold: Any = None,
                    seed: int = 0) -> dict[str, Any]:
    """Write a fitted AutoNeural* search's run folder: its artefact (`archtune.save`), the
    leaderboard, metrics.json, the held-out evaluation and the learning-rate finder's curve.

    ``metadata`` (the command's settings) is completed with the held-out metrics of the model
    that predicts (``holdout``) and, when that is not the best network, of the best network
    alone (``holdout_network``); the completed dict is returned.

    Raises
    ------
    BundleError, SaveError
        The artefact could not be written (the folder's previous artefact is left as it was).
    """
    from archtune.bundles.dispatch import save

    final, network = search.final_estimator_, search.best_estimator_
    report = dict(metadata)
    if final is not network:
        report["final"] = {"kind": "ensemble", "summary": final.summary(),
                           "members": final.describe().to_dict("records")}
    if X_hold is not None:
        report["holdout"] = holdout_metrics(final, X_hold, y_hold)
        if final is not network:
            report["holdout_network"] = holdout_metrics(network, X_hold, y_hold)
    save(search, out, metadata=report)
    atomic_write_bytes(out / LEADERBOARD_FILE, search.leaderboard_.to_csv(index_label="rank").encode())
    atomic_write_bytes(out / METRICS_FILE, json_bytes(report))
    save_evaluation(out, final, X_hold, y_hold, seed)
    save_lr_finder(out, network)
    return report


def save_lr_finder(out: Path, model: Any) -> None:
    """Write OUT/lr_finder.json when the saved network's rate came from the learning-rate
    finder (learning_rate="auto"): its curve and suggestion, for the report; else remove a
    stale one."""
    from archtune.report.data import LR_FINDER_FILE

    path = out / LR_FINDER_FILE
    finder = getattr(model, "lr_finder_", None)
    if finder is None:
        path.unlink(missing_ok=True)
        return
    atomic_write_bytes(path, json_bytes(dataclasses.asdict(finder), indent=None))


def save_evaluation(out: Path, model: Any, X_hold: Any, y_hold: Any, seed: int) -> None:
    """Write OUT/evaluation.json from the held-out rows (see archtune.report.evaluation) of
    ``model`` (the model that predicts), or remove a stale one when there are none (an earlier
    run's rows must not describe this model). A failure is a warning: the run has already saved
    what it trained."""
    from archtune.report.evaluation import EVALUATION_FILE, evaluate

    path = out / EVALUATION_FILE
    if X_hold is None or is_multilabel(model):
        # A multi-label model's held-out figures are its metrics (multilabel_metrics): the
        # confusion matrix and calibration of evaluation.json are for one label per row.
        path.unlink(missing_ok=True)
        return
    try:
        found = evaluate(model, X_hold, y_hold, task_of(model).name, seed=seed)
        atomic_write_bytes(path, json_bytes(found, indent=None))
    except Exception as exc:  # the evaluation serves the report; it must not fail the run
        path.unlink(missing_ok=True)
        warnings.warn(f"the held-out evaluation for the report failed ({type(exc).__name__}: {exc}); the report "
                      "leaves it out", RuntimeWarning, stacklevel=2)


__all__ = ["JOURNAL_FILE", "LEADERBOARD_FILE", "METRICS_FILE", "STUDY_FILE", "holdout_metrics", "multilabel_metrics",
           "save_evaluation",
           "save_lr_finder", "save_search_run"]
