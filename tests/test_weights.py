"""sample_weight (issue 14, fault 8): weighted losses, metrics, fits, cohorts and searches.

The oracles: an integer weight equals that many copies of the row, a zero weight equals the
row removed, a weighted cohort member equals its weighted solo fit, and the weighted metrics
equal scikit-learn's."""

from __future__ import annotations

import copy
import functools

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.ensemble import AdaBoostClassifier
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import cross_val_score

from archtune import NeuralClassifier, NeuralRegressor
from archtune.auto import AutoNeuralClassifier, AutoNeuralRegressor
from archtune.config import ModelConfig, TrainConfig
from archtune.data.table import Table
from archtune.data.preprocess import Preprocessor
from archtune.errors import DataError
from archtune.models import InputSpec, build_model
from archtune.population import fit_population
from archtune.train import Trainer
from archtune.train.losses import make_loss, make_member_loss, make_member_metric, make_metric
from archtune.train.population import PopulationTrainer
from archtune.train.threads import torch_threads
from archtune.tune.baselines import fit_weighted
from archtune.tune.data import search_splits as make_splits
from tests.conftest import load_shared


@pytest.fixture(autouse=True)
def _one_thread():
    """Small networks on a shared 2-core machine: a second torch thread only waits (issue 14,
    fault 11), and these tests must stay fast."""
    with torch_threads(1):
        yield


@functools.lru_cache(maxsize=None)
def _magic(n: int, seed: int):
    return load_shared("magic.tsv.gz", n=n, seed=seed)


def _magic_tensors(n: int, dtype=torch.float64):
    X, y = _magic(n, 3)
    Xt = torch.from_numpy(Preprocessor().fit(X).transform(X)).to(dtype)
    yt = torch.from_numpy(y.to_numpy().astype("float64")).to(dtype).reshape(-1, 1)
    return Xt, yt


def _repeat(X, y, counts):
    """The rows of (X, y) each repeated ``counts[i]`` times (0 removes the row)."""
    index = torch.from_numpy(np.repeat(np.arange(len(counts)), counts))
    return X[index], y[index]


# --------------------------------------------------------------------------- losses and metrics


def _outputs(task: str, n: int, members: int | None, generator: torch.Generator):
    width = {"binary": 1, "multiclass": 4, "regression": 2}[task]
    shape = (n, members, width) if members else (n, width)
    outputs = torch.randn(*shape, generator=generator, dtype=torch.float64)
    if task == "binary":
        y = torch.randint(0, 2, (n, 1), generator=generator).double()
    elif task == "multiclass":
        y = torch.randint(0, 4, (n,), generator=generator)
    else:
        y = torch.randn(n, 2, generator=generator, dtype=torch.float64)
    return outputs, y


@pytest.mark.parametrize("task,name,members", [
    ("binary", "cross_entropy", None), ("binary", "cross_entropy", 3), ("multiclass", "cross_entropy", None),
    ("multiclass", "cross_entropy", 3), ("regression", "mse", None), ("regression", "huber", 3),
    ("regression", "mae", None),
])
def test_an_integer_weight_is_that_many_copies_of_the_row_in_every_loss(task, name, members):
    """With label smoothing, class weights and TabM's member axis (3-D outputs) too."""
    g = torch.Generator().manual_seed(0)
    outputs, y = _outputs(task, 40, members, g)
    counts = torch.randint(0, 4, (40,), generator=g)
    counts[0] = 2  # some row is weighted for sure
    classes = {"binary": 2, "multiclass": 4}.get(task)
    class_weights = torch.linspace(0.5, 2.0, classes, dtype=torch.float64) if classes else None
    loss = make_loss(task, name, class_weights, label_smoothing=0.1 if classes else 0.0)
    index = torch.from_numpy(np.repeat(np.arange(40), counts.numpy()))
    weighted = loss(outputs, y, counts.double())
    repeated = loss(outputs[index], y[index])
    assert float(weighted) == pytest.approx(float(repeated), rel=1e-12)
    assert float(weighted) != pytest.approx(float(loss(outputs, y)), rel=1e-6)  # the weights matter
    if members is None:  # a cohort's per-member loss is the member's own loss, weighted the same
        member_loss = make_member_loss(task, name, class_weights, label_smoothing=0.1 if classes else 0.0)
        stacked = torch.stack([outputs, outputs * 0.5])
        per_member = member_loss(stacked, y, counts.double())
        assert float(per_member[0]) == pytest.approx(float(weighted), rel=1e-12)
        assert float(per_member[1]) == pytest.approx(float(loss(outputs * 0.5, y, counts.double())), rel=1e-12)


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_weighted_metrics_equal_scikit_learns(task):
    g = torch.Generator().manual_seed(1)
    outputs, y = _outputs(task, 60, None, g)
    w = torch.rand(60, generator=g, dtype=torch.float64)
    value = make_metric(task)(outputs, y, w)
    per_member = make_member_metric(task)(outputs.unsqueeze(0), y, w)
    if task == "regression":
        expected = r2_score(y.numpy(), outputs.numpy(), sample_weight=w.numpy())
    else:
        predicted = (outputs[:, 0] > 0).long() if task == "binary" else outputs.argmax(dim=1)
        expected = accuracy_score(y.view(-1).long().numpy(), predicted.numpy(), sample_weight=w.numpy())
    assert value == pytest.approx(expected, rel=1e-10)
    assert float(per_member[0]) == pytest.approx(expected, rel=1e-10)


# --------------------------------------------------------------------------- trainers


def _network(n_in: int, seed: int = 0, width: int = 16):
    config = ModelConfig(hidden_sizes=(width, width), activation="tanh", dropout=0.0)
    return build_model(config, InputSpec(n_in), 1, "binary", torch.Generator().manual_seed(seed)).double()


def _config(batch_size: int, **changes) -> TrainConfig:
    return TrainConfig(**{"optimizer": "adamw", "learning_rate": 3e-3, "weight_decay": 1e-3, "batch_size": batch_size,
                          "max_epochs": 6, "lr_schedule": "cosine", "warmup_epochs": 1, "loss": "cross_entropy",
                          "seed": 5, "patience": 3, **changes})


def _train(module, config, X, y, X_val, y_val, w=None, w_val=None):
    trainer = Trainer(module, make_loss("binary", "cross_entropy", label_smoothing=0.1), config,
                      metric=make_metric("binary"), metric_name="accuracy")
    trainer.fit(X, y, X_val, y_val, w=w, w_val=w_val)
    return trainer.history.records, module.state_dict()


def _assert_same_run(a, b, rtol):
    (history_a, state_a), (history_b, state_b) = a, b
    assert len(history_a) == len(history_b)
    for ra, rb in zip(history_a, history_b):
        for key in ("train_loss", "val_loss"):
            assert rb[key] == pytest.approx(ra[key], rel=rtol, abs=1e-12), (ra["epoch"], key)
        # The unweighted accuracy is a float32 mean; the weighted one is computed in float64.
        assert rb["val_accuracy"] == pytest.approx(ra["val_accuracy"], abs=1e-6), ra["epoch"]
    for name, value in state_a.items():
        assert torch.allclose(value, state_b[name], rtol=rtol, atol=rtol), name


def test_full_batch_training_with_integer_weights_equals_training_on_duplicated_rows():
    X, y = _magic_tensors(240)
    X_tr, y_tr, X_val, y_val = X[:200], y[:200], X[200:], y[200:]
    counts = np.where(np.arange(200) % 3 == 0, 2, 1)
    counts_val = np.where(np.arange(40) % 4 == 0, 3, 1)
    weighted = _train(_network(X.shape[1]), _config(1000), X_tr, y_tr, X_val, y_val,
                      torch.from_numpy(counts).double(), torch.from_numpy(counts_val).double())
    duplicated = _train(_network(X.shape[1]), _config(1000), *_repeat(X_tr, y_tr, counts),
                        *_repeat(X_val, y_val, counts_val))
    unweighted = _train(_network(X.shape[1]), _config(1000), X_tr, y_tr, X_val, y_val)
    _assert_same_run(duplicated, weighted, 1e-9)
    assert weighted[0][-1]["val_loss"] != pytest.approx(unweighted[0][-1]["val_loss"], rel=1e-6)


def test_a_weighted_cohort_member_equals_its_weighted_solo_fit_in_float64():
    X, y = _magic_tensors(300)
    X_tr, y_tr, X_val, y_val = X[:250], y[:250], X[250:], y[250:]
    g = torch.Generator().manual_seed(2)
    w, w_val = torch.rand(250, generator=g, dtype=torch.float64), torch.rand(50, generator=g, dtype=torch.float64)
    configs = [_config(64, learning_rate=lr, lr_schedule=schedule, weight_decay=wd)
               for lr, schedule, wd in ((3e-3, "cosine", 1e-3), (1e-2, "constant", 0.0), (1e-3, "plateau", 1e-2))]
    modules = [_network(X.shape[1], seed=k, width=width) for k, width in enumerate((16, 12, 8))]
    alone = []
    for module, config in zip(modules, configs):
        alone.append(_train(copy.deepcopy(module), config, X_tr, y_tr, X_val, y_val, w, w_val))
    cohort = PopulationTrainer([copy.deepcopy(m) for m in modules], configs,
                               make_member_loss("binary", "cross_entropy", label_smoothing=0.1),
                               make_member_metric("binary"), "accuracy").fit(X_tr, y_tr, X_val, y_val, w=w, w_val=w_val)
    for (history, state), result in zip(alone, cohort):
        assert result.status == "complete"
        _assert_same_run((history, state), (result.history, result.state), 1e-8)


# --------------------------------------------------------------------------- estimators


@pytest.fixture(scope="module")
def magic():
    X, y = _magic(600, 4)
    return X.iloc[:500].reset_index(drop=True), y.iloc[:500].reset_index(drop=True), X.iloc[500:], y.iloc[500:]


def test_a_fit_with_integer_weights_equals_a_fit_on_duplicated_rows(magic):
    """Full batch, no dropout, no data-derived scaling or bins, the same validation rows: the
    only difference left is the arithmetic (float32)."""
    X, y, X_val, y_val = magic
    # Standardised here, once for both fits: scaling=None leaves no statistic for the rows to change.
    mean, std = X.mean(), X.std()
    X, X_val, y = (X.iloc[:200] - mean) / std, (X_val - mean) / std, y.iloc[:200]
    counts = np.where(np.arange(200) % 4 == 0, 2, 1)
    params = dict(max_epochs=5, dropout=0.0, scaling=None, numeric_embedding=None, batch_size="full",
                  random_state=0)
    weighted = NeuralClassifier(**params).fit(X, y, sample_weight=counts, validation_data=(X_val, y_val))
    duplicated = NeuralClassifier(**params).fit(X.iloc[np.repeat(np.arange(200), counts)],
                                                y.iloc[np.repeat(np.arange(200), counts)],
                                                validation_data=(X_val, y_val))
    plain = NeuralClassifier(**params).fit(X, y, validation_data=(X_val, y_val))
    np.testing.assert_allclose(weighted.predict_proba(X_val), duplicated.predict_proba(X_val), atol=2e-5)
    np.testing.assert_allclose(weighted.history_["val_loss"], duplicated.history_["val_loss"], rtol=2e-5)
    assert np.abs(weighted.predict_proba(X_val) - plain.predict_proba(X_val)).max() > 1e-3


def test_a_zero_weight_is_the_row_removed_even_with_minibatches_and_a_holdout_split(magic):
    X, y, X_val, _ = magic
    weights = np.random.default_rng(0).uniform(0.5, 2.0, len(X))
    weights[::7] = 0.0
    keep = weights > 0
    params = dict(max_epochs=3, batch_size=64, random_state=0)
    weighted = NeuralClassifier(**params).fit(X, y, sample_weight=weights)
    removed = NeuralClassifier(**params).fit(X[keep], y[keep], sample_weight=weights[keep])
    np.testing.assert_allclose(weighted.predict_proba(X_val), removed.predict_proba(X_val), atol=1e-6)
    assert weighted.history_["val_loss"].tolist() == pytest.approx(removed.history_["val_loss"].tolist(), rel=1e-6)


def test_equal_weights_are_exactly_no_weights_and_the_callers_weights_are_not_changed(magic):
    X, _, X_val, _ = magic
    target = X.iloc[:, 0] * 2 + X.iloc[:, 1]
    weights = np.full(len(X), 3.0)
    plain = NeuralRegressor(max_epochs=2, random_state=0).fit(X.iloc[:, 1:], target)
    weighted = NeuralRegressor(max_epochs=2, random_state=0).fit(X.iloc[:, 1:], target, sample_weight=weights)
    assert np.array_equal(plain.predict(X_val.iloc[:, 1:]), weighted.predict(X_val.iloc[:, 1:]))
    assert (weights == 3.0).all()
    weights[0] = 10.0  # one heavier row: no longer the plain fit
    heavier = NeuralRegressor(max_epochs=2, random_state=0).fit(X.iloc[:, 1:], target, sample_weight=weights)
    assert not np.array_equal(plain.predict(X_val.iloc[:, 1:]), heavier.predict(X_val.iloc[:, 1:]))


def test_a_weighted_population_member_equals_its_weighted_solo_fit(magic):
    X, y, X_val, _ = magic
    weights = np.where(y == 1, 3.0, 1.0)
    models = [NeuralClassifier(units=64, hidden_layers=2, learning_rate=lr, dropout=0.0, max_epochs=3,
                               random_state=0) for lr in (1e-3, 3e-3)]
    assert fit_population(models, X, y, sample_weight=weights) == [None, None]
    for model in models:
        alone = NeuralClassifier(**model.get_params()).fit(X, y, sample_weight=weights)
        np.testing.assert_allclose(model.predict_proba(X_val), alone.predict_proba(X_val), atol=1e-5)
    unweighted = NeuralClassifier(**models[0].get_params()).fit(X, y)
    assert np.abs(unweighted.predict_proba(X_val) - models[0].predict_proba(X_val)).max() > 1e-3


def test_adaboost_boosts_a_neural_classifier(magic):
    X, y, X_val, y_val = magic
    # Arrays: AdaBoost hands its estimators arrays at fit but the table at predict.
    boosted = AdaBoostClassifier(NeuralClassifier(max_epochs=10, random_state=0), n_estimators=3,
                                 random_state=0).fit(X.to_numpy(), y)
    assert len(boosted.estimators_) >= 2  # a second round trained on reweighted rows
    assert boosted.score(X_val.to_numpy(), y_val) > 0.72  # magic: 65% are the commoner class


def test_cross_val_score_passes_the_weights_to_fit(magic):
    X, y, _, _ = magic
    weights = np.where(y == 1, 8.0, 1.0)  # the rarer class, much heavier
    model = NeuralClassifier(max_epochs=3, random_state=0)
    recall = dict(scoring="recall", cv=2)
    plain = cross_val_score(model, X, y, **recall)
    weighted = cross_val_score(model, X, y, params={"sample_weight": weights}, **recall)
    assert weighted.mean() > plain.mean() + 0.05  # heavier rows of class 1: more of them recalled


# --------------------------------------------------------------------------- the search


def test_a_weighted_search_weights_its_trials_and_shifts_the_predictions():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})
    # Overlapping classes, class 1 the minority: weighting it up moves every boundary its way.
    y = (X["a"] + rng.normal(scale=1.5, size=400) > 1.2).astype(int)
    weights = np.where(y == 1, 6.0, 1.0)
    settings = dict(budget=3, space={"max_epochs": 4}, random_state=0, baselines=False, ensemble=False,
                    population=2)
    plain = AutoNeuralClassifier(**settings).fit(X, y)
    weighted = AutoNeuralClassifier(**settings).fit(X, y, sample_weight=weights)
    assert weighted.predict(X).mean() > plain.predict(X).mean() + 0.1
    assert weighted.best_score_ != plain.best_score_


def test_a_weighted_cross_validated_search_with_a_bag_runs():
    rng = np.random.default_rng(2)
    X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    y = X["a"] * 2 + rng.normal(scale=0.3, size=200)
    weights = rng.uniform(0.0, 3.0, size=200)
    weights[:20] = 0.0
    # Baselines left out: LightGBM's OpenMP threads can take seconds per fit on a busy 2-core
    # machine; their weighting is tested below on a pipeline.
    search = AutoNeuralRegressor(budget=2, space={"max_epochs": 3}, cv=2, bagging=2, random_state=0,
                                 population=False, baselines=False).fit(X, y, sample_weight=weights)
    board = search.leaderboard_
    assert (board["state"] == "COMPLETE").any() and not (board["state"] == "FAIL").any()
    assert search.bag_ is not None and np.isfinite(search.bag_.oof_score)
    assert all(len(t.user_attrs["fold_scores"]) == 2 for t in search.study_.trials if t.state.name == "COMPLETE")


def test_the_splits_carry_each_rows_weight():
    frame = pd.DataFrame({"x": np.arange(50.0)})
    y = np.arange(50) % 2
    weights = np.arange(50.0) + 1  # a row's weight is its value + 1
    for split in make_splits(Table.of_frame(frame, weights=weights), y, y, 0, 3, 0.2):
        assert np.array_equal(split.w_train, split.X_train["x"].to_numpy() + 1)
        assert np.array_equal(split.w_val, split.X_val["x"].to_numpy() + 1)
        assert split.validation_data[2] is split.w_val


def test_baselines_fit_with_weights_through_their_pipeline():
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(size=200)})
    y = (X["a"] + rng.normal(size=200) > 0).astype(int)
    weights = np.where(y == 1, 10.0, 1.0)
    plain, used_plain = fit_weighted(make_pipeline(StandardScaler(), LogisticRegression()), X, y, None)
    weighted, used = fit_weighted(make_pipeline(StandardScaler(), LogisticRegression()), X, y, weights)
    assert used_plain and used
    assert weighted[-1].intercept_[0] > plain[-1].intercept_[0] + 0.5
    _, knn_used = fit_weighted(make_pipeline(KNeighborsClassifier()), X, y, weights)
    assert not knn_used


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("bad,message", [
    (lambda n: np.ones(n + 3), "sample_weight has"),
    (lambda n: np.ones((n, 2)), "sample_weight must be 1-dimensional"),
    (lambda n: np.r_[1.0, 1.0, -2.0, np.ones(n - 3)], "sample_weight row 3: -2 is negative"),
    (lambda n: np.r_[1.0, 1.0, np.nan, np.ones(n - 3)], "sample_weight row 3: nan is not a finite"),
    (lambda n: np.r_[1.0, 1.0, np.inf, np.ones(n - 3)], "sample_weight row 3: inf is not a finite"),
    (lambda n: np.zeros(n), "sample_weight is zero for every row"),
    (lambda n: ["heavy"] * n, "sample_weight must hold numbers"),
    (lambda n: np.r_[1.0, np.zeros(n - 1)], "sample_weight is positive for only 1 row"),
])
@pytest.mark.parametrize("make", [lambda: NeuralClassifier(max_epochs=1),
                                  lambda: AutoNeuralClassifier(budget=1, baselines=False)])
def test_bad_weights_are_named_errors(bad, message, make):
    X = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 3})
    y = np.arange(20) % 2
    estimator = make()
    with pytest.raises(DataError, match=message.replace("(", r"\(")):
        estimator.fit(X, y, sample_weight=bad(len(X)))
