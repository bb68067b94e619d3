"""The gradient-boosting portfolio (issue 31): the file loads and every configuration trains,
early stopping holds out its share of the training rows and the refit scales the rounds it
kept, CatBoost members round-trip through ensemble bundles (a tampered file refused), the
verdict judges the network against the run's best gradient-boosting model, and the ensemble
says what the networks add on rows it was not selected on."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import get_scorer

from archtune.bundles.ensemble import load_ensemble, save_ensemble
from archtune.cli.leaderboard import verdict
from archtune.ensemble import Member, make_ensemble
from archtune.ensemble.build import EnsembleLibrary, refit_members
from archtune.ensemble.catboost_member import CatBoostTableClassifier, CatBoostTableRegressor
from archtune.ensemble.gbm import LightGBMTableRegressor
from archtune.ensemble.selection import combine, select_weights
from archtune.errors import ArchtuneError, BundleError
from archtune.tune.baselines import STOPPING_FRACTION, fit_stopping_early, run_baselines
from archtune.tune.leaderboard import GRADIENT_BOOSTING_NOTE
from archtune.tune.portfolio import PORTFOLIO_FILE, load_portfolio
from tests.conftest import load_shared
from tests.test_ensemble import Values

pytest.importorskip("catboost", reason="CatBoost is the archtune[catboost] extra (installed by the test extras)")


def _table(n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n),
                      "colour": rng.choice(["red", "green", "blue", None], size=n)})
    signal = X["x"] * 2 + (X["colour"] == "red") + rng.normal(scale=0.1, size=n)
    return X, signal.to_numpy(), {"x": "numeric", "z": "numeric", "colour": "categorical"}


def test_the_portfolio_file_loads_in_order_with_the_defaults_first():
    configs = load_portfolio()
    assert [c.name for c in configs[:2]] == ["lightgbm", "catboost"]
    assert {c.family for c in configs} == {"lightgbm", "catboost"}
    assert json.loads(PORTFOLIO_FILE.read_text())["format"] == "archtune-portfolio"


@pytest.mark.parametrize("config", load_portfolio(), ids=lambda c: c.name)
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_every_portfolio_configuration_trains_on_a_tiny_table(config, task):
    X, signal, kinds = _table(200)
    y = (signal > 0.5).astype(int) if task == "classification" else signal
    model = config.model(task, kinds, seed=0)
    fit_stopping_early(model, X, y, None, task, seed=0)
    prediction = model.predict(X)
    assert prediction.shape == (200,) and np.isfinite(prediction.astype(float)).all()
    assert model.member_kind == config.family and model.n_fit_rows_ == 180


@pytest.mark.parametrize("bad, words", [({"format": "x"}, "not an archtune portfolio"),
                                        ({"format": "archtune-portfolio", "configs": [{"name": "a", "family": "xgb",
                                                                                       "params": {}}]}, "family"),
                                        ({"format": "archtune-portfolio", "configs": [
                                            {"name": "a", "family": "lightgbm", "params": {}},
                                            {"name": "a", "family": "catboost", "params": {}}]}, "configs\\[1\\]")])
def test_a_bad_portfolio_file_is_named(tmp_path, bad, words):
    path = tmp_path / "portfolio.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ArchtuneError, match=words) as error:
        load_portfolio(path)
    assert str(path) in str(error.value)


def test_early_stopping_holds_out_its_share_and_the_refit_scales_the_rounds_it_kept():
    X, signal, kinds = _table(1000)
    model = LightGBMTableRegressor(kinds=kinds, params={"n_estimators": 3000, "learning_rate": 0.1})
    fit_stopping_early(model, X, signal, None, "regression", seed=0)
    assert model.n_fit_rows_ == round(1000 * (1 - STOPPING_FRACTION))
    kept = model.best_iterations_[0]
    assert 1 <= kept < 3000  # stopped early
    ensemble = make_ensemble("regression", [Member("lightgbm", model, "lightgbm", 0.9)], np.ones(1), None, 0.9,
                             list(X.columns))
    refit = refit_members(ensemble, X, signal, {}).members[0].model
    assert refit.params["n_estimators"] == round(kept * 1000 / 900)
    assert refit.booster_.current_iteration() == round(kept * 1000 / 900)


def test_catboost_members_round_trip_through_ensemble_bundles_and_a_tampered_file_is_refused(tmp_path):
    X, signal, kinds = _table(300)
    labels = np.where(signal > 1, "high", np.where(signal > -1, "mid", "low"))
    classifier = CatBoostTableClassifier(kinds=kinds, params={"iterations": 60}).fit(X, labels)
    ensemble = make_ensemble("classification", [Member("catboost", classifier, "catboost", 0.8)], np.ones(1),
                             np.unique(labels), 0.8, list(X.columns))
    save_ensemble(ensemble, tmp_path / "c")
    loaded = load_ensemble(tmp_path / "c")
    np.testing.assert_array_equal(loaded.predict_proba(X), ensemble.predict_proba(X))
    regressor = CatBoostTableRegressor(kinds=kinds, params={"iterations": 60}).fit(X, np.column_stack([signal, -signal]))
    two = make_ensemble("regression", [Member("catboost", regressor, "catboost", 0.8)], np.ones(1), None, 0.8,
                        list(X.columns))
    save_ensemble(two, tmp_path / "r")
    np.testing.assert_array_equal(load_ensemble(tmp_path / "r").predict(X), two.predict(X))
    (file,) = (tmp_path / "c").glob("catboost-*.cbm")
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    file.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=file.name):
        load_ensemble(tmp_path / "c")


def test_the_search_fits_the_portfolio_with_early_stopping_and_names_the_kind(monkeypatch):
    from archtune.tune import baselines

    monkeypatch.setattr(baselines, "load_portfolio", load_portfolio)  # the shipped file, not the tests' cut
    X, y = load_shared("magic.tsv.gz", n=600, seed=2)
    kinds = {str(c): "numeric" for c in X.columns}
    y = np.asarray(y)
    results = run_baselines("classification", X.iloc[:450], y[:450], X.iloc[450:], y[450:],
                            get_scorer("accuracy"), kinds, seed=0)
    by_name = {r.name: r for r in results}
    portfolio = load_portfolio()
    assert [r.name for r in results][1:1 + len(portfolio)] == [c.name for c in portfolio]
    for config in portfolio:
        result = by_name[config.name]
        assert result.error is None and result.kind == config.family and result.model.member_kind == config.family
        assert "rounds kept by early stopping" in result.params
        assert result.record()["kind"] == config.family


def _board(network, boosted, classical):
    rows = [{"model": "network #0 (mlp)", "val_score": network, "state": "COMPLETE", "note": ""},
            {"model": "catboost", "val_score": boosted, "state": "BASELINE", "note": GRADIENT_BOOSTING_NOTE},
            {"model": "random_forest", "val_score": classical, "state": "BASELINE", "note": "classical baseline"}]
    return pd.DataFrame(rows).sort_values("val_score", ascending=False, kind="stable")


def test_the_verdict_judges_the_network_against_the_best_gradient_boosting_model():
    # A classical baseline above the gradient boosting would flatter nothing: the rival is the
    # tuned gradient boosting, even when it is not the best baseline.
    sentence = verdict(_board(0.86, 0.87, 0.88), "accuracy")
    assert "does NOT beat the best gradient-boosting model, catboost (0.8700)" in sentence
    assert "random_forest" not in sentence.split("Consider")[0]
    assert "beats the best gradient-boosting model, catboost (0.8500), by +0.0100" in verdict(
        _board(0.86, 0.85, 0.80), "accuracy")


def test_what_the_networks_add_is_measured_on_rows_the_ensemble_was_not_selected_on():
    rng = np.random.default_rng(3)
    n = 400
    y = rng.normal(size=n)
    X = pd.DataFrame({"row": np.arange(n)})
    network_values = y + rng.normal(scale=0.5, size=n)
    boosted_values = y + rng.normal(scale=0.5, size=n)
    members = [Member("network #0 (mlp)", Values(network_values), "network", 0.8, 0),
               Member("lightgbm", Values(boosted_values), "lightgbm", 0.8)]
    scorer = get_scorer("r2")
    library = EnsembleLibrary("regression", members, X, y, scorer, None, ["row"], seed=5)
    choice = library.choose()
    # The oracle: the same halves, selection with and without the network, scored on the other half.
    order = np.random.default_rng(5).permutation(n)
    halves = order[: n // 2], order[n // 2:]
    predictions = [network_values, boosted_values]
    expected = []
    for selected_on, held_out in (halves, halves[::-1]):
        weights = select_weights([p[selected_on] for p in predictions], y[selected_on], "regression")
        with_networks = combine(predictions, weights)[held_out]
        expected.append(np.nan_to_num(1 - np.sum((y[held_out] - with_networks) ** 2)
                                      / np.sum((y[held_out] - y[held_out].mean()) ** 2))
                        - (1 - np.sum((y[held_out] - boosted_values[held_out]) ** 2)
                           / np.sum((y[held_out] - y[held_out].mean()) ** 2)))
    assert choice.networks_gain == pytest.approx(np.mean(expected), abs=1e-12)
    assert choice.networks_gain > 0  # two equally good, independent models: averaging helps (seed 3)


def test_a_gradient_boosting_refit_that_would_end_after_the_deadline_is_not_started():
    import time

    X, signal, kinds = _table(400)
    model = fit_stopping_early(LightGBMTableRegressor(kinds=kinds, params={"n_estimators": 500}), X, signal, None,
                               "regression", seed=0)
    ensemble = make_ensemble("regression", [Member("lightgbm", model, "lightgbm", 0.9)], np.ones(1), None, 0.9,
                             list(X.columns))
    model.fit_seconds_ = 60.0  # as measured: a minute's fit
    kept = refit_members(ensemble, X, signal, {}, deadline=time.monotonic() + 30).members[0].model
    assert kept is model  # 60 s x 400/360 rows would end after the deadline: the selected member stays
    refit = refit_members(ensemble, X, signal, {}, deadline=time.monotonic() + 3600).members[0].model
    assert refit is not model and refit.params["n_estimators"] == round(model.best_iterations_[0] * 400 / 360)


def test_the_time_split_puts_the_portfolio_apart_from_the_other_baselines():
    from archtune.tune.baselines import BaselineResult
    from archtune.tune.search import time_split

    fitted = [BaselineResult("ridge", 0.5, 1.0, ""), BaselineResult("lightgbm", 0.8, 2.5, "", kind="lightgbm"),
              BaselineResult("catboost", 0.9, 4.0, "", kind="catboost")]
    assert time_split(fitted, 10.0, 30.0, 5.0) == {"gradient_boosting": 6.5, "other_baselines_and_opening": 3.5,
                                                   "networks": 30.0, "ensemble_and_refit": 5.0}


class _Clock:
    """A `time` stand-in whose monotonic() advances one second per call: a boosting callback
    reads it once per round, so a deadline of 10 falls in the tenth round, on any machine."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        self.now += 1.0
        return self.now


@pytest.mark.parametrize("family", ["lightgbm", "catboost"])
def test_a_gradient_boosting_fit_stops_at_its_deadline_keeping_its_best_round(monkeypatch, family):
    X, signal, kinds = _table(1000)
    if family == "lightgbm":
        import archtune.ensemble.gbm as module
        make = lambda: LightGBMTableRegressor(kinds=kinds, params={"n_estimators": 3000, "learning_rate": 0.05})
    else:
        import archtune.ensemble.catboost_member as module
        make = lambda: CatBoostTableRegressor(kinds=kinds, params={"iterations": 3000, "learning_rate": 0.05})
    free = fit_stopping_early(make(), X, signal, None, "regression", seed=0)
    assert free.stopped_at_deadline_ is False and free.best_iterations_[0] > 10
    monkeypatch.setattr(module, "time", _Clock())
    stopped = fit_stopping_early(make(), X, signal, None, "regression", seed=0, deadline=10.0)
    assert stopped.stopped_at_deadline_ is True
    # Ten rounds, each better on the held-out rows than the one before at this learning rate.
    assert stopped.best_iterations_ == [10]
    assert np.isfinite(stopped.predict(X)).all()
    error = lambda m: float(np.mean((m.predict(X) - signal) ** 2))
    assert error(free) < error(stopped)
