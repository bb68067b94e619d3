"""Search quality: held-out test score of four ways to get a model within the same wall-clock budget.

On each dataset, every tool gets the same seeded 80/20 train/test split (stratified for
classification) and, where it searches, the same wall-clock budget (``--budget`` seconds):

    (1) archtune   ``AutoNeuralClassifier`` / ``AutoNeuralRegressor(budget="<B>s",
                   random_state=seed, baselines=False)`` fit on the 80%: its default space (the
                   recipe families: MLP/ResNet/TabM with or without numeric embeddings, the
                   recipes themselves as the first trials), multivariate TPE, Hyperband pruning
                   on epochs, cohorts sized by the budget, then its refit: the best
                   configuration's own fit on all 80% rows.
    (2) loop       "Optuna + a hand-written loop", what a user writes today: a seeded
                   ``TPESampler`` (Optuna's defaults), ``study.optimize(timeout=B)``, no pruning,
                   over archtune's classic space mirrored by hand (arch mlp/resnet, depth, width, shape,
                   activation, norm, dropout, weight decay, optimiser, momentum, learning rate,
                   batch size, schedule, warm-up), a plain PyTorch MLP / residual MLP trained for at
                   most the space's ``max_epochs`` with early stopping (patience 10, best weights
                   restored) on a 20% validation split of the training rows, standardised
                   features (and target, for regression). The best trial's model is kept as
                   trained (``--loop-final keep``) or refitted on all training rows for its best
                   number of epochs, as archtune does (``--loop-final refit``).
    (3) sklearn    ``RandomizedSearchCV`` over a ``StandardScaler`` + ``MLPClassifier`` /
                   ``MLPRegressor`` pipeline (hidden_layer_sizes, alpha, learning_rate_init,
                   batch_size, activation; adam, at most ``max_epochs`` epochs with its own early
                   stopping), the target standardised for regression
                   (``TransformedTargetRegressor``). Time-bounded by drawing ``n_iter=1``
                   candidates (a fresh ``random_state`` per draw) until the budget is spent;
                   each candidate is scored on one 20% hold-out of the training rows (the same
                   kind of split the other two use; ``--sklearn-cv 3`` for 3-fold), then the best
                   is refitted on all training rows.
    (4) lightgbm   ``LGBMClassifier`` / ``LGBMRegressor`` with default parameters (no search,
                   no budget; its fit time is reported).
    (5) archtune_solo  (1) with ``population=False``: one trial at a time (only when named in
                   ``--tools``), to measure what cohort training does to a search.

Scores: accuracy (classification), R^2 and RMSE (regression) on the 20% test rows, which no
tool sees before scoring. Per tool and dataset the table reports trials finished (archtune:
complete + pruned, failed apart), trials per minute of search, and the wall time really used:
"search" from the start of ``fit`` to the end of the last trial (archtune's includes its
classical baselines when ``--archtune-baselines`` is given), "refit" after it, and "wall" the
whole ``fit``. A trial that starts before the deadline runs to its end in all three searching
tools (Optuna's ``timeout`` and archtune's budget stop *starting* trials), so "search" can pass
the budget; the overrun is printed. Under the table, the paired bootstrap interval (90%, 1000
resamples of the test rows) of archtune's score minus each rival's says which gaps are noise.

archtune is run with ``baselines=False`` by default: its budget also covers fitting linear,
k-NN, random forest, gradient boosting and LightGBM baselines for its leaderboard, which none
of the rivals does; ``--archtune-baselines`` runs the default (``baselines=True``) instead.

Threads: ``torch.set_num_threads`` and the BLAS/OpenMP pools (threadpoolctl, which also covers
scikit-learn's NumPy and LightGBM, whose ``n_jobs`` is set to the same count) are set to
``--threads`` (default 1) for every tool: on a shared 2-core machine, two threads per process
wait on each other (see fit_overhead.py). archtune's own baselines, when enabled, use
``n_jobs=-1`` for the random forest.

Data: tables from ``$ARCHTUNE_DATASETS`` (default /work/shared/datasets/tabular). Tables above
``--max-rows`` (default 20000) are subsampled (seeded, before the split) and the table says
so: adult (48842 rows), house (22784), credit_default (30000, its ID dropped) and electricity
(45312) use 20000. All features are numeric there (adult's and credit_default's categoricals
are integer codes); class labels become codes (electricity's "yes"/"no").

Targets (issue 12): archtune's test score (accuracy or R^2) >= the Optuna + loop baseline on
every dataset, and >= LightGBM defaults on at least 5 of the 6.

Ensembles (issue 13): archtune as shipped (``--archtune-baselines``: its baselines, LightGBM
among them, are ensemble candidates) reports what predicts ("archtune": the ensemble when it
is used, a baseline alone when one beats every network on validation, else the best network)
and, from the same search without further training: the refitted best network
(archtune_net), the best trial's own network (archtune_kept) and the same choice with its
members as selected, nothing refitted (archtune_ens_kept), with the prediction latency per
1000 rows and the bundle sizes. Targets: "archtune" >= archtune_net and >= LightGBM defaults
on every table.

    .venv/bin/python bench/search_quality.py --tools archtune,lightgbm --archtune-baselines \
        --datasets magic,adult,house            # and cpu_act,credit_default,electricity beside it

Reproduce (from the repository root, with the ``bench`` extra installed)::

    .venv/bin/python bench/search_quality.py --json search_quality.json   # 6 datasets x 3 min, ~60 min
    .venv/bin/python bench/search_quality.py --quick                      # 30 s budgets, magic + house
    .venv/bin/python bench/search_quality.py --datasets magic,house --budget 120
    .venv/bin/python bench/search_quality.py --archtune-baselines         # archtune as shipped (baselines on)
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import math
import os
import platform
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

DATA_DIR = Path(os.environ.get("ARCHTUNE_DATASETS", "/work/shared/datasets/tabular"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from automl_tools import BUDGETED, OTHER_TOOL_NAMES, OTHER_TOOLS, run_other  # noqa: E402  (bench/ beside it)

# short name -> (file, task[, target column]); "ID" columns are dropped
DATASETS: dict[str, tuple[str, ...]] = {
    "magic": ("magic.tsv.gz", "classification"),
    "credit_default": ("credit_default.csv.gz", "classification", "default.payment.next.month"),
    "electricity": ("electricity.csv.gz", "classification", "Class"),
    "adult": ("adult.tsv.gz", "classification"),
    "churn": ("churn.tsv.gz", "classification"),
    "satimage": ("satimage.tsv.gz", "classification"),
    "spambase": ("spambase.tsv.gz", "classification"),
    "house": ("574_house_16H.tsv.gz", "regression"),
    "cpu_act": ("197_cpu_act.tsv.gz", "regression"),
    "pol": ("201_pol.tsv.gz", "regression"),
    "house_8L": ("218_house_8L.tsv.gz", "regression"),
    "fried": ("564_fried.tsv.gz", "regression"),  # 40768 rows: the issue-31 trial count (--max-rows 50000)
}
DEFAULT_DATASETS = ("magic", "adult", "house", "cpu_act", "credit_default", "electricity")
QUICK_DATASETS = ("magic", "house")
TOOLS = ("archtune", "loop", "sklearn", "lightgbm", "archtune_solo", *OTHER_TOOLS)
DEFAULT_TOOLS = ("archtune", "loop", "sklearn", "lightgbm")
TOOL_NAMES = {
    "archtune": "archtune Auto*",
    "archtune_solo": "archtune Auto* population=False",
    "loop": "Optuna TPE + hand loop",
    "sklearn": "RandomizedSearchCV MLP",
    "lightgbm": "LightGBM defaults",
    **OTHER_TOOL_NAMES,
    # Other answers of the archtune search above (no extra search): see _derived_results.
    "archtune_net": "  same search: best network (refit)",
    "archtune_kept": "  same search: best trial's network (not refit)",
    "archtune_ens_kept": "  same search: ensemble, members not refit",
}
DERIVED = ("archtune_net", "archtune_kept", "archtune_ens_kept")
PATIENCE = 10  # archtune's default early-stopping patience, used by the hand loop too
BOOTSTRAP = 1000

DIFFERENCES = [
    "Same 80/20 train/test split and seed for all tools; archtune, the hand loop and the sklearn search each "
    "hold out 20% of the training rows for validation (three different seeded draws).",
    "archtune: its default space with multivariate grouped TPE (8 start-up trials) and Hyperband pruning per "
    "epoch; initialisation matched to the activation; decoupled weight decay for every optimiser; refits "
    "the best configuration on all training rows for its best epoch count (after the budget).",
    "hand loop: Optuna's default TPESampler (independent, 10 start-up trials), no pruning; PyTorch's default "
    "nn.Linear initialisation; torch's own weight_decay semantics (decoupled for AdamW, L2 for Adam, "
    "SGD and RMSprop); the two learning-rate ranges as two parameters (lr_adaptive, lr_sgd); "
    "OneCycleLR without momentum cycling; by default the best trial's model is kept, not refitted.",
    "sklearn: a coarser space (constant-width 1-4 layers of 32-512 units; relu, tanh, logistic; adam only, "
    "no dropout / norm / schedule), MLP early stopping on its own 10% split.",
    "lightgbm: defaults, raw (unscaled) features, no search.",
]


# --------------------------------------------------------------------------- data


@dataclass
class Data:
    name: str
    file: str
    task: str  # "classification" or "regression"
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: np.ndarray
    y_test: np.ndarray
    rows_total: int
    rows_used: int

    @property
    def n_classes(self) -> int:
        return int(len(np.unique(self.y_train))) if self.task == "classification" else 0


def load_dataset(name: str, max_rows: int, seed: int) -> Data:
    from sklearn.model_selection import train_test_split

    file, task, *target = DATASETS[name]
    path = DATA_DIR / file
    frame = pd.read_csv(path, sep="\t" if ".tsv" in path.name else ",")
    frame = frame.drop(columns=[c for c in ("ID",) if c in frame.columns])
    y = frame.pop(target[0] if target else "target").to_numpy()
    if task == "classification":
        y = np.unique(y, return_inverse=True)[1]  # string labels ("yes"/"no") as codes, for every tool
    X = frame.astype("float64")
    rows_total = len(X)
    if len(X) > max_rows:
        idx = np.sort(np.random.default_rng(seed).permutation(len(X))[:max_rows])
        X, y = X.iloc[idx].reset_index(drop=True), y[idx]
    if task == "regression":
        y = y.astype("float64")
    tr, te = train_test_split(np.arange(len(X)), test_size=0.2, random_state=seed,
                              stratify=y if task == "classification" else None)
    return Data(name, file, task, X.iloc[tr].reset_index(drop=True), X.iloc[te].reset_index(drop=True),
                y[tr], y[te], rows_total, len(X))


def test_scores(data: Data, pred: np.ndarray) -> tuple[float, float | None]:
    """(accuracy or R^2, RMSE or None) on the test rows."""
    if data.task == "classification":
        return float(np.mean(pred == data.y_test)), None
    from sklearn.metrics import r2_score

    return float(r2_score(data.y_test, pred)), float(np.sqrt(np.mean((pred - data.y_test) ** 2)))


# --------------------------------------------------------------------------- results


@dataclass
class Result:
    dataset: str
    tool: str
    test_score: float = float("nan")
    test_rmse: float | None = None
    val_score: float | None = None
    trials_complete: int = 0
    trials_pruned: int = 0
    trials_failed: int = 0
    search_seconds: float = 0.0
    refit_seconds: float = 0.0
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    epochs_trained: int | None = None  # over all trials (not the refit)
    best_params: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    predictions: np.ndarray | None = field(default=None, repr=False)

    @property
    def trials_finished(self) -> int:
        return self.trials_complete + self.trials_pruned

    @property
    def trials_per_minute(self) -> float | None:
        if self.search_seconds <= 0 or self.trials_finished == 0:
            return None
        return 60.0 * self.trials_finished / self.search_seconds

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("predictions")
        out["trials_finished"] = self.trials_finished
        out["trials_per_minute"] = self.trials_per_minute
        return _jsonable(out)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return None if not math.isfinite(float(obj)) else float(obj)
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    return str(obj)


class Clock:
    """Wall and process-CPU seconds of the ``with`` block."""

    wall = cpu = 0.0

    def __enter__(self) -> "Clock":
        self._w, self._c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self._w, time.process_time() - self._c


# --------------------------------------------------------------------------- (1) archtune


def run_archtune(data: Data, budget: float, seed: int, baselines: bool, population: bool = True) -> list[Result]:
    import optuna

    from archtune.auto import AutoNeuralClassifier, AutoNeuralRegressor  # not exported by archtune/__init__.py

    cls = AutoNeuralClassifier if data.task == "classification" else AutoNeuralRegressor
    model = cls(budget=f"{int(round(budget))}s", random_state=seed, baselines=baselines, population=population,
                verbose=0)
    res = Result(data.name, "archtune" if population else "archtune_solo")
    start = dt.datetime.now()
    try:
        with Clock() as clock:
            model.fit(data.X_train, data.y_train)
    except Exception as exc:  # e.g. DataError "no trial completed within budget"
        res.error = f"{type(exc).__name__}: {exc}"
        res.wall_seconds = res.search_seconds = (dt.datetime.now() - start).total_seconds()
        return [res]
    res.wall_seconds, res.cpu_seconds = clock.wall, clock.cpu
    trials = model.study_.get_trials(deepcopy=False)
    state = optuna.trial.TrialState
    res.trials_complete = sum(t.state == state.COMPLETE for t in trials)
    res.trials_pruned = sum(t.state == state.PRUNED for t in trials)
    res.trials_failed = sum(t.state == state.FAIL for t in trials)
    ends = [t.datetime_complete for t in trials if t.datetime_complete is not None]
    search_end = max(ends) if ends else start
    res.search_seconds = (search_end - start).total_seconds()
    res.refit_seconds = max(0.0, res.wall_seconds - res.search_seconds)
    epochs = 0
    for t in trials:
        if t.state == state.COMPLETE:
            epochs += int(t.user_attrs.get("epochs_run") or 0)
        elif t.intermediate_values:
            epochs += len(t.intermediate_values)
    res.epochs_trained = epochs
    res.val_score = float(model.best_score_)
    res.best_params = {k: v for k, v in model.best_params_.items()}
    started_predict = time.perf_counter()
    res.predictions = np.asarray(model.predict(data.X_test))
    latency = (time.perf_counter() - started_predict) / len(data.X_test) * 1000
    res.test_score, res.test_rmse = test_scores(data, res.predictions)
    res.extra = {
        "baselines": bool(baselines),
        "baseline_seconds": float(sum(b["fit_seconds"] for b in model.baselines_)) if model.baselines_ else 0.0,
        "baseline_val_scores": {b["name"]: b["score"] for b in model.baselines_},
        # The time split: gradient boosting (the portfolio), the other baselines, the network
        # trials (the search's end minus the baselines), and what follows (ensemble + refit).
        "gbdt_seconds": float(sum(b["fit_seconds"] for b in model.baselines_
                                  if b.get("kind") in ("lightgbm", "catboost"))) if model.baselines_ else 0.0,
        "best_trial": int(model.best_trial_.number),
        "best_epoch": model.best_trial_.user_attrs.get("best_epoch"),
        "refit_epochs": int(len(model.best_estimator_.history_)),
        "best_n_params": model.best_trial_.user_attrs.get("n_params"),
        "longest_trial_seconds": max((float(t.user_attrs.get("fit_seconds") or 0) for t in trials), default=0.0),
        # Network configurations evaluated: finished trials less the promoted repeats
        # (successive halving over rows, archtune.tune.halving), and those repeats.
        "configurations": sum(t.state in (state.COMPLETE, state.PRUNED) and t.user_attrs.get("promoted_from") is None
                              for t in trials),
        "promoted": sum(t.user_attrs.get("promoted_from") is not None for t in trials),
        "saved_network": model.study_.user_attrs.get("saved_network", {}).get("text"),
        "fail_reasons": sorted({str(t.user_attrs.get("fail_reason", "")).split(":")[0]
                                for t in trials if t.state == state.FAIL}),
        "predict_ms_per_1000_rows": latency * 1000,
    }
    res.extra.update(_ensemble_facts(model, data))
    return [res, *_derived_results(model, data, res)]


def _bundle_bytes(model: Any) -> int:
    """Size on disk of the bundle `archtune tune` would save for ``model``."""
    import tempfile

    from archtune.ensemble import Ensemble, save_ensemble
    from archtune.bundles.network import save

    with tempfile.TemporaryDirectory() as tmp:
        if isinstance(model, Ensemble):
            save_ensemble(model, Path(tmp) / "b")
        else:
            save(model, Path(tmp) / "b")
        return sum(p.stat().st_size for p in (Path(tmp) / "b").rglob("*") if p.is_file())


def _ensemble_facts(model: Any, data: Data) -> dict[str, Any]:
    """The ensemble's members and weights, whether it was used, and the bundle sizes."""
    facts: dict[str, Any] = {"ensemble_used": model.ensemble_ is not None,
                             "network_bundle_bytes": _bundle_bytes(model.best_estimator_)}
    record = model.study_.user_attrs.get("ensemble")
    if record:
        facts["ensemble"] = record
    if model.ensemble_ is not None:  # every member kind is saved (baselines with skops.io)
        facts["ensemble_bundle_bytes"] = _bundle_bytes(model.ensemble_)
    return facts


def _derived_results(model: Any, data: Data, main: Result) -> list[Result]:
    """Other answers of the same search, for the ensemble and refit-policy comparisons:
    archtune_net (the best network, refitted), archtune_kept (the best trial's own network,
    not refitted) and archtune_ens_kept (what predicts, with its members as selected: nothing
    refitted on all training rows)."""
    out = []

    def result(tool: str, estimator: Any) -> Result:
        r = copy.copy(main)
        r.tool, r.extra = tool, {}
        r.predictions = np.asarray(estimator.predict(data.X_test))
        r.test_score, r.test_rmse = test_scores(data, r.predictions)
        return r

    out.append(result("archtune_net", model.best_estimator_))
    library = model.ensemble_candidates_
    networks = [m for m in (library.members if library is not None else []) if m.kind == "network"]
    out.append(result("archtune_kept", networks[0].model if networks else model.best_estimator_))
    # The other refit policy: the same choice with every member as selected (trained on the
    # search's training split), nothing refitted. The selection is deterministic.
    choice = library.choose() if library is not None else None
    kept = choice.final if choice is not None and choice.final is not None else model
    out.append(result("archtune_ens_kept", kept))
    return out


# --------------------------------------------------------------------------- (2) Optuna + hand loop
# The classic space of archtune.tune.space (its default before the recipes of issue 12), written
# out by hand as a user would. HAND_SPACE is checked against SearchSpace.classic().describe() at
# start-up, so that drift is reported.

HAND_SPACE = {
    "arch": "{'mlp', 'resnet'}",
    "hidden_layers": "1..8",
    "units": "16..1024 (log)",
    "shape": "{'constant', 'funnel', 'pyramid'}",
    "activation": "{'relu', 'leaky_relu', 'elu', 'selu', 'gelu', 'silu'}",
    "initializer": "'auto'",  # not mirrored: the hand loop keeps PyTorch's default initialisation
    "norm": "{None, 'batch', 'layer'}",
    "dropout": "0..0.5",
    "weight_decay": "1e-06..0.1 (log)",
    "optimizer": "{'adamw', 'adam', 'nesterov', 'rmsprop'}",
    "momentum": "0.8..0.99",
    "learning_rate": "1e-05..0.01 (log) | 0.0001..0.1 (log)",
    "batch_size": "{32, 64, 128, 256, 512, 1024}",
    "lr_schedule": "{'constant', 'cosine', 'one_cycle'}",
    "warmup_epochs": "0..5",
}

ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "selu": nn.SELU, "gelu": nn.GELU,
               "silu": nn.SiLU}


def suggest_hand(trial: Any) -> dict[str, Any]:
    p: dict[str, Any] = {}
    p["arch"] = trial.suggest_categorical("arch", ["mlp", "resnet"])
    p["hidden_layers"] = trial.suggest_int("hidden_layers", 1, 8)
    p["units"] = trial.suggest_int("units", 16, 1024, log=True)
    p["shape"] = trial.suggest_categorical("shape", ["constant", "funnel", "pyramid"])
    p["activation"] = trial.suggest_categorical("activation", list(ACTIVATIONS))
    # SELU normalises itself; no batch/layer norm with it.
    p["norm"] = trial.suggest_categorical("norm", ["none", "batch", "layer"]) if p["activation"] != "selu" else "none"
    p["dropout"] = trial.suggest_float("dropout", 0.0, 0.5)
    p["weight_decay"] = trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True)
    p["optimizer"] = trial.suggest_categorical("optimizer", ["adamw", "adam", "nesterov", "rmsprop"])
    if p["optimizer"] == "nesterov":
        p["momentum"] = trial.suggest_float("momentum", 0.8, 0.99)
        p["learning_rate"] = trial.suggest_float("lr_sgd", 1e-4, 1e-1, log=True)
    else:
        p["momentum"] = 0.9
        p["learning_rate"] = trial.suggest_float("lr_adaptive", 1e-5, 1e-2, log=True)
    p["batch_size"] = trial.suggest_categorical("batch_size", [32, 64, 128, 256, 512, 1024])
    p["lr_schedule"] = trial.suggest_categorical("lr_schedule", ["constant", "cosine", "one_cycle"])
    p["warmup_epochs"] = trial.suggest_int("warmup_epochs", 0, 5) if p["lr_schedule"] != "one_cycle" else 0
    return p


def hidden_widths(layers: int, units: int, shape: str) -> list[int]:
    if shape == "constant":
        return [units] * layers
    if shape == "funnel":
        return [max(1, round(units / 2**i)) for i in range(layers)]
    return [max(1, round(units * (layers - i) / layers)) for i in range(layers)]


def _norm(kind: str, width: int) -> nn.Module:
    return {"batch": lambda: nn.BatchNorm1d(width), "layer": lambda: nn.LayerNorm(width)}.get(kind, nn.Identity)()


def _dropout(rate: float, activation: str) -> nn.Module:
    return (nn.AlphaDropout if activation == "selu" else nn.Dropout)(rate)


class Residual(nn.Module):
    def __init__(self, n_in: int, n_out: int, p: dict[str, Any]):
        super().__init__()
        self.norm = _norm(p["norm"], n_in)
        self.linear = nn.Linear(n_in, n_out)
        self.act = ACTIVATIONS[p["activation"]]()
        self.drop = _dropout(p["dropout"], p["activation"])
        self.skip = nn.Identity() if n_in == n_out else nn.Linear(n_in, n_out, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.drop(self.act(self.linear(self.norm(x))))


def build_net(p: dict[str, Any], n_in: int, n_out: int) -> nn.Module:
    widths = hidden_widths(p["hidden_layers"], p["units"], p["shape"])
    act = ACTIVATIONS[p["activation"]]
    layers: list[nn.Module] = []
    width = n_in
    if p["arch"] == "mlp":
        for w in widths:
            layers += [nn.Linear(width, w), _norm(p["norm"], w), act(), _dropout(p["dropout"], p["activation"])]
            width = w
    else:
        layers += [nn.Linear(width, widths[0]), act(), _dropout(p["dropout"], p["activation"])]
        width = widths[0]
        for w in widths[1:]:
            layers.append(Residual(width, w, p))
            width = w
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


def make_optimizer(p: dict[str, Any], params: Any) -> torch.optim.Optimizer:
    lr, wd = p["learning_rate"], p["weight_decay"]
    if p["optimizer"] == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    if p["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if p["optimizer"] == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=wd)
    return torch.optim.SGD(params, lr=lr, momentum=p["momentum"], nesterov=True, weight_decay=wd)


def make_scheduler(p: dict[str, Any], opt: torch.optim.Optimizer, steps_per_epoch: int,
                   max_epochs: int) -> torch.optim.lr_scheduler.LRScheduler:
    total = steps_per_epoch * max_epochs
    if p["lr_schedule"] == "one_cycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=p["learning_rate"], total_steps=total,
                                                   cycle_momentum=False)
    warm = min(total - 1, steps_per_epoch * p["warmup_epochs"])
    cosine = p["lr_schedule"] == "cosine"

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / (warm + 1)
        if not cosine:
            return 1.0
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


@dataclass
class HandFit:
    model: nn.Module
    val_score: float
    best_epoch: int
    epochs_run: int


def train_hand(p: dict[str, Any], X: torch.Tensor, y: torch.Tensor, X_val: torch.Tensor | None,
               y_val: torch.Tensor | None, n_out: int, classify: bool, max_epochs: int, seed: int) -> HandFit:
    """Train one configuration; with a validation set, early stopping restores the best epoch.
    Without one, train exactly ``max_epochs`` epochs (the refit)."""
    torch.manual_seed(seed)
    model = build_net(p, X.shape[1], n_out)
    opt = make_optimizer(p, model.parameters())
    n = len(X)
    bs = min(p["batch_size"], n)
    steps = math.ceil(n / bs)
    sched = make_scheduler(p, opt, steps, max_epochs)
    loss_fn = nn.functional.cross_entropy if classify else nn.functional.mse_loss
    has_bn = p["norm"] == "batch"
    gen = torch.Generator().manual_seed(seed)
    best_loss, best_state, best_epoch, stale, epoch = math.inf, None, 0, 0, 0
    for epoch in range(1, max_epochs + 1):
        model.train()
        perm = torch.randperm(n, generator=gen)
        total = torch.zeros(())
        for start in range(0, n, bs):
            idx = perm[start:start + bs]
            if has_bn and len(idx) < 2:
                continue
            loss = loss_fn(model(X[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.detach() * len(idx)
        if not math.isfinite(float(total)):
            return HandFit(model, float("nan"), best_epoch, epoch)  # diverged
        if X_val is None:
            continue
        model.eval()
        with torch.no_grad():
            val_loss = float(loss_fn(model(X_val), y_val))
        if math.isfinite(val_loss) and val_loss < best_loss:
            best_loss, best_epoch, stale = val_loss, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            if stale >= PATIENCE:
                break
    model.eval()
    if X_val is None:
        return HandFit(model, float("nan"), epoch, epoch)
    if best_state is None:
        return HandFit(model, float("nan"), 0, epoch)
    model.load_state_dict(best_state)
    with torch.no_grad():
        out = model(X_val)
    if classify:
        score = float((out.argmax(dim=1) == y_val).float().mean())
    else:
        score = float(1 - ((out - y_val) ** 2).sum() / ((y_val - y_val.mean()) ** 2).sum().clamp_min(1e-12))
    return HandFit(model, score, best_epoch, epoch)


def run_loop(data: Data, budget: float, seed: int, max_epochs: int, final: str) -> Result:
    import optuna
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    classify = data.task == "classification"
    res = Result(data.name, "loop")
    with Clock() as clock:
        t0 = time.perf_counter()
        scaler = StandardScaler().fit(data.X_train)
        X_all = torch.tensor(scaler.transform(data.X_train), dtype=torch.float32)
        if classify:
            classes, codes = np.unique(data.y_train, return_inverse=True)
            y_all, n_out = torch.tensor(codes, dtype=torch.long), len(classes)
            stratify = codes
        else:
            mean, scale = float(data.y_train.mean()), float(data.y_train.std() or 1.0)
            y_all, n_out = torch.tensor((data.y_train - mean) / scale, dtype=torch.float32).reshape(-1, 1), 1
            stratify = None
        tr, va = train_test_split(np.arange(len(X_all)), test_size=0.2, random_state=seed, stratify=stratify)
        X_tr, y_tr, X_va, y_va = X_all[tr], y_all[tr], X_all[va], y_all[va]
        best: dict[str, Any] = {"score": -math.inf, "fit": None, "params": None}
        epochs = [0]

        def objective(trial: optuna.Trial) -> float:
            p = suggest_hand(trial)
            fit = train_hand(p, X_tr, y_tr, X_va, y_va, n_out, classify, max_epochs, seed + trial.number)
            epochs[0] += fit.epochs_run
            trial.set_user_attr("best_epoch", fit.best_epoch)
            trial.set_user_attr("epochs_run", fit.epochs_run)
            if math.isfinite(fit.val_score) and fit.val_score > best["score"]:
                best.update(score=fit.val_score, fit=fit, params=p)
            return fit.val_score  # NaN (diverged) makes Optuna mark the trial failed

        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
        study.optimize(objective, timeout=budget, catch=(RuntimeError, ValueError))
        res.search_seconds = time.perf_counter() - t0
        res.epochs_trained = epochs[0]
        state = optuna.trial.TrialState
        res.trials_complete = sum(t.state == state.COMPLETE for t in study.trials)
        res.trials_failed = sum(t.state == state.FAIL for t in study.trials)
        if best["fit"] is None:
            res.error = "no trial completed"
            res.wall_seconds = time.perf_counter() - t0
            return res
        model = best["fit"].model
        if final == "refit":
            t1 = time.perf_counter()
            model = train_hand(best["params"], X_all, y_all, None, None, n_out, classify,
                               max(1, best["fit"].best_epoch), seed).model
            res.refit_seconds = time.perf_counter() - t1
        X_te = torch.tensor(scaler.transform(data.X_test), dtype=torch.float32)
        with torch.no_grad():
            out = model.eval()(X_te)
        pred = classes[out.argmax(dim=1).numpy()] if classify else out.numpy().ravel() * scale + mean
    res.wall_seconds, res.cpu_seconds = clock.wall, clock.cpu
    res.val_score = float(best["score"])
    res.best_params = dict(best["params"])
    res.predictions = np.asarray(pred)
    res.test_score, res.test_rmse = test_scores(data, res.predictions)
    res.extra = {"final": final, "best_epoch": best["fit"].best_epoch,
                 "best_n_params": int(sum(q.numel() for q in model.parameters()))}
    return res


# --------------------------------------------------------------------------- (3) scikit-learn


SKLEARN_HIDDEN = [(w,) * d for d in (1, 2, 3, 4) for w in (32, 64, 128, 256, 512)]


def run_sklearn(data: Data, budget: float, seed: int, max_epochs: int, cv: int | None) -> Result:
    from scipy.stats import loguniform
    from sklearn.base import clone
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import RandomizedSearchCV, ShuffleSplit, StratifiedShuffleSplit
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    classify = data.task == "classification"
    mlp_kw = dict(solver="adam", max_iter=max_epochs, early_stopping=True, n_iter_no_change=PATIENCE,
                  random_state=seed)
    pipe = Pipeline([("scale", StandardScaler()), ("mlp", (MLPClassifier if classify else MLPRegressor)(**mlp_kw))])
    prefix = "mlp__"
    if not classify:
        pipe = TransformedTargetRegressor(regressor=pipe, transformer=StandardScaler())
        prefix = "regressor__mlp__"
    dists = {
        prefix + "hidden_layer_sizes": SKLEARN_HIDDEN,
        prefix + "alpha": loguniform(1e-6, 1e-1),
        prefix + "learning_rate_init": loguniform(1e-5, 1e-2),
        prefix + "batch_size": [32, 64, 128, 256, 512, 1024],
        prefix + "activation": ["relu", "tanh", "logistic"],
    }
    if cv is None:
        splitter = (StratifiedShuffleSplit if classify else ShuffleSplit)(n_splits=1, test_size=0.2, random_state=seed)
    else:
        splitter = cv
    scoring = "accuracy" if classify else "r2"
    res = Result(data.name, "sklearn")
    candidates: list[tuple[float, dict[str, Any]]] = []
    epochs = 0
    with warnings.catch_warnings(), Clock() as clock:
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        draw = 0
        while time.perf_counter() - t0 < budget:
            search = RandomizedSearchCV(pipe, dists, n_iter=1, cv=splitter, scoring=scoring, refit=False,
                                        random_state=seed * 10007 + draw, n_jobs=1, error_score=np.nan)
            search.fit(data.X_train, data.y_train)
            draw += 1
            value = float(search.cv_results_["mean_test_score"][0])
            candidates.append((value, search.cv_results_["params"][0]))
        res.search_seconds = time.perf_counter() - t0
        good = [c for c in candidates if math.isfinite(c[0])]
        res.trials_complete, res.trials_failed = len(good), len(candidates) - len(good)
        if not good:
            res.error = "no candidate scored"
            res.wall_seconds = time.perf_counter() - t0
            return res
        value, params = max(good, key=lambda c: c[0])
        t1 = time.perf_counter()
        final = clone(pipe).set_params(**params).fit(data.X_train, data.y_train)
        res.refit_seconds = time.perf_counter() - t1
        pred = final.predict(data.X_test)
    mlp = final.regressor_.named_steps["mlp"] if not classify else final.named_steps["mlp"]
    res.wall_seconds, res.cpu_seconds = clock.wall, clock.cpu
    res.val_score = value
    res.best_params = {k.removeprefix(prefix): v for k, v in params.items()}
    res.predictions = np.asarray(pred)
    res.test_score, res.test_rmse = test_scores(data, res.predictions)
    res.extra = {"cv": "hold-out 20%" if cv is None else f"{cv}-fold", "refit_epochs": int(mlp.n_iter_)}
    return res


# --------------------------------------------------------------------------- (4) LightGBM


def run_lightgbm(data: Data, seed: int, threads: int) -> Result:
    import lightgbm as lgb

    cls = lgb.LGBMClassifier if data.task == "classification" else lgb.LGBMRegressor
    model = cls(random_state=seed, n_jobs=threads, verbose=-1)
    res = Result(data.name, "lightgbm")
    with Clock() as clock:
        model.fit(data.X_train, data.y_train)
    res.wall_seconds, res.cpu_seconds = clock.wall, clock.cpu
    res.refit_seconds = 0.0
    res.predictions = np.asarray(model.predict(data.X_test))
    res.test_score, res.test_rmse = test_scores(data, res.predictions)
    res.extra = {"n_estimators": model.n_estimators, "fit_seconds": clock.wall}
    return res


# --------------------------------------------------------------------------- comparison


def paired_bootstrap(data: Data, a: np.ndarray, b: np.ndarray, seed: int) -> tuple[float, float, float]:
    """Score(a) - score(b) on the test rows, with a 90% paired-bootstrap interval."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(data.y_test), size=(BOOTSTRAP, len(data.y_test)))
    y = data.y_test
    if data.task == "classification":
        diff = (a == y).astype(float) - (b == y).astype(float)
        point = float(diff.mean())
        boots = diff[idx].mean(axis=1)
    else:
        yy = y[idx]
        total = ((yy - yy.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
        ra, rb = ((yy - a[idx]) ** 2).sum(axis=1), ((yy - b[idx]) ** 2).sum(axis=1)
        boots = (rb - ra) / total
        point = float((((y - b) ** 2).sum() - ((y - a) ** 2).sum()) / ((y - y.mean()) ** 2).sum())
    lo, hi = np.percentile(boots, [5, 95])
    return point, float(lo), float(hi)


def check_space_drift() -> list[str]:
    """Searched dimensions of archtune's classic space that HAND_SPACE does not mirror
    (conditions aside: the hand loop's are the same ``if``s)."""
    import re

    from archtune.tune.space import SearchSpace

    def plain(text: str) -> str:
        return " | ".join(sorted(re.sub(r" when .*", "", part).strip() for part in text.split(" | ")))

    described = {d.name: plain(d.describe()) for d in SearchSpace.classic().dimensions if d.kind != "fixed"}
    hand = {k: plain(v) for k, v in HAND_SPACE.items() if k != "initializer"}
    return [f"{k}: archtune {described.get(k)!r} vs hand {hand.get(k)!r}"
            for k in sorted(set(described) | set(hand)) if described.get(k) != hand.get(k)]


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _fmt(v: float | None, spec: str) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for pkg in ("archtune", "torch", "numpy", "scikit-learn", "optuna", "lightgbm"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


# --------------------------------------------------------------------------- driver


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help=f"30 s budgets on {','.join(QUICK_DATASETS)} unless given (a smoke run)")
    parser.add_argument("--budget", type=float, default=None, help="seconds per searching tool (default 180)")
    parser.add_argument("--datasets", default=None,
                        help=f"comma-separated, from {','.join(DATASETS)} (default {','.join(DEFAULT_DATASETS)})")
    parser.add_argument("--tools", default=",".join(DEFAULT_TOOLS),
                        help=f"comma-separated subset of {','.join(TOOLS)} (archtune_solo: population=False)")
    parser.add_argument("--max-rows", type=int, default=20000, help="subsample larger tables (default 20000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch/BLAS/OpenMP threads for every tool (default 1)")
    parser.add_argument("--archtune-baselines", action="store_true",
                        help="run archtune with baselines=True (its default): they count against its budget")
    parser.add_argument("--loop-final", choices=("keep", "refit"), default="keep",
                        help="hand loop: keep the best trial's model (default) or refit it on all training rows")
    parser.add_argument("--sklearn-cv", type=int, default=None, help="K-fold for the sklearn search (default: one "
                        "20%% hold-out)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    budget = args.budget if args.budget is not None else (30.0 if args.quick else 180.0)
    names = [n.strip() for n in (args.datasets or ",".join(QUICK_DATASETS if args.quick else DEFAULT_DATASETS))
             .split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        parser.error(f"unknown dataset(s) {unknown}; choose from {', '.join(DATASETS)}")
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    if any(t not in TOOLS for t in tools):
        parser.error(f"--tools must be a subset of {', '.join(TOOLS)}")

    import optuna
    from threadpoolctl import threadpool_limits

    from archtune.tune.space import SearchSpace

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failed trials are counted in the table
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    torch.set_num_threads(args.threads)
    blas_limit = threadpool_limits(limits=args.threads)  # noqa: F841  (kept alive for the whole run)
    max_epochs = SearchSpace.default().max_epochs
    drift = check_space_drift()
    for line in drift:
        print(f"warning: the hand loop's space no longer mirrors archtune's default: {line}", file=sys.stderr)

    print(f"search quality: budget {budget:g} s per searching tool, datasets {','.join(names)}, tools "
          f"{','.join(tools)}, seed {args.seed}, {args.threads} thread(s), max_epochs {max_epochs}, archtune "
          f"baselines={'True' if args.archtune_baselines else 'False'}, load average {_loadavg()}", file=sys.stderr)
    started = time.perf_counter()
    datas: dict[str, Data] = {}
    results: list[Result] = []
    loads: dict[str, dict[str, str]] = {}
    for name in names:
        data = load_dataset(name, args.max_rows, args.seed)
        datas[name] = data
        extra = f", {data.n_classes} classes" if data.task == "classification" else ""
        print(f"\n{name}: {data.file}, {data.rows_used} of {data.rows_total} rows x {data.X_train.shape[1]} features"
              f"{extra}; train {len(data.X_train)}, test {len(data.X_test)}", file=sys.stderr)
        for tool in tools:
            load_before = _loadavg()
            if tool in ("archtune", "archtune_solo"):
                r, *derived = run_archtune(data, budget, args.seed, args.archtune_baselines,
                                           population=tool == "archtune")
                if tool == "archtune":
                    for d in derived:
                        results.append(d)
                        print(f"  {d.tool:9s} test {_fmt(d.test_score, '.4f')} (same search)", file=sys.stderr)
            elif tool == "loop":
                r = run_loop(data, budget, args.seed, max_epochs, args.loop_final)
            elif tool == "sklearn":
                r = run_sklearn(data, budget, args.seed, max_epochs, args.sklearn_cv)
            elif tool in OTHER_TOOLS:
                r = run_other(tool, data, budget, args.seed, args.threads, Result)
                if r.predictions is not None:
                    r.test_score, r.test_rmse = test_scores(data, r.predictions)
            else:
                r = run_lightgbm(data, args.seed, args.threads)
            loads[f"{name}/{tool}"] = {"before": load_before, "after": _loadavg()}
            results.append(r)
            print(f"  {tool:9s} test {_fmt(r.test_score, '.4f')}  val {_fmt(r.val_score, '.4f')}  trials "
                  f"{r.trials_complete}+{r.trials_pruned} pruned ({r.trials_failed} failed)  search "
                  f"{r.search_seconds:.1f} s  refit {r.refit_seconds:.1f} s  wall {r.wall_seconds:.1f} s"
                  f"{'  ERROR ' + r.error if r.error else ''}", file=sys.stderr)
    total_minutes = (time.perf_counter() - started) / 60

    # ------------------------------------------------------------------ table
    by = {(r.dataset, r.tool): r for r in results}
    listed = [t for tool in tools for t in ([tool, *DERIVED] if tool == "archtune" else [tool])]
    print()
    print(f"### Search quality: {budget:g} s budget per searching tool, seed {args.seed}, {args.threads} thread(s), "
          f"archtune baselines={'on' if args.archtune_baselines else 'off'}, hand loop {args.loop_final}s its best "
          f"model, sklearn {'hold-out' if args.sklearn_cv is None else f'{args.sklearn_cv}-fold'}")
    print()
    print("| dataset | tool | test acc / R^2 | test RMSE | val score | trials finished (pruned) | failed | "
          "trials/min | epochs | search s | refit s | wall s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in names:
        d = datas[name]
        label = f"{name} ({len(d.X_train)}+{len(d.X_test)}{', sub' if d.rows_used < d.rows_total else ''})"
        for tool in listed:
            r = by.get((name, tool))
            if r is None:
                continue
            searching = tool != "lightgbm" and tool not in OTHER_TOOLS
            finished = f"{r.trials_finished} ({r.trials_pruned})" if tool.startswith("archtune") else (
                str(r.trials_finished) if searching else "-")
            print(f"| {label} | {TOOL_NAMES[tool]} | {_fmt(r.test_score, '.4f')}"
                  f"{' (' + r.error.split(':')[0] + ')' if r.error else ''} | "
                  f"{_fmt(r.test_rmse, '.4g') if r.test_rmse is not None else '-'} | {_fmt(r.val_score, '.4f')} | "
                  f"{finished} | {r.trials_failed if searching else '-'} | "
                  f"{_fmt(r.trials_per_minute, '.1f') if searching else '-'} | "
                  f"{r.epochs_trained if r.epochs_trained is not None else '-'} | "
                  f"{r.search_seconds:.1f} | {r.refit_seconds:.1f} | {r.wall_seconds:.1f} |")
    print()
    print("Score: accuracy (classification) or R^2 (regression) on the 20% test rows. \"sub\": subsampled to "
          f"{args.max_rows} rows. epochs: summed over all trials of the search (not the refit; not recorded "
          "for sklearn). search s: start of fit to the end of the last trial (archtune: includes its baselines "
          "when on); refit s: after it.")

    # ------------------------------------------------------------------ targets
    verdicts: list[tuple[str, bool, str]] = []
    comparisons: list[dict[str, Any]] = []
    if "archtune" in tools:
        pairs = [("archtune", t) for t in ("loop", "sklearn", "lightgbm", "archtune_solo", *OTHER_TOOLS) if t in tools]
        pairs += [("archtune_net", t) for t in ("realmlp",) if t in tools]
        pairs += [("archtune", "archtune_net"), ("archtune_net", "lightgbm"), ("archtune_kept", "archtune_net"),
                  ("archtune", "archtune_ens_kept")]
        for tool, rival in pairs:
            if any((name, tool) not in by or (name, rival) not in by for name in names):
                continue
            wins, per = 0, []
            for name in names:
                a, b = by[(name, tool)], by[(name, rival)]
                ok = math.isfinite(a.test_score) and (not math.isfinite(b.test_score) or a.test_score >= b.test_score)
                wins += ok
                if a.predictions is not None and b.predictions is not None:
                    point, lo, hi = paired_bootstrap(datas[name], a.predictions, b.predictions, args.seed)
                    comparisons.append({"dataset": name, "tool": tool, "rival": rival, "diff": point,
                                        "ci90": [lo, hi], "at_least_as_good": ok})
                    detail = f"{point:+.4f}, 90% {lo:+.4f}..{hi:+.4f}{' noise' if lo < 0 < hi else ''}"
                else:
                    detail = "no predictions (" + (a.error or b.error or "error") + ")"
                per.append(f"{name} {detail}")
                if (tool, rival) == ("archtune", "loop"):
                    verdicts.append((f"{name}: archtune >= Optuna + hand loop", ok, detail))
            summary = f"{wins} of {len(names)}; " + "; ".join(per)
            if (tool, rival) == ("archtune", "lightgbm"):
                verdicts.append(("archtune (the ensemble where used) >= LightGBM defaults on every dataset (issue 13)",
                                 wins == len(names), summary))
            elif (tool, rival) == ("archtune", "archtune_net"):
                verdicts.append(("archtune (the ensemble where used) >= its best network on every dataset (issue 13)",
                                 wins == len(names), summary))
            elif (tool, rival) == ("archtune_net", "lightgbm"):
                need = len(names) - 1
                verdicts.append((f"archtune's best network >= LightGBM defaults on at least {need} datasets "
                                 "(issue 12)", wins >= need, summary))
            elif rival == "sklearn":
                verdicts.append(("(info, not a target) archtune >= RandomizedSearchCV MLP on every dataset",
                                 wins == len(names), summary))
            elif (tool, rival) in (("archtune_kept", "archtune_net"), ("archtune", "archtune_ens_kept")):
                verdicts.append((f"(info: refit policy) {tool} >= {rival}", wins == len(names), summary))
            elif (tool, rival) == ("archtune_net", "realmlp"):
                need = min(4, len(names))
                verdicts.append((f"archtune's best network >= RealMLP-TD defaults on at least {need} of {len(names)} "
                                 "(issue 31)", wins >= need, summary))
            elif rival in OTHER_TOOLS:
                verdicts.append((f"(info) archtune >= {OTHER_TOOL_NAMES[rival]}", wins == len(names), summary))
        automl = [t for t in ("autogluon", "flaml", "lightgbm_tuned") if t in tools]
        if automl and all((name, t) in by for name in names for t in ["archtune", *automl]):
            wins, per = 0, []
            for name in names:
                rivals = [by[(name, t)] for t in automl if math.isfinite(by[(name, t)].test_score)]
                best = max(rivals, key=lambda r: r.test_score) if rivals else None
                a = by[(name, "archtune")]
                ok = best is None or (math.isfinite(a.test_score) and a.test_score >= best.test_score)
                wins += ok
                per.append(f"{name} vs {best.tool if best else '-'} "
                           f"{a.test_score - best.test_score:+.4f}" if best else f"{name} no rival")
            need = min(5, len(names))
            verdicts.append((f"archtune >= the best of {', '.join(automl)} on at least {need} of {len(names)} "
                             "(issue 31)", wins >= need, f"{wins} of {len(names)}; " + "; ".join(per)))
    print()
    print("Targets (test score; archtune minus rival, paired bootstrap over test rows):")
    for text, ok, detail in verdicts:
        print(f"- {'PASS' if ok else 'FAIL'}: {text} ({detail})")

    print()
    print("Budget use (search s minus budget; a trial started before the deadline runs to its end):")
    for name in names:
        parts = []
        for tool in tools:
            if tool == "lightgbm" or (tool in OTHER_TOOLS and tool not in BUDGETED):
                continue
            r = by[(name, tool)]
            parts.append(f"{tool} {r.search_seconds - budget:+.1f} s search, +{r.refit_seconds:.1f} s refit")
        at = by.get((name, "archtune"))
        if at is not None and at.extra:
            gbdt, others = at.extra["gbdt_seconds"], at.extra["baseline_seconds"] - at.extra["gbdt_seconds"]
            parts.append(f"archtune time split: gradient boosting {gbdt:.1f} s, other baselines {others:.1f} s, "
                         f"networks {at.search_seconds - at.extra['baseline_seconds']:.1f} s, ensemble + refit "
                         f"{at.refit_seconds:.1f} s; longest trial {at.extra['longest_trial_seconds']:.1f} s, refit "
                         f"{at.extra['refit_epochs']} epochs; {at.extra.get('configurations')} network "
                         f"configurations evaluated, {at.extra.get('promoted')} promoted to all rows; saved: "
                         f"{at.extra.get('saved_network')}")
        print(f"- {name}: " + "; ".join(parts))
    print()
    print("archtune's ensemble (members: weight), prediction latency of what it ships and bundle sizes:")
    for name in names:
        at = by.get((name, "archtune"))
        if at is None or not at.extra:
            continue
        record = at.extra.get("ensemble") or {}
        members = ", ".join(f"{m['name']}: {m['weight']:.2f}" for m in record.get("members", []))
        gain = record.get("gain")
        size = at.extra.get("ensemble_bundle_bytes")
        state = ("used" if record.get("used") else f"not used, {record['alone']} alone predicts" if record.get("alone")
                 else "not used, the best network predicts")
        print(f"- {name}: {state}"
              f"{f' (held-out gain {gain:+.4f})' if gain is not None else ''}; {members or 'no ensemble'}; "
              f"{at.extra['predict_ms_per_1000_rows']:.1f} ms per 1000 rows; bundle "
              f"{at.extra['network_bundle_bytes'] / 1e6:.2f} MB (network)"
              f"{f', {size / 1e6:.2f} MB (ensemble)' if size else ''}")
    print()
    print(f"Total {total_minutes:.1f} min. Load average per tool in the JSON; timings on a shared machine are "
          "indicative.")
    print()
    print("Differences between the tools:")
    for d in DIFFERENCES:
        print(f"- {d}")
    if drift:
        print("- WARNING: the hand-mirrored space differs from SearchSpace.default(): " + "; ".join(drift))

    if args.json is not None:
        payload = {
            "benchmark": "search_quality",
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "budget_seconds": budget, "seed": args.seed, "threads": args.threads, "max_rows": args.max_rows,
            "archtune_baselines": args.archtune_baselines, "loop_final": args.loop_final,
            "sklearn_cv": args.sklearn_cv, "max_epochs": max_epochs, "patience": PATIENCE,
            "datasets": {n: {"file": d.file, "task": d.task, "rows_total": d.rows_total, "rows_used": d.rows_used,
                             "n_train": len(d.X_train), "n_test": len(d.X_test), "n_features": d.X_train.shape[1],
                             "n_classes": d.n_classes} for n, d in datas.items()},
            "versions": _versions(),
            "machine": {"python": platform.python_version(), "platform": platform.platform(),
                        "cpus": os.cpu_count()},
            "load_average": loads,
            "total_minutes": total_minutes,
            "results": [r.to_json() for r in results],
            "comparisons": comparisons,
            "targets": [{"target": t, "pass": ok, "detail": d} for t, ok, d in verdicts],
            "space_drift": drift,
            "differences": DIFFERENCES,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(_jsonable(payload), indent=2) + "\n")
        print(f"\nwrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
