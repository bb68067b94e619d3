"""Ensembles: greedy selection against hand-computed examples, the ensemble model, LightGBM
members in bundles that load without pickle, and the search's ensemble."""

from __future__ import annotations

import json
import shutil

import lightgbm
import numpy as np
import optuna
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archtune.auto import AutoNeuralClassifier, AutoNeuralRegressor
from archtune.ensemble import Ensemble, Member, load_ensemble, save_ensemble, select_weights
from archtune.ensemble.build import EnsembleLibrary
from archtune.ensemble.selection import combine, ensemble_loss
from archtune.errors import BundleError

from archtune.ensemble.gbm import LightGBMTableClassifier, LightGBMTableRegressor
from tests.conftest import load_shared


# --------------------------------------------------------------------------- selection


def test_selection_matches_a_hand_computed_example():
    # y = (1, -1). A = (1, 1) and B = (-1, -1) each have MSE 2; C = (0.9, 0.9) has
    # (0.01 + 3.61) / 2 = 1.81, so step 1 takes C. Step 2: C+A -> (0.95, 0.95), MSE 1.9025;
    # C+B -> (-0.05, -0.05), MSE 1.0025; C+C -> 1.81. It takes B: weights (0, 1/2, 1/2).
    y = np.array([1.0, -1.0])
    A, B, C = np.array([1.0, 1.0]), np.array([-1.0, -1.0]), np.array([0.9, 0.9])
    np.testing.assert_allclose(select_weights([A, B, C], y, "regression", n_steps=2), [0, 0.5, 0.5])
    # A tie (A and B alone) goes to the earlier candidate; then B halves the error.
    np.testing.assert_allclose(select_weights([A, B], y, "regression", n_steps=2), [0.5, 0.5])


def test_selection_of_probabilities_by_log_loss():
    # Two rows of classes (0, 1). P is sure and right on row 0, unsure on row 1; Q the
    # reverse. Alone each has log loss (-log 0.99 - log 0.5) / 2; together they average to
    # (0.745, 0.745) on the right classes, which is lower: one of each.
    y = np.array([0, 1])
    P = np.array([[0.99, 0.01], [0.5, 0.5]])
    Q = np.array([[0.5, 0.5], [0.01, 0.99]])
    weights = select_weights([P, Q], y, "classification", n_steps=2)
    np.testing.assert_allclose(weights, [0.5, 0.5])
    assert ensemble_loss(combine([P, Q], weights), y, "classification") == pytest.approx(-np.log(0.745))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 6), st.sampled_from(["classification", "regression"]))
def test_an_ensemble_is_never_worse_than_its_best_member_on_its_selection_rows(seed, n_models, task):
    rng = np.random.default_rng(seed)
    n = 30
    if task == "classification":
        y = rng.integers(0, 3, n)
        predictions = [rng.dirichlet(np.ones(3), n) for _ in range(n_models)]
    else:
        y = rng.normal(size=n)
        predictions = [y + rng.normal(scale=rng.uniform(0.1, 2), size=n) + rng.normal() for _ in range(n_models)]
    weights = select_weights(predictions, y, task)
    assert weights.sum() == pytest.approx(1.0) and np.all(weights >= 0)
    best_single = min(ensemble_loss(p, y, task) for p in predictions)
    assert ensemble_loss(combine(predictions, weights), y, task) <= best_single + 1e-12


# --------------------------------------------------------------------------- the ensemble model


class _Fixed:
    """A fitted 'model' that returns given probabilities for a table of row numbers."""

    def __init__(self, proba, classes):
        self.proba, self.classes_ = np.asarray(proba), np.asarray(classes)

    def predict_proba(self, X):
        return self.proba[np.asarray(X["row"], dtype=int)]


def test_ensemble_averages_probabilities_aligned_by_class():
    rows = pd.DataFrame({"row": [0, 1]})
    # The second member never saw class "c": its probabilities go to "a" and "b", "c" gets 0.
    first = Member("first", _Fixed([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]], ["a", "b", "c"]), "network", 0.5)
    second = Member("second", _Fixed([[0.9, 0.1], [0.2, 0.8]], ["a", "b"]), "baseline", 0.4)
    ensemble = Ensemble("classification", [first, second], np.array([0.75, 0.25]), np.array(["a", "b", "c"]))
    expected = 0.75 * np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]]) + 0.25 * np.array([[0.9, 0.1, 0], [0.2, 0.8, 0]])
    np.testing.assert_allclose(ensemble.predict_proba(rows), expected)
    assert list(ensemble.predict(rows)) == ["a", "a"]
    assert ensemble.summary() == "1 network and second"
    assert not ensemble.safe  # a scikit-learn baseline cannot be saved without pickle


def _table_with_categories(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "green", "blue"], n).astype(object)
    colour[rng.random(n) < 0.05] = None
    x = rng.normal(size=n)
    x[rng.random(n) < 0.05] = np.nan
    frame = pd.DataFrame({"x": x, "colour": colour, "z": rng.normal(size=n)})
    signal = np.nan_to_num(x) + (colour == "red") - 0.5 * frame["z"].to_numpy()
    return frame, signal


def test_lightgbm_member_round_trip_predicts_identically_and_refuses_a_tampered_file(tmp_path):
    X, signal = _table_with_categories()
    y = np.where(signal > 0.3, "yes", "no")
    kinds = {"x": "numeric", "colour": "categorical", "z": "numeric"}
    gbm = LightGBMTableClassifier(kinds=kinds, random_state=0).fit(X[:500], y[:500])
    assert gbm.encoding_.categorical_indices == [1]
    from archtune import NeuralClassifier

    net = NeuralClassifier(max_epochs=3, random_state=0).fit(X[:500], y[:500])
    ensemble = Ensemble("classification", [Member("network #0 (mlp)", net, "network", 0.8),
                                           Member("lightgbm", gbm, "lightgbm", 0.85)],
                        np.array([0.4, 0.6]), np.array(["no", "yes"]), 0.9, list(X.columns))
    unseen = X[500:].copy()
    unseen.loc[unseen.index[0], "colour"] = "purple"  # a level never seen in training
    before = ensemble.predict_proba(unseen)
    save_ensemble(ensemble, tmp_path / "ens", metadata={"target": "y"})
    files = sorted(p.name for p in (tmp_path / "ens").iterdir())
    assert files[0] == "archtune.json" and files[1].startswith("lightgbm-") and files[2] == "member-0"
    assert not any(p.suffix in (".pkl", ".pickle", ".joblib") for p in (tmp_path / "ens").rglob("*"))
    loaded = load_ensemble(tmp_path / "ens")
    np.testing.assert_array_equal(loaded.predict_proba(unseen), before)
    assert loaded.bundle_metadata_ == {"target": "y"} and loaded.describe()["weight"].tolist() == [0.4, 0.6]
    # archtune.load reads an ensemble bundle too.
    import archtune

    np.testing.assert_array_equal(archtune.load(tmp_path / "ens").predict(unseen), ensemble.predict(unseen))

    tampered = tmp_path / "tampered"
    shutil.copytree(tmp_path / "ens", tampered)
    trees = next(tampered.glob("lightgbm-*.txt"))
    trees.write_text(trees.read_text().replace("leaf_value=", "leaf_value=1", 1))
    with pytest.raises(BundleError, match=f"{trees.name}.*checksum"):
        load_ensemble(tampered)


def test_lightgbm_regressor_member_matches_lightgbm_on_the_encoded_table():
    X, signal = _table_with_categories(seed=1)
    kinds = {"x": "numeric", "colour": "categorical", "z": "numeric"}
    gbm = LightGBMTableRegressor(kinds=kinds, random_state=0).fit(X, signal)
    matrix = gbm.encoding_.transform(X)
    # The same model fitted directly on the encoded matrix (the oracle) predicts the same.
    direct = lightgbm.LGBMRegressor(random_state=0, verbose=-1).fit(matrix, signal, categorical_feature=[1])
    np.testing.assert_allclose(gbm.predict(X), direct.predict(matrix))


def test_saving_an_ensemble_with_a_pickle_only_member_is_refused(tmp_path):
    rows = pd.DataFrame({"row": [0]})
    member = Member("random_forest", _Fixed([[0.5, 0.5]], [0, 1]), "baseline", 0.5)
    ensemble = Ensemble("classification", [member], np.array([1.0]), np.array([0, 1]))
    assert ensemble.predict(rows).shape == (1,)
    with pytest.raises(BundleError, match="random_forest.*pickle"):
        save_ensemble(ensemble, tmp_path / "ens")
    assert not (tmp_path / "ens").exists() or not any((tmp_path / "ens").iterdir())


class Values:
    """A fitted regression 'model' that returns given values for a table of row numbers."""

    def __init__(self, values):
        self.values = values

    def predict(self, X):
        return self.values[np.asarray(X["row"], dtype=int)]


def test_library_guard_keeps_the_best_single_model_when_the_ensemble_does_not_hold_up():
    # One good model and one that only adds noise: the selection gives the noise no weight
    # (or the guard refuses it); the choice never predicts worse than the good model.
    rng = np.random.default_rng(0)
    n = 400
    y = rng.normal(size=n)
    X = pd.DataFrame({"row": np.arange(n)})

    good = Member("good", Values(y + rng.normal(scale=0.3, size=n)), "network", 0.9)
    noise = Member("noise", Values(rng.normal(size=n) * 3), "network", -8.0)
    from sklearn.metrics import get_scorer

    library = EnsembleLibrary("regression", [good, noise], X, y, get_scorer("r2"), None, ["row"])
    choice = library.choose()
    assert choice.best_single == "good"
    assert choice.ensemble.describe()["member"].tolist() == ["good"] or not choice.used
    assert choice.ensemble.val_score >= choice.best_single_score - 1e-12


def test_a_baseline_better_than_every_network_predicts_alone():
    rng = np.random.default_rng(1)
    n = 400
    y = rng.normal(size=n)
    X = pd.DataFrame({"row": np.arange(n)})

    network = Member("network #0 (mlp)", Values(y + rng.normal(scale=2.0, size=n)), "network", 0.1, 0)
    boosted = Member("lightgbm", Values(y + rng.normal(scale=0.2, size=n)), "lightgbm", 0.9)
    from sklearn.metrics import get_scorer

    choice = EnsembleLibrary("regression", [network, boosted], X, y, get_scorer("r2"), None, ["row"]).choose()
    assert choice.best_single == "lightgbm" and choice.final is not None
    if not choice.used:  # the noisy network earns no weight worth keeping: LightGBM predicts alone
        assert [m.name for m in choice.final.members] == ["lightgbm"] and choice.final.weights.tolist() == [1.0]
        np.testing.assert_array_equal(choice.final.predict(X), boosted.model.predict(X))
    else:  # or the ensemble holds up, and is at least as good as LightGBM alone on these rows
        assert choice.ensemble.val_score >= choice.best_single_score - 1e-12


def test_refit_members_keeps_the_weights_and_refits_lightgbm_on_all_rows():
    from archtune.ensemble.build import refit_members

    X, signal = _table_with_categories(seed=2)
    kinds = {"x": "numeric", "colour": "categorical", "z": "numeric"}
    part = LightGBMTableRegressor(kinds=kinds, random_state=0).fit(X[:300], signal[:300])
    network_old, network_new = object(), LightGBMTableRegressor(kinds=kinds, random_state=1).fit(X, signal)
    ensemble = Ensemble("regression", [Member("lightgbm", part, "lightgbm", 0.5),
                                       Member("network #3 (mlp)", network_old, "network", 0.4, 3)],
                        np.array([0.7, 0.3]), None, 0.6, list(X.columns))
    refitted = refit_members(ensemble, X, signal, {3: network_new})
    assert refitted.weights.tolist() == pytest.approx([0.7, 0.3])
    oracle = LightGBMTableRegressor(kinds=kinds, random_state=0).fit(X, signal)
    np.testing.assert_allclose(refitted.members[0].model.predict(X), oracle.predict(X))
    assert refitted.members[1].model is network_new and ensemble.members[1].model is network_old


# --------------------------------------------------------------------------- the search's ensemble


FAST = {"max_epochs": 4, "hidden_layers": 2, "units": 64}


def test_search_selects_an_ensemble_of_networks_and_baselines():
    X, y = load_shared("magic.tsv.gz", n=1600)
    model = AutoNeuralClassifier(budget=3, space=FAST, pruner=None, random_state=0).fit(X[:1200], y[:1200])
    board = model.leaderboard_
    row = board[board["state"] == "ENSEMBLE"]
    assert len(row) == 1
    record = model.study_.user_attrs["ensemble"]
    choice = model.ensemble_candidates_.choose()
    names = {m.name for m in model.ensemble_candidates_.members}
    assert {"lightgbm", "random_forest"} <= names and sum(n.startswith("network #") for n in names) == 3
    assert record["used"] == choice.used and (model.ensemble_ is not None) == (choice.final is not None)
    # Prediction follows the choice: the ensemble when used, a better baseline alone, or the
    # refitted network.
    final = model.ensemble_ if choice.final is not None else model.best_estimator_
    if choice.used:
        assert [m.name for m in model.ensemble_.members] == [m.name for m in choice.ensemble.members]
    np.testing.assert_array_equal(model.predict(X[1200:]), final.predict(X[1200:]))
    np.testing.assert_allclose(model.predict_proba(X[1200:]), final.predict_proba(X[1200:]))
    # The weights of the record are the ensemble's.
    assert [m["weight"] for m in record["members"]] == pytest.approx(choice.ensemble.weights.tolist())

    alone = AutoNeuralClassifier(budget=3, space=FAST, random_state=0, ensemble=False, baselines=False).fit(
        X[:1200], y[:1200])
    assert alone.ensemble_ is None and "ENSEMBLE" not in set(alone.leaderboard_["state"])


def test_a_search_killed_during_ensemble_selection_resumes_without_losing_trials(tmp_path, monkeypatch):
    X, y = load_shared("197_cpu_act.tsv.gz", n=900)
    storage = f"sqlite:///{tmp_path / 'study.db'}"

    def killed(self, safe_only=False):
        raise KeyboardInterrupt  # what Ctrl-C (or a kill) during the selection looks like

    monkeypatch.setattr(EnsembleLibrary, "choose", killed)
    with pytest.raises(KeyboardInterrupt):
        AutoNeuralRegressor(budget=3, space=FAST, storage=storage, random_state=0).fit(X, y)
    study = optuna.load_study(study_name="archtune", storage=storage)
    finished = [t.number for t in study.trials if t.state.is_finished()]
    assert len(finished) == 3
    monkeypatch.undo()
    model = AutoNeuralRegressor(budget=3, space=FAST, storage=storage, random_state=0).fit(X, y)
    assert [t.number for t in model.study_.trials if t.state.is_finished()] == finished
    assert model.score(X, y) > 0.5


def test_cli_tune_saves_and_predicts_with_the_ensemble(tmp_path):
    from click.testing import CliRunner

    from archtune.cli import cli

    X, y = load_shared("magic.tsv.gz", n=1500)
    data = tmp_path / "magic.csv"
    X.assign(target=y).to_csv(data, index=False)
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["tune", str(data), "--target", "target", "--trials", "3", "-q", "--out", str(out),
                                      "--set", "max_epochs=4", "--set", "units=64", "--set", "hidden_layers=2"])
    assert result.exit_code == 0, result.output
    board = pd.read_csv(out / "leaderboard.csv")
    note = board.loc[board["state"] == "ENSEMBLE", "note"].iloc[0]
    # Saved beside the network when something else predicts: the ensemble, or a baseline alone.
    used = note.split(";")[0] == "used" or "the best single model" in note
    assert "ensemble (" in result.output
    saved = (out / "ensemble" / "archtune.json").is_file()
    # What predicts is saved, unless it holds a pickle-only baseline and no choice among
    # networks and LightGBM beats the best network: the run says so.
    assert saved == used or (used and "cannot be saved without pickle" in result.output), result.output
    meta = json.loads((out / "archtune.json").read_text())
    assert ("ensemble" in meta["metadata"]) == saved
    used = saved
    predicted = CliRunner().invoke(cli, ["predict", str(out), str(data)])
    assert predicted.exit_code == 0, predicted.output
    import archtune

    final = archtune.load(out / "ensemble") if used else archtune.load(out)
    lines = predicted.output.strip().splitlines()
    assert lines[0].startswith("prediction")
    assert [str(v) for v in final.predict(X)] == [line.split(",")[0] for line in lines[1:]]
    info = CliRunner().invoke(cli, ["info", str(out)])
    assert info.exit_code == 0 and (("ensemble:" in info.output) == used), info.output
    # --no-ensemble on a new run: no ensemble row and no ensemble directory.
    out2 = tmp_path / "run2"
    result = CliRunner().invoke(cli, ["tune", str(data), "--target", "target", "--trials", "2", "-q", "--out",
                                      str(out2), "--no-ensemble", "--set", "max_epochs=3"])
    assert result.exit_code == 0, result.output
    assert not (out2 / "ensemble").exists() and "ENSEMBLE" not in set(pd.read_csv(out2 / "leaderboard.csv")["state"])


# --------------------------------------------------------------------------- bagging


def test_bagging_out_of_fold_predictions_cover_every_row_once():
    from sklearn.metrics import get_scorer

    from archtune import NeuralClassifier
    from archtune.ensemble.bagging import bag

    X, y = load_shared("magic.tsv.gz", n=600)
    y = y.to_numpy()
    bagged = bag(lambda p: NeuralClassifier(**{"max_epochs": 3, "hidden_layers": 1, "units": 32, **p}), {}, X, y, 3,
                 "classification", get_scorer("accuracy"), seed=0)
    positions = np.concatenate(bagged.folds)
    assert sorted(positions.tolist()) == list(range(len(y)))  # every row in exactly one fold
    members = [m.model for m in bagged.ensemble.members]
    for member, held_out in zip(members, bagged.folds):
        # Each row's out-of-fold prediction is the member's that did not train on it ...
        np.testing.assert_allclose(bagged.oof[held_out], member.predict_proba(X.iloc[held_out]), atol=1e-6)
        # ... and that member trained on the other rows (its validation rows are the fold).
        assert len(member.history_) >= 1
    assert bagged.oof_score == pytest.approx(np.mean(member.classes_[bagged.oof.argmax(1)] == y))
    # The bag predicts the members' mean.
    mean = np.mean([m.predict_proba(X[:50]) for m in members], axis=0)
    np.testing.assert_allclose(bagged.ensemble.predict_proba(X[:50]), mean, atol=1e-6)


def test_search_with_bagging_predicts_with_the_bag_or_the_ensemble(tmp_path):
    X, y = load_shared("197_cpu_act.tsv.gz", n=900)
    model = AutoNeuralRegressor(budget=2, space=FAST, pruner=None, bagging=2, random_state=0).fit(X[:700], y[:700])
    assert model.bag_ is not None and len(model.bag_.ensemble.members) == 2
    board = model.leaderboard_
    assert board.loc[board["state"] == "BAG", "val_score"].iloc[0] == pytest.approx(model.bag_.oof_score)
    names = [m.name for m in model.ensemble_candidates_.members]
    assert names[0].startswith("bag of 2 (network #")
    final = model.ensemble_ if model.ensemble_ is not None else model.bag_.ensemble
    np.testing.assert_allclose(model.predict(X[700:]), final.predict(X[700:]))
    assert model.score(X[700:], y[700:]) > 0.5
    with pytest.raises(Exception, match="bagging"):
        AutoNeuralRegressor(budget=2, bagging=1).fit(X[:100], y[:100])
