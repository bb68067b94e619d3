"""AutoNeuralClassifier / AutoNeuralRegressor: search a space of networks, then refit the best.

A scikit-learn facade over the search (`archtune.tune.search.run_search`): parameters (parsed
and validated by `archtune.tune.config.SearchConfig`), ``fit`` (which runs the search), and
prediction with the search's final model (``final_estimator_``: the ensemble, the bag or the
best network), which `archtune.save` writes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from archtune.estimators import NeuralClassifier, NeuralRegressor


class _AutoBase(BaseEstimator):
    """Shared machinery of the Auto estimators.

    Parameters
    ----------
    budget : str or int
        Wall-clock time ("90s", "5m", "1h", "1h30m"), a number of finished trials, or "auto":
        stop when more trials are not expected to improve the best validation score by more
        than its noise (its bootstrap standard error), not before 21 finished trials, within a
        time cap of 1 hour ("auto:2h" for another cap; archtune.tune.stopping). Why it stopped
        is ``study_.user_attrs["stopped"]``.
    space : "default", "small", dict or SearchSpace
        The search space. A dict narrows or extends the default one:
        ``{"activation": ["relu", "gelu"], "units": (32, 256)}``, and may fix any estimator
        parameter to one value (``{"batch_size": 256}``; ``{"max_epochs": 20}`` caps the
        fidelity that the pruner hands out). Fixing ``init_from`` (a bundle path, a fitted
        estimator or a Source: ``{"init_from": "runs/source", "freeze": ["body", None]}``)
        starts every trial, the refit and the ensemble's networks from that network, read once:
        its architecture is not searched, ``freeze`` and ``fine_tune_lr_factor`` are, and the
        trials train one at a time (archtune.tune.transfer). A study stores a path; an object
        must be passed again to continue the study.
    sampler : {"auto", "tpe", "nsga2", "random", "grid", "cmaes", "gp", "qmc"}
        "auto": TPE for one objective, NSGA-II (Deb et al. 2002) for several. With several
        objectives every sampler but "cmaes" (one objective only: refused) may be chosen.
    pruner : {"hyperband", "sha", "median", None}
        Multi-fidelity pruning on epochs (on the score alone with several objectives:
        archtune.tune.score_pruning).
    objectives : tuple of str
        ("score",) (the default) optimises the validation score. ("score", "latency") or
        ("score", "n_params") searches the Pareto front of the score and the network's cost:
        latency in CPU milliseconds per 1000 rows (one thread, measured on the untrained
        network, archtune.shrink.latency) or its parameter count. The leaderboard gains a
        ``pareto`` column (and ``latency_ms``); ``prefer`` picks the network.
    prefer : str
        With several objectives, which trial of the front is ``best_``: "score" (the best
        score) or "smallest within T" (the least latency / parameter count among the front's
        trials whose score is within T of the best, e.g. "smallest within 0.005"). Ignored
        with one objective.
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
        Trials trained in parallel: threads of this process, or with another ``backend``
        that many worker processes besides this one (archtune.tune.worker).
    backend : {"threads", "processes", "ray"} or "ray:ADDRESS"
        Where the ``n_jobs`` trials run: threads (default); `archtune worker` subprocesses;
        Ray tasks on a local Ray started for the fit, or on the cluster at ADDRESS ("ray:auto",
        "ray:HOST:PORT"; needs the ``ray`` extra). The storage defaults then to a journal file
        in a temporary folder; a given storage must be one several processes can share
        (``journal:///path.log``, PostgreSQL).
    population : bool or int
        Train trials in cohorts, as one stacked model (several times faster for small
        networks): True for cohorts sized by the budget (2 under 90 s, 4 under 4 minutes, 8
        beyond), an integer for another size, False for one trial at a time. The grid sampler
        always trains one at a time.
    refit : "auto" or bool
        True: the best configuration trained again on all rows, as its own ``fit`` would
        (early stopping on its validation split); the search leaves it the time. False: the
        best trial's own network, with its best validation epoch's weights (as RealMLP and TabM
        keep theirs), trained on the search's training split. "auto" (the default): True with
        a trial budget, and with a time budget when the refit is expected to take at most a
        quarter of it (`archtune.tune.refit.AUTO_REFIT_SHARE`; else the trials get that time,
        and ``archtune info`` says why nothing was refitted). A refit that the budget cuts
        short gives way to the trial's own network.
    ensemble : bool or None
        None (the default): True, except with several objectives and a ``prefer`` rule
        other than "score" (the small or fast network the rule picks is what predicts; pass
        True to ensemble anyway). After the search, select an ensemble of the best networks (up to 16, as trained in
        their trials) and the baselines by greedy selection with replacement on the validation
        rows (Caruana et al. 2004). It replaces the best network for prediction only when it
        is at least as good on validation rows it was not selected on (each half of them in
        turn). Tables only; a resumed search ensembles what this process trained.
    bagging : int, optional
        K >= 2 replaces the refit by a bag of the best configuration: K networks, each trained
        on K-1 folds of all rows with early stopping on the fold it did not see; prediction
        averages them, and their out-of-fold predictions score the bag (``bag_.oof_score``)
        and make it an ensemble candidate. Costs about K-1 times a refit (the search keeps the
        time for it). None: no bag.
    baselines : bool
        Also fit linear, k-NN, random forest, gradient boosting (and LightGBM when installed)
        on the same split, for the leaderboard (and as ensemble candidates).
    validation_fraction : float
        Share of the rows held out to score the trials (with ``cv=None``).
    min_resources : "auto", int or None
        Successive halving over training rows (archtune.tune.halving; Li et al. 2020, ASHA;
        scikit-learn's ``HalvingRandomSearchCV`` names it the same): every configuration first
        trains on this many training rows (the same seeded rows for all), scored on all
        validation rows, and one in 4 of them, the best, trains again on all training rows.
        "auto": an eighth of the training rows, at least 4096, and only where that is at most
        a quarter of them (16,384 training rows and more); a number: those rows, where that is
        at most half of them; None: every trial trains on all rows. The refit always trains on
        all rows.
    random_state : int, optional
        Seeds the search: the splits, the sampler, every trial's network (its
        ``random_state``), the baselines, the refit, the bag and the ensemble's selection.
        A search alone in one process with a trial budget (``budget=30``) repeats: the same
        rows, settings and integer seed give the same trials, best network, ensemble and
        leaderboard (but for measured times), whatever the session drew from NumPy's or
        torch's global generators before. Not reproducible, because a measured time decides:
        a time budget (how many trials start, when training stops), the ``"latency"``
        objective (the Pareto front and ``prefer``'s pick), and ``n_jobs > 1`` or worker
        processes (which trial the sampler sees first). Float sums that torch,
        scikit-learn or LightGBM split among threads (their counts follow the work and the
        idle cores, `archtune.train.threads`) may differ in the last bits with the thread
        count (``torch.set_num_threads(n)`` and threadpoolctl fix them; archtune keeps a
        count the user set); the random forest baseline predicts on one thread, so that its
        trees are added in one order. None draws a fresh seed from NumPy's global generator
        in every fit.
    device : {"auto", "cpu", "cuda"}
    verbose : int
        0 silent; 1 a live progress line.
    mlflow_uri : str, optional
        Log the search to MLflow (``pip install 'archtune[mlflow]'``): a parent run with the
        settings, the leaderboard (``leaderboard.csv``) and the best score, and a nested run
        per trial (its parameters, per-epoch train_loss/val_loss/val_<metric>/lr with step =
        epoch, state, value, n_params, the doctor's diagnosis) and per baseline. A URI
        (``"file:///tmp/mlruns"``, ``"sqlite:///mlflow.db"``, ``"http://host:5000"``) or a
        directory; the experiment is ``study_name`` (default "archtune"). A tracking error
        is a warning, never a failed search.
    tensorboard_dir : str, optional
        Write TensorBoard event files there (``pip install 'archtune[tensorboard]'``):
        ``trial_NNNN/`` with each trial's curves, ``search/`` with the trials' values.

    Attributes
    ----------
    best_params_ : dict
    best_score_ : float
        Validation score of the best trial (with several objectives: of the trial ``prefer``
        picks).
    best_estimator_ : NeuralClassifier or NeuralRegressor
        The best configuration refitted on all rows (or, without a refit, as trained in its
        trial).
    label_names_ : ndarray or None
        A multi-label search fitted on label sets (archtune.data.multilabel) searches their 0/1
        matrix: these are the labels of its columns, sorted (the models' ``classes_`` are the
        column positions); None otherwise.
    final_estimator_ : estimator
        The one model the search returns: what ``predict``, ``predict_proba`` and ``score``
        use and what `archtune.save` writes (and `archtune.load` gives back). The ensemble
        when one is used (``ensemble_``), else the bag (``bag_.ensemble``), else
        ``best_estimator_``.
    ensemble_ : archtune.ensemble.EnsembleClassifier, EnsembleRegressor or None
        What predicts instead of the best network, when anything does: the selected ensemble
        when it is used (``ensemble_.describe()`` lists members, weights and scores), or the
        best single model alone when that is not a network (LightGBM, say, with a weight of
        1). Its LightGBM members are refitted on all rows and the best trial's network is
        replaced by its refit (bench/search_quality.py measured this against keeping them).
        None: the best network predicts.
    bag_ : archtune.ensemble.bagging.Bag or None
        With ``bagging``: ``bag_.ensemble`` (the K members), ``bag_.oof`` (out-of-fold
        predictions, rows in the order of X), ``bag_.oof_score`` and ``bag_.folds``.
    ensemble_candidates_ : archtune.ensemble.build.EnsembleLibrary or None
        The candidates and their validation predictions.
    study_ : optuna.Study
    leaderboard_ : pandas.DataFrame
        Every trial and baseline: model, params, val_score, fit_seconds, n_params, state, note.
    baselines_ : list of dict
    mlflow_run_id_ : str or None
        With ``mlflow_uri``: the search's parent run (``archtune.tracking.search_tracker.
        log_run_directory`` adds a saved run directory to it).
    """

    neural_class: type = NeuralRegressor  # the estimator each trial trains

    def __init__(
        self,
        *,
        budget: str | int = "5m",
        space: Any = "default",
        sampler: str = "auto",
        pruner: str | None = "hyperband",
        objectives: tuple[str, ...] = ("score",),
        prefer: str = "score",
        cv: int | None = None,
        scoring: str | None = None,
        storage: str | None = None,
        study_name: str | None = None,
        n_jobs: int = 1,
        backend: str = "threads",
        population: bool | int = True,
        refit: bool | str = "auto",
        ensemble: bool | None = None,
        bagging: int | None = None,
        baselines: bool = True,
        validation_fraction: float = 0.2,
        min_resources: str | int | None = "auto",
        random_state: int | None = None,
        device: str = "auto",
        verbose: int = 0,
        mlflow_uri: str | None = None,
        tensorboard_dir: str | None = None,
    ):
        self.budget = budget
        self.space = space
        self.sampler = sampler
        self.pruner = pruner
        self.objectives = objectives
        self.prefer = prefer
        self.cv = cv
        self.scoring = scoring
        self.storage = storage
        self.study_name = study_name
        self.n_jobs = n_jobs
        self.backend = backend
        self.population = population
        self.refit = refit
        self.ensemble = ensemble
        self.bagging = bagging
        self.baselines = baselines
        self.validation_fraction = validation_fraction
        self.min_resources = min_resources
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.mlflow_uri = mlflow_uri
        self.tensorboard_dir = tensorboard_dir

    # ------------------------------------------------------------------ fit

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "_AutoBase":
        """Search networks on (X, y) within the budget, then refit the best on all rows.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features), or images
            (n_samples, channels, height, width)
        y : array-like of shape (n_samples,), or (n_samples, n_outputs) for a regressor of
            several outputs
        sample_weight : array-like of shape (n_samples,), default None
            Weight of each row (None: all equal), as in `NeuralClassifier.fit`. The weights go
            with their rows into the holdout split or the cv folds; every trial (alone or in a
            cohort) trains and validates with them, the trials, the baselines (those whose
            ``fit`` takes ``sample_weight``; LightGBM too) and the ensemble are scored with the
            validation rows' weights, and the refit trains with them. The learning-rate finder
            ignores them.

        Returns
        -------
        self

        Raises
        ------
        InvalidParameterError
            A parameter (or a value fixed in ``space``) is invalid.
        DataError
            The data cannot be used, or no trial completed within the budget; X is a scipy
            sparse matrix (the search's baselines, splits and ensembles read tables).
        """
        import time

        from archtune.tune.config import SearchConfig
        from archtune.tune.data import SearchData, multilabel_config
        from archtune.tune.search import run_search

        started = time.monotonic()  # the budget covers everything the search does, reading the data included
        config = SearchConfig.from_estimator(self)  # every parameter checked before any data is read
        # X is read once here (a sparse matrix refused), its kinds inferred once: `SearchData.read`.
        data = SearchData.read(config.task, X, y, sample_weight)
        if data.multilabel:
            config = multilabel_config(config)
        result = run_search(config, data, started)
        self.label_names_ = data.labels  # label sets: the labels of the indicator columns predict gives
        self.study_ = result.study
        self.baselines_ = result.baselines
        self.leaderboard_ = result.leaderboard
        self.best_trial_ = result.best_trial
        self.best_score_ = result.best_score
        self.best_params_ = result.best_params
        self.best_estimator_ = result.best_estimator
        self.final_estimator_ = result.final_model
        self.ensemble_ = result.ensemble.final if result.ensemble is not None else None
        self.ensemble_candidates_ = result.ensemble_library
        self.bag_ = result.bag
        self.mlflow_run_id_ = result.mlflow_run_id
        self.n_features_in_ = self.best_estimator_.n_features_in_
        # A table without column names (a NumPy array) is searched under generated names
        # (x0, x1, ...); predictions on arrays get them back, so no feature-name warning is
        # raised that the user did not cause, and no names are claimed that X never had.
        self.generated_names_ = None
        if data.images is None and not data.table.named:
            self.generated_names_ = [f"x{i}" for i in range(data.table.n_columns)]
        elif hasattr(self.best_estimator_, "feature_names_in_"):
            self.feature_names_in_ = self.best_estimator_.feature_names_in_
        return self

    def _table(self, X: Any) -> Any:
        names = getattr(self, "generated_names_", None)
        if names is not None and not _has_names(X) and np.ndim(X) == 2 and np.shape(X)[1] == len(names):
            import pandas as pd

            return pd.DataFrame(np.asarray(X), columns=names)
        return X

    # ------------------------------------------------------------------ delegation

    def predict(self, X: Any, n_threads: int | None = None, device: str | None = None) -> np.ndarray:
        """Labels of shape (n_samples,), or values of shape (n_samples,) or (n_samples,
        n_outputs), from ``final_estimator_``; ``n_threads`` (threads for this call, restored
        after it) and ``device`` (where its networks predict) as in archtune.predicting."""
        check_is_fitted(self, "final_estimator_")
        return self.final_estimator_.predict(self._table(X), n_threads=n_threads, device=device)


def _has_names(X: Any) -> bool:
    """Whether X is a table with string column names (a DataFrame)."""
    columns = getattr(X, "columns", None)
    return columns is not None and all(isinstance(c, str) for c in columns)


class AutoNeuralClassifier(ClassifierMixin, _AutoBase):
    __doc__ = ("Searches network architectures and training settings for classification, then\n"
               "refits the best. See `_AutoBase` for the parameters.\n" + _AutoBase.__doc__.split("\n", 1)[1])
    neural_class = NeuralClassifier

    def predict_proba(self, X: Any, n_threads: int | None = None, device: str | None = None) -> np.ndarray:
        """Class probabilities of shape (n_samples, n_classes), from ``final_estimator_``;
        ``n_threads`` and ``device`` as in `predict`."""
        check_is_fitted(self, "final_estimator_")
        return self.final_estimator_.predict_proba(self._table(X), n_threads=n_threads, device=device)

    def predict_set(self, X: Any, coverage: float = 0.9, n_threads: int | None = None,
                    device: str | None = None) -> np.ndarray:
        """Prediction sets from ``final_estimator_``: boolean array of shape (n_samples,
        n_classes), whether each class of ``classes_`` is in each row's set, holding the true
        class with probability ``coverage`` (adaptive prediction sets, archtune.prediction_sets,
        calibrated on rows the final model did not train on). ``n_threads`` and ``device`` as
        in `predict`.

        Raises
        ------
        InvalidParameterError
            A bad coverage, or a final model without a calibration.
        """
        check_is_fitted(self, "final_estimator_")
        return self.final_estimator_.predict_set(self._table(X), coverage, n_threads=n_threads, device=device)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy of ``predict(X)``; labels held in an object array of numbers compare as
        those numbers. Multi-label: the subset accuracy against the 0/1 matrix, or against
        label sets when the search was fitted on label sets (``label_names_``)."""
        from sklearn.metrics import accuracy_score

        from archtune.data.multilabel import label_sets
        from archtune.data.target import plain_labels, target_array

        if getattr(self, "label_names_", None) is not None and label_sets(y) is not None:
            from sklearn.preprocessing import MultiLabelBinarizer

            y = MultiLabelBinarizer(classes=list(self.label_names_)).fit_transform(y)
        return float(accuracy_score(plain_labels(target_array(y)), self.predict(X), sample_weight=sample_weight))

    @property
    def classes_(self) -> np.ndarray:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.classes_


class AutoNeuralRegressor(RegressorMixin, _AutoBase):
    __doc__ = ("Searches network architectures and training settings for regression, then\n"
               "refits the best. See `_AutoBase` for the parameters.\n" + _AutoBase.__doc__.split("\n", 1)[1])
    neural_class = NeuralRegressor

    def predict_interval(self, X: Any, coverage: float = 0.9, n_threads: int | None = None,
                         device: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper), each shaped like ``predict(X)``, from ``final_estimator_``: intervals
        holding the true value with probability ``coverage`` by split-conformal calibration
        (archtune.conformal) on rows the final model did not train on: the search's validation
        rows (an ensemble, calibrated before its members were refitted), the refit's own
        validation split, or a bag's out-of-fold rows. ``n_threads`` and ``device`` as in
        `predict`.

        Raises
        ------
        InvalidParameterError
            A bad coverage, or a final model without a calibration.
        """
        check_is_fitted(self, "final_estimator_")
        return self.final_estimator_.predict_interval(self._table(X), coverage, n_threads=n_threads, device=device)

    def predict_quantiles(self, X: Any, n_threads: int | None = None, device: str | None = None) -> np.ndarray:
        """The quantiles ``final_estimator_`` predicts (`NeuralRegressor.predict_quantiles`):
        a search with ``space={"loss": "quantile", ...}`` ships its best quantile network.

        Raises
        ------
        InvalidParameterError
            The final model has no quantile outputs (the space did not fix loss="quantile").
        """
        from archtune.errors import InvalidParameterError

        check_is_fitted(self, "final_estimator_")
        final = self.final_estimator_
        if not hasattr(final, "predict_quantiles"):
            raise InvalidParameterError(f"predict_quantiles needs a search with space={{'loss': 'quantile'}}; the "
                                        f"final model is a {type(final).__name__}")
        return final.predict_quantiles(self._table(X), n_threads=n_threads, device=device)


__all__ = ["AutoNeuralClassifier", "AutoNeuralRegressor"]
