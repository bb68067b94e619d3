"""Successive halving over training rows (archtune.tune.halving): the first stage's rows, the
share promoted, the promoted trials' rows and parameters, and what the leaderboard says."""

from __future__ import annotations

import numpy as np
import optuna
import pandas as pd
import pytest
from click.testing import CliRunner

from archtune.auto import AutoNeuralClassifier, AutoNeuralRegressor
from archtune.cli import cli
from archtune.data.table import Table
from archtune.tune.data import split_at
from archtune.tune.halving import (HALVING_FACTOR, MIN_AUTO_ROWS, PROMOTED, TRAIN_ROWS, RowStages, first_stage_rows,
                                   subsample)
from tests.conftest import load_shared

State = optuna.trial.TrialState


def test_the_first_stage_is_an_eighth_of_the_rows_from_sixteen_thousand_rows():
    assert first_stage_rows("auto", 32614) == MIN_AUTO_ROWS == 4096  # 32614 // 8 = 4076 < 4096
    assert first_stage_rows("auto", 80000) == 10000
    assert first_stage_rows("auto", 16384) == 4096  # exactly a quarter: staged
    assert first_stage_rows("auto", 16383) is None  # a first stage above a quarter of the rows: all rows
    assert first_stage_rows(4096, 8192) == 4096  # a number of the user's: up to half
    assert first_stage_rows(100, 200) == 100
    assert first_stage_rows(101, 200) is None
    assert first_stage_rows(None, 10**6) is None


def _trial(number, value, state=State.COMPLETE, promoted=None):
    attrs = {} if promoted is None else {PROMOTED: promoted}
    trial = optuna.trial.create_trial(value=value if state == State.COMPLETE else None, state=state,
                                      user_attrs=attrs)
    trial.number = number
    return trial


def _stages(factor=HALVING_FACTOR):
    stages = RowStages.__new__(RowStages)  # `due` reads the trials alone, not the rows
    stages.factor = factor
    return stages


def test_one_first_stage_configuration_in_four_is_promoted_the_best_completed_first():
    values = [0.5, 0.9, None, 0.7, 0.8, None, 0.6, 0.1, 0.3]  # None: pruned
    trials = [_trial(i, v, State.PRUNED if v is None else State.COMPLETE) for i, v in enumerate(values)]
    assert len(trials) // HALVING_FACTOR == 2
    assert _stages().due(trials) == [1, 4]  # 0.9 and 0.8: pruned trials count as evaluated, never promoted
    # Trial 1 promoted already (a promoted trial is not a first-stage trial): one more is due.
    assert _stages().due([*trials, _trial(9, 0.95, promoted=1)]) == [4]
    assert _stages().due([*trials, _trial(9, 0.95, promoted=1), _trial(10, 0.9, promoted=4)]) == []
    assert _stages().due(trials[:3]) == []  # fewer than four finished
    # Fewer completed than due: only those.
    pruned = [_trial(i, None, State.PRUNED) for i in range(7)] + [_trial(7, 0.2)]
    assert _stages().due(pruned) == [7]
    assert _stages(factor=3).due(trials) == [1, 4, 3]


def test_the_first_stage_keeps_the_class_shares_the_weights_and_every_validation_row():
    frame, target = load_shared("magic.tsv.gz")
    y = target.to_numpy()
    weights = np.linspace(0.5, 1.5, len(y))
    table = Table.read(frame).typed().with_weights(weights)
    positions = np.random.default_rng(0).permutation(len(y))
    split = split_at(table, y, positions[:15000], positions[15000:])
    codes = np.unique(split.y_train, return_inverse=True)[1]
    first = subsample(split, 4096, seed=0, codes=codes)
    assert len(first.y_train) == first.train.n_rows == 4096
    assert abs(first.y_train.mean() - split.y_train.mean()) < 1 / 4096 + 1e-12  # stratified
    assert first.val is split.val and first.y_val is split.y_val
    # Each kept row keeps its own target and weight.
    index = pd.Index(split.train.rows.index).get_indexer(first.train.rows.index)
    np.testing.assert_array_equal(first.y_train, split.y_train[index])
    np.testing.assert_array_equal(first.train.weights, split.train.weights[index])
    again = subsample(split, 4096, seed=0, codes=codes)
    pd.testing.assert_index_equal(again.train.rows.index, first.train.rows.index)  # seeded


def _one_at_a_time_search(estimator, X, y):
    return estimator(budget=14, min_resources=120, population=False, baselines=False, ensemble=False,
                     random_state=0, space={"max_epochs": 5}).fit(X, y)


@pytest.mark.parametrize("kind", ["regression", "binary"])
def test_a_staged_search_promotes_exactly_one_in_four_to_all_rows(kind):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 5))
    signal = X[:, 0] - 2 * X[:, 1] * X[:, 2]
    if kind == "regression":
        model = _one_at_a_time_search(AutoNeuralRegressor, X, signal + 0.1 * rng.normal(size=600))
    else:
        model = _one_at_a_time_search(AutoNeuralClassifier, X, (signal > 0).astype(int))
    trials = model.study_.get_trials(deepcopy=False)
    n_train = 480  # 600 rows, 20% held out
    promoted = [t for t in trials if t.user_attrs.get(PROMOTED) is not None]
    assert promoted, "14 trials make at least two promotions"
    first_stage = [t for t in trials if t.user_attrs.get(PROMOTED) is None]
    assert {t.user_attrs[TRAIN_ROWS] for t in first_stage} == {120}
    assert {t.user_attrs[TRAIN_ROWS] for t in promoted} == {n_train}
    finished = (State.COMPLETE, State.PRUNED)
    by_number = {t.number: t for t in trials}
    for p in promoted:
        source = by_number[p.user_attrs[PROMOTED]]
        assert source.params == p.params and source.state == State.COMPLETE
        assert p.intermediate_values == {}  # promoted trials do not report to the pruner
        # One at a time, every earlier trial was told before this one was asked: the share is exact.
        before = [t for t in first_stage if t.number < p.number and t.state in finished]
        promoted_so_far = [q for q in promoted if q.number <= p.number]
        assert len(promoted_so_far) == len(before) // HALVING_FACTOR
        # The best completed first-stage trial not promoted earlier.
        open_sources = [t for t in before if t.state == State.COMPLETE
                        and t.number not in {q.user_attrs[PROMOTED] for q in promoted if q.number < p.number}]
        assert source.value == max(t.value for t in open_sources)
    board = model.leaderboard_
    notes = board["note"].astype(str)
    assert notes.str.contains(f"{n_train} rows, promoted from #{promoted[0].user_attrs[PROMOTED]}").any()
    assert notes.str.contains("; 120 rows").any()


def test_min_resources_none_trains_every_trial_on_all_rows():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 4))
    model = AutoNeuralRegressor(budget=5, min_resources=None, population=False, baselines=False, ensemble=False,
                                random_state=0, space={"max_epochs": 3}).fit(X, X[:, 0])
    trials = model.study_.get_trials(deepcopy=False)
    assert all(TRAIN_ROWS not in t.user_attrs and PROMOTED not in t.user_attrs for t in trials)


def test_the_cli_reads_min_resources_and_refuses_a_bad_value_by_name(tmp_path):
    result = CliRunner().invoke(cli, ["tune", "diabetes", "--trials", "2", "--min-resources", "half",
                                      "--out", str(tmp_path / "run")])
    assert result.exit_code != 0
    assert "--min-resources must be auto, none or a number of training rows; got 'half'" in result.output
    assert not (tmp_path / "run").exists()


def test_refit_auto_refits_a_first_stage_network_whatever_it_costs_and_a_full_one_within_the_cap():
    from types import SimpleNamespace

    from archtune.tune.tuner import Search

    study = optuna.create_study(direction="maximize")
    config = {"max_epochs": 5, "patience": 5}
    # A first-stage trial (100 of 800 rows): its refit would take 8 x 2 s x 5 epochs = 80 s.
    study.add_trial(optuna.trial.create_trial(value=0.9, user_attrs={
        TRAIN_ROWS: 100, "epochs_run": 5, "best_epoch": 5, "fit_seconds": 10.0, "config": config}))
    search = Search.__new__(Search)
    search.study, search.refit_factor, search.refit_cap = study, 1.0, 30.0
    search.splits = [SimpleNamespace(y_train=np.zeros(800))]
    assert search.refit_estimate() == pytest.approx(80.0)
    assert search.refit_planned() and search.refit_reserve() == pytest.approx(1.15 * 80 + 1)
    # A promoted trial on all rows becomes the best: 2 s x 5 epochs = 10 s, within the cap.
    study.add_trial(optuna.trial.create_trial(value=0.95, user_attrs={
        TRAIN_ROWS: 800, PROMOTED: 0, "epochs_run": 5, "best_epoch": 5, "fit_seconds": 10.0, "config": config}))
    assert search.refit_estimate() == pytest.approx(10.0) and search.refit_planned()
    search.refit_cap = 5.0  # over the cap, on all rows already: no refit, no time kept for one
    assert not search.refit_planned() and search.refit_reserve() == 0.0


def test_a_due_promotion_may_use_the_time_kept_for_refitting_a_first_stage_best():
    import time
    from types import SimpleNamespace

    from archtune.tune.tuner import Search

    study = optuna.create_study(direction="maximize")
    config = {"max_epochs": 5, "patience": 5}
    for value in (0.9, 0.8, 0.7):  # three first-stage trials of 100 of 800 rows: no promotion due yet
        study.add_trial(optuna.trial.create_trial(value=value, user_attrs={
            TRAIN_ROWS: 100, "epochs_run": 5, "best_epoch": 5, "fit_seconds": 1.0, "config": config}))
    search = Search.__new__(Search)
    search.study, search.refit_factor, search.refit_cap, search._in_flight = study, 1.0, 1.0, 0
    search.splits = [SimpleNamespace(y_train=np.zeros(800))]
    search.stages = _stages()
    search.deadline = time.monotonic() + 3600.0  # an hour left: more than the refit's 8 s estimate
    assert search.refit_estimate() == pytest.approx(8.0)
    assert not search._promotion_instead_of_refit()  # 3 finished // 4 = 0 due
    study.add_trial(optuna.trial.create_trial(value=0.6, user_attrs={
        TRAIN_ROWS: 100, "epochs_run": 5, "best_epoch": 5, "fit_seconds": 1.0, "config": config}))
    assert search._promotion_instead_of_refit()  # 4 finished: trial 0 is due
    search.deadline = time.monotonic() + 2.0  # less left than the estimate: the refit it is
    assert not search._promotion_instead_of_refit()
    search.deadline = time.monotonic() + 3600.0
    study.add_trial(optuna.trial.create_trial(value=0.95, user_attrs={
        TRAIN_ROWS: 800, PROMOTED: 0, "epochs_run": 5, "best_epoch": 5, "fit_seconds": 8.0, "config": config}))
    assert not search._promotion_instead_of_refit()  # the best trained on all rows: nothing is kept for it
    assert search.refit_reserve() == 0.0  # over the 1 s cap, and on all rows already
