"""Greedy ensemble selection with replacement (Caruana et al. 2004, "Ensemble Selection from
Libraries of Models"), over models' predictions on the same validation rows.

Each step adds the model whose inclusion makes the running average's loss smallest; a model
may be added again, so the weights are counts divided by the number of steps. The loss is
smooth (log loss of probabilities, or mean squared error, averaged over the outputs of a
multi-output regression) so that ties are rare, as in
Auto-sklearn's and pytabkit's selection.
"""

from __future__ import annotations

import numpy as np

# Selection steps: the weights are multiples of 1/N_STEPS. Caruana et al. and Auto-sklearn
# use 50; beyond that the validation loss stops moving while the risk of fitting it grows.
N_STEPS = 25
EPSILON = 1e-7


def ensemble_loss(prediction: np.ndarray, y: np.ndarray, task: str, sample_weight: np.ndarray | None = None) -> float:
    """Log loss of class probabilities (``prediction`` of shape (n, n_classes), ``y`` class
    indices), or the squared error of values (shape (n,) or (n, n_outputs): each row's error
    averaged over its outputs); the mean over rows, weighted by ``sample_weight`` (shape (n,))."""
    if task == "classification":
        chosen = prediction[np.arange(len(y)), y]
        return float(-np.average(np.log(np.clip(chosen, EPSILON, 1.0)), weights=sample_weight))
    # (n,) and (n, 1) alike as one column: never broadcast (n,) against (n, 1) to (n, n).
    values, target = np.reshape(prediction, (len(prediction), -1)), np.reshape(y, (len(y), -1))
    if values.shape != target.shape:
        raise ValueError(f"predictions of shape {np.shape(prediction)} for targets of shape {np.shape(y)}")
    error = (values - target) ** 2
    return float(np.average(error.mean(axis=1), weights=sample_weight))


def select_weights(predictions: list[np.ndarray], y: np.ndarray, task: str, n_steps: int = N_STEPS,
                   sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Weights (summing to 1) of greedy forward selection with replacement.

    Parameters
    ----------
    predictions : list of arrays of shape (n_samples, n_classes), (n_samples,) or (n_samples, n_outputs)
        Each candidate's validation predictions: probabilities (classification) or values.
    y : array of shape (n_samples,) or (n_samples, n_outputs)
        Class indices (classification) or target values (regression).
    task : {"classification", "regression"}
    n_steps : int
        Selection steps; each adds one copy of a model.
    sample_weight : array of shape (n_samples,), optional
        Row weights of the loss.

    Returns
    -------
    weights : array of shape (n_candidates,)
        The ensemble predicts ``sum(w_i * prediction_i)``: the weights after the step whose
        loss was lowest. Ties go to the earlier candidate, so the order of ``predictions``
        (best first) makes the result deterministic.

    Raises
    ------
    ValueError
        No candidates, or predictions of different shapes.
    """
    if not predictions:
        raise ValueError("ensemble selection needs at least one candidate's predictions")
    stacked = np.stack([np.asarray(p, dtype="float64") for p in predictions])
    counts = np.zeros(len(predictions))
    total = np.zeros_like(stacked[0])
    best_loss, best_counts = np.inf, counts
    for step in range(1, n_steps + 1):
        losses = [ensemble_loss((total + candidate) / step, y, task, sample_weight) for candidate in stacked]
        best = int(np.argmin(losses))
        counts[best] += 1
        total += stacked[best]
        # A step must add a model even when every addition hurts: the best prefix is kept (as
        # in Caruana et al.), so the ensemble's loss is never above its best member's.
        if losses[best] < best_loss:
            best_loss, best_counts = losses[best], counts.copy()
    return best_counts / best_counts.sum()


def combine(predictions: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """The weighted average ``sum(w_i * prediction_i)`` (members with weight 0 are skipped)."""
    out = None
    for prediction, weight in zip(predictions, weights):
        if weight > 0:
            part = weight * np.asarray(prediction, dtype="float64")
            out = part if out is None else out + part
    if out is None:
        raise ValueError("every ensemble weight is 0")
    return out


__all__ = ["N_STEPS", "combine", "ensemble_loss", "select_weights"]
