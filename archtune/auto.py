"""AutoNeuralClassifier / AutoNeuralRegressor: search a space of networks, then refit the best.

The glue between data, the search (`archtune.tune`) and the neural estimators: split the data
once, run the classical baselines on that split, run the study, build the leaderboard, and
refit the best configuration on all rows.
"""

from __future__ import annotations

import hashlib
import os
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.metrics import get_scorer, get_scorer_names
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.utils.validation import check_is_fitted

from archtune.checks import check_choice, check_number
from archtune.data.preprocess import as_frame, infer_column_kinds
from archtune.data.target import check_varies, encode_classes, regression_target, target_array
from archtune.errors import DataError, InvalidParameterError, nearest
from archtune.estimators import NeuralClassifier, NeuralRegressor
from archtune.fitting import check_params, seed_from
from archtune.train.callbacks import Callback


BASELINE_SHARE = 0.25
# Trials per cohort with population=True: enough to amortise the per-step overhead of small
# networks (the speed-up flattens beyond ~8 on CPU) without delaying the first results much.
COHORT_SIZE = 8


class _AutoBase(BaseEstimator):
    """Shared machinery of the Auto estimators.

    Parameters
    ----------
    budget : str or int
        Wall-clock time ("90s", "5m", "1h", "1h30m") or a number of finished trials.
    space : "default", "small", dict or SearchSpace
        The search space. A dict narrows or extends the default one:
        ``{"activation": ["relu", "gelu"], "units": (32, 256)}``, and may fix any estimator
        parameter to one value (``{"batch_size": 256}``; ``{"max_epochs": 20}`` caps the
        fidelity that the pruner hands out).
    sampler : {"tpe", "random", "grid", "cmaes", "gp", "qmc"}
    pruner : {"hyperband", "sha", "median", None}
        Multi-fidelity pruning on epochs.
    cv : int, optional
        None for one hold-out split (``validation_fraction`` of the rows); K for K-fold
        cross-validation (the first fold drives pruning, the value is the mean over folds).
    scoring : str, optional
        A scikit-learn scorer name; default accuracy (classification) or r2 (regression).
    storage : str, optional
        None keeps the study in memory; "sqlite:///path.db" or "postgresql://..." persist it,
        so that a killed search resumes where it stopped.
    study_name : str, optional
    n_jobs : int
        Trials trained in parallel threads.
    population : bool or int
        Train trials in cohorts, as one stacked model (several times faster for small
        networks): True for cohorts of 8, an integer for another size, False for one trial at
        a time. The grid sampler always trains one at a time.
    baselines : bool
        Also fit linear, k-NN, random forest, gradient boosting (and LightGBM when installed)
        on the same split, for the leaderboard.
    validation_fraction : float
    random_state : int, optional
    device : {"auto", "cpu", "cuda"}
    verbose : int
        0 silent; 1 a live progress line.

    Attributes
    ----------
    best_params_ : dict
    best_score_ : float
        Validation score of the best trial.
    best_estimator_ : NeuralClassifier or NeuralRegressor
        The best configuration refitted on all rows.
    study_ : optuna.Study
    leaderboard_ : pandas.DataFrame
        Every trial and baseline: model, params, val_score, fit_seconds, n_params, state, note.
    baselines_ : list of dict
    """

    neural_class: type = NeuralRegressor

    def __init__(
        self,
        *,
        budget: str | int = "5m",
        space: Any = "default",
        sampler: str = "tpe",
        pruner: str | None = "hyperband",
        cv: int | None = None,
        scoring: str | None = None,
        storage: str | None = None,
        study_name: str | None = None,
        n_jobs: int = 1,
        population: bool | int = True,
        baselines: bool = True,
        validation_fraction: float = 0.2,
        random_state: int | None = None,
        device: str = "auto",
        verbose: int = 0,
    ):
        self.budget = budget
        self.space = space
        self.sampler = sampler
        self.pruner = pruner
        self.cv = cv
        self.scoring = scoring
        self.storage = storage
        self.study_name = study_name
        self.n_jobs = n_jobs
        self.population = population
        self.baselines = baselines
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    # ------------------------------------------------------------------ validation

    def _check_params(self):
        from archtune.tune.space import resolve_space
        from archtune.tune.study import PRUNERS, SAMPLERS, parse_budget

        seconds, trials = parse_budget(self.budget)
        space = resolve_space(self.space, sorted(self.neural_class().get_params()))
        known = set(self.neural_class().get_params())
        unknown = [d.name for d in space.dimensions if d.name not in known]
        if unknown:
            raise InvalidParameterError(f"search space has unknown parameter {unknown[0]!r}"
                                        f"{nearest(unknown[0], known)}")
        check_params(self.neural_class(**_fixed_values(space)))  # fixed values must be valid as given
        check_choice("sampler", self.sampler, SAMPLERS)
        check_choice("pruner", self.pruner, PRUNERS)
        if self.cv is not None:
            check_number("cv", self.cv, 2, integer=True)
        if self.scoring is not None and self.scoring not in get_scorer_names():
            raise InvalidParameterError(f"scoring must be a scikit-learn scorer name such as 'accuracy', "
                                        f"'roc_auc', 'neg_log_loss' or 'r2'; got scoring={self.scoring!r}"
                                        f"{nearest(str(self.scoring), get_scorer_names())}")
        check_number("n_jobs", self.n_jobs, 1, integer=True)
        if not isinstance(self.population, bool):
            check_number("population", self.population, 1, integer=True)
        check_number("validation_fraction", self.validation_fraction, 0.0, 1.0, low_open=True, high_open=True)
        if self.study_name is not None and not isinstance(self.study_name, str):
            raise InvalidParameterError(f"study_name must be a string; got study_name={self.study_name!r}")
        return seconds, trials, space

    # ------------------------------------------------------------------ fit

    def fit(self, X: Any, y: Any) -> "_AutoBase":
        """Search networks on (X, y) within the budget, then refit the best on all rows."""
        import optuna

        seconds, trials, space = self._check_params()
        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # progress is ours to show
        try:
            return self._fit(X, y, seconds, trials, space)
        finally:
            optuna.logging.set_verbosity(verbosity)

    def _fit(self, X: Any, y: Any, seconds: float | None, trials: int | None, space: Any) -> "_AutoBase":
        from archtune.tune.baselines import run_baselines
        from archtune.tune.progress import SearchProgress
        from archtune.tune.study import make_pruner, make_sampler, make_storage
        from archtune.tune.tuner import Search, leaderboard

        import optuna

        if y is None:
            raise DataError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        from archtune.data.images import flatten_images, is_image_array

        images = X if is_image_array(X) else None
        if images is not None:
            # Trials train on the images; the baselines and the checks see their pixel rows.
            rows, _ = flatten_images(images)
            frame, named = pd.DataFrame(rows, columns=[f"px{i}" for i in range(rows.shape[1])]), False
        else:
            frame, named = as_frame(X, "X")
        y_arr = target_array(y, "y")
        if len(frame) != len(y_arr):
            raise DataError(f"X has {len(frame)} rows but y has {len(y_arr)}; they must match row for row")
        infer_column_kinds(frame, "X")
        self._check_target(y_arr)
        seed = seed_from(self.random_state)
        space = self._space_for_data(space, frame, images)
        splits = self._splits(frame, y_arr, seed)
        pixel_splits = splits
        if images is not None:
            from archtune.tune.tuner import Split

            position = pd.RangeIndex(len(frame))
            splits = [Split(images[position.get_indexer(s.X_train.index)], s.y_train,
                            images[position.get_indexer(s.X_val.index)], s.y_val) for s in pixel_splits]
        scorer = get_scorer(self.scoring or self._default_scoring)
        score = lambda est, Xv, yv: float(scorer(est, Xv, yv))  # noqa: E731

        storage = make_storage(self.storage)
        study = optuna.create_study(
            storage=storage, study_name=self.study_name or "archtune", direction="maximize",
            sampler=make_sampler(self.sampler, seed, space.grid()), pruner=make_pruner(self.pruner, space.max_epochs),
            load_if_exists=True)
        self._check_study_matches(study, frame, y_arr)
        started = time.monotonic()
        baselines = study.user_attrs.get("baselines")
        if baselines is None:
            baselines = []
            if self.baselines:
                first = pixel_splits[0]
                # With a time budget, baselines may use a quarter of it; the rest is for networks.
                deadline = None if seconds is None else started + BASELINE_SHARE * seconds
                results = run_baselines(self._task_name, first.X_train, first.y_train, first.X_val, first.y_val,
                                        score, seed=seed, deadline=deadline)
                baselines = [r.__dict__ for r in results]
            study.set_user_attr("baselines", baselines)

        fixed = {"random_state": seed, "device": self.device, "verbose": 0}

        def make_estimator(params: dict[str, Any]) -> Any:
            return self.neural_class(**{**fixed, **params})

        progress = SearchProgress(trials, seconds, enabled=bool(self.verbose))
        search = Search(study, storage, space, make_estimator, splits, score,
                        epoch_key=self._epoch_key if self.scoring is None else "val_loss",
                        epoch_sign=1.0 if self.scoring is None else -1.0, progress=progress.update,
                        refit_factor=len(frame) / max(1, len(splits[0].X_train)),
                        cohort_size=self._cohort_size())
        remaining = None if seconds is None else max(0.0, seconds - (time.monotonic() - started))
        threads = torch.get_num_threads()
        if self.n_jobs > 1:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // self.n_jobs))
        try:
            with progress:
                search.run(trials, remaining, n_jobs=self.n_jobs)
        finally:
            torch.set_num_threads(threads)

        self.study_ = study
        self.baselines_ = baselines
        self.leaderboard_ = leaderboard(study, baselines)
        complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
        if not complete:
            counts = search.counts()
            reasons = sorted({str(t.user_attrs.get("fail_reason", "")).split(":")[0] for t in study.trials
                              if t.state == optuna.trial.TrialState.FAIL} - {""})
            raise DataError(
                f"no trial completed within budget={self.budget!r} ({counts['pruned']} pruned, {counts['failed']} "
                f"failed{': ' + ', '.join(reasons) if reasons else ''}); give a larger budget or a smaller space")
        best = study.best_trial
        self.best_score_ = float(best.value)
        self.best_params_ = _concrete({**space.sample(optuna.trial.FixedTrial(best.params)), **best.params}, best)
        self.best_trial_ = best
        self.best_estimator_ = self._refit(images if images is not None else frame, y_arr, best, fixed, space,
                                           None if seconds is None else started + seconds)
        self.n_features_in_ = self.best_estimator_.n_features_in_
        if named:
            self.feature_names_in_ = self.best_estimator_.feature_names_in_
        return self

    def _space_for_data(self, space: Any, frame: pd.DataFrame, images: Any) -> Any:
        """The default space fitted to the data: the CNN space for images, the sequence
        encoder's dimensions added for text columns. An explicit SearchSpace is kept."""
        from archtune.tune.baselines import image_path_columns, text_columns
        from archtune.tune.space import SearchSpace, resolve_space

        if isinstance(self.space, SearchSpace) or self.space in ("small", "cnn"):
            return space
        if images is not None:
            data = "images"
        else:
            kinds = [kind for kind, present in (("text", text_columns(frame)),
                                                ("image_columns", image_path_columns(frame))) if present]
            data = "+".join(kinds) or "table"
        if data == "table":
            return space
        return resolve_space(self.space, sorted(self.neural_class().get_params()), data)

    def _cohort_size(self) -> int:
        if self.sampler == "grid":
            return 1  # the grid sampler assigns whole grid points; followers cannot be fixed in part
        if isinstance(self.population, bool):
            return COHORT_SIZE if self.population else 1
        return int(self.population)

    def _refit(self, frame: pd.DataFrame, y: np.ndarray, best: Any, fixed: dict[str, Any], space: Any,
               deadline: float | None) -> Any:
        """The best configuration trained on every row for the number of epochs that was best
        on validation (the usual 'refit on full data' practice: more data, same schedule).
        With a time budget it stops at the budget's end, keeping the last epoch's weights."""
        import optuna

        params = _concrete(space.sample(optuna.trial.FixedTrial(best.params)), best)
        params["max_epochs"] = max(1, int(best.user_attrs.get("best_epoch") or params["max_epochs"]))
        params["early_stopping"] = False
        estimator = self.neural_class(**{**fixed, **params})
        stop = _StopAtDeadline(deadline)
        estimator.fit(frame, y, callbacks=[stop])
        if stop.stopped_at is not None:
            warnings.warn(f"the refit of the best network stopped at epoch {stop.stopped_at} of "
                          f"{params['max_epochs']} to keep within budget={self.budget!r}", RuntimeWarning, stacklevel=3)
        return estimator

    def _splits(self, frame: pd.DataFrame, y: np.ndarray, seed: int) -> list[Any]:
        from archtune.tune.tuner import Split

        stratify = self._stratify_labels(y)
        if self.cv is None:
            n_val = int(round(self.validation_fraction * len(frame)))
            if n_val < 1 or len(frame) - n_val < 2:
                raise DataError(f"too few rows ({len(frame)}) for a validation split of {self.validation_fraction}")
            try:
                tr, va = train_test_split(np.arange(len(frame)), test_size=n_val, random_state=seed % 2**32,
                                          stratify=stratify)
            except ValueError:
                tr, va = train_test_split(np.arange(len(frame)), test_size=n_val, random_state=seed % 2**32)
            folds = [(tr, va)]
        else:
            if len(frame) < self.cv:
                raise DataError(f"cv={self.cv} folds need at least {self.cv} rows; got {len(frame)}")
            if stratify is not None and np.bincount(stratify).min() >= self.cv:
                folds = list(StratifiedKFold(self.cv, shuffle=True, random_state=seed % 2**32).split(frame, stratify))
            else:
                folds = list(KFold(self.cv, shuffle=True, random_state=seed % 2**32).split(frame))
        return [Split(frame.iloc[tr], y[tr], frame.iloc[va], y[va]) for tr, va in folds]

    def _check_study_matches(self, study: Any, frame: pd.DataFrame, y: np.ndarray) -> None:
        """A stored study continues only on the same data: a different table would make its
        trials incomparable."""
        fingerprint = hashlib.sha256(
            (",".join(map(str, frame.columns)) + f"|{len(frame)}|{type(self).__name__}").encode()).hexdigest()[:16]
        stored = study.user_attrs.get("data_fingerprint")
        if stored is None:
            study.set_user_attr("data_fingerprint", fingerprint)
            study.set_user_attr("task", self._task_name)
        elif stored != fingerprint:
            raise DataError(f"study {study.study_name!r} in {self.storage} was run on different data "
                            f"(columns, row count or task differ); use another study_name or storage")

    # ------------------------------------------------------------------ delegation

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict(X)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.score(X, y, sample_weight=sample_weight)


class _StopAtDeadline(Callback):
    """Ends training at the end of the first epoch past ``deadline`` (time.monotonic)."""

    def __init__(self, deadline: float | None):
        self.deadline = deadline
        self.stopped_at: int | None = None

    def on_epoch_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        if self.deadline is not None and time.monotonic() >= self.deadline and logs["epoch"] < trainer.config.max_epochs:
            trainer.stop_training = True
            self.stopped_at = logs["epoch"]


def _concrete(params: dict[str, Any], trial: Any) -> dict[str, Any]:
    """Estimator parameters of a finished trial: with learning_rate="auto" in the space, the
    rate the trial trained with (the finder's suggestion times its searched factor)."""
    from archtune.tune.space import AUTO_LR_SCALE_PARAM

    if AUTO_LR_SCALE_PARAM in params:
        params = {k: v for k, v in params.items() if k != AUTO_LR_SCALE_PARAM}
        params["learning_rate"] = float(trial.user_attrs["learning_rate"])
    return params


def _fixed_values(space: Any) -> dict[str, Any]:
    return {d.name: d.value for d in space.dimensions if d.kind == "fixed"}


class AutoNeuralClassifier(ClassifierMixin, _AutoBase):
    __doc__ = ("Searches network architectures and training settings for classification, then\n"
               "refits the best. See `_AutoBase` for the parameters.\n" + _AutoBase.__doc__.split("\n", 1)[1])
    neural_class = NeuralClassifier
    _task_name = "classification"
    _default_scoring = "accuracy"
    _epoch_key = "val_accuracy"

    def _check_target(self, y: np.ndarray) -> None:
        encode_classes(y, "y")

    def _stratify_labels(self, y: np.ndarray) -> np.ndarray | None:
        return np.unique(y, return_inverse=True)[1]

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict_proba(X)

    @property
    def classes_(self) -> np.ndarray:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.classes_


class AutoNeuralRegressor(RegressorMixin, _AutoBase):
    __doc__ = ("Searches network architectures and training settings for regression, then\n"
               "refits the best. See `_AutoBase` for the parameters.\n" + _AutoBase.__doc__.split("\n", 1)[1])
    neural_class = NeuralRegressor
    _task_name = "regression"
    _default_scoring = "r2"
    _epoch_key = "val_r2"

    def _check_target(self, y: np.ndarray) -> None:
        check_varies(regression_target(y, "y"), "y")

    def _stratify_labels(self, y: np.ndarray) -> np.ndarray | None:
        return None
