"""Quantile regression (loss="quantile"): the pinball loss against a NumPy oracle, quantiles
that never cross, conformalised quantile regression (Romano et al. 2019) against its formula,
and every way out of a fitted quantile network (bundles, ONNX, the CLI)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import archtune
from archtune import NeuralClassifier, NeuralRegressor
from archtune.cli import cli
from archtune.conformal import QuantileCalibration, calibrate_quantiles
from archtune.errors import InvalidParameterError
from archtune.quantiles import check_quantiles, make_pinball_loss, monotone, point_index
from tests.conftest import load_shared

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _numpy_pinball(pred: np.ndarray, y: np.ndarray, levels: np.ndarray, w: np.ndarray | None) -> float:
    """The pinball loss written out: per row, the mean over outputs and levels of
    tau * (y - q) above the quantile and (1 - tau) * (q - y) below it; rows weighted."""
    n, n_out = y.shape
    q = pred.reshape(n, n_out, len(levels))
    per_value = np.where(y[:, :, None] >= q, levels * (y[:, :, None] - q), (1 - levels) * (q - y[:, :, None]))
    per_row = per_value.mean(axis=(1, 2))
    return float(np.average(per_row, weights=w))


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n_out", [1, 3])
def test_the_pinball_loss_equals_a_numpy_oracle(weighted, n_out):
    rng = np.random.default_rng(n_out + 10 * weighted)
    levels = np.array([0.05, 0.3, 0.5, 0.9])
    pred = rng.normal(size=(17, n_out * len(levels)))
    y = rng.normal(size=(17, n_out))
    w = rng.uniform(0.1, 3.0, size=17) if weighted else None
    loss = make_pinball_loss(tuple(levels))
    got = loss(torch.tensor(pred), torch.tensor(y), None if w is None else torch.tensor(w))
    assert float(got) == pytest.approx(_numpy_pinball(pred, y, levels, w), rel=1e-6)


def test_tabm_members_get_the_mean_of_their_pinball_losses():
    rng = np.random.default_rng(5)
    levels = (0.1, 0.9)
    pred = rng.normal(size=(11, 4, 2))  # [B, k members, outputs * levels]
    y = rng.normal(size=(11, 1))
    loss = make_pinball_loss(levels)
    each = [_numpy_pinball(pred[:, m], y, np.array(levels), None) for m in range(4)]
    assert float(loss(torch.tensor(pred), torch.tensor(y))) == pytest.approx(np.mean(each), rel=1e-6)


@settings(max_examples=60, deadline=None)
@given(raw=st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=12, max_size=12),
       n_q=st.sampled_from([2, 3, 4]))
def test_monotone_quantiles_never_cross(raw, n_q):
    values = torch.tensor(raw[: (12 // n_q) * n_q], dtype=torch.float64).view(1, -1)
    out = monotone(values, n_q).view(-1, n_q)
    assert torch.all(out[:, 1:] >= out[:, :-1])


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0.01, 100.0), arch=st.sampled_from(["mlp", "tabm"]))
def test_a_quantile_networks_outputs_never_cross_for_any_weights_and_inputs(seed, scale, arch):
    from archtune.config import ModelConfig
    from archtune.models import InputSpec, build_model

    generator = torch.Generator().manual_seed(seed)
    config = ModelConfig(arch=arch, hidden_sizes=(8,), quantiles=(0.1, 0.25, 0.5, 0.9))
    net = build_model(config, InputSpec(5), 2, "regression", generator)
    with torch.no_grad():
        for p in net.parameters():  # any weights, not just the initial ones
            p.copy_(torch.randn(p.shape, generator=generator) * scale)
        x = torch.randn(32, 5, generator=generator) * scale
        for training in (False, True):  # a TabM network in training gives every member's outputs
            net.train(training)
            q = net(x).unflatten(-1, (2, 4))
            assert torch.all(q[..., 1:] >= q[..., :-1])


def test_levels_are_checked_and_the_point_is_the_level_nearest_the_median():
    assert check_quantiles([0.1, 0.9]) == (0.1, 0.9)
    for bad in [(), (0.5, 0.1), (0.0, 0.5), (0.5, 1.0), (0.2, 0.2), "0.5", 0.5, (True,)]:
        with pytest.raises(InvalidParameterError, match="quantiles must be"):
            check_quantiles(bad)
    assert point_index((0.1, 0.5, 0.9)) == 1
    assert point_index((0.05, 0.4, 0.7, 0.95)) == 1
    assert point_index((0.9,)) == 0


# --------------------------------------------------------------------------- CQR


def test_cqr_scores_and_intervals_follow_romano_et_al():
    rng = np.random.default_rng(0)
    n = 39
    truth = rng.normal(size=n)
    q = np.sort(rng.normal(size=(n, 3)), axis=1)
    calibration = calibrate_quantiles(truth, q, (0.1, 0.5, 0.9), "rows")
    assert isinstance(calibration, QuantileCalibration) and calibration.pairs == ((0, 2),)
    scores = np.maximum(q[:, 0] - truth, truth - q[:, 2])
    k = math.ceil((n + 1) * 0.8)  # the conformal quantile of the scores: the k-th smallest
    Q = np.sort(scores)[k - 1]
    new = np.sort(rng.normal(size=(5, 3)), axis=1)
    lower, upper = calibration.interval(new, 0.8)
    np.testing.assert_allclose(lower, new[:, 0] - Q)
    np.testing.assert_allclose(upper, new[:, 2] + Q)
    # Exchangeable rows: the interval covers at least the coverage asked for on average.
    assert np.mean((truth >= q[:, 0] - Q) & (truth <= q[:, 2] + Q)) >= 0.8


def test_cqr_picks_the_narrowest_pair_that_encloses_the_coverage():
    rng = np.random.default_rng(1)
    truth = rng.normal(size=(50, 2))
    q = np.sort(rng.normal(size=(50, 2, 4)), axis=2)
    calibration = calibrate_quantiles(truth, q, (0.05, 0.25, 0.75, 0.95), "rows")
    assert calibration.pairs == ((0, 3), (1, 2))
    assert calibration.pair(0.5) == 1 and calibration.pair(0.9) == 0
    assert calibration.pair(0.99) == 0  # wider than every pair: the widest, widened by CQR
    lower, upper = calibration.interval(q[:3], 0.5)
    assert lower.shape == upper.shape == (3, 2)
    radius = calibration.calibrations[1].radius(0.5)
    np.testing.assert_allclose(lower, q[:3, :, 1] - radius)
    restored = QuantileCalibration.from_json(calibration.to_json(), "here")
    for a, b in zip(restored.interval(q[:3], 0.9), calibration.interval(q[:3], 0.9)):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- fitted networks


@pytest.fixture(scope="module")
def house():
    """house_16H: 2400 rows to fit on (600 of them for validation) and 1000 held out, the
    target as log(price)."""
    X, y = load_shared("574_house_16H.tsv.gz", n=3400)
    y = np.log1p(y.to_numpy())
    return X.iloc[:1800], y[:1800], X.iloc[1800:2400], y[1800:2400], X.iloc[2400:], y[2400:]


@pytest.fixture(scope="module")
def quantile_model(house):
    X, y, X_val, y_val, _, _ = house
    return NeuralRegressor(loss="quantile", max_epochs=30, random_state=0).fit(X, y, validation_data=(X_val, y_val))


def test_a_quantile_network_covers_its_levels_on_held_out_rows(house, quantile_model):
    *_, X_test, y_test = house
    q = quantile_model.predict_quantiles(X_test)
    assert q.shape == (len(X_test), 3)
    assert np.all(np.diff(q, axis=1) >= 0)
    np.testing.assert_array_equal(quantile_model.predict(X_test), q[:, 1])
    # Measured: 13.9% of the held-out rows below the 0.1 quantile, 87.9% below the 0.9 one.
    below = (y_test[:, None] < q).mean(axis=0)
    assert 0.04 <= below[0] <= 0.2, below
    assert 0.3 <= below[1] <= 0.7, below
    assert 0.8 <= below[2] <= 0.96, below
    assert quantile_model.score(X_test, y_test) > 0.4  # the median is a point prediction (R^2 measured 0.6)
    assert "val_r2" in quantile_model.history_


def test_cqr_of_a_fitted_network_is_its_formula_on_the_validation_rows_and_covers(house, quantile_model):
    _, _, X_val, y_val, X_test, y_test = house
    calibration = quantile_model.conformal_
    assert isinstance(calibration, QuantileCalibration)
    q_val = quantile_model.predict_quantiles(X_val)
    expected = np.sort(np.maximum(q_val[:, 0] - y_val, y_val - q_val[:, 2]))
    np.testing.assert_allclose(calibration.calibrations[0].scores[:, 0], expected, rtol=1e-5, atol=1e-5)
    lower, upper = quantile_model.predict_interval(X_test, coverage=0.8)
    covered = float(np.mean((y_test >= lower) & (y_test <= upper)))
    assert 0.74 <= covered <= 0.88, covered  # measured 0.80 (1000 rows: a standard error of 0.013)
    widths = upper - lower
    assert widths.std() > 0  # the width follows each row's predicted spread


def test_a_quantile_bundle_and_its_onnx_graph_predict_the_same_quantiles(house, quantile_model, tmp_path):
    *_, X_test, _ = house
    rows = X_test.iloc[:40]
    archtune.save(quantile_model, tmp_path / "net")
    loaded = archtune.load(tmp_path / "net")
    np.testing.assert_array_equal(loaded.predict_quantiles(rows), quantile_model.predict_quantiles(rows))
    for a, b in zip(loaded.predict_interval(rows, 0.9), quantile_model.predict_interval(rows, 0.9)):
        np.testing.assert_array_equal(a, b)
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed: pip install 'archtune[onnx]'")
    exported = archtune.export(quantile_model, tmp_path / "model.onnx")
    assert [name for name, _ in exported.outputs] == ["prediction", "quantiles"]
    session = ort.InferenceSession(str(exported.path), providers=["CPUExecutionProvider"])
    feed = {spec.name: rows[spec.name].to_numpy(dtype="float64") for spec in session.get_inputs()}
    prediction, quantiles = session.run(["prediction", "quantiles"], feed)
    scale = quantile_model.target_scale_[0]
    assert np.abs(quantiles - quantile_model.predict_quantiles(rows)).max() / scale <= 1e-5
    assert np.abs(prediction - quantile_model.predict(rows)).max() / scale <= 1e-5


def test_multi_output_quantiles_have_one_axis_per_output_and_level(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 4))
    Y = np.column_stack([X[:, 0] + 0.1 * rng.normal(size=300), 5 * X[:, 1] + rng.normal(size=300)])
    model = NeuralRegressor(loss="quantile", quantiles=(0.05, 0.5, 0.95), max_epochs=4, random_state=0)
    model.fit(X, Y, sample_weight=rng.uniform(0.5, 2.0, size=300))
    q = model.predict_quantiles(X[:9])
    assert q.shape == (9, 2, 3) and np.all(np.diff(q, axis=2) >= 0)
    np.testing.assert_array_equal(model.predict(X[:9]), q[:, :, 1])
    lower, upper = model.predict_interval(X[:9], 0.9)
    assert lower.shape == upper.shape == (9, 2)
    archtune.save(model, tmp_path / "net")
    np.testing.assert_array_equal(archtune.load(tmp_path / "net").predict_quantiles(X[:9]), q)
    # TorchScript gives (prediction, quantiles) too, in the same float64 arithmetic.
    import json

    from archtune.exporting.torchscript import encode

    exported = archtune.export(model, tmp_path / "model.pt", format="torchscript")
    description = json.loads(exported.description_path.read_text())
    assert [o[0] for o in description["outputs"]] == ["prediction", "quantiles"]
    frame = pd.DataFrame(X[:9], columns=[f"x{j}" for j in range(4)])  # the names fit gives an array's columns
    with torch.no_grad():
        point, levels = torch.jit.load(str(exported.path))(*encode(description, frame))
    np.testing.assert_allclose(levels.numpy(), q, rtol=0, atol=1e-9)
    np.testing.assert_allclose(point.numpy(), q[:, :, 1], rtol=0, atol=1e-9)


def test_quantile_regression_is_refused_by_name_where_it_does_not_apply():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 3))
    with pytest.raises(InvalidParameterError, match="loss"):
        NeuralClassifier(loss="quantile").fit(X, (X[:, 0] > 0).astype(int))
    with pytest.raises(InvalidParameterError, match="quantiles applies to loss='quantile' only"):
        NeuralRegressor(quantiles=(0.1, 0.9)).fit(X, X[:, 0])
    with pytest.raises(InvalidParameterError, match="quantiles must be"):
        NeuralRegressor(loss="quantile", quantiles=(0.9, 0.1)).fit(X, X[:, 0])
    plain = NeuralRegressor(max_epochs=1, random_state=0).fit(X, X[:, 0])
    with pytest.raises(InvalidParameterError, match="predict_quantiles needs a regressor fitted with loss='quantile'"):
        plain.predict_quantiles(X)


def test_quantile_networks_train_alone_not_in_a_cohort():
    from archtune.population import cohort_key

    assert cohort_key(NeuralRegressor(loss="quantile"), 1000) is None
    assert cohort_key(NeuralRegressor(loss="mae"), 1000) is not None


def test_the_cli_fits_a_quantile_network_and_predicts_its_cqr_intervals(tmp_path):
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    frame["y"] = frame["a"] + rng.normal(scale=0.3 + 0.3 * (frame["b"] > 0), size=300)
    frame.to_csv(tmp_path / "train.csv", index=False)
    runner = CliRunner()
    result = runner.invoke(cli, ["fit", str(tmp_path / "train.csv"), "--target", "y", "--set", "loss=quantile",
                                 "--set", "quantiles=0.05,0.5,0.95", "--set", "max_epochs=5", "--quiet",
                                 "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    model = archtune.load(tmp_path / "run")
    assert model.model_config_.quantiles == (0.05, 0.5, 0.95) and isinstance(model.conformal_, QuantileCalibration)
    rows = frame.drop(columns="y").iloc[:8]
    rows.to_csv(tmp_path / "rows.csv", index=False)
    result = runner.invoke(cli, ["predict", str(tmp_path / "run"), str(tmp_path / "rows.csv"), "--interval", "0.9",
                                 "-o", str(tmp_path / "out.csv")])
    assert result.exit_code == 0, result.output
    out = pd.read_csv(tmp_path / "out.csv")
    lower, upper = model.predict_interval(rows, 0.9)
    np.testing.assert_allclose(out["prediction"], model.predict(rows), rtol=1e-6)
    np.testing.assert_allclose(out["lower"], lower, rtol=1e-6)
    np.testing.assert_allclose(out["upper"], upper, rtol=1e-6)


def test_a_search_with_loss_quantile_fixed_ships_its_best_quantile_network():
    from archtune import AutoNeuralRegressor
    from archtune.space import Fixed

    rng = np.random.default_rng(4)
    X = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    y = X["a"] - X["b"] ** 2 + rng.normal(scale=0.2, size=300)
    space = {"max_epochs": 3, "loss": "quantile", "quantiles": Fixed((0.1, 0.5, 0.9))}
    with pytest.raises(InvalidParameterError, match="ensemble=True is not supported with loss='quantile'"):
        AutoNeuralRegressor(budget=2, space=space, ensemble=True).fit(X, y)
    with pytest.raises(InvalidParameterError, match="bagging=3 is not supported with loss='quantile'"):
        AutoNeuralRegressor(budget=2, space=space, bagging=3).fit(X, y)
    model = AutoNeuralRegressor(budget=2, random_state=0, baselines=False, space=space).fit(X, y)
    final = model.final_estimator_
    assert isinstance(final, NeuralRegressor) and final.model_config_.quantiles == (0.1, 0.5, 0.9)
    q = model.predict_quantiles(X.iloc[:5])
    assert q.shape == (5, 3) and np.all(np.diff(q, axis=1) >= 0)
    lower, upper = model.predict_interval(X.iloc[:5], 0.8)
    assert isinstance(final.conformal_, QuantileCalibration) and np.all(upper >= lower)


@pytest.fixture(scope="module")
def small_quantile():
    """A small quantile network on 400 rows whose noise doubles with the sign of x1."""
    rng = np.random.default_rng(6)
    X = rng.normal(size=(400, 4))
    y = X[:, 0] + rng.normal(scale=0.3 + 0.3 * (X[:, 1] > 0), size=400)
    return X, y, NeuralRegressor(loss="quantile", max_epochs=3, units=32, random_state=0).fit(X, y)


def _non_crossing_and_calibrated(model, X):
    q = model.predict_quantiles(X)
    assert q.shape == (len(X), 3) and np.all(np.diff(q, axis=1) >= 0)
    assert isinstance(model.conformal_, QuantileCalibration)
    lower, upper = model.predict_interval(X, 0.9)
    np.testing.assert_array_equal(lower, model.conformal_.interval(q, 0.9)[0])


def test_pruned_fine_tuned_and_tabm_quantile_networks_keep_non_crossing_quantiles(small_quantile, tmp_path):
    from archtune.shrink.prune import prune

    X, y, model = small_quantile
    pruned, _ = prune(model, X, y, max_rounds=1, max_score_drop=1.0, random_state=0)
    assert pruned.model_config_.hidden_sizes[0] < model.model_config_.hidden_sizes[0]
    _non_crossing_and_calibrated(pruned, X[:50])
    archtune.save(pruned, tmp_path / "pruned")
    np.testing.assert_array_equal(archtune.load(tmp_path / "pruned").predict_quantiles(X[:5]),
                                  pruned.predict_quantiles(X[:5]))
    # Fine-tuned from a point regressor: its body, and a new quantile head.
    source = NeuralRegressor(max_epochs=2, units=32, random_state=0).fit(X, y)
    tuned = NeuralRegressor(loss="quantile", max_epochs=2, init_from=source, random_state=0).fit(X, y)
    assert tuned.lineage_[0]["step"] == "init_from"
    _non_crossing_and_calibrated(tuned, X[:50])
    tabm = NeuralRegressor(loss="quantile", arch="tabm", max_epochs=2, random_state=0).fit(X, y)
    _non_crossing_and_calibrated(tabm, X[:50])


def test_a_quantile_teacher_teaches_its_median_and_a_quantile_student_is_refused(small_quantile):
    from archtune.shrink.distill import distill

    X, y, model = small_quantile
    with pytest.raises(InvalidParameterError, match="a student with loss='quantile' cannot be distilled"):
        distill(model, X, y, NeuralRegressor(loss="quantile", max_epochs=1))
    student = distill(model, X, y, NeuralRegressor(max_epochs=2, units=16), random_state=0)
    assert student.predict(X[:4]).shape == (4,)


def test_one_level_is_a_quantile_regression_with_absolute_residual_intervals():
    from archtune.conformal import Calibration

    rng = np.random.default_rng(7)
    X = rng.normal(size=(120, 3))
    y = X[:, 0] + rng.normal(scale=0.2, size=120)
    model = NeuralRegressor(loss="quantile", quantiles=(0.5,), max_epochs=2, random_state=0).fit(X, y)
    q = model.predict_quantiles(X[:4])
    assert q.shape == (4, 1)
    np.testing.assert_array_equal(model.predict(X[:4]), q[:, 0])
    assert type(model.conformal_) is Calibration  # no pair of levels: the median's absolute residual
    lower, upper = model.predict_interval(X[:4], 0.8)
    np.testing.assert_allclose((lower + upper) / 2, q[:, 0])


def test_the_cli_tunes_quantile_networks_and_saves_the_best_one(tmp_path):
    rng = np.random.default_rng(8)
    frame = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    frame["y"] = frame["a"] + rng.normal(scale=0.3, size=200)
    frame.to_csv(tmp_path / "train.csv", index=False)
    result = CliRunner().invoke(cli, ["tune", str(tmp_path / "train.csv"), "--target", "y", "--budget", "2",
                                      "--no-baselines", "--set", "loss=quantile", "--set", "max_epochs=2",
                                      "--no-report", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    model = archtune.load(tmp_path / "run")
    assert model.model_config_.quantiles == (0.1, 0.5, 0.9) and isinstance(model.conformal_, QuantileCalibration)
    result = CliRunner().invoke(cli, ["tune", str(tmp_path / "train.csv"), "--target", "y", "--budget", "2",
                                      "--set", "loss=quantile", "--ensemble", "--out", str(tmp_path / "other")])
    assert result.exit_code != 0 and "ensemble=True is not supported with loss='quantile'" in result.output


def test_the_reports_held_out_intervals_of_a_quantile_network_are_its_cqr_intervals():
    from archtune.report.evaluation import evaluate

    X, y = load_shared("574_house_16H.tsv.gz", n=500, seed=3)
    model = NeuralRegressor(loss="quantile", quantiles=(0.05, 0.5, 0.95), max_epochs=3, random_state=0).fit(
        X.iloc[:400], y.iloc[:400])
    found = evaluate(model, X.iloc[400:], y.iloc[400:], "regression", permutation=False)["prediction_interval"]
    lower, upper = model.predict_interval(X.iloc[400:], coverage=0.9)
    truth = y.iloc[400:].to_numpy()
    assert found["covered"] == pytest.approx(float(np.mean((truth >= lower) & (truth <= upper))))
