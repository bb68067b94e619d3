"""Iterative pruning of a fitted network: rank units, remove the least important, fine-tune,
check the termination condition, repeat.

The loop follows the recipe of Molchanov et al. (2017, "Pruning Convolutional Neural Networks
for Resource Efficient Inference"): importance of every hidden unit (archtune.shrink.importance),
removal of the lowest ranked (archtune.shrink.surgery: the layers really become smaller), a
brief fine-tuning, and a stop when the validation score has dropped too far (the previous
round's network is returned) or a target size or latency is reached.

This module is the entry point: `prune` checks its parameters and sets the rows apart (for
fine-tuning, and the validation rows scores are measured on); the rounds themselves run in
archtune.shrink.prune_rounds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from archtune.checks import check_choice, check_number
from archtune.data.sparse import is_sparse
from archtune.errors import InvalidParameterError
from archtune.estimators import ESTIMATORS
from archtune.fitting import input_matrix, target_tensor
from archtune.parameters import seed_from
from archtune.shrink.importance import IMPORTANCES
from archtune.shrink.prune_rounds import PruneData, PruneReport, PruneRounds

METHODS = ("structured", "unstructured")
SCOPES = ("layer", "global")
# Residual connections add a block's output to its input, so the widths of the blocks they
# join must stay equal; their units cannot be removed one layer at a time.
STRUCTURED_REFUSED = {
    "resnet": "arch='resnet' adds each residual block's output to its input, which ties the widths of the "
              "blocks: their units cannot be removed one layer at a time; use method='unstructured', or prune "
              "an arch='mlp' network",
    "layers": "arch='layers' compiles a declared layer list whose modules structured pruning does not know; "
              "use method='unstructured'",
}


def prune(model: Any, X: Any, y: Any, *, importance: str = "taylor", step: float = 0.2,
          max_score_drop: float | None = 0.005, target_params: int | None = None,
          target_latency: float | None = None, fine_tune_epochs: int = 3,
          validation_data: tuple[Any, Any] | None = None, method: str = "structured", scope: str = "layer",
          validation_fraction: float = 0.2, max_rounds: int = 100, source: str | None = None,
          random_state: int | None = None, verbose: int = 0) -> tuple[Any, PruneReport]:
    """Prune a fitted network: remove its least important hidden units, round by round.

    Each round ranks the hidden units of the body's Linear layers (and the output channels of
    its convolutions, arch="cnn"; the shared units of TabM's layers) by ``importance``,
    removes the lowest ranked ``step`` share of the remaining units, fine-tunes the smaller
    network for ``fine_tune_epochs`` epochs and scores it on the validation rows. It stops when

    - the validation score has dropped more than ``max_score_drop`` below the unpruned
      network's: the previous round's network is returned;
    - the network has at most ``target_params`` parameters, or its latency is at most
      ``target_latency``: this round's network is returned;
    - no unit can be removed (every layer is down to one unit), or ``max_rounds`` have run.

    Parameters
    ----------
    model : fitted NeuralClassifier or NeuralRegressor
        Not changed: the result is a deep copy.
    X, y : the rows the model was trained on (or any rows of the same table)
        Fine-tuning trains on them (less the validation rows when ``validation_data`` is not
        given), and the Taylor importance is averaged over up to 4096 of them.
    importance : {"taylor", "magnitude"}
        "magnitude": the L1 norm of a unit's incoming weights (Li et al. 2017); "taylor": the
        mean over rows of ``|activation x gradient|`` of the unit's output (Molchanov et al.
        2017, 2019). See archtune.shrink.importance.
    step : float in (0, 1)
        Share of each layer's remaining units removed per round (at least one unit while a
        layer has two or more).
    max_score_drop : float or None
        Largest drop of the validation score (accuracy for a classifier, R^2 for a regressor,
        in absolute units) the returned network may have; None: no limit (then a target is
        needed).
    target_params : int, optional
        Stop once the network has at most this many parameters (unstructured: non-zero ones).
    target_latency : float, optional
        Stop once a forward pass on 1000 rows takes at most this many milliseconds (CPU, one
        thread; preprocessing not included). A measured time decides the stop: not
        reproducible (see Notes).
    fine_tune_epochs : int
        Epochs of training after each round (0: none), at a tenth of the model's learning
        rate decayed along a cosine, with early stopping on the validation rows.
    validation_data : (X_val, y_val), optional
        The rows the score drop is measured on and fine-tuning stops early on. Without it a
        holdout of ``validation_fraction`` of (X, y) (stratified by class for a classifier)
        is split off and not trained on. Rows the model was fitted on score optimistically:
        pass rows it has not seen where you have them.
    method : {"structured", "unstructured"}
        "structured" removes whole units (the network really shrinks: fewer parameters and
        less time). "unstructured" sets single weights of the body's layers to zero
        (torch.nn.utils.prune; by ``|weight|`` for "magnitude", by ``|weight x gradient|`` for
        "taylor"): the network keeps its shape and, on a CPU, its speed, since dense kernels
        multiply zeros as fast as other numbers; it saves memory only if the weights are
        stored sparse (the bundle stores them dense).
    scope : {"layer", "global"}
        "layer": every layer loses ``step`` of its units; "global": ``step`` of all units are
        removed where the scores, normalised per layer (Molchanov et al. 2017), are lowest.
    validation_fraction : float
        Share of (X, y) held out when ``validation_data`` is None.
    max_rounds : int
    source : str, optional
        Where the model came from (a run directory), recorded in the result's ``lineage_``.
    random_state : int, optional
        Seeds every random choice: the holdout split, the rows the Taylor importance is
        averaged over (and their batches), and each round's fine-tuning (batch order,
        dropout). None (the default): the model's own ``random_state`` when it is an integer,
        so a network fitted with ``random_state=0`` prunes the same way in every call;
        otherwise (a model fitted with ``random_state=None``) a fresh seed is drawn from
        NumPy's global generator, and each call may prune differently.
    verbose : int
        1 prints a line per round.

    Returns
    -------
    pruned : NeuralClassifier or NeuralRegressor
        An ordinary fitted estimator of the same class: its ``module_`` has the smaller
        layers, ``model_config_`` (and the ``hidden_sizes`` parameter) describe them so that
        `archtune.save` / `archtune.load` rebuild it, and ``lineage_`` starts with (newest first)
        ``{"step": "pruned", "from": ..., "importance": ..., "params_before": ...,
        "params_after": ...}``.
    report : PruneReport

    Raises
    ------
    InvalidParameterError
        A parameter is invalid, the model is not a fitted archtune network, or its family
        cannot be pruned structurally (arch="resnet", "layers").
    DataError
        X, y or validation_data do not match what the model was fitted on.

    Notes
    -----
    Reproducibility: the same model, rows, parameters and seed give the same pruned network,
    ``lineage_`` and report (all but its ``latency_ms``), whatever the session drew from
    NumPy's or torch's global generators before (the seed alone draws what is random). What
    the seed does not fix:

    - ``latency_ms`` is measured time and differs from call to call. Without
      ``target_latency`` (the default) it is only reported; with it, the round where pruning
      stops depends on the timing (and on the machine's load), so such a call is not
      reproducible: prefer ``target_params``, which counts.
    - The validation scores, the importances and the fine-tuning steps are float sums that
      torch may split among its threads, so another thread count can change their last bits
      and, through a near tie, a unit ranked or a round kept. Fine-tuning takes its threads
      by `archtune.train.threads` (one unless its steps are large, at most the idle cores:
      the load average), the rest runs on torch's current count; ``torch.set_num_threads(n)``
      fixes both (archtune keeps a count the user set). On a GPU, PyTorch's
      non-deterministic kernels add their own differences.
    """
    _check(model, importance, step, max_score_drop, target_params, target_latency, fine_tune_epochs, method, scope,
           validation_fraction, max_rounds)
    if is_sparse(X):
        raise InvalidParameterError("prune: X is a scipy sparse matrix, which pruning does not read yet; pass a "
                                    "dense table")
    arch = model.model_config_.arch
    if method == "structured" and arch in STRUCTURED_REFUSED:
        raise InvalidParameterError(STRUCTURED_REFUSED[arch])
    seed = _seed(model, random_state)
    X_fit, y_fit, X_val, y_val = _rows(model, X, y, validation_data, validation_fraction, seed)
    data = PruneData(input_matrix(model, X_fit), target_tensor(model, y_fit),
                     input_matrix(model, X_val, "validation X"), target_tensor(model, y_val, "validation y"),
                     X_val, y_val)
    pruner = PruneRounds(model, data, importance, step, method, scope, fine_tune_epochs, seed)
    if method == "structured" and not pruner.layers:
        raise InvalidParameterError(f"arch={arch!r}: this network has no hidden layer whose units can be removed "
                                    "(its hidden_sizes are empty, or every layer's width is tied by a skip "
                                    "connection)")
    return pruner.run(max_score_drop, target_params, target_latency, max_rounds, source, verbose)


def _seed(model: Any, random_state: Any) -> int:
    """The run's seed: ``random_state``, else the model's own integer ``random_state`` (the
    network of a seeded fit prunes reproducibly without a second seed), else a fresh one."""
    if random_state is None:
        own = model.get_params().get("random_state")
        if isinstance(own, (int, np.integer)) and not isinstance(own, bool):
            random_state = int(own)
    return seed_from(random_state)


def _check(model: Any, importance: str, step: float, max_score_drop: float | None, target_params: int | None,
           target_latency: float | None, fine_tune_epochs: int, method: str, scope: str,
           validation_fraction: float, max_rounds: int) -> None:
    if type(model).__name__ not in ESTIMATORS or not hasattr(model, "module_"):
        raise InvalidParameterError(f"prune takes a fitted NeuralClassifier or NeuralRegressor; got "
                                    f"{'an unfitted ' if type(model).__name__ in ESTIMATORS else 'a '}"
                                    f"{type(model).__name__}")
    check_choice("importance", importance, IMPORTANCES)
    check_number("step", step, 0.0, 1.0, low_open=True, high_open=True)
    check_choice("method", method, METHODS)
    check_choice("scope", scope, SCOPES)
    check_number("fine_tune_epochs", fine_tune_epochs, 0, integer=True)
    check_number("validation_fraction", validation_fraction, 0.0, 1.0, low_open=True, high_open=True)
    check_number("max_rounds", max_rounds, 1, integer=True)
    if max_score_drop is not None:
        check_number("max_score_drop", max_score_drop, 0.0)
    if target_params is not None:
        check_number("target_params", target_params, 1, integer=True)
    if target_latency is not None:
        check_number("target_latency", target_latency, 0.0, low_open=True)
    if max_score_drop is None and target_params is None and target_latency is None:
        raise InvalidParameterError("prune needs a termination condition: max_score_drop, target_params or "
                                    "target_latency (all are None)")


def _take(data: Any, index: np.ndarray) -> Any:
    if isinstance(data, (pd.DataFrame, pd.Series)):
        return data.iloc[index]
    if isinstance(data, dict):
        return {key: _take(value, index) for key, value in data.items()}
    return np.asarray(data)[index]


def _rows(model: Any, X: Any, y: Any, validation_data: Any, fraction: float, seed: int):
    """(X_fit, y_fit, X_val, y_val): the validation rows given, or a holdout of (X, y)."""
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise InvalidParameterError("validation_data must be (X_val, y_val)")
        return X, y, validation_data[0], validation_data[1]
    labels = np.asarray(y)
    n = len(labels)
    stratify = None
    if model.target_encoder_.kind == "classification":
        _, counts = np.unique(labels.astype(str), return_counts=True)
        if counts.min() >= 2 and int(round(fraction * n)) >= len(counts):
            stratify = labels.astype(str)
    fit_rows, val_rows = train_test_split(np.arange(n), test_size=fraction, random_state=seed % 2**32,
                                          stratify=stratify)
    return _take(X, fit_rows), _take(y, fit_rows), _take(X, val_rows), _take(y, val_rows)


__all__ = ["METHODS", "SCOPES", "prune"]
