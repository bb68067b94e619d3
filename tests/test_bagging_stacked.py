"""Bagging's members trained as one stack, each on its own rows (archtune.train.member_rows),
against the same bag trained one member after another (oracle: every member's weights and
history equal to 1e-8 in float64)."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from sklearn.metrics import get_scorer

import archtune.estimators
import archtune.fitting
from archtune import NeuralClassifier, NeuralRegressor
from archtune.ensemble.bagging import bag, make_folds
from tests.conftest import load_shared


def _assert_same_members(a, b, tol=1e-8):
    assert b.stacked and not a.stacked
    for ma, mb in zip(a.ensemble.members, b.ensemble.members):
        ea, eb = ma.model, mb.model
        assert list(ea.history_.columns) == list(eb.history_.columns)
        assert len(ea.history_) == len(eb.history_) and ea.best_epoch_ == eb.best_epoch_
        for column in ea.history_.columns:
            if column != "seconds":
                np.testing.assert_allclose(ea.history_[column], eb.history_[column], rtol=tol, atol=tol,
                                           err_msg=column)
        sa, sb = ea.module_.state_dict(), eb.module_.state_dict()
        assert sa.keys() == sb.keys()
        for name in sa:
            torch.testing.assert_close(sa[name], sb[name], rtol=tol, atol=tol, msg=name)
    np.testing.assert_allclose(a.oof, b.oof, rtol=1e-7, atol=1e-7)
    assert a.oof_score == pytest.approx(b.oof_score, abs=1e-9)


def _both(make, params, X, y, task, scorer, **kwargs):
    sequential = bag(make, params, X, y, 3, task, get_scorer(scorer), seed=5, stack=False, **kwargs)
    stacked = bag(make, params, X, y, 3, task, get_scorer(scorer), seed=5, **kwargs)
    return sequential, stacked


# Row counts chosen so that the members' training sets differ in size (301 rows in 3 folds:
# 200 or 201 training rows) and batch_size 64 leaves last batches of different sizes.
COMMON = dict(hidden_layers=2, units=24, max_epochs=6, batch_size=64, dropout=0.0, learning_rate=3e-3)


def test_stacked_classifier_members_equal_their_sequential_fits(float64):
    X, y = load_shared("magic.tsv.gz", n=301)
    a, b = _both(lambda p: NeuralClassifier(**{**COMMON, "weight_decay": 1e-3, **p}), {}, X, y.to_numpy(),
                 "classification", "accuracy")
    _assert_same_members(a, b)


def test_stacked_regressor_members_with_row_weights_equal_their_sequential_fits(float64):
    X, y = load_shared("197_cpu_act.tsv.gz", n=301)
    weights = np.random.default_rng(0).uniform(0.2, 3.0, len(y))
    a, b = _both(lambda p: NeuralRegressor(**{**COMMON, "lr_schedule": "cosine", "arch": "resnet", **p}), {},
                 X, y.to_numpy(), "regression", "r2", sample_weight=weights)
    _assert_same_members(a, b)


def test_stacked_members_with_categorical_embeddings_and_steps_that_differ(float64):
    """Adult's categories through embeddings; batch_size 100 over 200 and 201 rows gives the
    members 2 and 3 steps an epoch, so one member sits the last step out. (Columns whose every
    level is in each member's rows: a level missing from one member's rows gives it another
    encoding, and such a bag trains one member after another.)"""
    X, y = load_shared("adult.tsv.gz", n=301, seed=1)
    cats = ["workclass", "relationship", "sex"]
    X = X[cats + ["age", "hours-per-week"]].astype({c: "category" for c in cats})
    a, b = _both(lambda p: NeuralClassifier(**{**COMMON, "batch_size": 100, "optimizer": "momentum", "momentum": 0.9,
                                               **p}), {}, X, y.to_numpy(), "classification", "accuracy")
    _assert_same_members(a, b)


def test_stacked_members_with_periodic_embeddings_and_the_learning_rate_finder(float64):
    """learning_rate="auto": each member's rate is found on its own rows before the stack trains."""
    X, y = load_shared("magic.tsv.gz", n=301)
    params = {**COMMON, "learning_rate": "auto", "numeric_embedding": "periodic", "n_frequencies": 4,
              "d_embedding": 4}
    a, b = _both(lambda p: NeuralClassifier(**{**params, **p}), {}, X, y.to_numpy(), "classification", "accuracy")
    _assert_same_members(a, b)
    rates = [m.model.learning_rate_ for m in b.ensemble.members]
    assert rates == [m.model.learning_rate_ for m in a.ensemble.members]
    assert all(m.model.lr_finder_ is not None for m in b.ensemble.members)


def test_the_stacked_path_trains_one_stack_and_no_member_alone(monkeypatch):
    from archtune.train.population import PopulationTrainer

    calls = {"stack": 0, "alone": 0}
    fit, train = PopulationTrainer.fit, archtune.fitting.train

    def counted_fit(self, *args, **kwargs):
        calls["stack"] += kwargs.get("rows") is not None and len(self.configs) == 3
        return fit(self, *args, **kwargs)

    def counted_train(*args, **kwargs):
        calls["alone"] += 1
        return train(*args, **kwargs)

    monkeypatch.setattr(PopulationTrainer, "fit", counted_fit)
    monkeypatch.setattr(archtune.fitting, "train", counted_train)
    X, y = load_shared("magic.tsv.gz", n=200)
    bagged = bag(lambda p: NeuralClassifier(**{**COMMON, "max_epochs": 2, **p}), {}, X, y.to_numpy(), 3,
                 "classification", get_scorer("accuracy"))
    assert bagged.stacked and calls == {"stack": 1, "alone": 0}


def test_batch_norm_falls_back_to_one_member_after_another(float64):
    X, y = load_shared("magic.tsv.gz", n=301)
    make = lambda p: NeuralClassifier(**{**COMMON, "norm": "batch", **p})  # noqa: E731
    fallback = bag(make, {}, X, y.to_numpy(), 3, "classification", get_scorer("accuracy"), seed=5)
    sequential = bag(make, {}, X, y.to_numpy(), 3, "classification", get_scorer("accuracy"), seed=5, stack=False)
    assert not fallback.stacked
    for ma, mb in zip(sequential.ensemble.members, fallback.ensemble.members):
        for name, value in ma.model.module_.state_dict().items():
            torch.testing.assert_close(value, mb.model.module_.state_dict()[name], rtol=0, atol=0)
    assert fallback.oof_score == sequential.oof_score


def test_a_category_missing_from_one_fold_falls_back(float64):
    """A level seen in one fold only: the member that does not train on that fold encodes one
    category fewer, so the members' inputs differ and they train one after another."""
    X, y = load_shared("magic.tsv.gz", n=301)
    level = np.where(np.isin(np.arange(len(y)), make_folds(y.to_numpy(), 3, 5, stratify=True)[0]), "only", "other")
    X = X.assign(level=level.astype(object))  # strings: a categorical dtype would declare both levels
    make = lambda p: NeuralClassifier(**{**COMMON, **p})  # noqa: E731
    fallback = bag(make, {}, X, y.to_numpy(), 3, "classification", get_scorer("accuracy"), seed=5)
    sequential = bag(make, {}, X, y.to_numpy(), 3, "classification", get_scorer("accuracy"), seed=5, stack=False)
    assert not fallback.stacked
    np.testing.assert_array_equal(fallback.oof, sequential.oof)


def test_stacked_bag_with_dropout_scores_like_the_sequential_bag():
    """Dropout: the stack draws every member's masks from one shared stream, the members alone
    each from their own, so the trajectories differ; the bags must still be equally good
    (out-of-fold accuracy within 3 points, the spread of reseeded bags on these rows)."""
    X, y = load_shared("magic.tsv.gz", n=900)
    params = {**COMMON, "dropout": 0.2, "max_epochs": 8, "batch_size": 128}
    make = lambda p: NeuralClassifier(**{**params, **p})  # noqa: E731
    a, b = _both(make, {}, X, y.to_numpy(), "classification", "accuracy")
    assert b.stacked and not a.stacked
    assert abs(a.oof_score - b.oof_score) < 0.03
    # Dropout really acted: the stacked members' training losses are not the sequential ones.
    assert not np.allclose(a.ensemble.members[0].model.history_["train_loss"],
                           b.ensemble.members[0].model.history_["train_loss"])
