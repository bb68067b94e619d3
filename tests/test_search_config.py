"""One owner of a search's settings (archtune.tune.config.SearchConfig): parsed and validated
once, JSON for the workers, and the one object coordinator and workers build their trial loop
from."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pandas as pd
import pytest

from archtune.auto import AutoNeuralClassifier, AutoNeuralRegressor
from archtune.errors import DataError, InvalidParameterError
from archtune.task import CLASSIFICATION, REGRESSION, task_of
from archtune.tune.config import PARAMS, SearchConfig
from tests.conftest import load_shared


def _config(task=CLASSIFICATION, **params):
    cls = AutoNeuralClassifier if task is CLASSIFICATION else AutoNeuralRegressor
    return SearchConfig.from_params(task, cls(**params).get_params())


def test_every_auto_parameter_is_a_field_of_the_configuration():
    assert sorted(AutoNeuralClassifier().get_params()) == sorted(PARAMS)
    assert sorted(AutoNeuralRegressor().get_params()) == sorted(PARAMS)
    config = _config(budget="90s", cv=3, bagging=4, random_state=7)
    assert (config.seconds, config.trials, config.cv, config.bagging, config.seed) == (90.0, None, 3, 4, 7)
    assert config.params() == AutoNeuralClassifier(budget="90s", cv=3, bagging=4, random_state=7).get_params()


@pytest.mark.parametrize("params, message", [
    ({"budget": "5 parsecs"}, "budget must be a time"),
    ({"cv": 1}, "cv"),
    ({"bagging": 1}, "bagging"),
    ({"backend": "mpi"}, "backend must be 'threads'"),
    ({"ensemble": "yes"}, "ensemble"),
    ({"scoring": "acuracy"}, "did you mean 'accuracy'"),
    ({"sampler": "cmaes", "objectives": ("score", "latency")}, "one objective only"),
    ({"validation_fraction": 1.5}, "validation_fraction"),
    ({"space": {"activaton": ["relu"]}}, "did you mean 'activation'"),
    ({"space": {"loss": "huber"}}, "loss"),  # a regression loss fixed for a classifier
    ({"device": "tpu"}, "device"),
    ({"min_resources": 1}, "min_resources"),
    ({"min_resources": "half"}, "min_resources"),
])
def test_bad_settings_are_refused_by_name_before_any_data_is_read(params, message):
    with pytest.raises(InvalidParameterError, match=message):
        _config(**params)
    with pytest.raises(InvalidParameterError, match=message):  # the estimator's fit says the same
        AutoNeuralClassifier(**params).fit(None, None)


def test_a_regression_loss_is_valid_for_a_regression_search():
    assert _config(REGRESSION, space={"loss": "huber"}).space.fixed_values()["loss"] == "huber"


def test_unknown_and_missing_parameters_are_named():
    params = AutoNeuralClassifier().get_params()
    with pytest.raises(InvalidParameterError, match="unknown search parameter 'budgt'.*did you mean 'budget'"):
        SearchConfig.from_params("classification", {**params, "budgt": 3})
    del params["cv"]
    with pytest.raises(InvalidParameterError, match="missing"):
        SearchConfig.from_params("classification", params)


def test_the_configuration_round_trips_through_json():
    config = _config(REGRESSION, budget=12, space={"units": (16, 64), "activation": ["relu", "gelu"],
                                                   "batch_size": 128}, cv=3, scoring="neg_mean_absolute_error",
                     population=3, bagging=2, random_state=11)
    text = json.dumps(config.to_json(), allow_nan=False)  # strict JSON
    again = SearchConfig.from_json(json.loads(text))
    assert again.to_json() == config.to_json()
    assert (again.task, again.trials, again.seed, again.cohort_size, again.epoch_key, again.epoch_sign) == (
        REGRESSION, 12, 11, 3, "val_loss", -1.0)
    assert again.space.describe() == config.space.describe()


def test_derived_values_follow_the_settings():
    assert _config().epoch_key == "val_accuracy" and _config(REGRESSION).epoch_key == "val_r2"
    assert _config(scoring="roc_auc").epoch_key == "val_loss"
    assert _config().ensembling and not _config(ensemble=False).ensembling
    # A prefer rule that picks one small network: no ensemble unless asked for.
    several = dict(objectives=("score", "n_params"), prefer="smallest within 0.01")
    assert not _config(**several).ensembling and _config(**several, ensemble=True).ensembling
    assert _config(sampler="auto").sampler_name == "tpe"
    assert _config(objectives=("score", "latency")).sampler_name == "nsga2"


def test_the_task_is_a_type_read_with_is_classifier():
    assert task_of(AutoNeuralClassifier()) is CLASSIFICATION and task_of(AutoNeuralRegressor()) is REGRESSION
    assert not hasattr(AutoNeuralRegressor(), "predict_proba")
    assert CLASSIFICATION.neural_class().__class__.__name__ == "NeuralClassifier"


def test_a_worker_trains_from_the_published_configuration_alone(tmp_path):
    """The coordinator publishes its configuration, the kinds and the rows; a worker given
    only the storage and the study's name rebuilds the same trial loop and trains trials."""
    from archtune.tune.data import SearchData
    from archtune.tune.job import JOB_ATTR
    from archtune.tune.opening import open_study
    from archtune.tune.trial_loop import trial_loop
    from archtune.tune.trials import publish_job
    from archtune.tune.worker import run_worker

    X, y = load_shared("magic.tsv.gz", n=300, seed=3)
    url = f"journal:///{tmp_path}/study.log"
    config = _config(budget=3, storage=url, study_name="w", baselines=False, population=False,
                     space={"max_epochs": 2, "units": (8, 16), "hidden_layers": 1, "numeric_embedding": None},
                     random_state=5)
    data = SearchData.read(config.task, X, y)
    opened = open_study(config, data)
    splits, _ = data.splits(config.seed, config.cv, config.validation_fraction)
    coordinator = trial_loop(config, opened.study, opened.storage, opened.space, splits, data.network_kinds, 0.0)
    publish_job(config, data, coordinator, remaining=None)
    # Published: the configuration as JSON (which the worker validates again), nothing else of the settings.
    job = optuna.load_study(study_name="w", storage=opened.storage).user_attrs[JOB_ATTR]
    assert set(job) == {"config", "kinds", "refit_factor", "deadline", "data", "columns", "n_splits", "targets"}
    assert SearchConfig.from_json(job["config"]).to_json() == config.to_json()
    report = run_worker(url, "w", max_trials=2, wait=5)
    study = optuna.load_study(study_name="w", storage=opened.storage)
    mine = [t for t in study.trials if t.number in report.trials]
    assert len(mine) == 2 and all(t.state.is_finished() for t in mine)
    # Trained as the coordinator would: its space (2 epochs at most), its pruner's metric.
    assert all(t.user_attrs["config"]["max_epochs"] == 2 and 8 <= t.user_attrs["config"]["units"] <= 16
               for t in mine)
    assert all(set(t.intermediate_values) <= {1, 2} for t in mine)
    values = [v for t in mine for v in t.intermediate_values.values()]
    assert values and all(0.0 <= v <= 1.0 for v in values)  # val_accuracy, the classification metric


def test_the_search_reads_its_data_once_into_search_data():
    from archtune.tune.data import SearchData

    X, y = load_shared("574_house_16H.tsv.gz", n=200, seed=0)
    data = SearchData.read(REGRESSION, X, np.column_stack([y, X["P1"]]))
    assert data.n_outputs == 2 and data.codes is None and data.kinds == {c: "numeric" for c in X.columns}
    # A 2-D classification target is multi-label (archtune.data.multilabel): 0/1 values only.
    with pytest.raises(DataError, match="is not 0 or 1; a 2-D classifier target is a multi-label indicator"):
        SearchData.read(CLASSIFICATION, X, np.column_stack([y, y]))
    with pytest.raises(Exception, match="X has 200 rows but y has 10"):
        SearchData.read(REGRESSION, X, y[:10])
    splits, table = SearchData.read(REGRESSION, X, y).splits(0, 3, 0.2)
    assert len(splits) == 3 and splits is table
    assert sorted(np.concatenate([s.X_val.index for s in splits]).tolist()) == sorted(X.index.tolist())
    assert isinstance(splits[0].X_train, pd.DataFrame)


def test_a_two_output_target_is_published_for_workers_column_by_column(tmp_path):
    from archtune.tune.data import SearchData
    from archtune.tune.job import JOB_ATTR, read_data
    from archtune.tune.opening import open_study
    from archtune.tune.trial_loop import trial_loop
    from archtune.tune.trials import publish_job

    X, y = load_shared("574_house_16H.tsv.gz", n=200, seed=0)
    Y = np.column_stack([y.to_numpy(), X.pop("P1").to_numpy()])
    config = _config(REGRESSION, budget=2, storage=f"journal:///{tmp_path}/s.log", study_name="m", baselines=False)
    data = SearchData.read(config.task, X, Y)
    opened = open_study(config, data)
    splits, _ = data.splits(config.seed, config.cv, config.validation_fraction)
    publish_job(config, data, trial_loop(config, opened.study, opened.storage, opened.space, splits, data.kinds, 0.0),
                remaining=None)
    job = optuna.load_study(study_name="m", storage=opened.storage).user_attrs[JOB_ATTR]
    frame, target, weights, positions = read_data(job)
    np.testing.assert_array_equal(target, Y)
    assert list(frame.columns) == list(X.columns) and weights is None
    np.testing.assert_array_equal(positions[0][1], splits[0].X_val.index.to_numpy())
