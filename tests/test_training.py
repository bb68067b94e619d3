"""Training behaviour: regularisers, early stopping, divergence, schedules, optimisers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from archtune import NeuralClassifier, NeuralRegressor, TrainingDivergedError
from archtune.config import OPTIMIZERS, SCHEDULES, TrainConfig
from archtune.recipes import CLASSIC
from archtune.train import Callback, Trainer
from archtune.train.optim import LRSchedule


def _first_layers(model) -> np.ndarray:
    return np.concatenate([m.weight.detach().numpy().ravel() for m in model.module_.hidden_linears()])


def test_l1_drives_many_more_weights_to_zero(house_small):
    X, y = house_small
    common = dict(hidden_sizes=(64, 64), dropout=0.0, weight_decay=0.0, max_epochs=40, random_state=0)
    plain = _first_layers(NeuralRegressor(**common).fit(X, y))
    sparse = _first_layers(NeuralRegressor(l1=1e-3, **common).fit(X, y))
    near_zero_plain = np.mean(np.abs(plain) < 1e-3)
    near_zero_l1 = np.mean(np.abs(sparse) < 1e-3)
    assert near_zero_l1 > 0.08
    assert near_zero_l1 > 5 * near_zero_plain


def test_l2_shrinks_the_weights(house_small):
    X, y = house_small
    common = dict(hidden_sizes=(64, 64), dropout=0.0, weight_decay=0.0, max_epochs=20, random_state=0)
    plain = _first_layers(NeuralRegressor(**common).fit(X, y))
    shrunk = _first_layers(NeuralRegressor(l2=1e-2, **common).fit(X, y))
    assert np.linalg.norm(shrunk) < 0.7 * np.linalg.norm(plain)


class _RowNormWatcher(Callback):
    def __init__(self) -> None:
        self.worst = 0.0
        self.steps = 0

    def on_batch_end(self, trainer, step):
        self.steps += 1
        for lin in trainer.module.hidden_linears():
            self.worst = max(self.worst, float(lin.weight.detach().norm(dim=1).max()))


def test_max_norm_holds_after_every_step(magic_small):
    X, y = magic_small
    model = NeuralClassifier(max_norm=0.5, max_epochs=1, random_state=0).fit(X, y)
    # Re-train through the Trainer directly to watch every step.
    from archtune.train.losses import make_loss

    module = model.module_.train()
    watcher = _RowNormWatcher()
    config = TrainConfig(max_norm=0.5, max_epochs=3, batch_size=64, learning_rate=1e-2, loss="cross_entropy")
    Xt = torch.from_numpy(model.preprocessor_.transform(X))
    yt = torch.from_numpy((y.to_numpy() == model.classes_[1]).astype("float32")).reshape(-1, 1)
    Trainer(module, make_loss("binary", "cross_entropy"), config, callbacks=[watcher]).fit(Xt, yt)
    assert watcher.steps == 3 * math.ceil(len(X) / 64)
    assert watcher.worst <= 0.5 + 1e-5
    # Without the constraint the same training exceeds the bound: the check can fail.
    free = NeuralClassifier(max_epochs=3, learning_rate=1e-2, random_state=0).fit(X, y)
    assert max(float(l.weight.detach().norm(dim=1).max()) for l in free.module_.hidden_linears()) > 0.5


def test_early_stopping_stops_on_noise_and_restores_the_best_epoch(magic_small):
    X, _ = magic_small
    rng = np.random.default_rng(0)
    noise = rng.normal(size=len(X))  # nothing to learn: validation loss soon rises
    X_tr, X_va, y_tr, y_va = X[:1500], X[1500:], noise[:1500], noise[1500:]
    model = NeuralRegressor(max_epochs=300, patience=5, lr_schedule="constant", random_state=0)
    model.fit(X_tr, y_tr, validation_data=(X_va, y_va))
    history = model.history_
    assert len(history) < 300
    assert model.best_epoch_ == int(history["val_loss"].idxmin()) + 1
    assert len(history) == model.best_epoch_ + 5
    # The restored weights are the best epoch's: recompute its validation loss.
    standardised = (model.predict(X_va) - y_va) / model.target_scale_[0]
    assert math.isclose(float(np.mean(standardised**2)), history["val_loss"].min(), rel_tol=1e-4)


def test_without_early_stopping_all_epochs_run(magic_small):
    X, y = magic_small
    model = NeuralClassifier(early_stopping=False, max_epochs=7, random_state=0).fit(X, y)
    assert len(model.history_) == 7 and model.best_epoch_ == 7
    assert "val_loss" not in model.history_


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_huge_learning_rate_is_stopped_as_divergence(magic_small, optimizer):
    X, y = magic_small
    with pytest.raises(TrainingDivergedError, match=r"diverged at epoch 1: .*lower learning_rate \(now 1000\)"):
        NeuralClassifier(learning_rate=1e3, optimizer=optimizer, max_epochs=20, random_state=0).fit(X, y)


def test_same_seed_same_model_other_seed_other_model(magic_small):
    X, y = magic_small
    a = NeuralClassifier(max_epochs=3, random_state=7).fit(X, y).predict_proba(X)
    b = NeuralClassifier(max_epochs=3, random_state=7).fit(X, y).predict_proba(X)
    c = NeuralClassifier(max_epochs=3, random_state=8).fit(X, y).predict_proba(X)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_learns(magic_small, optimizer):
    X, y = magic_small
    lr = 1e-1 if optimizer in ("sgd", "adagrad") else 1e-2 if optimizer in ("momentum", "nesterov") else 1e-3
    model = NeuralClassifier(**{**CLASSIC, "optimizer": optimizer, "learning_rate": lr, "max_epochs": 8,
                                "early_stopping": False}, random_state=0).fit(X, y)
    losses = model.history_["train_loss"]
    assert losses.iloc[-1] < 0.8 * losses.iloc[0]
    assert model.score(X, y) > 0.75


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_every_schedule_trains(magic_small, schedule):
    X, y = magic_small
    model = NeuralClassifier(lr_schedule=schedule, max_epochs=6, early_stopping=False, random_state=0).fit(X, y)
    assert model.score(X, y) > 0.75
    assert model.history_["lr"].notna().all()


def test_schedule_shapes():
    steps, epochs = 10, 10
    total = steps * epochs
    cos = LRSchedule("cosine", steps, epochs, warmup_epochs=2)
    assert [cos.factor(s) for s in range(3)] == pytest.approx([1 / 21, 2 / 21, 3 / 21])  # linear warm-up
    assert cos.factor(20) == pytest.approx(1.0)
    assert cos.factor(total - 1) < 0.01
    step = LRSchedule("step", steps, epochs, warmup_epochs=0)
    assert step.factor(10) == 1.0 and step.factor(50) == pytest.approx(0.1) and step.factor(80) == pytest.approx(0.01)
    exp = LRSchedule("exponential", steps, epochs, warmup_epochs=0)
    assert exp.factor(0) == 1.0 and exp.factor(total) == pytest.approx(0.01)
    cycle = LRSchedule("one_cycle", steps, epochs, warmup_epochs=3)
    assert cycle.factor(0) == pytest.approx(1 / 25) and cycle.factor(30) == pytest.approx(1.0)
    assert cycle.factor(total) < 1e-4
    plateau = LRSchedule("plateau", steps, epochs, warmup_epochs=0, plateau_patience=2)
    for loss in [1.0, 0.9, 0.95, 0.95]:
        plateau.epoch_end(loss)
    assert plateau.factor(50) == 0.5


def test_warmup_is_applied_in_training(magic_small):
    X, y = magic_small
    model = NeuralClassifier(**{**CLASSIC, "warmup_epochs": 3, "lr_schedule": "constant", "max_epochs": 5,
                                "early_stopping": False, "batch_size": 200}, random_state=0).fit(X, y)
    lrs = model.history_["lr"].tolist()
    assert lrs[0] < lrs[1] < lrs[2] <= lrs[3] == pytest.approx(1e-3)


class _StepCounter(Callback):
    def __init__(self):
        self.steps = 0

    def on_batch_end(self, trainer, step):
        self.steps += 1


@pytest.mark.parametrize("batch_size, steps", [("full", 1), (100, 10), (1, 1000)])
def test_batch_size_options(batch_size, steps):
    from archtune.config import resolve_batch_size
    from archtune.train.losses import make_loss

    rng = np.random.default_rng(0)
    X = torch.from_numpy(rng.normal(size=(1000, 4)).astype("float32"))
    y = X.sum(dim=1, keepdim=True)
    counter = _StepCounter()
    config = TrainConfig(batch_size=resolve_batch_size(batch_size, 1000), max_epochs=1, optimizer="sgd",
                         learning_rate=1e-3)
    net = torch.nn.Sequential(torch.nn.Linear(4, 1))
    Trainer(net, make_loss("regression", "mse"), config, callbacks=[counter]).fit(X, y)
    assert counter.steps == steps


def test_batch_size_auto_scales_with_data():
    from archtune.config import resolve_batch_size

    assert resolve_batch_size("auto", 300) == 32
    assert resolve_batch_size("auto", 15_000) == 256
    assert resolve_batch_size("auto", 1_000_000) == 512


def test_balanced_class_weight_raises_minority_recall(magic_small):
    X, y = magic_small
    minority = y.value_counts().idxmin()
    keep = (y != minority) | (np.arange(len(y)) % 5 == 0)  # make the minority class rarer
    X, y = X[keep], y[keep]
    recall = {}
    for cw in (None, "balanced"):
        pred = NeuralClassifier(class_weight=cw, max_epochs=15, random_state=0).fit(X, y).predict(X)
        recall[cw] = np.mean(pred[y.to_numpy() == minority] == minority)
    assert recall["balanced"] > recall[None] + 0.05


def test_labels_of_any_type_and_multiclass(magic_small):
    X, y = magic_small
    for labels in (["gamma", "hadron"], [True, False], [10, -3]):
        mapped = y.map(dict(zip(sorted(y.unique()), labels)))
        model = NeuralClassifier(max_epochs=3, random_state=0).fit(X, mapped)
        assert set(model.predict(X[:50])) <= set(labels)
        assert model.predict_proba(X[:50]).shape == (50, 2)
    three = pd.cut(X["FLength"], 3, labels=["short", "mid", "long"]).astype(str)
    model = NeuralClassifier(max_epochs=5, random_state=0).fit(X.drop(columns="FLength"), three)
    proba = model.predict_proba(X.drop(columns="FLength"))
    assert proba.shape == (len(X), 3) and np.allclose(proba.sum(axis=1), 1)
    assert model.module_.head.out_features == 3


def test_multi_output_regression(house_small):
    X, y = house_small
    Y = np.column_stack([np.log(y + 1), X["P1"]])
    model = NeuralRegressor(max_epochs=10, random_state=0).fit(X.drop(columns="P1"), Y)
    pred = model.predict(X.drop(columns="P1"))
    assert pred.shape == (len(X), 2)
    assert model.score(X.drop(columns="P1"), Y) > 0.3


@pytest.mark.parametrize("loss", ["mse", "mae", "huber"])
def test_regression_losses(house_small, loss):
    X, y = house_small
    model = NeuralRegressor(loss=loss, max_epochs=10, random_state=0).fit(X, np.log(y + 1))
    assert model.score(X, np.log(y + 1)) > 0.3


@pytest.mark.parametrize("arch", ["mlp", "resnet"])
@pytest.mark.parametrize("norm", [None, "batch", "layer"])
def test_architectures_and_norms_learn(magic_small, arch, norm):
    X, y = magic_small
    model = NeuralClassifier(arch=arch, norm=norm, hidden_layers=3, shape="funnel", max_epochs=5,
                             random_state=0).fit(X, y)
    assert model.score(X, y) > 0.75


def test_hidden_sizes_and_shapes():
    from archtune.config import resolve_hidden_sizes

    assert resolve_hidden_sizes(3, 256, "constant", None) == (256, 256, 256)
    assert resolve_hidden_sizes(3, 256, "funnel", None) == (256, 128, 64)
    assert resolve_hidden_sizes(4, 256, "pyramid", None) == (256, 192, 128, 64)
    assert resolve_hidden_sizes(3, 256, "funnel", (5, 7)) == (5, 7)


def test_categorical_and_missing_values_train(magic_small):
    X, y = magic_small
    X = X.copy()
    rng = np.random.default_rng(0)
    X["band"] = pd.qcut(X["FAlpha"], 4, labels=["a", "b", "c", "d"]).astype(object)
    X["flag"] = X["FSize"] > X["FSize"].median()
    X.loc[rng.random(len(X)) < 0.1, "FLength"] = np.nan
    X.loc[rng.random(len(X)) < 0.1, "band"] = None
    model = NeuralClassifier(**{**CLASSIC, "max_epochs": 5}, random_state=0).fit(X, y)
    assert len(model.module_.embeddings) == 2
    assert "FLength" in model.preprocessor_.indicators_
    assert model.score(X, y) > 0.75
    onehot = NeuralClassifier(**{**CLASSIC, "categorical": "onehot", "max_epochs": 5}, random_state=0).fit(X, y)
    assert len(onehot.module_.embeddings) == 0 and onehot.score(X, y) > 0.75


# --------------------------------------------------------------------------- divergence (issue 7)


class _Poison(Callback):
    """Sets the first layer's weights to ``value`` after batch ``step`` (0-based, counted over
    the whole run), as a blow-up would; counts the batches trained."""

    def __init__(self, step: int, value: float = math.nan):
        self.step, self.value, self.batches = step, value, 0

    def on_batch_end(self, trainer, step):
        self.batches += 1
        if step == self.step:
            with torch.no_grad():
                next(trainer.module.parameters()).fill_(self.value)


def _finite_file(path) -> bool:
    from safetensors.torch import load_file

    return all(bool(torch.isfinite(t).all()) for t in load_file(path).values())


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_a_non_finite_loss_mid_epoch_stops_at_that_epochs_end_and_keeps_the_best_checkpoint(
        house_small, tmp_path, value):
    from archtune.train import Checkpoint

    X, y = house_small
    X, y = X.iloc[:200], np.log1p(y.iloc[:200])
    poison = _Poison(step=4 * 2 + 1, value=value)  # 4 batches an epoch: the 2nd batch of epoch 3
    path = tmp_path / "best.safetensors"
    checkpoint = Checkpoint(path, monitor="train_loss")
    model = NeuralRegressor(batch_size=50, early_stopping=False, max_epochs=20, random_state=0)
    with pytest.raises(TrainingDivergedError, match="diverged at epoch 3: train_loss became nan"):
        model.fit(X, y, callbacks=[poison, checkpoint])
    assert poison.batches == 3 * 4  # the poisoned epoch ends, and nothing after it runs
    assert math.isfinite(checkpoint.best) and _finite_file(path)


def test_checkpoint_never_writes_non_finite_weights_behind_a_finite_loss(house_small, tmp_path):
    """The epoch's loss averages its batches, each measured before its step: a last step that
    blows up leaves a finite loss and non-finite weights. Those must never become the best."""
    from safetensors.torch import load_file, save_file

    from archtune.train import Checkpoint

    X, y = house_small
    X, y = X.iloc[:200], np.log1p(y.iloc[:200])
    path = tmp_path / "best.safetensors"
    save_file({"earlier": torch.ones(3)}, path)  # a checkpoint from an earlier run, to be kept
    poison = _Poison(step=3)  # the last batch of epoch 1
    checkpoint = Checkpoint(path, monitor="train_loss")
    model = NeuralRegressor(batch_size=50, early_stopping=False, max_epochs=5, random_state=0)
    with pytest.raises(TrainingDivergedError, match="diverged at epoch 2"):
        model.fit(X, y, callbacks=[poison, checkpoint])
    assert poison.batches == 2 * 4
    assert checkpoint.best == math.inf  # epoch 1's finite loss came with NaN weights: not a best
    assert list(load_file(path)) == ["earlier"]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_diverging_regressor_stops_in_its_first_epoch_without_a_non_finite_checkpoint(
        house_small, tmp_path, optimizer):
    from archtune.train import Checkpoint

    X, y = house_small
    counter = _Poison(step=-1)
    path = tmp_path / "best.safetensors"
    model = NeuralRegressor(optimizer=optimizer, learning_rate=1e6, batch_size=100, max_epochs=50, random_state=0)
    with pytest.raises(TrainingDivergedError, match="diverged at epoch 1: "):
        model.fit(X.iloc[:1000], np.log1p(y.iloc[:1000]), callbacks=[counter, Checkpoint(path)])
    assert counter.batches <= 10  # at most one epoch of 800 training rows in batches of 100
    assert not path.exists() or _finite_file(path)
