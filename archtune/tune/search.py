"""The search from start to finish: read the data once, split it, fit the baselines, run the
study, build the leaderboard, refit the best configuration. `AutoNeuralClassifier` /
`AutoNeuralRegressor` (archtune.auto) are a scikit-learn facade over `run_search`.

The data is read here once: its column kinds (`infer_column_kinds`) are inferred on the whole
table and handed to the space (which encoders join it), the baselines (which columns are
text or images) and every trial and the refit (which need not infer them again).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import warnings
from contextlib import nullcontext
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.metrics import get_scorer, get_scorer_names
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from archtune.checks import check_choice, check_number
from archtune.data.images import flatten_images, is_image_array
from archtune.data.preprocess import as_frame, infer_column_kinds
from archtune.data.target import TARGETS, target_array
from archtune.data.weights import check_sample_weight
from archtune.doctor.lr_finder import resolve_learning_rate
from archtune.errors import DataError, DeadNetworkError, InvalidParameterError, TrainingDivergedError, nearest
from archtune.estimators import NeuralClassifier, NeuralRegressor
from archtune.fitting import check_params, finish, prepare, seed_from, train
from archtune.recipes import wide as is_wide
from archtune.tracking.search_tracker import check_tracking, make_search_tracker
from archtune.train.callbacks import StopAtDeadline
from archtune.train.threads import scoped, torch_threads
from archtune.tune.baselines import run_baselines
from archtune.tune.job import data_file, publish, refuse
from archtune.tune.launch import check_backend, start_workers, wait_for_running
from archtune.tune.objectives import (TrialObjectives, baseline_latency_ms, best_by_score, check_objectives,
                                      directions, resolve_sampler, score_of)
from archtune.tune.pareto import choose, parse_prefer
from archtune.tune.progress import SearchProgress
from archtune.tune.space import SearchSpace, resolve_space
from archtune.tune.storages import is_shared, journal_url
from archtune.tune.study import (PRUNERS, SAMPLERS, make_pruner, make_sampler, make_storage, parse_budget,
                                 sweep_stale_trials)
from archtune.tune.transfer import check_transfer_space, columns_warned_once, search_source, warn_dropped
from archtune.tune.tuner import Search, Split, leaderboard, network_name, trial_config

BASELINE_SHARE = 0.25
# When reading the data and the baselines took the whole time budget, the first trial still
# trains for up to this share of it (a search returns a network, not an error).
FIRST_TRIAL_SHARE = 0.25
# Networks kept in memory as ensemble candidates: greedy selection over 25 steps rarely gives
# weight to more than 6-8 distinct models, and 16 small networks cost a few MB.
ENSEMBLE_CANDIDATES = 16
# Trials per cohort with population=True: enough to amortise the per-step overhead of small
# networks (the speed-up flattens beyond ~8 on CPU) without delaying the first results much.
COHORT_SIZE = 8

# What differs between the tasks: the estimator trials use, the default scorer and the
# history column the pruner watches.
TASKS = {
    "classification": {"estimator": NeuralClassifier, "scoring": "accuracy", "epoch_key": "val_accuracy"},
    "regression": {"estimator": NeuralRegressor, "scoring": "r2", "epoch_key": "val_r2"},
}


@dataclass
class SearchResult:
    """What a search leaves: the study, baselines, leaderboard, best trial and refitted network."""

    study: optuna.Study
    baselines: list[dict[str, Any]]
    leaderboard: pd.DataFrame
    best_trial: optuna.trial.FrozenTrial
    best_params: dict[str, Any]
    best_score: float
    best_estimator: Any
    # The ensemble selection's choice (None without ensemble=True, for images, or when no
    # candidate was kept) and its candidates (to select again among members bundles can hold).
    ensemble: Any = None
    ensemble_library: Any = None
    bag: Any = None  # with bagging=K: the best configuration's bag (archtune.ensemble.bagging.Bag)
    mlflow_run_id: str | None = None  # with mlflow_uri: the search's parent run (archtune.tracking)


def check_settings(task: str, settings: Mapping[str, Any]) -> tuple[float | None, int | None, SearchSpace]:
    """Validate an Auto estimator's parameters before any data is read; return (seconds,
    trials, space). Raises `InvalidParameterError` naming the parameter."""
    neural = TASKS[task]["estimator"]
    names = sorted(neural().get_params())
    seconds, trials = parse_budget(settings["budget"])
    space = resolve_space(settings["space"], names)
    check_params(neural(**space.fixed_values()))  # fixed values must be valid as given
    check_transfer_space(space)  # freeze and the fine-tuning parameters: with init_from, valid values
    check_choice("sampler", settings["sampler"], ("auto", *SAMPLERS))
    # Several objectives (archtune.tune.objectives): a sampler that handles them, a prefer rule.
    resolve_sampler(settings["sampler"], check_objectives(settings.get("objectives", ("score",))))
    parse_prefer(settings.get("prefer", "score"))
    check_choice("pruner", settings["pruner"], PRUNERS)
    if settings["cv"] is not None:
        check_number("cv", settings["cv"], 2, integer=True)
    scoring = settings["scoring"]
    if scoring is not None and scoring not in get_scorer_names():
        raise InvalidParameterError(f"scoring must be a scikit-learn scorer name such as 'accuracy', "
                                    f"'roc_auc', 'neg_log_loss' or 'r2'; got scoring={scoring!r}"
                                    f"{nearest(str(scoring), get_scorer_names())}")
    check_number("n_jobs", settings["n_jobs"], 1, integer=True)
    check_backend(settings.get("backend", "threads"))
    if not isinstance(settings["population"], bool):
        check_number("population", settings["population"], 1, integer=True)
    check_choice("refit", settings["refit"], (True, False))
    check_choice("ensemble", settings.get("ensemble", False), (True, False, None))
    if settings.get("bagging") is not None:
        check_number("bagging", settings["bagging"], 2, 20, integer=True)
    check_number("validation_fraction", settings["validation_fraction"], 0.0, 1.0, low_open=True, high_open=True)
    if settings["study_name"] is not None and not isinstance(settings["study_name"], str):
        raise InvalidParameterError(f"study_name must be a string; got study_name={settings['study_name']!r}")
    check_tracking(settings.get("mlflow_uri"), settings.get("tensorboard_dir"))
    return seconds, trials, space


def run_search(task: str, X: Any, y: Any, settings: Mapping[str, Any], owner: str = "AutoNeural",
               sample_weight: Any = None) -> SearchResult:
    """Search networks on (X, y) within the budget, then refit the best on all rows.

    Parameters
    ----------
    task : {"classification", "regression"}
    X : table, image array (N x C x H x W) or series (N x T x F)
    y : array-like of shape (n_samples,)
    settings : dict
        An Auto estimator's parameters (budget, space, sampler, pruner, cv, scoring, storage,
        study_name, n_jobs, population, baselines, validation_fraction, random_state, device,
        verbose).
    sample_weight : array-like of shape (n_samples,), optional
        Row weights. They go with their rows into every split (holdout or cv folds), weight
        every trial's training and validation (one at a time and in cohorts), the baselines
        that accept weights, the scores the trials and baselines are ranked by, the ensemble's
        selection and the refit.

    Raises
    ------
    InvalidParameterError, DataError
        Bad settings or data; also when no trial completed within the budget.
    """
    started = time.monotonic()  # the budget covers everything the search does, reading the data included
    seconds, trials, space = check_settings(task, settings)
    if y is None:
        raise DataError(f"{owner} requires y to be passed, but the target y is None")
    images = X if is_image_array(X) else None
    if images is not None:
        # Trials train on the images; the baselines see their pixel rows.
        rows, _ = flatten_images(images)
        frame = pd.DataFrame(rows, columns=[f"px{i}" for i in range(rows.shape[1])])
        kinds = {name: "numeric" for name in frame.columns}
    else:
        frame, _ = as_frame(X, "X")
        kinds = infer_column_kinds(frame, "X")  # once, for the space, the baselines and every trial
    y_arr = target_array(y, "y")
    if len(frame) != len(y_arr):
        raise DataError(f"X has {len(frame)} rows but y has {len(y_arr)}; they must match row for row")
    weights = check_sample_weight(sample_weight, len(frame), min_positive=2)
    target, codes = TARGETS[task].fit(y_arr)
    seed = seed_from(settings["random_state"])
    space = _space_for_data(settings["space"], space, task, kinds, images)
    splits = make_splits(frame, y_arr, codes if task == "classification" else None, seed, settings["cv"],
                         settings["validation_fraction"], weights)
    pixel_splits = splits
    if images is not None:
        position = pd.RangeIndex(len(frame))
        splits = [Split(images[position.get_indexer(s.X_train.index)], s.y_train,
                        images[position.get_indexer(s.X_val.index)], s.y_val, s.w_train, s.w_val)
                  for s in pixel_splits]
    scorer = get_scorer(settings["scoring"] or TASKS[task]["scoring"])
    n_jobs = settings["n_jobs"]
    threads = max(1, (os.cpu_count() or 1) // n_jobs) if n_jobs > 1 else None
    tracker = make_search_tracker(settings.get("mlflow_uri"), settings.get("tensorboard_dir"),
                                  settings["study_name"] or "archtune")
    scratch = nullcontext()
    if settings.get("backend", "threads") != "threads":  # workers in other processes (archtune.tune.launch)
        threads = max(1, (os.cpu_count() or 1) // (n_jobs + 1))
        if settings["storage"] is None:  # several processes: a journal file for the run
            scratch = tempfile.TemporaryDirectory(prefix="archtune-")
            settings = {**settings, "storage": journal_url(os.path.join(scratch.name, "study.log"))}
    try:
        with scratch, _quiet_optuna(), (torch_threads(threads) if threads else nullcontext()):
            result = _search(task, frame, images, y_arr, kinds, splits, pixel_splits, space, scorer, seed, seconds,
                             trials, settings, started, weights, tracker)
            if scratch is not None and hasattr(scratch, "name"):  # the run's journal goes: its study, into memory
                result.study = _in_memory(result.study, make_storage(settings["storage"]))
    except BaseException:
        if tracker is not None:
            tracker.end(failed=True)
        raise
    if tracker is not None:
        tracker.end(result.leaderboard, result.best_score)
        result.mlflow_run_id = tracker.mlflow_run_id
    return result


def _in_memory(study: optuna.Study, storage: Any) -> optuna.Study:
    """A copy of ``study`` in memory (for a study whose storage is about to be removed)."""
    memory = optuna.storages.InMemoryStorage()
    optuna.copy_study(from_study_name=study.study_name, from_storage=storage, to_storage=memory)
    return optuna.load_study(study_name=study.study_name, storage=memory)


def _search(task: str, frame: pd.DataFrame, images: Any, y: np.ndarray, kinds: dict[str, str] | None,
            splits: list[Split], pixel_splits: list[Split], space: SearchSpace, scorer: Any, seed: int,
            seconds: float | None, trials: int | None, settings: Mapping[str, Any], started: float,
            weights: np.ndarray | None = None, tracker: Any = None) -> SearchResult:
    storage = make_storage(settings["storage"])
    objectives = check_objectives(settings.get("objectives", ("score",)))
    several = len(objectives) > 1
    sampler_name = resolve_sampler(settings["sampler"], objectives)
    study = optuna.create_study(
        storage=storage, study_name=settings["study_name"] or "archtune",
        **({"directions": directions(objectives)} if several else {"direction": "maximize"}),
        sampler=make_sampler(sampler_name, seed, space.grid()),
        # Several objectives: Optuna prunes none, so the pruner runs on the score's shadow (TrialObjectives).
        pruner=optuna.pruners.NopPruner() if several else make_pruner(settings["pruner"], space.max_epochs),
        load_if_exists=True)
    _check_study_matches(study, frame, task, settings["storage"], weights)
    _check_objectives_match(study, objectives, settings["storage"])
    space = _space_of_study(study, space, settings)
    # A fixed init_from: read once, here, and held in memory for every trial and the refit.
    transfer = search_source(space)
    if transfer is not None:
        warn_dropped(space, transfer)
        study.set_user_attr("init_from", transfer.record())
    if study.trials:
        # A continued or resumed study: a sampler seeded as the first run's would draw the
        # first run's configurations again. Seeded by the trials already there, it draws new
        # ones, and the same continuation draws the same ones.
        study.sampler = make_sampler(sampler_name, _continued_seed(seed, len(study.trials)), space.grid())
        study.pruner = optuna.pruners.NopPruner() if several else make_pruner(settings["pruner"], space.max_epochs)
    if tracker is not None:
        tracker.start(study, task, settings, len(frame), frame.shape[1])

    def score(estimator: Any, X_val: Any, y_val: Any, sample_weight: Any = None) -> float:
        if sample_weight is None:
            return float(scorer(estimator, X_val, y_val))
        return float(scorer(estimator, X_val, y_val, sample_weight=sample_weight))

    baselines = study.user_attrs.get("baselines")
    fitted_baselines: list[Any] = []  # this process's, with their models (ensemble candidates)
    if baselines is None:
        baselines = []
        if settings["baselines"]:
            first = pixel_splits[0]
            # With a time budget, baselines may use a quarter of it; the rest is for networks.
            deadline = None if seconds is None else started + BASELINE_SHARE * seconds
            fitted_baselines = run_baselines(task, first.X_train, first.y_train, first.X_val, first.y_val, score,
                                             kinds if kinds is not None else {}, seed=seed, deadline=deadline,
                                             sample_weight=first.w_train, val_weight=first.w_val)
            baselines = [r.record() for r in fitted_baselines]
            if objectives[1:] == ("latency",):  # the baselines' cost too: their predict on 1000 rows
                _baseline_latencies(baselines, fitted_baselines, first.X_val)
        study.set_user_attr("baselines", baselines)
    if tracker is not None:
        tracker.baselines(baselines)
    prefer = parse_prefer(settings.get("prefer", "score"))
    ensembling = _ensembling(settings.get("ensemble"), several, prefer) and images is None

    neural = TASKS[task]["estimator"]
    fixed = {"random_state": seed, "device": settings["device"], "verbose": 0}

    def make_estimator(params: dict[str, Any]) -> Any:
        params = {**fixed, **params}
        return neural(**(transfer.params(params) if transfer is not None else params))

    if transfer is not None:
        # X must fit the source (its columns, its kind of input) before anything trains: a
        # mismatch is the user's to fix, not a reason for every trial to fail.
        first = splits[0]
        prepare(make_estimator({}), first.X_train, first.y_train, first.validation_data, kinds,
                first.w_train)

    progress = SearchProgress(trials, seconds, enabled=bool(settings["verbose"]))
    custom_scoring = settings["scoring"] is not None
    search = Search(study, storage, space, make_estimator, splits, score,
                    epoch_key="val_loss" if custom_scoring else TASKS[task]["epoch_key"],
                    epoch_sign=-1.0 if custom_scoring else 1.0, progress=progress.update,
                    # Time is kept for the final refit only when there is one: the configuration's own
                    # fit on all rows trains on 90% of them (its default validation split).
                    # With bagging=K, K members each train on (K - 1) / K of the rows.
                    refit_factor=(len(frame) / max(1, len(splits[0].X_train))
                                  * (int(settings["bagging"]) - 1 if settings.get("bagging")
                                     else 0.9 if settings["refit"] else 0.0)),
                    # Fits from a trained network are never stacked (archtune.population): one at a time.
                    cohort_size=1 if transfer is not None else _cohort_size(settings, seconds, trials),
                    kinds=kinds if images is None else None,
                    # Several objectives: the preferred network may not be the best-scoring one.
                    keep=ENSEMBLE_CANDIDATES if ensembling or several else 1, tracker=tracker,
                    objectives=TrialObjectives(study, objectives, make_pruner(settings["pruner"], space.max_epochs),
                                               make_estimator, splits[0], kinds if images is None else None)
                    if several else None)
    if not study.trials and space.body == "table" and not set(space.overrides) - set(space.data_fixed):
        _enqueue_recipes(study, space)  # the default space as it is: its recipes first
    remaining = None if seconds is None else max(0.0, seconds - (time.monotonic() - started))
    backend = settings.get("backend", "threads")
    workers = None
    if is_shared(settings["storage"]) or backend != "threads":  # other processes may join (archtune worker)
        sweep_stale_trials(study, storage, wait=True)
        _publish_job(study, settings, search, frame, y, weights, codes_for(task, y), seed, trials, remaining,
                     images is not None or transfer is not None or several)
        if backend != "threads":
            workers = start_workers(backend, settings["storage"], study.study_name, settings["n_jobs"],
                                    max(1, (os.cpu_count() or 1) // (settings["n_jobs"] + 1)))
    with progress, (columns_warned_once() if transfer is not None else nullcontext()):
        search.run(trials, remaining, n_jobs=settings["n_jobs"] if workers is None else 1,
                   first_trial_seconds=0.0 if seconds is None else FIRST_TRIAL_SHARE * seconds)
        if is_shared(settings["storage"]) or workers is not None:
            _finish_with_workers(study, storage, search, workers, trials, started, seconds)

    best, score, epochs = _best_so_far(study, search, settings["budget"])
    if several and epochs is None:  # the prefer rule picks a trial of the Pareto front
        best = _preferred(study, prefer)
        score = float(best.values[0])
    best_params = trial_config(best)
    deadline = None if seconds is None else started + seconds
    X_all = images if images is not None else frame
    kinds_all = kinds if images is None else None
    kept = next((e for number, _, e in search.kept if number == best.number), None)
    bagged = None
    refitted = False  # whether `estimator` is the best configuration trained on all rows
    if settings.get("bagging") and epochs is None:
        from archtune.ensemble.bagging import bag

        # The bag replaces the refit: K members of the best configuration on K folds of all rows.
        bagged = bag(make_estimator, best_params, X_all, y, int(settings["bagging"]), task, scorer, seed,
                     kinds_all, deadline, list(frame.columns) if images is None else None, sample_weight=weights)
    refit = _Refit(make_estimator, X_all, y, kinds_all, deadline, settings["budget"], weights)
    if epochs is not None:  # no trial completed: the best pruned one, for the epochs it trained
        estimator, _ = refit.first_that_trains(_fallbacks(study, best, best_params), epochs)
    elif bagged is not None:
        estimator = kept if kept is not None else bagged.ensemble.members[0].model
    elif not settings["refit"] and kept is not None:
        estimator = kept  # the best trial's own network, with its best validation epoch's weights
    elif kept is not None and deadline is not None and time.monotonic() >= deadline:
        estimator = kept  # no time left for a refit: the trial's own network, as reported
        warnings.warn(f"no time was left for the refit within budget={settings['budget']!r}: the best trial's "
                      "own network is kept", RuntimeWarning, stacklevel=4)
    elif kept is not None:
        estimator, finished = refit.first_that_trains([(best, best_params)], kept=kept)
        refitted = finished and estimator is not kept
        if not finished:
            # What a run ships must be as good as what it reports: a refit cut short by the
            # budget loses to the trial's own network.
            warnings.warn("the refit of the best network could not finish within budget="
                          f"{settings['budget']!r}: the best trial's own network is kept instead", RuntimeWarning,
                          stacklevel=4)
            estimator = kept
    else:  # the best trial ran in an earlier process: its network is not in memory
        estimator, finished = refit.first_that_trains(_fallbacks(study, best, best_params))
        refitted = finished and estimator is not None
    if refit.used is not None and refit.used.number != best.number:
        best, best_params = refit.used, trial_config(refit.used)
        score = score_of(best) if score_of(best) is not None else score
    study.set_user_attr("saved_network", refit.describe(best, estimator is kept and kept is not None))
    if bagged is not None:
        study.set_user_attr("bag", {"name": f"bag of {settings['bagging']} (network #{best.number})",
                                    "oof_score": bagged.oof_score, "params": best_params.get("arch", "mlp")})
    library = choice = None
    if ensembling:
        library = _ensemble_library(task, search, fitted_baselines, splits[0], scorer, y, frame, seed,
                                    (f"bag of {settings['bagging']} (network #{best.number})", bagged))
        choice = library.choose() if library is not None else None
        if library is not None and len(splits) == 1:  # the leaderboard's intervals (one hold-out split)
            study.set_user_attr("intervals", {name: list(bounds) for name, bounds in library.intervals().items()})
        if choice is not None and choice.final is not None:
            # Refit policy (measured in bench/search_quality.py): the selected weights are kept,
            # and the members are trained on all rows where that is cheap or already done:
            # LightGBM again (seconds), the best trial's network replaced by its refit.
            from archtune.ensemble.build import refit_members

            networks = {best.number: estimator} if refitted else {}
            choice.final = refit_members(choice.final, X_all, y, networks, weights)
        if choice is not None:
            study.set_user_attr("ensemble", ensemble_record(choice))
    if transfer is not None:
        # The networks a search returns name init_from as the user gave it (a path: saved with
        # the bundle), as a fit of their own would; they were trained from the same Source.
        best_params["init_from"] = transfer.given
        for network in {id(e): e for e in [estimator, *(e for _, _, e in search.kept)]}.values():
            if hasattr(network, "set_params") and "init_from" in network.get_params():
                network.set_params(init_from=transfer.given)
    board = leaderboard(study, baselines)
    return SearchResult(study, baselines, board, best, best_params, score, estimator, choice, library, bagged)


def _ensemble_library(task: str, search: Search, baselines: list[Any], split: Split, scorer: Any, y: np.ndarray,
                      frame: pd.DataFrame, seed: int, bagged: tuple[str, Any]) -> Any:
    """The ensemble's candidates: the bag (with its out-of-fold predictions of the validation
    rows), the networks this process kept (best first) and the baselines it fitted, with their
    predictions on the first split's validation rows."""
    from archtune.ensemble.build import EnsembleLibrary
    from archtune.ensemble.model import Member

    members = [Member(network_name(number, estimator.model_config_.arch), estimator, "network", value, number)
               for number, value, estimator in search.kept]
    given = {}
    name, bag = bagged
    if bag is not None and frame.index.is_unique:
        members.insert(0, Member(name, bag.ensemble, "bag", bag.oof_score))
        given[name] = bag.oof[frame.index.get_indexer(split.X_val.index)]
    from archtune.ensemble.gbm import LightGBMTableClassifier, LightGBMTableRegressor

    fitted = sorted((b for b in baselines if b.model is not None and b.error is None), key=lambda b: -b.score)
    members += [Member(b.name, b.model, "lightgbm" if isinstance(b.model, (LightGBMTableClassifier,
                                                                            LightGBMTableRegressor)) else "baseline",
                       b.score) for b in fitted]
    if not members:
        return None
    classes = np.unique(y) if task == "classification" else None
    return EnsembleLibrary(task, members, split.X_val, split.y_val, scorer, classes, list(frame.columns), seed,
                           given, sample_weight=split.w_val)


def ensemble_record(choice: Any) -> dict[str, Any]:
    """The ensemble's leaderboard entry, as the study stores it (JSON)."""
    ensemble = choice.ensemble
    alone = choice.final.members[0].name if choice.final is not None and not choice.used else None
    return {"members": [{"name": m.name, "weight": float(w)} for m, w in zip(ensemble.members, ensemble.weights)],
            "val_score": float(ensemble.val_score), "used": bool(choice.used), "alone": alone,
            "gain": float(choice.gain) if np.isfinite(choice.gain) else None,
            "best_single": choice.best_single, "summary": ensemble.summary()}


def _ensembling(requested: bool | None, several: bool, prefer: Any) -> bool:
    """Whether to select an ensemble: as asked; by default (None) yes, except when several
    objectives and a prefer rule other than the score pick one small or fast network (an
    ensemble of networks would undo what the rule chose)."""
    if requested is not None:
        return bool(requested)
    return not (several and prefer.kind != "score")


def _preferred(study: optuna.Study, prefer: Any) -> Any:
    """The completed trial the prefer rule picks on the Pareto front of (score, cost)."""
    complete = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                if t.values and len(t.values) == 2]
    return complete[choose([t.values[0] for t in complete], [t.values[1] for t in complete], prefer)]


def _baseline_latencies(records: list[dict[str, Any]], fitted: list[Any], X_val: Any) -> None:
    """Each fitted baseline's latency (`baseline_latency_ms`) in its leaderboard record."""
    for record, result in zip(records, fitted):
        if result.model is not None and result.error is None:
            try:
                record["latency_ms"] = baseline_latency_ms(result.model, X_val)
            except Exception:  # a baseline without a timeable predict just has no latency
                record["latency_ms"] = None


def _check_objectives_match(study: optuna.Study, objectives: tuple[str, ...], storage: Any) -> None:
    """A stored study continues only with the objectives it was run with."""
    stored = study.user_attrs.get("objectives")
    if stored is None and study.trials:
        stored = ["score"] if len(study.directions) == 1 else None
    if stored is None:
        study.set_user_attr("objectives", list(objectives))
    elif tuple(stored) != objectives or len(study.directions) != len(objectives):
        raise InvalidParameterError(f"study {study.study_name!r} in {storage} was run with objectives="
                                    f"{tuple(stored)!r}, not {objectives!r}; give the same objectives to continue it, "
                                    "or use another study_name or --out")


# ------------------------------------------------------------------ workers (archtune.tune.worker)


def codes_for(task: str, y: np.ndarray) -> np.ndarray | None:
    """The classes as codes, to stratify a split as `run_search` does."""
    return TARGETS[task].fit(y)[1] if task == "classification" else None


def _publish_job(study: optuna.Study, settings: Mapping[str, Any], search: Search, frame: pd.DataFrame,
                 y: np.ndarray, weights: np.ndarray | None, stratify: np.ndarray | None, seed: int,
                 trials: int | None, remaining: float | None, unsupported: bool) -> None:
    """Publish what workers need to train this search's trials (archtune.tune.job)."""
    if unsupported:
        refuse(study, "searches on image arrays, from a trained network (init_from) or with several objectives "
                      "run in one process")
        return
    # The same row positions as the search's splits: make_splits depends on the row count alone.
    positions = [(s.X_train.index.to_numpy(), s.X_val.index.to_numpy()) for s in make_splits(
        pd.DataFrame(index=pd.RangeIndex(len(frame))), y, stratify, seed, settings["cv"],
        settings["validation_fraction"], weights)]
    record = {"task": study.user_attrs.get("task"), "seed": seed, "sampler": settings["sampler"],
              "pruner": settings["pruner"], "device": settings["device"],
              "scoring": settings["scoring"] or TASKS[study.user_attrs.get("task")]["scoring"],
              "epoch_key": search.epoch_key, "epoch_sign": search.epoch_sign, "cohort_size": search.cohort_size,
              "refit_factor": search.refit_factor, "n_trials": trials, "kinds": search.kinds,
              "deadline": None if remaining is None else time.time() + remaining}
    publish(study, data_file(settings["storage"], study.study_name, settings.get("worker_data")), frame, y,
            weights, positions, record)


def _finish_with_workers(study: optuna.Study, storage: Any, search: Search, workers: Any, trials: int | None,
                         started: float, seconds: float | None) -> None:
    """The coordinator's loop is done: wait for the trials other processes still train, then
    train the retries of those whose worker died (until the trial budget is met)."""
    deadline = None if seconds is None else started + seconds
    for _ in range(3):
        wait_for_running(study, storage, deadline)
        if trials is None or search.n_finished() >= trials:
            break
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        search.run(trials, left, sweep_wait=False)
    if workers is not None:
        workers.join(timeout=60.0)


def _space_of_study(study: optuna.Study, space: SearchSpace, settings: Mapping[str, Any]) -> SearchSpace:
    """The space to search: a new study stores ``space``; a stored study continues with the
    space it was run with. Given no space (the default, or no --space/--set flags), the stored
    one is reused; given a different one on purpose, the error names what changed, since
    trials of two spaces cannot be compared (and Optuna refuses changed choices)."""
    from archtune.tune.stored_space import space_differences, space_from_record, space_record
    from archtune.tune.transfer import stored_object_error

    record = space_record(space)
    stored = study.user_attrs.get("space")
    if stored is None:
        study.set_user_attr("space", record)
        return space
    if stored == record:
        return space
    source = stored.get("overrides", {}).get("init_from", {})
    if "object" in source and not space.from_source:
        raise stored_object_error(source, f"study {study.study_name!r} in {settings['storage']}")
    requested = settings["space"]
    if (isinstance(requested, str) and requested == "default") or (isinstance(requested, Mapping) and not requested):
        return space_from_record(stored, f"study {study.study_name!r} in {settings['storage']}")
    changes = "; ".join(space_differences(stored, record))
    raise InvalidParameterError(
        f"study {study.study_name!r} in {settings['storage']} was searched over another space ({changes}); "
        "to continue it, give the same space or none (the stored one is then reused); to search this space, "
        "use another study_name or --out")


def _continued_seed(seed: int, n_trials: int) -> int:
    """The sampler's seed for a study that already holds ``n_trials`` trials."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{n_trials}".encode()).digest()[:4], "little")


def _best_so_far(study: optuna.Study, search: Search, budget: Any) -> tuple[Any, float, int | None]:
    """(trial, score, epochs): the best completed trial (epochs None), or when none completed
    the pruned trial whose last reported score was best, with the epochs it trained. A search
    returns its best network so far whenever any trial trained."""
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if complete:
        best = best_by_score(study)
        return best, float(best.values[0]), None
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED and t.intermediate_values]
    if pruned:
        best = max(pruned, key=lambda t: t.intermediate_values[max(t.intermediate_values)])
        last = max(best.intermediate_values)
        return best, float(best.intermediate_values[last]), int(last)
    counts = search.counts()
    reasons = sorted({str(t.user_attrs.get("fail_reason", "")).split(":")[0] for t in trials
                      if t.state == optuna.trial.TrialState.FAIL} - {""})
    raise DataError(
        f"no trial trained within budget={budget!r} ({counts['failed']} failed"
        f"{': ' + ', '.join(reasons) if reasons else ''}); give a larger budget or a smaller space")


def _enqueue_recipes(study: optuna.Study, space: SearchSpace) -> None:
    """The first trials are the strong recipes (archtune.recipes.FIRST_TRIALS): even a tiny
    budget returns a good network. A parameter the user set is the user's."""
    from archtune.recipes import FIRST_TRIALS

    searched = {d.name: d for d in space.dimensions if d.kind != "fixed"}
    neural = NeuralClassifier().get_params()
    seen: list[dict[str, Any]] = []
    for recipe in FIRST_TRIALS:
        values = {**neural, **recipe}
        fixed = {name: values[name] for name in searched if name in values and name not in space.overrides
                 and _allowed(searched[name], values[name])}
        if fixed in seen:  # a recipe the fixed values make equal to an earlier one (no embeddings)
            continue
        seen.append(fixed)
        study.enqueue_trial(fixed, user_attrs={"recipe": True})


def _allowed(dimension: Any, value: Any) -> bool:
    if dimension.kind == "categorical":
        return value in dimension.choices
    return isinstance(value, (int, float)) and dimension.low <= value <= dimension.high


def _space_for_data(requested: Any, space: SearchSpace, task: str, kinds: dict[str, str], images: Any) -> SearchSpace:
    """The default space fitted to the data: the CNN space for images, the sequence encoder's
    dimensions added for text columns, the conv encoder's for image-path columns. An explicit
    SearchSpace or preset is kept."""
    if isinstance(requested, SearchSpace) or requested in ("small", "cnn", "classic"):
        return space
    if images is None and is_wide(sum(kind == "numeric" for kind in kinds.values())) and not (
            isinstance(requested, Mapping) and "numeric_embedding" in requested):
        # Too many columns for numeric embeddings (archtune.recipes.wide): the columns as they are.
        space = space.with_data_fixed({"numeric_embedding": None})
    if images is not None:
        data = "images"
    else:
        present = set(kinds.values())
        data = "+".join(name for name, kind in (("text", "text"), ("image_columns", "image")) if kind in present)
        data = data or "table"
    if data == "table":
        return space
    fitted = resolve_space(requested, sorted(TASKS[task]["estimator"]().get_params()), data)
    return fitted.with_data_fixed(space.data_fixed) if space.data_fixed else fitted


def _cohort_size(settings: Mapping[str, Any], seconds: float | None, trials: int | None) -> int:
    """Trials asked together. population=True sizes cohorts by a time budget, so that a short
    search still sees several structures (a cohort shares its leader's): 2 under 90 s, 4 under
    4 minutes, else COHORT_SIZE; with a trial budget, COHORT_SIZE."""
    if settings["sampler"] == "grid":
        return 1  # the grid sampler assigns whole grid points; followers cannot be fixed in part
    population = settings["population"]
    if not isinstance(population, bool):
        return int(population)
    if not population:
        return 1
    if seconds is not None:
        return 2 if seconds < 90 else 4 if seconds < 240 else COHORT_SIZE
    return COHORT_SIZE


def make_splits(frame: pd.DataFrame, y: np.ndarray, stratify: np.ndarray | None, seed: int, cv: int | None,
                validation_fraction: float, sample_weight: np.ndarray | None = None) -> list[Split]:
    """The search's splits: one hold-out split of ``validation_fraction`` of the rows, or
    ``cv`` folds (stratified by ``stratify`` when every class can be in each fold); the
    rows' weights (``sample_weight``) go with them. The rows are split as without weights,
    so a weighted and an unweighted search see the same rows."""
    fraction = validation_fraction
    if cv is None:
        n_val = int(round(fraction * len(frame)))
        if n_val < 1 or len(frame) - n_val < 2:
            raise DataError(f"too few rows ({len(frame)}) for a validation split of {fraction}")
        try:
            tr, va = train_test_split(np.arange(len(frame)), test_size=n_val, random_state=seed % 2**32,
                                      stratify=stratify)
        except ValueError:
            tr, va = train_test_split(np.arange(len(frame)), test_size=n_val, random_state=seed % 2**32)
        folds = [(tr, va)]
    else:
        if len(frame) < cv:
            raise DataError(f"cv={cv} folds need at least {cv} rows; got {len(frame)}")
        if stratify is not None and np.bincount(stratify).min() >= cv:
            folds = list(StratifiedKFold(cv, shuffle=True, random_state=seed % 2**32).split(frame, stratify))
        else:
            folds = list(KFold(cv, shuffle=True, random_state=seed % 2**32).split(frame))
    w = sample_weight
    return [Split(frame.iloc[tr], y[tr], frame.iloc[va], y[va], None if w is None else w[tr],
                  None if w is None else _some_weight(w[va], "the validation rows")) for tr, va in folds]


def _some_weight(weights: np.ndarray, what: str) -> np.ndarray:
    """Validation weights that can weight a score: not all zero."""
    if not (weights > 0).any():
        raise DataError(f"sample_weight is zero for all of {what} ({len(weights)} rows); give more rows a "
                        "positive weight, or another random_state")
    return weights


def _check_study_matches(study: optuna.Study, frame: pd.DataFrame, task: str, storage: Any,
                         weights: np.ndarray | None = None) -> None:
    """A stored study continues only on the same data (and the same weights): a different
    table would make its trials incomparable."""
    owner = {"classification": "AutoNeuralClassifier", "regression": "AutoNeuralRegressor"}[task]
    # Unweighted studies keep the fingerprint they had before weights existed.
    weighted = "" if weights is None else "|w" + hashlib.sha256(np.ascontiguousarray(weights).tobytes()).hexdigest()
    fingerprint = hashlib.sha256(
        (",".join(map(str, frame.columns)) + f"|{len(frame)}|{owner}{weighted}").encode()).hexdigest()[:16]
    stored = study.user_attrs.get("data_fingerprint")
    if stored is None:
        study.set_user_attr("data_fingerprint", fingerprint)
        study.set_user_attr("task", task)
    elif stored != fingerprint:
        raise DataError(f"study {study.study_name!r} in {storage} was run on different data "
                        f"(columns, row count, sample weights or task differ); use another study_name or storage")


# Configurations tried, best first, when the refit of the best one diverges on all rows.
REFIT_ATTEMPTS = 3


def _fallbacks(study: optuna.Study, best: Any, best_params: dict[str, Any]) -> list[tuple[Any, dict[str, Any]]]:
    """(trial, configuration) to refit, best first: the best trial, then the next completed
    ones, so that a refit that diverges on all rows gives way to the next configuration."""
    complete = sorted((t for t in study.get_trials(deepcopy=False)
                       if t.state == optuna.trial.TrialState.COMPLETE and t.number != best.number),
                      key=lambda t: -float(t.values[0]))
    return [(best, best_params)] + [(t, trial_config(t)) for t in complete[:REFIT_ATTEMPTS - 1]]


class _Refit:
    """The final refit: a configuration trained on every row as its own ``fit`` would train it
    (early stopping on its validation split, the best epoch's weights kept), or for exactly
    ``epochs`` epochs; with a time budget it stops at the budget's end, keeping the best
    weights so far. A refit that diverges never ends the search: the best trial's own network
    (``kept``) or the next-best configuration is used instead, with a warning."""

    def __init__(self, make_estimator: Any, X: Any, y: np.ndarray, kinds: dict[str, str] | None,
                 deadline: float | None, budget: Any, sample_weight: np.ndarray | None = None):
        self.make_estimator, self.X, self.y, self.kinds = make_estimator, X, y, kinds
        self.sample_weight = sample_weight
        self.deadline, self.budget = deadline, budget
        self.used: Any = None  # the trial whose configuration the saved network has
        self.stopped_at: int | None = None
        self.epochs_trained: int | None = None

    def first_that_trains(self, candidates: list[tuple[Any, dict[str, Any]]], epochs: int | None = None,
                          kept: Any = None) -> tuple[Any, bool]:
        """(estimator, finished) of the first candidate whose refit does not diverge; ``kept``
        (the best trial's network) when every candidate diverges, else TrainingDivergedError."""
        failures = []
        for trial, params in candidates:
            try:
                estimator, finished = self.once(params, epochs)
            except (TrainingDivergedError, DeadNetworkError) as exc:
                failures.append(f"network #{trial.number}: {exc}")
                fallback = "the best trial's own network is kept" if kept is not None else "trying the next one"
                warnings.warn(f"the refit of network #{trial.number} on all rows diverged ({exc}); {fallback}",
                              RuntimeWarning, stacklevel=5)
                if kept is not None:
                    self.used = candidates[0][0]
                    return kept, True
                continue
            self.used = trial
            return estimator, finished
        raise TrainingDivergedError("every refit on all rows diverged (" + "; ".join(failures) + "); lower the "
                                    "learning_rate range of the space")

    def once(self, params: dict[str, Any], epochs: int | None) -> tuple[Any, bool]:
        params = dict(params)
        if epochs is not None:
            params.update(max_epochs=max(1, int(epochs)), early_stopping=False)
        estimator = self.make_estimator(params)
        stop = StopAtDeadline(self.deadline)
        prepared = resolve_learning_rate(prepare(estimator, self.X, self.y, kinds=self.kinds,
                                                 sample_weight=self.sample_weight))
        finish(estimator, prepared, train(prepared, [stop]))
        self.stopped_at = stop.stopped_at
        self.epochs_trained = len(estimator.history_)
        if stop.stopped_at is not None:
            warnings.warn(f"the refit of the best network stopped at epoch {stop.stopped_at} of "
                          f"{params['max_epochs']} to keep within budget={self.budget!r}", RuntimeWarning,
                          stacklevel=5)
        return estimator, stop.stopped_at is None

    def describe(self, trial: Any, kept: bool) -> dict[str, Any]:
        """What was saved, for metrics.json and `archtune info`."""
        if kept or self.epochs_trained is None:
            return {"source": "trial", "trial": int(trial.number),
                    "text": f"network #{trial.number} as trained in its trial (its best validation epoch)"}
        return {"source": "refit", "trial": int(trial.number), "epochs": int(self.epochs_trained),
                "text": f"network #{trial.number}'s configuration refitted on all rows "
                        f"({self.epochs_trained} epoch{'s' if self.epochs_trained != 1 else ''})"}


def _quiet_optuna() -> Any:
    """Optuna's log level at WARNING while the search runs: progress is archtune's to show."""
    return scoped("optuna_verbosity", optuna.logging.get_verbosity, optuna.logging.set_verbosity,
                  optuna.logging.WARNING)


__all__ = ["COHORT_SIZE", "SearchResult", "TASKS", "check_settings", "make_splits", "run_search"]
