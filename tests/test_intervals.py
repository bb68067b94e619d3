"""Prediction intervals by split-conformal calibration (archtune.conformal): the order statistic,
the calibration scores computed two ways, coverage on held-out rows of a shared table, and every
regressor cell (network, bag, search ensemble, pruned/distilled/fine-tuned networks through
their fits) in Python, bundles and the CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import archtune
from archtune import NeuralClassifier, NeuralRegressor
from archtune.auto import AutoNeuralRegressor
from archtune.cli import cli
from archtune.conformal import Calibration, calibrate
from archtune.ensemble.bagging import bag
from archtune.errors import BundleError, InvalidParameterError
from tests.conftest import load_shared


def test_the_radius_is_the_ceil_n_plus_one_times_coverage_order_statistic():
    scores = np.arange(1.0, 20.0)  # 19 rows: k = ceil(20 * 0.9) = 18
    calibration = calibrate(np.zeros(19), scores[::-1], "rows")
    assert calibration.radius(0.9)[0] == 18.0
    assert calibration.radius(0.5)[0] == 10.0  # ceil(20 * 0.5) = 10
    lower, upper = calibration.interval(np.array([1.0, -2.0]), 0.9)
    np.testing.assert_array_equal(lower, [-17.0, -20.0])
    np.testing.assert_array_equal(upper, [19.0, 16.0])
    with pytest.warns(RuntimeWarning, match="too few for coverage=0.99"):
        assert np.isinf(calibration.radius(0.99)[0])  # k = 20 > 19 rows
    with pytest.raises(InvalidParameterError, match="coverage must be a number between 0 and 1"):
        calibration.radius(1.5)


def test_each_output_is_calibrated_on_its_own():
    truth = np.zeros((9, 2))
    prediction = np.column_stack([np.arange(9.0), 10 * np.arange(9.0)])
    calibration = calibrate(truth, prediction, "rows")
    np.testing.assert_array_equal(calibration.radius(0.9), [8.0, 80.0])  # k = 9 of 9
    lower, upper = calibration.interval(np.ones((3, 2)), 0.9)
    assert lower.shape == (3, 2)
    np.testing.assert_array_equal(upper[0], [9.0, 81.0])


def _cpu_act():
    X, y = load_shared("197_cpu_act.tsv.gz")
    rng = np.random.default_rng(0)
    order = rng.permutation(len(X))
    fit, test = order[:6000], order[6000:]
    return X.iloc[fit], y.iloc[fit].to_numpy(), X.iloc[test], y.iloc[test].to_numpy()


def test_a_network_covers_ninety_percent_of_held_out_rows_and_its_scores_are_its_validation_errors():
    X, y, X_test, y_test = _cpu_act()
    X_fit, y_fit, X_val, y_val = X.iloc[:4800], y[:4800], X.iloc[4800:], y[4800:]
    model = NeuralRegressor(max_epochs=8, random_state=0).fit(X_fit, y_fit, validation_data=(X_val, y_val))
    # The oracle: the calibration scores are the sorted absolute errors of predict on validation_data.
    expected = np.sort(np.abs(y_val - model.predict(X_val)))
    np.testing.assert_allclose(model.conformal_.scores[:, 0], expected, rtol=1e-5, atol=1e-4)
    lower, upper = model.predict_interval(X_test, coverage=0.9)
    covered = float(np.mean((y_test >= lower) & (y_test <= upper)))
    assert 0.88 <= covered <= 0.92, covered  # 2192 held-out rows: a standard error of 0.006


def test_a_multi_output_network_gives_intervals_per_output_and_bundles_keep_them(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 4))
    Y = np.column_stack([X[:, 0] + 0.1 * rng.normal(size=400), 5 * X[:, 1] + rng.normal(size=400)])
    model = NeuralRegressor(max_epochs=5, random_state=0).fit(X, Y)
    lower, upper = model.predict_interval(X[:7], coverage=0.8)
    assert lower.shape == upper.shape == (7, 2)
    width = (upper - lower)[0]
    assert width[1] > width[0]  # the noisier output gets the wider interval
    archtune.save(model, tmp_path / "net")
    loaded = archtune.load(tmp_path / "net")
    for a, b in zip(loaded.predict_interval(X[:7], 0.8), (lower, upper)):
        np.testing.assert_array_equal(a, b)


def test_a_fit_without_held_out_rows_and_a_classifier_refuse_intervals_by_name():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(120, 3))
    y = X[:, 0]
    model = NeuralRegressor(max_epochs=2, validation_fraction=0.0, early_stopping=False, random_state=0).fit(X, y)
    with pytest.raises(InvalidParameterError, match="has no interval calibration"):
        model.predict_interval(X)
    with pytest.raises(InvalidParameterError, match="coverage must be"):
        NeuralRegressor(max_epochs=2, random_state=0).fit(X, y).predict_interval(X, coverage=0)
    assert not hasattr(NeuralClassifier(), "predict_interval")  # classifiers: prediction sets instead
    classifier = NeuralClassifier(max_epochs=2, random_state=0).fit(X, (y > 0).astype(int))
    assert type(classifier.conformal_).__name__ == "SetCalibration"


def test_a_bag_is_calibrated_on_its_out_of_fold_errors():
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    y = X["a"].to_numpy() * 2 + rng.normal(scale=0.3, size=300)
    from sklearn.metrics import get_scorer

    bagged = bag(lambda p: NeuralRegressor(**p), {"max_epochs": 4, "random_state": 0}, X, y, 3, "regression",
                 get_scorer("r2"), 0, None, None, list(X.columns))
    np.testing.assert_allclose(bagged.ensemble.conformal_.scores[:, 0], np.sort(np.abs(y - bagged.oof)))
    lower, upper = bagged.ensemble.predict_interval(X.iloc[:5], 0.9)
    np.testing.assert_allclose((upper - lower) / 2, bagged.ensemble.conformal_.radius(0.9)[0])


def test_a_search_ensemble_gives_intervals_in_python_after_loading_and_in_the_cli(tmp_path):
    rng = np.random.default_rng(4)
    X = pd.DataFrame(rng.normal(size=(400, 4)), columns=["a", "b", "c", "d"])
    y = X["a"] - X["b"] ** 2 + rng.normal(scale=0.2, size=400)
    model = AutoNeuralRegressor(budget=4, random_state=0, space={"max_epochs": 4}).fit(X, y)
    final = model.final_estimator_
    lower, upper = model.predict_interval(X.iloc[:6], coverage=0.9)
    np.testing.assert_allclose((lower + upper) / 2, model.predict(X.iloc[:6]))
    assert type(final).__name__ == "EnsembleRegressor"  # this seed's search ships an ensemble
    assert final.conformal_.source == "the search's validation rows"
    assert final.conformal_.n_rows == 80  # 20% of 400 rows
    archtune.save(model, tmp_path / "run")
    loaded = archtune.load(tmp_path / "run")
    for a, b in zip(loaded.predict_interval(X.iloc[:6], 0.9), (lower, upper)):
        np.testing.assert_allclose(a, b)
    X.iloc[:6].to_csv(tmp_path / "rows.csv", index=False)
    result = CliRunner().invoke(cli, ["predict", str(tmp_path / "run"), str(tmp_path / "rows.csv"), "--interval",
                                      "0.9", "-o", str(tmp_path / "out.csv")])
    assert result.exit_code == 0, result.output
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns) == ["prediction", "lower", "upper"]
    np.testing.assert_allclose(out["lower"], lower, rtol=1e-6)
    np.testing.assert_allclose(out["upper"], upper, rtol=1e-6)
    bad = CliRunner().invoke(cli, ["predict", str(tmp_path / "run"), str(tmp_path / "rows.csv"), "--interval", "90"])
    assert bad.exit_code != 0 and "--interval: coverage must be a number between 0 and 1" in bad.output


def test_a_tampered_calibration_is_refused_by_name(tmp_path):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(100, 2))
    archtune.save(NeuralRegressor(max_epochs=2, random_state=0).fit(X, X[:, 0]), tmp_path / "net")
    meta_file = next(p for p in (tmp_path / "net").iterdir() if p.suffix == ".json")
    text = meta_file.read_text()
    import json

    meta = json.loads(text)
    meta["conformal"]["scores"][0] = meta["conformal"]["scores"][0][::-1]  # no longer sorted
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="interval calibration is not valid"):
        Calibration.from_json(meta["conformal"], str(meta_file))


def test_a_distilled_student_is_calibrated_on_its_validation_labels_not_the_teachers_outputs():
    from archtune.shrink.distill import distill

    rng = np.random.default_rng(6)
    X = rng.normal(size=(300, 3))
    y = X[:, 0] * 3 + rng.normal(scale=0.5, size=300)
    teacher = NeuralRegressor(max_epochs=3, random_state=0).fit(X[:200], y[:200])
    student = distill(teacher, X[:200], y[:200], NeuralRegressor(max_epochs=3, units=16, random_state=0),
                      validation_data=(X[200:], y[200:]), random_state=0)
    expected = np.sort(np.abs(y[200:] - student.predict(X[200:])))
    np.testing.assert_allclose(student.conformal_.scores[:, 0], expected, rtol=1e-5, atol=1e-4)
