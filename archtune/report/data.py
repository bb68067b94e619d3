"""The report's numbers: the `Run` a report is made from (a run folder, or a fitted estimator)
and pure functions from it to each section's small dataclass (archtune/report/data_types.py).
Nothing here draws; archtune/report/plots.py draws these objects and archtune/report/html.py
lays them out, so tests check the numbers, not the pixels.

Each ``*_data`` function returns None when the run does not have what its section shows (a
plain ``fit`` has no study; a run without ``--holdout`` has no held-out rows).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from archtune.errors import BundleError, DataError
from archtune.report.data_types import (DoctorData, HoldoutData, Importances, LeaderboardData, LearningCurves,
                                        LRFinderData, NetworkData, OptimizationHistory, PermutationData,
                                        SettingsData)
from archtune.report.evaluation import EVALUATION_FILE

BUNDLE_FILE = "archtune.json"
METRICS_FILE = "metrics.json"
LEADERBOARD_FILE = "leaderboard.csv"
STUDY_FILE = "study.db"
LR_FINDER_FILE = "lr_finder.json"
TOP_TRIAL_CURVES = 5


@dataclass
class Run:
    """What a report is made from: the saved network and whatever else the run kept.

    ``folder`` is None for a run given as an estimator. ``study`` is an Optuna study (or
    None); ``leaderboard`` the leaderboard frame; ``evaluation`` the held-out evaluation
    (`archtune.report.evaluation.evaluate`); ``metrics`` the run's metrics.json.
    """

    model: Any
    folder: Path | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    leaderboard: pd.DataFrame | None = None
    study: Any = None
    evaluation: dict[str, Any] | None = None
    lr_finder: dict[str, Any] | None = None
    # What predicts, when it is not ``model``: a search's ensemble (or the ensemble given alone,
    # with no network to describe). Held-out rows are evaluated with it.
    predictor: Any = None

    @property
    def predicts(self) -> Any:
        return self.predictor if self.predictor is not None else self.model


def is_run_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder saved by ``archtune fit`` / ``tune`` (it holds a network
    bundle, archtune.json)."""
    return (Path(path) / BUNDLE_FILE).is_file()


def load_run(path: str | os.PathLike) -> Run:
    """Read a run folder.

    Raises
    ------
    DataError
        ``path`` is not a run folder (saying what it is and which command takes it), or one of
        its files is unreadable (naming the file).
    """
    folder = Path(path)
    # Anything but a run folder (a pretraining or ensemble bundle, an exported file, a search
    # stopped before it saved a model, an empty or foreign folder) is named in one line.
    _check_reportable(folder)
    from archtune.bundles.search import final_ensemble_dir
    from archtune.bundles.ensemble import load_ensemble
    from archtune.bundles.network import load

    run = Run(model=load(folder), folder=folder, metrics=_read_json(folder / METRICS_FILE) or {})
    try:  # a search's final model, when another model than its network predicts
        ensemble = final_ensemble_dir(folder)
        run.predictor = None if ensemble is None else load_ensemble(ensemble)
    except BundleError as exc:  # the report describes the network and what the run saved; it never fails
        warnings.warn(f"{folder}: the model that predicts could not be read ({exc}); the report describes the "
                      "best network", RuntimeWarning, stacklevel=2)
    run.evaluation = _read_json(folder / EVALUATION_FILE)
    run.lr_finder = _read_json(folder / LR_FINDER_FILE)
    if (folder / LEADERBOARD_FILE).is_file():
        run.leaderboard = pd.read_csv(folder / LEADERBOARD_FILE, index_col="rank")
    if (folder / STUDY_FILE).is_file():
        from archtune.tune.history import open_study

        run.study = open_study(folder / STUDY_FILE, run.metrics.get("study"))
    return run


def _check_reportable(folder: Path) -> None:
    """DataError, in one line, for a folder archtune wrote that has no report to make (what it
    is and what to do with it); nothing for a run folder."""
    from archtune.bundles.paths import check_path
    from archtune.errors import InvalidParameterError

    try:
        check_path(folder, "report")
    except InvalidParameterError as exc:
        raise DataError(str(exc)) from None


def run_of(source: Any) -> Run:
    """A `Run` from a run folder (path), a `Run`, a fitted NeuralClassifier/NeuralRegressor, or
    a fitted AutoNeural* (its best network, study and leaderboard).

    Raises
    ------
    DataError
        A path that is not a run folder.
    TypeError
        Anything else that is not a fitted archtune estimator.
    """
    if isinstance(source, Run):
        return source
    if isinstance(source, (str, os.PathLike)):
        return load_run(source)
    from archtune.ensemble.model import Ensemble
    from archtune.task import task_of

    metrics = {"task": task_of(source).name}
    if isinstance(source, Ensemble):  # no network of its own: held-out rows only
        return Run(model=None, metrics=metrics, predictor=source)
    model = getattr(source, "best_estimator_", source)
    if not hasattr(model, "module_") or not hasattr(model, "history_"):
        raise TypeError(f"expected a run folder or a fitted archtune estimator, not {type(source).__name__}")
    final = getattr(source, "final_estimator_", model)
    finder = getattr(model, "lr_finder_", None)
    return Run(model=model, metrics=metrics, leaderboard=getattr(source, "leaderboard_", None),
               study=getattr(source, "study_", None),
               lr_finder=None if finder is None else dataclasses.asdict(finder),
               predictor=None if final is model else final)


# --------------------------------------------------------------------------- the sections' data


def leaderboard_data(run: Run) -> LeaderboardData | None:
    """The verdict and leaderboard of a search (leaderboard.csv, or the estimator's
    ``leaderboard_``); None for a run without one."""
    if run.leaderboard is None or run.leaderboard.empty:
        return None
    frame = run.leaderboard.copy()
    frame.index.name = "rank"
    rows = [{k: _plain(v) for k, v in row.items()} for row in frame.reset_index().to_dict("records")]
    return LeaderboardData(verdict=run.metrics.get("verdict"), metric=run.metrics.get("metric"), rows=rows)


def learning_curves(run: Run) -> LearningCurves | None:
    """The saved network's ``history_`` per epoch, and the best trials' validation curves."""
    history = getattr(run.model, "history_", None)
    if history is None or len(history) == 0:
        return None
    epochs = [int(e) for e in history["epoch"]] if "epoch" in history else list(range(1, len(history) + 1))
    series = {str(c): [_plain(v) for v in history[c]] for c in history.columns if c != "epoch"}
    best = int(getattr(run.model, "best_epoch_", 0) or 0) or None
    trials = []
    if run.study is not None:
        from archtune.tune.history import trial_curves

        trials = trial_curves(run.study, TOP_TRIAL_CURVES)
    return LearningCurves(epochs=epochs, series=series, best_epoch=best, trials=trials)


def optimization_history(run: Run) -> OptimizationHistory | None:
    """Every finished trial of the run's study; None without a study."""
    if run.study is None:
        return None
    from archtune.tune.history import maximizes, trial_history

    trials = trial_history(run.study)
    if not trials:
        return None
    return OptimizationHistory(maximize=maximizes(run.study), trials=trials)


def importances_data(run: Run) -> Importances | None:
    """Hyperparameter importances (`archtune.tune.history.param_importances`); None without a
    study or with too few completed trials whose parameters vary."""
    if run.study is None:
        return None
    from archtune.tune.history import param_importances

    found = param_importances(run.study)
    return None if found is None else Importances(**found)


def doctor_data(run: Run) -> DoctorData:
    """`archtune.diagnose` on the saved network (its learning curves and weights; no data is
    needed), and the diagnosis summary each trial of a search stored."""
    from archtune.doctor.diagnose import diagnose

    diagnosis = diagnose(run.model).to_dict()
    trials = []
    if run.study is not None:
        from archtune.tune.history import trial_diagnoses

        trials = trial_diagnoses(run.study)
    return DoctorData(findings=[_json_safe(f) for f in diagnosis["findings"]], checked=list(diagnosis["checked"]),
                      trials=trials)


def holdout_data(run: Run) -> HoldoutData | None:
    """The held-out evaluation the run saved (evaluation.json); None without held-out rows."""
    e = run.evaluation
    if not e:
        return None
    from archtune.report.evaluation import bootstrap_interval

    interval = bootstrap_interval(e["y_true"], e["y_pred"], e["task"]) if e.get("y_true") else None
    return HoldoutData(task=e["task"], n_rows=int(e["n_rows"]), metrics=dict(run.metrics.get("holdout") or {}),
                       interval=interval,
                       labels=e.get("labels"), confusion=e.get("confusion"), calibration=e.get("calibration"),
                       points=e.get("points"), prediction_interval=e.get("prediction_interval"))


def key_numbers(run: Run, holdout: HoldoutData | None) -> list[dict[str, Any]]:
    """The few numbers a reader wants first: the held-out score of the model that predicts (with
    its bootstrap interval), what predicts, the best network's validation score, and the search's
    size or the fit's time. Each ``{"label", "value", "detail"}``; those the run lacks are left out."""
    m = run.metrics
    metric = m.get("metric")
    keys: list[dict[str, Any]] = []
    held = m.get("holdout") or (holdout.metrics if holdout else {}) or {}
    interval = holdout.interval if holdout else None
    name = metric if metric in held else next(iter(held), None)
    if name is None and interval:  # an estimator given from Python: the evaluation's own score
        name, held = interval["metric"], {interval["metric"]: interval["value"]}
    if name is not None:
        rows = holdout.n_rows if holdout else None
        detail = f"{rows} rows kept out of training and search" if rows else None
        if interval and interval["metric"] == name:
            detail = f"95% interval {interval['low']:.4g} to {interval['high']:.4g} ({rows} rows)"
        keys.append({"label": f"held-out {name}", "value": held[name], "detail": detail})
    final = m.get("final") or {}
    if final.get("kind") and final["kind"] != "network":
        keys.append({"label": "predicts", "value": final["kind"], "detail": final.get("summary")})
    validation, scored = m.get("best_score"), metric
    if validation is None:  # a plain fit: its early-stopping split's first metric (val_r2, ...)
        scored, validation = next(iter((m.get("validation") or {}).items()), (None, None))
        scored = scored and scored.removeprefix("val_")
    if validation is not None:
        label = "best network, validation" if "study" in m or run.study is not None else "validation"
        keys.append({"label": f"{label} {scored or ''}".strip(), "value": validation,
                     "detail": "on the early-stopping split" if "study" not in m else None})
    history = optimization_history(run)
    if history is not None:
        done = sum(t["state"] == "COMPLETE" for t in history.trials)
        seconds = m.get("search_seconds")
        keys.append({"label": "search", "value": f"{len(history.trials)} trials",
                     "detail": f"{done} completed" + (f", {seconds:.0f} s" if seconds is not None else "")})
    elif m.get("fit_seconds") is not None:
        keys.append({"label": "training time", "value": f"{m['fit_seconds']:.1f} s", "detail": None})
    return keys


def evaluate_rows(run: Run, X: Any, y: Any, *, permutation: bool) -> dict[str, Any]:
    """The held-out evaluation (`archtune.report.evaluation.evaluate`) of what the run predicts
    with (its network, or a search's final model) on rows (X, y) given from Python, for a run
    that did not save one."""
    from archtune.report.evaluation import evaluate
    from archtune.task import task_of

    if (X is None) != (y is None):
        raise ValueError("pass both X and y, or neither")
    model = run.predicts
    # Rows as a table, named as the network's fit saw them (the search fits on a named table
    # even when given an array), so that the estimator does not warn about feature names.
    names = getattr(model, "feature_names_in_", None)
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X, columns=None if names is None else list(names))
    target = np.asarray(y)
    return evaluate(model, frame, pd.Series(target) if target.ndim == 1 else target, task_of(model).name,
                    permutation=permutation)


def permutation_data(run: Run) -> PermutationData | None:
    """Permutation feature importance from the held-out evaluation; None without it."""
    found = (run.evaluation or {}).get("permutation_importance")
    return None if not found else PermutationData(**found)


def lr_finder_data(run: Run) -> LRFinderData | None:
    """The learning-rate finder's curve (lr_finder.json in the run folder) and the searched
    trials' suggestions; None when the run has neither."""
    trials = []
    if run.study is not None:
        from archtune.tune.history import lr_suggestions

        trials = lr_suggestions(run.study)
    curve = run.lr_finder or {}
    if not curve and not trials:
        return None
    known = {f.name for f in dataclasses.fields(LRFinderData)} - {"trials"}
    return LRFinderData(**{k: v for k, v in curve.items() if k in known}, trials=trials)


def lr_finder_from_result(result: Any) -> LRFinderData:
    """The data of an `archtune.LRFinderResult` (what `archtune.lr_find` returns)."""
    return LRFinderData(method=result.method, lrs=list(result.lrs), losses=list(result.losses),
                        smoothed=list(result.smoothed), suggestion=result.suggestion, steepest=result.steepest,
                        largest_stable=result.largest_stable)


def network_data(model: Any) -> NetworkData:
    """The fitted network's modules with their output shapes and parameter counts.

    Shapes come from one forward pass of a zero row of width ``model.input_spec_.width`` with a
    hook on each module (a leaf, or one that holds parameters of its own), in eval mode
    without gradients: the network is not changed. Parameter counts are each module's own
    (not its children's), so they add up to ``total_params``; parameters the network holds
    itself come first, in a row named ``(network's own: NAMES)``.
    """
    import torch

    module = model.module_
    shapes: dict[str, list[int]] = {}
    picked = [(name, m) for name, m in module.named_modules()
              if name and (not list(m.children()) or any(True for _ in m.parameters(recurse=False)))]

    def hook_for(name: str):
        def hook(_module: Any, _inputs: Any, output: Any) -> None:
            if isinstance(output, torch.Tensor) and name not in shapes:
                shapes[name] = list(output.shape[1:])
        return hook

    handles = [m.register_forward_hook(hook_for(name)) for name, m in picked]
    was_training = module.training
    try:
        module.eval()
        with torch.no_grad():
            device = next(module.parameters()).device
            module(torch.zeros(1, model.input_spec_.width, device=device))
    except Exception:  # an input the zero row cannot stand for: the layers are listed without shapes
        pass
    finally:
        for handle in handles:
            handle.remove()
        module.train(was_training)
    order = {name: i for i, name in enumerate(shapes)}  # the order the forward pass ran them in
    layers = []
    for position, (name, m) in enumerate(picked):
        own = sum(p.numel() for p in m.parameters(recurse=False))
        n_params = own if list(m.children()) else sum(p.numel() for p in m.parameters())
        if name not in shapes and n_params == 0:
            continue  # an empty container or a module this network does not use
        layers.append({"name": name, "type": type(m).__name__, "output_shape": shapes.get(name),
                       "n_params": int(n_params), "_order": order.get(name, len(order) + position)})
    layers.sort(key=lambda layer: layer.pop("_order"))
    own = [(name, p.numel()) for name, p in module.named_parameters(recurse=False)]
    if own:  # parameters the network holds itself (a learned input scale, say), listed first
        layers.insert(0, {"name": f"(network's own: {', '.join(name for name, _ in own)})",
                          "type": type(module).__name__, "output_shape": None,
                          "n_params": int(sum(n for _, n in own))})
    return NetworkData(input_width=int(model.input_spec_.width), layers=layers,
                       total_params=int(sum(p.numel() for p in module.parameters())))


def settings_data(run: Run) -> SettingsData:
    """Versions of Python and the packages that shaped the run, the run's settings from
    metrics.json, and the network's parameters."""
    from archtune.bundles.format import params_to_json

    versions = {"python": platform.python_version()}
    for package in ("archtune", "torch", "optuna", "scikit-learn", "numpy", "pandas", "lightgbm", "matplotlib"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    keep = ("data", "target", "task", "metric", "fit_seconds", "search_seconds", "best_score", "best_params",
            "network", "validation", "holdout", "holdout_network", "holdout_ensemble", "final", "settings")
    run_settings = {k: _json_safe(run.metrics[k]) for k in keep if k in run.metrics}
    return SettingsData(versions=versions, run=run_settings,
                        params=_json_safe(params_to_json(run.model.get_params())))


def to_json(data: Any) -> Any:
    """A section's data as JSON-able values (what the page embeds); NaN and infinities None."""
    return _json_safe(dataclasses.asdict(data) if dataclasses.is_dataclass(data) else data)


# --------------------------------------------------------------------------- helpers


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable ({exc})") from None


def _plain(value: Any) -> Any:
    """A cell as a plain Python value: NumPy scalars unwrapped, NaN as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    value = _plain(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


__all__ = ["Run", "doctor_data", "evaluate_rows", "holdout_data", "importances_data", "is_run_folder", "key_numbers",
           "leaderboard_data", "learning_curves", "load_run", "lr_finder_data", "lr_finder_from_result",
           "network_data", "optimization_history", "permutation_data", "run_of", "settings_data", "to_json"]
