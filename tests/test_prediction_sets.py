"""Prediction sets of classifiers (archtune.prediction_sets, adaptive prediction sets): the
scores and sets against a brute-force oracle, the coverage guarantee on a calibrated synthetic
model and on held-out rows of a shared table, and the network, bag and search-ensemble cells
in Python, bundles and the CLI (tests/test_contract.py runs --set over every artefact)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import archtune
from archtune import NeuralClassifier, NeuralRegressor
from archtune.auto import AutoNeuralClassifier
from archtune.cli import cli
from archtune.ensemble.bagging import bag
from archtune.errors import BundleError, InvalidParameterError
from archtune.prediction_sets import SetCalibration, aps_scores, calibrate_sets, calibration_from_json
from tests.conftest import load_shared


def _brute_force_score(p: np.ndarray, label: int) -> float:
    """The mass of the classes ranked above the label (ties: lower column first)."""
    ranked = sorted(range(len(p)), key=lambda j: (-p[j], j))
    return float(sum(p[j] for j in ranked[:ranked.index(label)]))


def test_scores_and_sets_equal_a_brute_force_oracle():
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(5) * 0.7, size=200)
    proba[:10, 1] = proba[:10, 2]  # ties are ranked by column in both computations
    proba[:10] /= proba[:10].sum(axis=1, keepdims=True)
    codes = rng.integers(0, 5, size=200)
    scores = aps_scores(proba, codes)
    np.testing.assert_allclose(scores, [_brute_force_score(p, c) for p, c in zip(proba, codes)], atol=1e-12)
    calibration = calibrate_sets(codes, proba, "rows")
    k = math.ceil(201 * 0.8)
    assert calibration.threshold(0.8) == pytest.approx(np.sort(scores)[k - 1])
    test = rng.dirichlet(np.ones(5), size=50)
    inside = calibration.sets(test, 0.8)
    t = calibration.threshold(0.8)
    for p, row in zip(test, inside):
        ranked = sorted(range(5), key=lambda j: (-p[j], j))
        mass, expected = 0.0, set()
        for j in ranked:  # classes in decreasing probability until the mass before them passes t
            if mass > t:
                break
            expected.add(j)
            mass += p[j]
        assert set(np.flatnonzero(row)) == expected
    # A calibration row's own class is in its set exactly when its score is at most the threshold.
    own = calibration.sets(proba, 0.8)[np.arange(200), codes]
    np.testing.assert_array_equal(own, scores <= t)


def test_a_calibrated_model_covers_the_target_share_of_new_rows():
    rng = np.random.default_rng(1)

    def rows(n):  # a calibrated classifier: the label is drawn from the predicted probabilities
        proba = rng.dirichlet(np.ones(4), size=n)
        labels = (proba.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1)
        return proba, labels

    calibration = calibrate_sets(*reversed(rows(1000)), "rows")
    proba, labels = rows(20000)
    for coverage in (0.8, 0.9, 0.95):
        inside = calibration.sets(proba, coverage)
        covered = inside[np.arange(len(labels)), labels].mean()
        assert coverage - 0.02 <= covered <= coverage + 0.03, (coverage, covered)
    sizes = calibration.sets(proba, 0.9).sum(axis=1)
    assert sizes.min() == 1 and sizes.max() >= 3  # adaptive: confident rows get one class, others more
    with pytest.warns(RuntimeWarning, match="too few for coverage=0.9999"):
        assert calibration.sets(proba[:3], 0.9999).all()


def test_a_network_covers_ninety_percent_of_held_out_rows_and_bundles_keep_its_sets(tmp_path):
    X, y = load_shared("satimage.tsv.gz")
    y = y.to_numpy()
    order = np.random.default_rng(0).permutation(len(X))
    fit, val, test = order[:3000], order[3000:4000], order[4000:]
    model = NeuralClassifier(max_epochs=6, random_state=0).fit(
        X.iloc[fit], y[fit], validation_data=(X.iloc[val], y[val]))
    codes = np.searchsorted(model.classes_, y[val])
    # The oracle: the calibration scores are those of predict_proba on validation_data.
    expected = np.sort(aps_scores(model.predict_proba(X.iloc[val]), codes))
    np.testing.assert_allclose(model.conformal_.scores, expected, atol=1e-5)
    inside = model.predict_set(X.iloc[test], coverage=0.9)
    covered = inside[np.arange(len(test)), np.searchsorted(model.classes_, y[test])].mean()
    assert 0.87 <= covered <= 0.94, covered  # 2435 held-out rows
    assert inside.sum(axis=1).mean() < 2.0  # mostly single classes on this easy table
    archtune.save(model, tmp_path / "net")
    np.testing.assert_array_equal(archtune.load(tmp_path / "net").predict_set(X.iloc[test[:50]], 0.9), inside[:50])


def test_a_bag_is_calibrated_on_its_out_of_fold_probabilities():
    from sklearn.metrics import get_scorer

    X, y = load_shared("magic.tsv.gz", n=300, seed=2)
    y = y.to_numpy()
    bagged = bag(lambda p: NeuralClassifier(**p), {"max_epochs": 3, "random_state": 0}, X, y, 3,
                 "classification", get_scorer("accuracy"), 0, None, None, list(X.columns))
    classes = bagged.ensemble.classes_
    expected = np.sort(aps_scores(bagged.oof, np.searchsorted(classes, y)))
    np.testing.assert_allclose(bagged.ensemble.conformal_.scores, expected)
    assert bagged.ensemble.conformal_.source == "the bag's out-of-fold rows"
    assert bagged.ensemble.predict_set(X.iloc[:5], 0.9).shape == (5, 2)


def test_a_search_ensemble_gives_sets_in_python_after_loading_and_in_the_cli(tmp_path):
    X, y = load_shared("magic.tsv.gz", n=400, seed=3)
    model = AutoNeuralClassifier(budget=4, random_state=0, space={"max_epochs": 4}).fit(X, y)
    final = model.final_estimator_
    assert type(final).__name__ == "EnsembleClassifier"  # this seed's search ships an ensemble
    assert final.conformal_.source == "the search's validation rows" and final.conformal_.n_rows == 80
    inside = model.predict_set(X.iloc[:6], coverage=0.9)
    archtune.save(model, tmp_path / "run")
    np.testing.assert_array_equal(archtune.load(tmp_path / "run").predict_set(X.iloc[:6], 0.9), inside)
    X.iloc[:6].to_csv(tmp_path / "rows.csv", index=False)
    result = CliRunner().invoke(cli, ["predict", str(tmp_path / "run"), str(tmp_path / "rows.csv"), "--set", "0.9"])
    assert result.exit_code == 0, result.output
    printed = pd.read_csv(__import__("io").StringIO(result.stdout))
    np.testing.assert_array_equal(printed[[f"set_{c}" for c in model.classes_]].to_numpy(), inside.astype(int))
    bad = CliRunner().invoke(cli, ["predict", str(tmp_path / "run"), str(tmp_path / "rows.csv"), "--set", "90"])
    assert bad.exit_code != 0 and "--set: coverage must be a number between 0 and 1" in bad.output


def test_without_held_out_rows_or_for_a_regressor_sets_are_refused_by_name():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(120, 3))
    y = (X[:, 0] > 0).astype(int)
    model = NeuralClassifier(max_epochs=2, validation_fraction=0.0, early_stopping=False, random_state=0).fit(X, y)
    with pytest.raises(InvalidParameterError, match="has no prediction-set calibration"):
        model.predict_set(X)
    with pytest.raises(InvalidParameterError, match="coverage must be"):
        NeuralClassifier(max_epochs=2, random_state=0).fit(X, y).predict_set(X, coverage=1.0)
    assert not hasattr(NeuralRegressor(), "predict_set")


def test_a_tampered_set_calibration_is_refused_by_name(tmp_path):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(100, 2))
    archtune.save(NeuralClassifier(max_epochs=2, random_state=0).fit(X, X[:, 0] > 0), tmp_path / "net")
    meta_file = next(p for p in (tmp_path / "net").iterdir() if p.suffix == ".json")
    meta = json.loads(meta_file.read_text())
    assert meta["conformal"]["method"] == "adaptive prediction sets"
    assert isinstance(calibration_from_json(meta["conformal"], "x"), SetCalibration)
    meta["conformal"]["scores"] = meta["conformal"]["scores"][::-1]  # no longer sorted
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(BundleError, match=r"net.*prediction-set calibration is not valid \(scores must be sorted\)"):
        archtune.load(tmp_path / "net")
