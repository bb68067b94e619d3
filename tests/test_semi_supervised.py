"""scikit-learn's semi-supervised convention in ``fit`` (label -1 / NaN target = unlabeled,
with ``pretrain_epochs > 0``), ``pretrain()`` then ``fit()``, and what the fitted model
carries: its history of both stages, its lineage, its bundle, its diagnosis.

The oracle of "the fine-tuning saw exactly the labelled rows" is a second fit computed the
other way: the same pretraining (same seed) handed over as ``init_from``, then a fit on the
labelled rows alone; the two networks must predict identically.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

import archtune
from archtune import NeuralClassifier, NeuralRegressor
from archtune.doctor import detectors
from archtune.doctor.evidence import Evidence
from archtune.errors import DataError, InvalidParameterError
from archtune.pretraining.run import pretrain as pretrain_rows
from archtune.pretraining.semi_supervised import take_rows, unlabeled_rows
from archtune.train import Callback

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = dict(hidden_layers=1, units=16, max_epochs=4, random_state=0)
PRE_EPOCHS = 2


def _table(n: int = 240, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(["x", "y", "z"], n)})
    y = (X["a"] + 0.5 * X["b"] > 0).astype(int).to_numpy()
    return X, y


@pytest.fixture(scope="module")
def semi() -> tuple[NeuralClassifier, pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """A classifier fitted on 240 rows of which 160 are labelled -1, with row weights."""
    X, y = _table()
    y_semi = y.copy()
    y_semi[::3] = y[::3]
    y_semi[np.arange(len(y)) % 3 != 0] = -1
    weights = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    model = NeuralClassifier(pretrain_epochs=PRE_EPOCHS, **SMALL).fit(X, y_semi, sample_weight=weights)
    return model, X, y_semi, weights, y


def test_minus_one_rows_are_pretrained_on_and_left_out_of_the_fine_tuning(semi):
    model, X, y_semi, weights, _ = semi
    assert model.classes_.tolist() == [0, 1]  # -1 is no class
    # The other way: the same pretraining on every row, then a fit on the labelled rows alone.
    pretrained = pretrain_rows(X, NeuralClassifier(**SMALL), pretrain_epochs=PRE_EPOCHS)
    labelled = y_semi != -1
    other = NeuralClassifier(init_from=pretrained, **SMALL).fit(X[labelled], y_semi[labelled],
                                                               sample_weight=weights[labelled])
    np.testing.assert_array_equal(model.predict_proba(X), other.predict_proba(X))
    # ... which differs from a fit that also sees the unlabeled rows with their true labels.
    _, _, _, _, y_true = semi
    everything = NeuralClassifier(init_from=pretrained, **SMALL).fit(X, y_true, sample_weight=weights)
    assert not np.array_equal(model.predict_proba(X), everything.predict_proba(X))


def test_the_history_shows_the_pretraining_then_the_fine_tuning_epochs_numbered_on(semi):
    model = semi[0]
    history = model.history_
    pretrain = history[history["phase"] == "pretrain"]
    assert len(pretrain) == PRE_EPOCHS and list(pretrain.index) == list(range(PRE_EPOCHS))
    assert history["epoch"].tolist() == list(range(1, len(history) + 1))
    assert set(history["phase"].iloc[PRE_EPOCHS:]) == {"fine_tune"}
    assert PRE_EPOCHS < model.best_epoch_ <= len(history)  # the best epoch is a supervised one, counted on
    assert np.isfinite(history["val_accuracy"].iloc[model.best_epoch_ - 1])


def test_the_lineage_records_the_pretraining_after_the_init_record(semi):
    model, X = semi[0], semi[1]
    assert [step["step"] for step in model.lineage_] == ["init_from", "pretrained"]
    assert model.lineage_[1]["rows"] == len(X) and model.lineage_[1]["epochs"] == PRE_EPOCHS
    assert model.lineage_[1]["pretext"] == "masked_features"
    assert f"copied {model.lineage_[0]['copied']} of {model.lineage_[0]['total']} tensors" in model.init_report_


def test_fit_does_not_keep_its_own_pretraining(semi):
    """A fit-time pretraining is part of that fit: refitting pretrains again from scratch, so
    ``fit`` stays idempotent."""
    assert not hasattr(semi[0], "pretrained_")


def test_the_fitted_model_saves_and_loads_with_its_lineage_and_history(semi, tmp_path):
    model, X = semi[0], semi[1]
    archtune.save(model, tmp_path / "m")
    loaded = archtune.load(tmp_path / "m")
    assert loaded.lineage_ == model.lineage_
    assert loaded.history_["phase"].tolist() == model.history_["phase"].tolist()
    assert loaded.best_epoch_ == model.best_epoch_
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_diagnose_reads_the_supervised_epochs_only(semi):
    model = semi[0]
    diagnosis = archtune.diagnose(model)
    assert {"overfitting", "underfitting", "val_below_train"} <= set(diagnosis.checked)
    # A pretext loss whose validation curve sits far below the task's: read as the task's
    # curve, the jump where the task changes would be "overfitting".
    odd = clone(model)
    for name, value in vars(model).items():
        if name.endswith("_"):
            setattr(odd, name, value)
    history = model.history_.copy()
    pretrain = history["phase"] == "pretrain"
    history.loc[pretrain, "val_loss"], history.loc[pretrain, "train_loss"] = 0.001, 50.0
    odd.history_ = history
    raw = Evidence(task="binary", history=history, constant_loss=0.69)
    assert [f.code for f in detectors.overfitting(raw)] == ["overfitting"]  # what the filter prevents
    supervised = clone(model)
    for name, value in vars(model).items():
        if name.endswith("_"):
            setattr(supervised, name, value)
    supervised.history_ = history[~pretrain].reset_index(drop=True)
    codes = sorted(f.code for f in archtune.diagnose(odd).findings)
    assert codes == sorted(f.code for f in archtune.diagnose(supervised).findings)
    assert "overfitting" not in codes


def test_minus_one_is_an_ordinary_label_without_pretraining():
    X, y = _table()
    y_pm = np.where(y == 1, 1, -1)
    model = NeuralClassifier(**SMALL).fit(X, y_pm)
    assert model.classes_.tolist() == [-1, 1]
    # The same network as for labels {0, 1}: -1 sorts first as 0 does.
    other = NeuralClassifier(**SMALL).fit(X, y)
    np.testing.assert_array_equal(model.predict_proba(X), other.predict_proba(X))
    np.testing.assert_array_equal(model.predict(X), np.where(other.predict(X) == 1, 1, -1))


def test_nan_regression_targets_are_unlabeled_only_with_pretraining():
    X, y = _table()
    target = X["a"].to_numpy() * 2.0 + X["b"].to_numpy()
    target[1::2] = np.nan
    with pytest.raises(DataError):
        NeuralRegressor(**SMALL).fit(X, target)
    model = NeuralRegressor(pretrain_epochs=PRE_EPOCHS, **SMALL).fit(X, target)
    pretrained = pretrain_rows(X, NeuralRegressor(**SMALL), pretrain_epochs=PRE_EPOCHS)
    labelled = ~np.isnan(target)
    other = NeuralRegressor(init_from=pretrained, **SMALL).fit(X[labelled], target[labelled])
    np.testing.assert_array_equal(model.predict(X), other.predict(X))
    assert model.lineage_[1]["rows"] == len(X)


def test_unlabeled_rows_follow_the_convention_exactly():
    mixed = np.array([0, -1, "a", -1.0, "-1", True, np.int64(-1)], dtype=object)
    assert unlabeled_rows(mixed, "classification").tolist() == [False, True, False, False, False, False, True]
    assert unlabeled_rows(pd.Series([3, -1, 2]), "classification").tolist() == [False, True, False]
    assert unlabeled_rows(np.array([-1.0, 1.0]), "classification").tolist() == [False, False]
    two = np.array([[1.0, np.nan], [np.nan, np.nan], [0.0, 1.0]])
    assert unlabeled_rows(two, "regression").tolist() == [False, True, False]  # every output missing
    frame = pd.DataFrame({"a": [1, 2, 3]})
    assert take_rows({"t": frame, "n": np.arange(3)}, np.array([2, 0]))["n"].tolist() == [2, 0]
    assert take_rows([10, 11, 12], np.array([1]))[0] == 11


def test_labelled_rows_of_one_class_are_a_named_error():
    X, y = _table(60)
    y_semi = np.where(np.arange(60) < 50, -1, 1)
    with pytest.raises(DataError, match="labelled rows.*1 class"):
        NeuralClassifier(pretrain_epochs=1, **SMALL).fit(X, y_semi)


class FirstWeights(Callback):
    """The network's weights when training begins (the first phase only)."""

    def __init__(self):
        self.state = None

    def on_train_begin(self, trainer):
        if self.state is None:
            self.state = {k: v.detach().clone().cpu() for k, v in trainer.module.state_dict().items()}


def test_pretrain_then_fit_starts_from_the_pretrained_body():
    X, y = _table()
    model = NeuralClassifier(freeze="body", freeze_epochs=2, **SMALL).pretrain(X.iloc[:200])
    pretrained = model.pretrained_
    assert len(pretrained.history_) == 20  # pretrain_epochs=0: 20 epochs (or fewer by early stopping)
    start = FirstWeights()
    model.fit(X.iloc[200:], y[200:], callbacks=[start])
    source = pretrained.module_.state_dict()
    copied = [k for k in source if not k.startswith("head.")]
    assert copied and all(np.array_equal(start.state[k].numpy(), source[k].cpu().numpy()) for k in copied)
    assert model.lineage_[0]["copied"] == len(copied)
    assert model.history_["phase"].tolist()[:20] == ["pretrain"] * 20
    assert model.pretrained_ is pretrained  # fit keeps it ...
    assert not hasattr(clone(model), "pretrained_")  # ... clone drops it


def test_one_source_only():
    X, y = _table(60)
    other = NeuralClassifier(**SMALL).fit(X, y)
    with pytest.raises(InvalidParameterError, match="init_from.*pretrain_epochs=1"):
        NeuralClassifier(init_from=other, pretrain_epochs=1, **SMALL).fit(X, y)
    with pytest.raises(InvalidParameterError, match="init_from.*pretrain"):
        NeuralClassifier(init_from=other, **SMALL).pretrain(X)
    model = NeuralClassifier(pretrain_epochs=1, **SMALL).pretrain(X)
    model.set_params(init_from=other)
    with pytest.raises(InvalidParameterError, match="pretrained_"):
        model.fit(X, y)


@pytest.mark.parametrize("setting, message", [({"pretrain_epochs": -1}, "pretrain_epochs"),
                                              ({"pretrain_epochs": 1.5}, "pretrain_epochs"),
                                              ({"pretext": "jigsaw"}, "pretext")])
def test_bad_pretraining_parameters_are_named(setting, message):
    X, y = _table(40)
    with pytest.raises(InvalidParameterError, match=message):
        NeuralClassifier(**setting).fit(X, y)


def test_pretraining_parameters_raise_no_unused_parameter_warning(recwarn):
    X, y = _table(60)
    NeuralClassifier(pretrain_epochs=1, pretext="masked_features", **SMALL).fit(X, y)
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)], [str(w.message) for w in recwarn]


def test_fit_population_pretrains_each_member_as_its_fit_does():
    from archtune.population import fit_population

    X, y = _table()
    y_semi = np.where(np.arange(len(y)) % 2 == 0, y, -1)
    members = [NeuralClassifier(pretrain_epochs=1, **SMALL), NeuralClassifier(pretrain_epochs=1, **{**SMALL,
                                                                                                  "units": 24})]
    assert fit_population(members, X, y_semi) == [None, None]
    for member in members:
        alone = clone(member).fit(X, y_semi)
        assert member.classes_.tolist() == [0, 1]
        np.testing.assert_array_equal(member.predict_proba(X), alone.predict_proba(X))


def test_x_and_y_of_different_lengths_are_a_named_error():
    X, y = _table(60)
    with pytest.raises(DataError, match="X has 60 rows but y has 59"):
        NeuralClassifier(pretrain_epochs=1, **SMALL).fit(X, np.where(y[:59] == 0, -1, y[:59]))
