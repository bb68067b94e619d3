"""Ensembles: greedy selection against hand-computed examples, the ensemble model, LightGBM and
scikit-learn members in bundles that load without pickle (skops with an allowlist), several
regression outputs, bagging, and the search's ensemble."""

from __future__ import annotations

import collections
import hashlib
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
from archtune.ensemble import Member, load_ensemble, make_ensemble, save_ensemble, select_weights
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
    ensemble = make_ensemble("classification", [first, second], np.array([0.75, 0.25]), np.array(["a", "b", "c"]))
    expected = 0.75 * np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]]) + 0.25 * np.array([[0.9, 0.1, 0], [0.2, 0.8, 0]])
    np.testing.assert_allclose(ensemble.predict_proba(rows), expected)
    assert list(ensemble.predict(rows)) == ["a", "a"]
    assert ensemble.summary() == "1 network and second"


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
    ensemble = make_ensemble("classification", [Member("network #0 (mlp)", net, "network", 0.8),
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


def _magic_with_notes(n: int) -> tuple[pd.DataFrame, np.ndarray, dict[str, str]]:
    """Rows of MAGIC with a categorical column and a short text column made from their own
    features (so that every baseline kind, TF-IDF included, has something to read)."""
    X, y = load_shared("magic.tsv.gz", n=n)
    length = pd.qcut(X["FLength"], 4, labels=["short", "medium", "long", "huge"]).astype(str)
    width = pd.qcut(X["FWidth"], 3, labels=["thin", "wide", "broad"]).astype(str)
    X = X.assign(shape=np.where(X["FAsym"] > 0, "right", "left").astype(object),
                 note=length + " and " + width + " shower")
    kinds = {**{c: "numeric" for c in X.columns}, "shape": "categorical", "note": "text"}
    return X, y.to_numpy(), kinds


def _members_of(results) -> list[Member]:
    assert all(r.error is None and r.model is not None for r in results), [(r.name, r.error) for r in results]
    return [Member(r.name, r.model, getattr(r.model, "member_kind", "baseline"), r.score) for r in results]


def _assert_same(actual: np.ndarray, expected: np.ndarray, name: str) -> None:
    """Identical predictions; to 1e-12 for the random forest, whose threads (n_jobs=-1) add
    up the trees' predictions in any order: predicting twice can differ in the last bit."""
    if name == "random_forest":
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-12, err_msg=name)
    else:
        np.testing.assert_array_equal(actual, expected, err_msg=name)


def test_an_ensemble_of_every_member_kind_saves_and_loads_to_the_same_predictions(tmp_path):
    from sklearn.metrics import get_scorer

    from archtune import NeuralClassifier
    from archtune.tune.baselines import run_baselines

    X, y, kinds = _magic_with_notes(500)
    train, unseen = slice(0, 400), slice(400, None)
    results = run_baselines("classification", X[train], y[train], X[unseen], y[unseen], get_scorer("accuracy"), kinds)
    baselines = _members_of(results)
    assert sorted(m.name for m in baselines) == ["catboost", "hist_gradient_boosting", "k_nearest_neighbors",
                                                   "lightgbm", "logistic_regression", "random_forest",
                                                   "tfidf_logistic_regression"]
    # LightGBM ignores the text column itself: a LightGBM member (text files), not a pipeline.
    assert [m.kind for m in baselines if m.name == "lightgbm"] == ["lightgbm"]
    net = NeuralClassifier(max_epochs=2, units=16, hidden_layers=1, random_state=0).fit(X[train], y[train])
    members = [Member("network #0 (mlp)", net, "network", 0.8, 0), *baselines]
    weights = np.arange(1.0, len(members) + 1)
    ensemble = make_ensemble("classification", members, weights, np.unique(y), 0.9, list(X.columns))
    before_proba, before = ensemble.predict_proba(X[unseen]), ensemble.predict(X[unseen])

    save_ensemble(ensemble, tmp_path / "ens")
    files = sorted(p.name for p in (tmp_path / "ens").iterdir())
    assert sum(f.startswith("sklearn-") and f.endswith(".skops") for f in files) == 5
    assert sum(f.startswith("lightgbm-") and f.endswith(".txt") for f in files) == 1 and "member-0" in files
    assert not any(p.suffix in (".pkl", ".pickle", ".joblib") for p in (tmp_path / "ens").rglob("*"))
    entries = json.loads((tmp_path / "ens" / "archtune.json").read_text())["members"]
    baseline_entry = next(e for e in entries if e["name"] == "random_forest")
    assert baseline_entry["kind"] == "baseline" and baseline_entry["kinds"] == kinds
    assert baseline_entry["model_file"] == f"sklearn-{baseline_entry['sha256'][:16]}.skops"

    loaded = load_ensemble(tmp_path / "ens")
    assert [(m.name, m.kind) for m in loaded.members] == [(m.name, m.kind) for m in ensemble.members]
    for old, new in zip(ensemble.members, loaded.members):  # each member as before
        _assert_same(new.prediction(X[unseen], loaded.classes_), old.prediction(X[unseen], ensemble.classes_), old.name)
        assert type(new.model) is type(old.model)
    np.testing.assert_allclose(loaded.predict_proba(X[unseen]), before_proba, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(loaded.predict(X[unseen]), before)


def _double(X):
    return X * 2


class _Labels(collections.OrderedDict):
    """A type that is neither scikit-learn's, NumPy's nor SciPy's."""


def _foreign_pipeline(X: pd.DataFrame, y: np.ndarray):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    return make_pipeline(FunctionTransformer(_double), LogisticRegression(max_iter=2000)).fit(X, y)


@pytest.mark.parametrize("foreign", ["function", "type"])
def test_a_skops_file_naming_a_foreign_type_is_refused_by_name(tmp_path, foreign):
    import skops.io
    from sklearn.linear_model import LogisticRegression

    from archtune.bundles.sklearn_member import baseline_from_bytes, baseline_to_bytes
    from archtune.tune.baselines import FittedBaseline

    X, y = load_shared("magic.tsv.gz", n=300)
    y = y.to_numpy()
    kinds = {c: "numeric" for c in X.columns}
    plain = FittedBaseline(LogisticRegression(max_iter=500).fit(X, y), kinds)
    if foreign == "function":
        obj, name = _foreign_pipeline(X, y), f"{__name__}._double"
    else:
        obj, name = _Labels(a=1), f"{__name__}._Labels"
    # Saving such a member is refused before anything is written: it would not load.
    with pytest.raises(BundleError, match=f"random_forest.*{name}"):
        save_ensemble(make_ensemble("classification", [Member("random_forest", FittedBaseline(obj, kinds), "baseline",
                                                                 0.5)], np.ones(1), np.unique(y)), tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    with pytest.raises(BundleError, match=name):
        baseline_to_bytes(FittedBaseline(obj, kinds))

    # A bundle whose skops file was replaced by one naming the foreign type (its checksum
    # updated in the JSON, as an attacker would) is refused by the file's and the type's name.
    save_ensemble(make_ensemble("classification", [Member("logistic_regression", plain, "baseline", 0.7)], np.ones(1),
                                np.unique(y)), tmp_path / "ens")
    np.testing.assert_array_equal(load_ensemble(tmp_path / "ens").predict(X), plain.predict(X))  # before the swap
    meta_path = tmp_path / "ens" / "archtune.json"
    meta = json.loads(meta_path.read_text())
    skops_file = tmp_path / "ens" / meta["members"][0]["model_file"]
    data = skops.io.dumps(obj)
    skops_file.write_bytes(data)
    meta["members"][0]["sha256"] = hashlib.sha256(data).hexdigest()
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(BundleError, match=f"{skops_file.name}.*untrusted.*{name}"):
        load_ensemble(tmp_path / "ens")
    with pytest.raises(BundleError, match=f"where.skops.*{name}"):
        baseline_from_bytes(data, kinds, "where.skops")


def test_a_changed_skops_file_is_refused_by_its_checksum(tmp_path):
    from sklearn.linear_model import LogisticRegression

    from archtune.tune.baselines import FittedBaseline

    X, y = load_shared("magic.tsv.gz", n=300)
    model = FittedBaseline(LogisticRegression(max_iter=500).fit(X, y), {c: "numeric" for c in X.columns})
    save_ensemble(make_ensemble("classification", [Member("logistic_regression", model, "baseline", 0.7)],
                                np.ones(1), np.unique(y)), tmp_path / "ens")
    skops_file = next((tmp_path / "ens").glob("sklearn-*.skops"))
    data = bytearray(skops_file.read_bytes())
    data[len(data) // 2] ^= 1
    skops_file.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=f"{skops_file.name}.*checksum"):
        load_ensemble(tmp_path / "ens")
    skops_file.unlink()
    with pytest.raises(BundleError, match=f"{skops_file.name}.*missing"):
        load_ensemble(tmp_path / "ens")


def test_bundle_json_is_strict_even_with_nan_metadata_and_scores(tmp_path):
    X, signal = _table_with_categories(seed=3)
    gbm = LightGBMTableRegressor(kinds={"x": "numeric", "colour": "categorical", "z": "numeric"}).fit(X, signal)
    ensemble = make_ensemble("regression", [Member("lightgbm", gbm, "lightgbm", float("nan"))], np.ones(1), None,
                             np.float64("nan"), list(X.columns))
    save_ensemble(ensemble, tmp_path / "ens", metadata={"score": float("nan"), "scores": [np.float32("inf"), 0.5],
                                                        "rows": np.int64(3), "nested": {"low": -np.inf}})
    text = (tmp_path / "ens" / "archtune.json").read_text()

    def refuse(constant):
        raise AssertionError(f"non-standard JSON constant {constant} in the bundle")

    meta = json.loads(text, parse_constant=refuse)
    assert meta["metadata"] == {"score": None, "scores": [None, 0.5], "rows": 3, "nested": {"low": None}}
    assert meta["val_score"] is None and meta["members"][0]["val_score"] is None
    loaded = load_ensemble(tmp_path / "ens")
    assert np.isnan(loaded.members[0].val_score)
    np.testing.assert_array_equal(loaded.predict(X), gbm.predict(X))


def test_a_bundle_written_before_baselines_and_multi_output_still_loads(tmp_path):
    # The JSON as archtune wrote it before (one "model_file" per LightGBM member, a literal
    # NaN in the metadata): read as it was.
    X, signal = _table_with_categories(seed=4)
    gbm = LightGBMTableRegressor(kinds={"x": "numeric", "colour": "categorical", "z": "numeric"}).fit(X, signal)
    text = gbm.model_text().encode()
    digest = hashlib.sha256(text).hexdigest()
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / f"lightgbm-{digest[:16]}.txt").write_bytes(text)
    meta = {"format": "archtune-ensemble", "format_version": 1, "task": "regression", "classes": None,
            "columns": list(X.columns), "val_score": 0.5, "metadata": {"score": float("nan")},
            "members": [{"name": "lightgbm", "kind": "lightgbm", "weight": 1.0, "val_score": 0.5,
                         "model_file": f"lightgbm-{digest[:16]}.txt", "sha256": digest,
                         "encoding": gbm.encoding_.to_dict()}]}
    (tmp_path / "old" / "archtune.json").write_text(json.dumps(meta))
    loaded = load_ensemble(tmp_path / "old")
    np.testing.assert_array_equal(loaded.predict(X), gbm.predict(X))
    assert np.isnan(loaded.bundle_metadata_["score"])


# --------------------------------------------------------------------------- several outputs


def _house_two_outputs(n: int) -> tuple[pd.DataFrame, np.ndarray]:
    """house_16H with two targets: the price and its logarithm (scaled)."""
    X, y = load_shared("574_house_16H.tsv.gz", n=n)
    price = y.to_numpy() / 1e5
    return X, np.column_stack([price, np.log1p(price)])


def test_two_output_lightgbm_fits_one_booster_per_output_and_round_trips(tmp_path):
    from archtune.ensemble.build import refit_members

    X, Y = _house_two_outputs(500)
    kinds = {c: "numeric" for c in X.columns}
    gbm = LightGBMTableRegressor(kinds=kinds, random_state=0).fit(X[:400], Y[:400])
    assert len(gbm.boosters_) == 2 and not hasattr(gbm, "booster_")
    prediction = gbm.predict(X[400:])
    assert prediction.shape == (100, 2)
    for j in range(2):  # each output is what a one-output fit of that column predicts
        alone = LightGBMTableRegressor(kinds=kinds, random_state=0).fit(X[:400], Y[:400, j])
        np.testing.assert_array_equal(prediction[:, j], alone.predict(X[400:]))
    ensemble = make_ensemble("regression", [Member("lightgbm", gbm, "lightgbm", 0.7)], np.ones(1), None, 0.7,
                             list(X.columns))
    save_ensemble(ensemble, tmp_path / "ens")
    entry = json.loads((tmp_path / "ens" / "archtune.json").read_text())["members"][0]
    assert len(entry["model_files"]) == 2 and len(entry["sha256s"]) == 2 and "model_file" not in entry
    assert sorted(p.name for p in (tmp_path / "ens").glob("lightgbm-*.txt")) == sorted(entry["model_files"])
    loaded = load_ensemble(tmp_path / "ens")
    np.testing.assert_array_equal(loaded.predict(X[400:]), ensemble.predict(X[400:]))
    assert loaded.predict(X[400:]).shape == (100, 2)
    # One output's file changed: refused by its name.
    changed = tmp_path / "ens" / entry["model_files"][1]
    changed.write_text(changed.read_text().replace("leaf_value=", "leaf_value=1", 1))
    with pytest.raises(BundleError, match=f"{changed.name}.*checksum"):
        load_ensemble(tmp_path / "ens")
    # Refitted on all rows, still one booster per output.
    refitted = refit_members(ensemble, X, Y, {}).members[0].model
    oracle = LightGBMTableRegressor(kinds=kinds, random_state=0).fit(X, Y)
    assert len(refitted.boosters_) == 2
    np.testing.assert_array_equal(refitted.predict(X), oracle.predict(X))
    # Fitted again on one output, it is a one-booster model again.
    again = gbm.fit(X[:400], Y[:400, 0])
    assert hasattr(again, "booster_") and not hasattr(again, "boosters_") and again.predict(X[:5]).shape == (5,)


def test_every_baseline_fits_and_scores_two_outputs_and_saves(tmp_path):
    from sklearn.metrics import get_scorer, r2_score
    from sklearn.multioutput import MultiOutputRegressor

    from archtune.tune.baselines import run_baselines

    X, Y = _house_two_outputs(500)
    X = X.assign(note=pd.qcut(X["P1"], 4, labels=["few", "some", "many", "crowds"]).astype(str) + " people here")
    kinds = {**{c: "numeric" for c in X.columns}, "note": "text"}
    train, val = slice(0, 400), slice(400, None)
    results = run_baselines("regression", X[train], Y[train], X[val], Y[val], get_scorer("r2"), kinds)
    assert sorted(r.name for r in results) == ["catboost", "hist_gradient_boosting", "k_nearest_neighbors", "lightgbm",
                                               "random_forest", "ridge", "tfidf_ridge"]
    members = _members_of(results)
    for result in results:
        prediction = result.model.predict(X[val])
        assert prediction.shape == (100, 2), result.name
        assert np.isfinite(result.score) and result.score == pytest.approx(r2_score(Y[val], prediction)), result.name
    hist = next(r.model for r in results if r.name == "hist_gradient_boosting")
    assert isinstance(hist.model.steps[-1][1].steps[-1][1], MultiOutputRegressor)
    # The ensemble of them all predicts two outputs, and saves and loads to the same values.
    ensemble = make_ensemble("regression", members, np.ones(len(members)), None, 0.5, list(X.columns))
    before = ensemble.predict(X[val])
    assert before.shape == (100, 2)
    save_ensemble(ensemble, tmp_path / "ens")
    loaded = load_ensemble(tmp_path / "ens")
    for old, new in zip(ensemble.members, loaded.members):
        _assert_same(new.prediction(X[val], None), old.prediction(X[val], None), old.name)
    np.testing.assert_allclose(loaded.predict(X[val]), before, rtol=0, atol=1e-12)


def test_ensemble_loss_and_selection_of_two_outputs_match_a_hand_computation():
    # y = ((1, 0), (-1, 2)). A misses row 0's second output by 1, B by -1: each row's error
    # averaged over its outputs is (0.5, 0), so each has loss 0.25. C = (0.5, 0.5) on row 0
    # has ((0.5)^2 + (0.5)^2) / 2 = 0.25 there: loss 0.125, so step 1 takes C. Step 2: C+A
    # averages row 0 to (0.75, 0.75): (0.0625 + 0.5625) / 2 / 2 = 0.15625; C+B to (0.75,
    # -0.25): (0.0625 + 0.0625) / 2 / 2 = 0.03125; C+C 0.125. It takes B.
    y = np.array([[1.0, 0.0], [-1.0, 2.0]])
    A = np.array([[1.0, 1.0], [-1.0, 2.0]])
    B = np.array([[1.0, -1.0], [-1.0, 2.0]])
    C = np.array([[0.5, 0.5], [-1.0, 2.0]])
    assert ensemble_loss(A, y, "regression") == pytest.approx(0.25)
    assert ensemble_loss(C, y, "regression") == pytest.approx(0.125)
    assert ensemble_loss((C + B) / 2, y, "regression") == pytest.approx(0.03125)
    # Row weights (1, 3): (1 * 0.5 + 3 * 0) / 4.
    assert ensemble_loss(A, y, "regression", sample_weight=np.array([1.0, 3.0])) == pytest.approx(0.125)
    np.testing.assert_allclose(select_weights([A, B, C], y, "regression", n_steps=2), [0, 0.5, 0.5])
    # A and B tie alone (the earlier first); together they are exact.
    np.testing.assert_allclose(select_weights([A, B], y, "regression", n_steps=2), [0.5, 0.5])
    np.testing.assert_allclose(combine([A, B], [0.5, 0.5]), y)
    # Row weights that make row 1 all that counts: every candidate is exact there, the first wins.
    np.testing.assert_allclose(select_weights([C, A], y, "regression", n_steps=3, sample_weight=np.array([0.0, 1.0])),
                               [1.0, 0.0])
    # One column and (n,) are the same; other shapes are refused, never broadcast.
    assert ensemble_loss(np.array([1.0, 2.0]), np.array([[1.0], [0.0]]), "regression") == pytest.approx(2.0)
    with pytest.raises(ValueError, match="shape"):
        ensemble_loss(A, y[:, 0], "regression")


def test_library_selects_among_two_output_candidates():
    from sklearn.metrics import get_scorer, r2_score

    rng = np.random.default_rng(3)
    n = 400
    Y = rng.normal(size=(n, 2))
    X = pd.DataFrame({"row": np.arange(n)})
    first = Member("first", Values(Y + rng.normal(scale=0.5, size=(n, 2))), "network", 0.5)
    second = Member("second", Values(Y + rng.normal(scale=0.5, size=(n, 2))), "lightgbm", 0.5)
    noise = Member("noise", Values(rng.normal(size=(n, 2)) * 3), "baseline", -8.0)
    library = EnsembleLibrary("regression", [first, second, noise], X, Y, get_scorer("r2"), None, ["row"])
    assert library.targets.shape == (n, 2)
    choice = library.choose()
    # Two independent errors average out: both good members share the weight, the noise gets none.
    assert choice.used and [m.name for m in choice.ensemble.members] == ["first", "second"]
    prediction = choice.ensemble.predict(X)
    assert prediction.shape == (n, 2)
    np.testing.assert_allclose(prediction, combine([first.model.values, second.model.values],
                                                   choice.ensemble.weights))
    assert choice.ensemble.val_score == pytest.approx(r2_score(Y, prediction))
    low, high = library.intervals(resamples=20)["first"]
    assert low < r2_score(Y, first.model.values) < high


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
    # The seeded outcome: the noise earns no weight, so the "ensemble" is the good model alone,
    # which is no ensemble to use (the best network, final None, predicts).
    assert choice.ensemble.describe()["member"].tolist() == ["good"]
    assert not choice.used and choice.final is None and choice.gain == 0.0
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
    # The seeded outcome: the noisy network earns no weight worth keeping, so LightGBM predicts alone.
    assert not choice.used
    assert [m.name for m in choice.final.members] == ["lightgbm"] and choice.final.weights.tolist() == [1.0]
    np.testing.assert_array_equal(choice.final.predict(X), boosted.model.predict(X))


def test_refit_members_keeps_the_weights_and_refits_lightgbm_on_all_rows():
    from archtune.ensemble.build import refit_members

    X, signal = _table_with_categories(seed=2)
    kinds = {"x": "numeric", "colour": "categorical", "z": "numeric"}
    part = LightGBMTableRegressor(kinds=kinds, random_state=0).fit(X[:300], signal[:300])
    network_old, network_new = object(), LightGBMTableRegressor(kinds=kinds, random_state=1).fit(X, signal)
    ensemble = make_ensemble("regression", [Member("lightgbm", part, "lightgbm", 0.5),
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

    def killed(self):
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
    # The seeded outcome: the ensemble holds up and predicts; it is saved beside the network.
    assert note.startswith("used; +0.0300 vs random_forest")
    assert "ensemble (" in result.output
    from archtune.bundles.search import final_ensemble_dir

    ensemble_dir = final_ensemble_dir(out)
    # What predicts is saved: every member kind (scikit-learn baselines too) has a bundle form.
    assert ensemble_dir is not None, result.output
    meta = json.loads((out / "archtune.json").read_text())
    assert meta["final"]["kind"] == "ensemble"
    import archtune

    final = archtune.load(out)
    # Exactly the members the search selected, scikit-learn baselines included.
    record = optuna.load_study(study_name=None, storage=f"sqlite:///{out / 'study.db'}").user_attrs["ensemble"]
    selected = [m["name"] for m in record["members"]]
    assert record["used"] and [m.name for m in final.members] == selected
    assert [m.name for m in archtune.load(ensemble_dir).members] == selected
    assert {m.kind for m in final.members} >= {"baseline"}
    predicted = CliRunner().invoke(cli, ["predict", str(out), str(data)])
    assert predicted.exit_code == 0, predicted.output
    lines = predicted.output.strip().splitlines()
    assert lines[0].startswith("prediction")
    assert [str(v) for v in final.predict(X)] == [line.split(",")[0] for line in lines[1:]]
    info = CliRunner().invoke(cli, ["info", str(out)])
    assert info.exit_code == 0 and "predicts:     the ensemble in" in info.output, info.output
    # --no-ensemble on a new run: no ensemble row and no ensemble directory.
    out2 = tmp_path / "run2"
    result = CliRunner().invoke(cli, ["tune", str(data), "--target", "target", "--trials", "2", "-q", "--out",
                                      str(out2), "--no-ensemble", "--set", "max_epochs=3"])
    assert result.exit_code == 0, result.output
    assert final_ensemble_dir(out2) is None and not list(out2.glob("ensemble*"))
    assert "ENSEMBLE" not in set(pd.read_csv(out2 / "leaderboard.csv")["state"])


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
    for inner, held_out in zip(bagged.ensemble.members, bagged.folds):  # its own score: on its fold
        assert inner.val_score == pytest.approx(np.mean(inner.model.predict(X.iloc[held_out]) == y[held_out]))
    assert bagged.oof_score == pytest.approx(np.mean(member.classes_[bagged.oof.argmax(1)] == y))
    # The bag predicts the members' mean.
    mean = np.mean([m.predict_proba(X[:50]) for m in members], axis=0)
    np.testing.assert_allclose(bagged.ensemble.predict_proba(X[:50]), mean, atol=1e-6)


def test_a_two_output_bag_has_two_output_out_of_fold_predictions_and_member_scores():
    from sklearn.metrics import get_scorer, r2_score

    from archtune import NeuralRegressor
    from archtune.ensemble.bagging import bag

    X, Y = _house_two_outputs(400)
    weights = np.random.default_rng(0).uniform(0.5, 2.0, len(Y))
    bagged = bag(lambda p: NeuralRegressor(**{"max_epochs": 2, "hidden_layers": 1, "units": 16, **p}), {}, X, Y, 2,
                 "regression", get_scorer("r2"), seed=0, sample_weight=weights)
    assert bagged is not None and bagged.oof.shape == (len(Y), 2)
    assert bagged.oof_score == pytest.approx(r2_score(Y, bagged.oof, sample_weight=weights))
    for member, held_out in zip(bagged.ensemble.members, bagged.folds):
        prediction = member.model.predict(X.iloc[held_out])
        np.testing.assert_allclose(bagged.oof[held_out], prediction, rtol=1e-6)
        assert np.isfinite(member.val_score)
        assert member.val_score == pytest.approx(r2_score(Y[held_out], prediction, sample_weight=weights[held_out]))
    assert bagged.ensemble.predict(X[:7]).shape == (7, 2)


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
