"""The teacher of knowledge distillation: what it predicts, as the student's soft targets.

A teacher is any fitted model with ``predict_proba`` and ``classes_`` (classification) or
``predict`` (regression): an archtune network, an `AutoNeuralClassifier`/`AutoNeuralRegressor`,
a loaded ensemble bundle, a scikit-learn estimator or LightGBM. Its outputs become logits the
way Hinton et al. (2015) use them: for a teacher that gives probabilities, the log-probabilities
are its logits (a softmax cannot tell them from the true logits, which differ from them by one
constant per row), and for two classes the single logit is ``log p1 - log p0``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from archtune.data.target import plain_labels
from archtune.errors import DataError, InvalidParameterError

# Probabilities are clipped to [EPS, 1] before their logarithm: a tree model's exact 0 would
# otherwise be an infinite logit, which no temperature softens.
EPS = 1e-7


def teacher_task(teacher: Any) -> str:
    """"classification" or "regression": what the teacher predicts.

    An archtune `Ensemble` says it (``task``); a scikit-learn estimator by its type
    (``is_classifier``); anything else by its methods (``predict_proba`` and ``classes_`` for a
    classifier, ``predict`` for a regressor).

    Raises
    ------
    InvalidParameterError
        The teacher has neither ``predict_proba`` nor ``predict``.
    """
    from sklearn.base import is_classifier, is_regressor

    task = getattr(teacher, "task", None)
    if isinstance(task, str) and task in ("classification", "regression"):
        return task
    if not (callable(getattr(teacher, "predict_proba", None)) or callable(getattr(teacher, "predict", None))):
        raise InvalidParameterError(f"teacher must be a fitted model with predict_proba (classification) or predict "
                                    f"(regression); got a {type(teacher).__name__}, which has neither")
    try:
        if is_classifier(teacher):
            return "classification"
        if is_regressor(teacher):
            return "regression"
    except Exception:  # an object outside scikit-learn's conventions: judged by its methods below
        pass
    if callable(getattr(teacher, "predict_proba", None)) and hasattr(teacher, "classes_"):
        return "classification"
    return "regression"


def teacher_logits(teacher: Any, X: Any, classes: np.ndarray) -> np.ndarray:
    """The teacher's logits for rows X, columns in the order of the student's ``classes``.

    Returns
    -------
    ndarray of shape (n_samples, 1) for two classes (``log p1 - log p0``), else
    (n_samples, n_classes) (log-probabilities), float32.

    Raises
    ------
    InvalidParameterError
        The teacher has no ``predict_proba``/``classes_``, or its classes are not the labels'.
    """
    if not callable(getattr(teacher, "predict_proba", None)) or not hasattr(teacher, "classes_"):
        raise InvalidParameterError(f"teacher {describe(teacher)} gives no class probabilities (predict_proba and "
                                    "classes_); a classifier student needs a classifier teacher")
    order = class_order(teacher, classes)
    proba = np.asarray(teacher.predict_proba(X), dtype="float64")
    if proba.ndim != 2 or proba.shape[1] != len(order):
        raise DataError(f"teacher {describe(teacher)}: predict_proba gave shape {proba.shape}, expected "
                        f"(n_samples, {len(order)})")
    log_p = np.log(np.clip(proba[:, order], EPS, 1.0))
    if len(classes) == 2:
        return (log_p[:, 1:] - log_p[:, :1]).astype("float32")
    return log_p.astype("float32")


def label_logits(teacher: Any, X: Any, labels: np.ndarray) -> np.ndarray:
    """A multi-label teacher's logits ``log p - log(1 - p)`` per label, columns in the order of
    the student's ``labels`` (archtune.data.multilabel), float32 (n_samples, n_labels).
    ``predict_proba`` may be the (n_samples, n_labels) matrix (archtune, `MLPClassifier`) or
    `MultiOutputClassifier`'s list of (n_samples, 2) arrays.

    Raises
    ------
    InvalidParameterError
        The teacher's labels (``classes_``) are not the student's.
    """
    own = getattr(teacher, "classes_", None)
    if isinstance(own, list):  # MultiOutputClassifier: one classes_ per label, the labels are its columns
        if len(own) != len(labels):
            raise InvalidParameterError(f"teacher {describe(teacher)} has {len(own)} labels but y has {len(labels)}")
        order = np.arange(len(labels))
    else:
        order = class_order(teacher, labels)
    proba = teacher.predict_proba(X)
    if isinstance(proba, list):
        proba = np.column_stack([np.asarray(p)[:, -1] for p in proba])
    p = np.clip(np.asarray(proba, dtype="float64")[:, order], EPS, 1 - EPS)
    return (np.log(p) - np.log1p(-p)).astype("float32")


def class_order(teacher: Any, classes: np.ndarray) -> np.ndarray:
    """For each of the student's classes, the column of the teacher's ``predict_proba``.

    Raises
    ------
    InvalidParameterError
        The teacher's classes and the labels' differ (named).
    """
    own = plain_labels(np.asarray(teacher.classes_)).tolist()
    wanted = plain_labels(np.asarray(classes)).tolist()
    missing = [c for c in wanted if c not in own]
    extra = [c for c in own if c not in wanted]
    if missing or extra:
        raise InvalidParameterError(
            f"the teacher's classes {own} are not the labels' classes {wanted}"
            + (f": the teacher never predicts {missing}" if missing else "")
            + (f"{';' if missing else ':'} the labels never hold {extra}" if extra else "")
            + "; distil on labels of the classes the teacher was trained on")
    return np.asarray([own.index(c) for c in wanted])


def teacher_values(teacher: Any, X: Any, n_outputs: int) -> np.ndarray:
    """The teacher's predictions for rows X, shape (n_samples, n_outputs), float64.

    Raises
    ------
    InvalidParameterError
        The teacher has no ``predict`` or predicts another number of outputs than y has.
    """
    if not callable(getattr(teacher, "predict", None)):
        raise InvalidParameterError(f"teacher {describe(teacher)} has no predict; a regressor student needs a "
                                    "regressor teacher")
    values = np.asarray(teacher.predict(X), dtype="float64")
    values = values.reshape(len(values), -1)
    if values.shape[1] != n_outputs:
        raise InvalidParameterError(f"teacher {describe(teacher)} predicts {values.shape[1]} output(s) but y has "
                                    f"{n_outputs}")
    return values


def describe(teacher: Any) -> str:
    """A short description for the student's lineage: "NeuralClassifier (mlp, 3 x 256,
    201,602 parameters)", "Ensemble (classification) of 3 networks and lightgbm",
    "AutoNeuralClassifier (ensemble of ...)", "LGBMClassifier"."""
    name = type(teacher).__name__
    summary = getattr(teacher, "summary", None)
    if callable(summary):  # an archtune Ensemble
        return f"{name} ({getattr(teacher, 'task', '?')}) of {summary()}"
    module = getattr(teacher, "module_", None)
    if module is not None:
        params = teacher.get_params()
        widths = " x ".join(map(str, params["hidden_sizes"])) if params.get("hidden_sizes") else \
            f"{params['hidden_layers']} x {params['units']}"
        return f"{name} ({params['arch']}, {widths}, {sum(p.numel() for p in module.parameters()):,} parameters)"
    final = getattr(teacher, "final_estimator_", None)  # AutoNeural*: what predicts
    if final is not None and final is not teacher:
        return f"{name} ({describe(final)})"
    return name


__all__ = ["EPS", "class_order", "describe", "label_logits", "teacher_logits", "teacher_task", "teacher_values"]
