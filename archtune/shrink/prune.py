"""Iterative pruning of a fitted network: rank units, remove the least important, fine-tune,
check the termination condition, repeat.

The loop follows the recipe of Molchanov et al. (2017, "Pruning Convolutional Neural Networks
for Resource Efficient Inference"): importance of every hidden unit (archtune.shrink.importance),
removal of the lowest ranked (archtune.shrink.surgery: the layers really become smaller), a
brief fine-tuning, and a stop when the validation score has dropped too far (the previous
round's network is returned) or a target size or latency is reached.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.utils.prune as torch_prune
from sklearn.model_selection import train_test_split
from torch import nn

from archtune.checks import check_choice, check_number
from archtune.data.sparse import is_sparse
from archtune.errors import ArchtuneError, InvalidParameterError
from archtune.estimators import ESTIMATORS
from archtune.fitting import input_matrix, set_fitted, target_tensor, task_spec
from archtune.parameters import seed_from
from archtune.models.tabm import LinearBatchEnsemble
from archtune.shrink.importance import IMPORTANCES, magnitude, normalise, taylor
from archtune.shrink.latency import latency_ms
from archtune.shrink.surgery import remove_units, unit_layers
from archtune.train.loop import Trainer, predict_tensor

METHODS = ("structured", "unstructured")
SCOPES = ("layer", "global")
# Fine-tuning starts from a trained network: a tenth of its training rate, decayed to zero
# along a cosine, moves it back toward a minimum without undoing what it learned.
FINE_TUNE_LR_FACTOR = 0.1
IMPORTANCE_ROWS = 4096  # rows the Taylor importance is averaged over (a random sample)
# Residual connections add a block's output to its input, so the widths of the blocks they
# join must stay equal; their units cannot be removed one layer at a time.
STRUCTURED_REFUSED = {
    "resnet": "arch='resnet' adds each residual block's output to its input, which ties the widths of the "
              "blocks: their units cannot be removed one layer at a time; use method='unstructured', or prune "
              "an arch='mlp' network",
    "layers": "arch='layers' compiles a declared layer list whose modules structured pruning does not know; "
              "use method='unstructured'",
}


@dataclass(frozen=True)
class PruneReport:
    """What `prune` did, round by round.

    Attributes
    ----------
    rounds : pandas.DataFrame
        One row per round, round 0 being the unpruned network: ``round``, ``n_params``
        (parameters of the network), ``n_nonzero`` (parameters that are not zero: what
        unstructured pruning reduces), ``latency_ms`` (milliseconds per 1000 rows, CPU, one
        thread, see `archtune.shrink.latency.latency_ms`: measured, so it differs from call to
        call while the other columns repeat), ``score`` (validation score:
        accuracy for a classifier, R^2 for a regressor), ``score_drop`` (baseline minus score),
        ``widths`` (units of each prunable layer), ``removed`` (per layer, the removed units'
        indices in the unpruned network; structured only).
    metric : str
        "accuracy" or "r2".
    baseline_score : float
        The unpruned network's validation score.
    kept_round : int
        The round whose network is returned (0: none was good enough).
    stop_reason : str
    method, importance : str
    """

    rounds: pd.DataFrame
    metric: str
    baseline_score: float
    kept_round: int
    stop_reason: str
    method: str
    importance: str

    def table(self) -> str:
        """The rounds as a plain-text table (the returned round marked with ``*``)."""
        lines = [f"{'round':>5}  {'params':>10}  {'nonzero':>10}  {'ms/1000 rows':>12}  {self.metric:>9}  "
                 f"{'drop':>8}  widths"]
        for row in self.rounds.itertuples():
            mark = "*" if row.round == self.kept_round else " "
            lines.append(f"{row.round:>4}{mark}  {row.n_params:>10,}  {row.n_nonzero:>10,}  {row.latency_ms:>12.3f}  "
                         f"{row.score:>9.4f}  {row.score_drop:>8.4f}  {','.join(map(str, row.widths))}")
        lines.append(f"stopped: {self.stop_reason}; returned round {self.kept_round}")
        return "\n".join(lines)


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
        (torch.nn.utils.prune; by |weight| for "magnitude", by |weight x gradient| for
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
    data = _Data(input_matrix(model, X_fit), target_tensor(model, y_fit), input_matrix(model, X_val, "validation X"),
                 target_tensor(model, y_val, "validation y"), X_val, y_val)
    pruner = _Pruner(model, data, importance, step, method, scope, fine_tune_epochs, seed)
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


@dataclass(frozen=True)
class _Data:
    X: torch.Tensor
    y: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_val_raw: Any
    y_val_raw: Any


def n_params(module: nn.Module) -> int:
    """Parameters of a network."""
    return int(sum(p.numel() for p in module.parameters()))


def n_nonzero(module: nn.Module) -> int:
    """Parameters of a network that are not zero."""
    return int(sum(int(torch.count_nonzero(p.detach())) for p in module.parameters()))


def _prunable_weights(net: nn.Module) -> list[nn.Module]:
    """The body's weighted layers (unstructured pruning's targets)."""
    return [m for m in net.body.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, LinearBatchEnsemble))]


class _Pruner:
    """One pruning run: the working estimator, its data and the round-by-round state."""

    def __init__(self, model: Any, data: _Data, importance: str, step: float, method: str, scope: str,
                 fine_tune_epochs: int, seed: int):
        self.model = model
        self.work = copy.deepcopy(model)  # scores candidate networks with the model's own predict
        self.data = data
        self.importance, self.step, self.method, self.scope = importance, step, method, scope
        self.fine_tune_epochs, self.seed = fine_tune_epochs, seed
        self.device = next(model.module_.parameters()).device
        self.task = dataclasses.replace(task_spec(model), label_smoothing=self._train_config().label_smoothing)
        generator = torch.Generator().manual_seed(seed)
        rows = torch.randperm(len(data.X), generator=generator)[:IMPORTANCE_ROWS]
        self.importance_rows = (data.X[rows], data.y[rows])
        self.example = data.X_val[:2]
        self.layers = unit_layers(model.module_, self.example) if method == "structured" else []
        # Per unit layer, the unpruned network's index of each remaining unit.
        self.origin = [list(range(layer.width)) for layer in self.layers]

    def _train_config(self) -> Any:
        return self.model.train_config(max(1, len(self.data.X)), self.seed)

    # ------------------------------------------------------------------ measuring

    def score(self, net: nn.Module) -> float:
        set_fitted(self.work, {"module_": net.eval()})
        return float(self.work.score(self.data.X_val_raw, self.data.y_val_raw))

    def measure(self, round_: int, net: nn.Module, baseline: float | None, removed: dict) -> dict[str, Any]:
        score = self.score(net)
        return {"round": round_, "n_params": n_params(net), "n_nonzero": n_nonzero(net),
                "latency_ms": latency_ms(net, self.data.X_val), "score": score,
                "score_drop": 0.0 if baseline is None else baseline - score,
                "widths": [layer.width for layer in unit_layers(net, self.example)] if self.layers
                else [int(m.weight.shape[0]) for m in _prunable_weights(net)],
                "removed": removed}

    # ------------------------------------------------------------------ one round

    def scores(self, net: nn.Module, layers: list) -> list[torch.Tensor]:
        if self.importance == "magnitude":
            return magnitude(layers)
        X, y = self.importance_rows
        return taylor(net, layers, X, y, self.task.loss_fn(self.device))

    def structured_round(self, net: nn.Module) -> tuple[nn.Module, dict[str, list[int]]] | None:
        net = copy.deepcopy(net)  # the Taylor measure's backward pass must not touch the caller's network
        layers = unit_layers(net, self.example)
        scores = self.scores(net, layers)
        drop = self._choose(layers, scores)
        if not any(drop.values()):
            return None
        keep = {i: [j for j in range(layer.width) if j not in set(drop[i])] for i, layer in enumerate(layers)}
        removed = {f"layer{i}": sorted(self.origin[i][j] for j in drop[i]) for i in range(len(layers))}
        self.origin = [[self.origin[i][j] for j in keep[i]] for i in range(len(layers))]
        return remove_units(net, self.example, {i: torch.tensor(k) for i, k in keep.items()}), removed

    def _choose(self, layers: list, scores: list[torch.Tensor]) -> dict[int, list[int]]:
        """Per layer, the units to remove (lowest scores first; ties by index)."""
        if self.scope == "layer":
            out = {}
            for i, (layer, score) in enumerate(zip(layers, scores)):
                n = min(layer.width - 1, max(1, int(round(self.step * layer.width))))
                out[i] = sorted(torch.argsort(score, stable=True)[:n].tolist())
            return out
        ranked = sorted((float(s), i, j) for i, score in enumerate(normalise(scores)) for j, s in enumerate(score))
        total = sum(layer.width for layer in layers)
        budget = max(1, int(round(self.step * total)))
        out = {i: [] for i in range(len(layers))}
        for _, i, j in ranked:
            if budget == 0:
                break
            if layers[i].width - len(out[i]) > 1:  # every layer keeps a unit
                out[i].append(j)
                budget -= 1
        return {i: sorted(units) for i, units in out.items()}

    def unstructured_round(self, net: nn.Module) -> tuple[nn.Module, dict[str, list[int]]] | None:
        net = copy.deepcopy(net)
        modules = _prunable_weights(net)
        grads = self._weight_gradients(net, modules) if self.importance == "taylor" else None
        changed = False
        for position, module in enumerate(modules):
            weight = module.weight.detach()
            zeros = int((weight == 0).sum())
            nonzero = weight.numel() - zeros
            amount = zeros + min(nonzero, max(1, int(round(self.step * nonzero)))) if nonzero > 1 else zeros
            changed = changed or amount > zeros
            scores = None if grads is None else (weight * grads[position]).abs()
            # Zero weights score 0 under both measures, so they are among the `amount` removed.
            torch_prune.l1_unstructured(module, "weight", amount=amount, importance_scores=scores)
        return (net, {}) if changed else None

    def _weight_gradients(self, net: nn.Module, modules: list[nn.Module]) -> list[torch.Tensor]:
        """The gradient of the summed loss over the importance rows for each module's weight."""
        X, y = self.importance_rows
        loss_fn = self.task.loss_fn(self.device)
        net.eval()
        net.zero_grad(set_to_none=True)
        for start in range(0, len(X), 512):
            xb, yb = X[start:start + 512].to(self.device), y[start:start + 512].to(self.device)
            (loss_fn(net(xb), yb) * len(xb)).backward()
        grads = [m.weight.grad.detach().clone() if m.weight.grad is not None else torch.zeros_like(m.weight)
                 for m in modules]
        net.zero_grad(set_to_none=True)
        return grads

    def fine_tune(self, net: nn.Module, round_: int) -> nn.Module:
        if self.fine_tune_epochs == 0:
            return net
        config = self._train_config()
        rate = float(getattr(self.model, "learning_rate_", None) or config.learning_rate)
        config = dataclasses.replace(config, max_epochs=self.fine_tune_epochs, learning_rate=rate * FINE_TUNE_LR_FACTOR,
                                     lr_schedule="cosine", warmup_epochs=0, early_stopping=True,
                                     patience=self.fine_tune_epochs)
        if self.method == "unstructured":
            # The masks' hooks recompute ``weight`` from ``weight_orig`` each pass, which the
            # trainer's penalties and constraints (applied to ``weight``) cannot see.
            config = dataclasses.replace(config, weight_decay=0.0, l1=0.0, l2=0.0, max_norm=None)
        loss_fn = self.task.loss_fn(self.device)
        before = self._val_loss(net, loss_fn)
        untuned = copy.deepcopy(net.state_dict())
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed + round_)
            trainer = Trainer(net, loss_fn, dataclasses.replace(config, seed=self.seed + round_),
                              metric=self.task.metric_fn(), metric_name=self.task.metric_name, device=self.device,
                              divergence_limit=self.task.divergence_limit)
            trainer.fit(self.data.X, self.data.y, self.data.X_val, self.data.y_val)
        # Early stopping keeps the best of the fine-tuning epochs; the network before them
        # competes too, by the same validation loss (a few steps of a fresh optimiser can
        # move a network that removal left close to its optimum away from it).
        if self._val_loss(net, loss_fn) > before:
            net.load_state_dict(untuned)
        return net.eval()

    def _val_loss(self, net: nn.Module, loss_fn: Any) -> float:
        with torch.no_grad():
            return float(loss_fn(predict_tensor(net, self.data.X_val.to(self.device)), self.data.y_val.to(self.device)))

    # ------------------------------------------------------------------ the loop

    def run(self, max_score_drop: float | None, target_params: int | None, target_latency: float | None,
            max_rounds: int, source: str | None, verbose: int) -> tuple[Any, PruneReport]:
        original = self.model.module_
        first = self.measure(0, original, None, {})
        baseline = first["score"]
        rows, kept, kept_round = [first], original, 0
        stop = f"max_rounds={max_rounds} reached"
        if verbose:
            print(f"round 0: {first['n_params']:,} parameters, {first['latency_ms']:.3f} ms/1000 rows, "
                  f"score {baseline:.4f}")
        for round_ in range(1, max_rounds + 1):
            step = self.structured_round(kept) if self.method == "structured" else self.unstructured_round(kept)
            if step is None:
                stop = "no unit left to remove (every layer is down to one unit)"
                break
            candidate, removed = step
            candidate = self.fine_tune(candidate, round_)
            if self.method == "unstructured":
                for module in _prunable_weights(candidate):
                    torch_prune.remove(module, "weight")  # the zeros become the plain weight
            row = self.measure(round_, candidate, baseline, removed)
            rows.append(row)
            if verbose:
                print(f"round {round_}: {row['n_params']:,} parameters ({row['n_nonzero']:,} non-zero), "
                      f"{row['latency_ms']:.3f} ms/1000 rows, score {row['score']:.4f} (drop {row['score_drop']:.4f})")
            if max_score_drop is not None and row["score_drop"] > max_score_drop:
                stop = (f"the validation score dropped {row['score_drop']:.4f} > max_score_drop={max_score_drop} "
                        f"in round {round_}")
                break
            kept, kept_round = candidate, round_
            size = row["n_nonzero"] if self.method == "unstructured" else row["n_params"]
            if target_params is not None and size <= target_params:
                stop = f"target_params={target_params} reached"
                break
            if target_latency is not None and row["latency_ms"] <= target_latency:
                stop = f"target_latency={target_latency} ms reached"
                break
        report = PruneReport(pd.DataFrame(rows), self.task.metric_name, baseline, kept_round, stop, self.method,
                             self.importance)
        return self._result(kept, rows[kept_round], first, source), report

    def _result(self, net: nn.Module, row: dict[str, Any], first: dict[str, Any], source: str | None) -> Any:
        model = copy.deepcopy(self.model)
        config = self._config(net)
        # Rebuilt from the config as `archtune.load` will: the state must fit it exactly.
        rebuilt = self.task.build_network(config, model.input_spec_, 0)
        try:
            rebuilt.load_state_dict(net.state_dict())
        except RuntimeError as exc:
            raise ArchtuneError(f"the pruned network does not match its description ({exc})") from None
        size = "n_nonzero" if self.method == "unstructured" else "n_params"
        entry = {"step": "pruned", "from": source or f"{type(model).__name__} (in memory)",
                 "method": self.method, "importance": self.importance,
                 "params_before": int(first[size]), "params_after": int(row[size]),
                 "score_before": float(first["score"]), "score_after": float(row["score"])}
        if config.hidden_sizes != model.model_config_.hidden_sizes:
            model.set_params(hidden_sizes=tuple(config.hidden_sizes))
        return set_fitted(model, {"module_": rebuilt.to(self.device).eval(), "model_config_": config,
                                  "lineage_": [entry, *(getattr(self.model, "lineage_", None) or [])]})  # newest first

    def _config(self, net: nn.Module) -> Any:
        """The model's `ModelConfig` with the widths of the pruned layers."""
        config = self.model.model_config_
        if self.method == "unstructured":
            return config
        sizes = list(config.hidden_sizes)
        filters = list(config.conv_filters or [config.conv.filters * 2**b for b in range(config.conv.conv_blocks)])
        for layer in unit_layers(net, self.example):
            if layer.kind == "dense":
                sizes[layer.hidden_index] = layer.width
            else:
                filters[layer.hidden_index] = layer.width
        conv_changed = any(layer.kind == "conv" for layer in self.layers)
        return dataclasses.replace(config, hidden_sizes=tuple(sizes),
                                   conv_filters=tuple(filters) if conv_changed else config.conv_filters)


__all__ = ["METHODS", "PruneReport", "SCOPES", "n_nonzero", "n_params", "prune"]
