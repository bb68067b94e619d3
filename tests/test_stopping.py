"""budget="auto": a search that stops itself when more trials are not expected to improve on the
noise of the validation score, within a time cap (archtune.tune.stopping)."""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import numpy as np
import optuna
import pytest
from click.testing import CliRunner
from sklearn.metrics import get_scorer

from archtune.cli import cli
from archtune.errors import InvalidParameterError
from archtune.task import task_named
from archtune.tune import stopping
from archtune.tune.config import SearchConfig
from archtune.tune.stopping import (AUTO_CAP_SECONDS, MIN_WINDOW, expected_gain, recent_gain, should_stop, stop_record,
                                    tail_gain, validation_noise)
from archtune.tune.study import parse_budget
from archtune.tune.tuner import Search
from tests.conftest import load_shared

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# A search that climbs to 0.836 in 10 trials, then wobbles below it for 25; and one that climbs
# 0.004 a trial for 30 trials.
CLIMB = [0.80 + 0.004 * i for i in range(30)]
PLATEAU = CLIMB[:10] + [0.836 - 0.003 * (i % 5) for i in range(25)]


# ---------------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("budget, expected", [
    ("auto", (AUTO_CAP_SECONDS, None)), (" AUTO ", (3600.0, None)), ("auto:30m", (1800.0, None)),
    ("auto:1h30m", (5400.0, None)), ("auto: 90s", (90.0, None)),
])
def test_auto_parses_to_its_time_cap(budget, expected):
    assert parse_budget(budget) == expected


@pytest.mark.parametrize("budget, message", [
    ("auto:", "auto:<time>"), ("auto:fast", "auto:<time>"), ("auto:0s", "auto:<time>"),
    ("automatic", "or 'auto'"), ("5 parsecs", "a number of trials such as 20, or 'auto'"),
])
def test_bad_budgets_name_the_auto_form(budget, message):
    with pytest.raises(InvalidParameterError, match="budget") as raised:
        parse_budget(budget)
    assert message in str(raised.value)


def _config(budget):
    from archtune.tune.config import PARAMS

    defaults = {"budget": "5m", "space": "default", "sampler": "auto", "pruner": "hyperband",
                "objectives": ("score",), "prefer": "score", "cv": None, "scoring": None, "storage": None,
                "study_name": None, "n_jobs": 1, "backend": "threads", "population": True, "refit": "auto",
                "ensemble": None, "bagging": None, "baselines": True, "validation_fraction": 0.2,
                "min_resources": "auto", "random_state": 0, "device": "auto", "verbose": 0, "mlflow_uri": None,
                "tensorboard_dir": None}
    assert set(defaults) == set(PARAMS)
    return SearchConfig.from_params(task_named("classification"), {**defaults, "budget": budget})


def test_the_search_configuration_knows_an_auto_budget_and_keeps_it_for_workers():
    auto = _config("auto:20m")
    assert (auto.self_stopping, auto.seconds, auto.trials) == (True, 1200.0, None)
    again = SearchConfig.from_json(auto.to_json())  # the job a coordinator publishes
    assert again.self_stopping and again.seconds == 1200.0
    assert not _config("20m").self_stopping and not _config(20).self_stopping


def test_the_cli_takes_auto_and_refuses_a_bad_auto_budget_before_reading_data(tmp_path):
    result = CliRunner().invoke(cli, ["tune", "diabetes", "--budget", "auto:soon", "--out", str(tmp_path / "a")])
    assert result.exit_code != 0
    assert "auto:<time>" in result.output
    # Plain auto passes the checks made before the data is read; the missing column stops it after.
    result = CliRunner().invoke(cli, ["tune", "diabetes", "--budget", "auto", "--target", "nowhere", "--out",
                                      str(tmp_path / "b")])
    assert result.exit_code != 0 and "budget" not in result.output and "nowhere" in result.output
    assert "auto" in CliRunner().invoke(cli, ["tune", "--help"]).output


# ---------------------------------------------------------------------------------- the rule


def test_a_plateau_stops_and_a_steady_climb_does_not():
    noise = 0.01
    assert should_stop(PLATEAU, noise)
    assert expected_gain(PLATEAU) == pytest.approx(0.0015595811562598878)  # the tail alone: no rise in 20
    assert recent_gain(PLATEAU, 20) == 0.0
    assert not should_stop(CLIMB, noise)
    assert expected_gain(CLIMB) == pytest.approx(0.08)  # 20 trials of 0.004 each
    # Pruned trials (no value) count as finished trials: the plateau still stops.
    pruned = [v if i % 3 else None for i, v in enumerate(PLATEAU)]
    assert should_stop(pruned, noise)
    # A larger noise forgives more: the climb stops when its gain is within the noise.
    assert should_stop(CLIMB, 0.08)


def test_no_stop_before_the_minimum_trials():
    flat = [0.8] * MIN_WINDOW
    assert not should_stop(flat, 0.01)  # the recipes and TPE's start-up trials are not judged on
    assert should_stop(flat + [0.8], 0.01)
    assert not should_stop(PLATEAU, math.nan)  # no noise estimate: only the cap ends the search


def test_a_wide_upper_tail_keeps_the_search_going_though_the_best_stood_still():
    values = [0.9, 0.8, 0.7, 0.6, 0.55] + [0.5] * 25
    assert recent_gain(values, 20) == 0.0
    # ln 2 * mean(i * spacing_i) over the top 6 values (5 spacings): the oracle, by hand.
    spacings = [1 * 0.1, 2 * 0.1, 3 * 0.1, 4 * 0.05, 5 * 0.05]
    assert tail_gain(values) == pytest.approx(math.log(2) * np.mean(spacings + [0.0, 0.0, 0.0]))
    assert not should_stop(values, 0.01)


# ---------------------------------------------------------------------------------- the noise


class _Fixed:
    """A fitted classifier stand-in: fixed probabilities for the validation rows."""

    def __init__(self, proba):
        self.classes_ = np.array([0, 1])
        self.proba = proba

    def predict_proba(self, X):
        return self.proba


def _binary(n=2000, accuracy=0.8, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    right = rng.random(n) < accuracy
    p1 = np.where(right == (y == 1), 0.7, 0.3)
    return y, np.column_stack([1 - p1, p1])


def test_validation_noise_is_the_standard_error_of_the_score():
    y, proba = _binary()
    split = SimpleNamespace(X_val=np.zeros((len(y), 1)), y_val=y, w_val=None)
    accuracy = float(np.mean((proba[:, 1] > 0.5) == (y == 1)))
    oracle = math.sqrt(accuracy * (1 - accuracy) / len(y))  # a proportion's standard error
    noise = validation_noise(_Fixed(proba), split, get_scorer("accuracy"), classification=True)
    assert noise == pytest.approx(oracle, rel=0.15)
    # The mean over 4 disjoint folds: half the standard error.
    assert validation_noise(_Fixed(proba), split, get_scorer("accuracy"), True, folds=4) == pytest.approx(noise / 2)


def test_validation_noise_of_a_scorer_that_is_not_a_sum_over_rows():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 600)
    p1 = 1 / (1 + np.exp(-(y * 1.5 + rng.normal(0, 1, 600) - 0.75)))
    proba = np.column_stack([1 - p1, p1])
    split = SimpleNamespace(X_val=np.zeros((600, 1)), y_val=y, w_val=None)
    auc = roc_auc_score(y, p1)
    n1, n2 = int(y.sum()), int(len(y) - y.sum())
    q1, q2 = auc / (2 - auc), 2 * auc ** 2 / (1 + auc)
    hanley_mcneil = math.sqrt((auc * (1 - auc) + (n1 - 1) * (q1 - auc ** 2) + (n2 - 1) * (q2 - auc ** 2)) / (n1 * n2))
    noise = validation_noise(_Fixed(proba), split, get_scorer("roc_auc"), classification=True)
    assert noise == pytest.approx(hanley_mcneil, rel=0.25)


# ---------------------------------------------------------------------------------- in searches


def test_a_worker_starts_no_trial_once_the_coordinator_recorded_a_stop():
    study = optuna.create_study(direction="maximize")
    study.set_user_attr(stopping.STOPPED_ATTR, stop_record("rule", 30, 12.0, 3600.0, 0.01, 0.002))

    def sample(trial):
        raise AssertionError(f"trial {trial.number} was asked after the coordinator stopped the search")

    search = Search(study, None, SimpleNamespace(sample=sample), lambda params: None, [None], None, "val_accuracy",
                    1.0)
    search.run(None, 60.0, sweep_wait=False)
    assert study.trials == [] and search.stopped["reason"] == "rule"


def test_the_time_cap_ends_a_search_the_rule_does_not(monkeypatch):
    from archtune.auto import AutoNeuralClassifier

    monkeypatch.setattr(stopping, "should_stop", lambda values, noise: False)
    X, y = load_shared("magic.tsv.gz", n=300)
    model = AutoNeuralClassifier(budget="auto:3s", space={"max_epochs": 3}, baselines=False, ensemble=False,
                                 refit=False, random_state=0).fit(X, y)
    record = model.study_.user_attrs["stopped"]
    assert record["reason"] == "time_cap" and record["cap_seconds"] == 3.0
    assert record["text"].startswith("time cap of 3s reached after ")


def test_the_cli_search_stops_itself_and_says_why(tmp_path):
    """`archtune tune --budget auto:5m` on a tiny table stops by the rule long before its cap
    (5 minutes rather than the hour of plain "auto", so that a rule that never stops fails the
    test in minutes), records why in the study, and says it after the search, in `archtune
    leaderboard` and in the report."""
    out = tmp_path / "run"
    runner = CliRunner()
    started = time.monotonic()
    result = runner.invoke(cli, ["tune", "diabetes", "--budget", "auto:5m", "--no-baselines", "--set",
                                 "max_epochs=3", "--out", str(out)], catch_exceptions=False)
    wall = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert "budget auto:5m" in result.output
    assert "left (auto)" in result.output  # the progress line: the cap is an upper bound
    study = optuna.load_study(study_name="archtune", storage=f"sqlite:///{out / 'study.db'}")
    record = study.user_attrs["stopped"]
    assert record["reason"] == "rule", record
    assert record["trials"] > MIN_WINDOW and record["seconds"] < wall and record["cap_seconds"] == 300.0
    assert record["noise"] > 0 and record["expected_gain"] <= record["noise"]
    state = optuna.trial.TrialState
    finished = [t for t in study.trials if t.state in (state.COMPLETE, state.PRUNED)]
    assert len(finished) == record["trials"]
    sentence = f"no expected improvement above the validation noise after {record['trials']} trials"
    assert f"stopped: {sentence}" in result.output
    board = runner.invoke(cli, ["leaderboard", str(out), "--limit", "2"], catch_exceptions=False)
    assert f"stopped: {sentence}" in board.output
    assert f"The search (budget auto) stopped: {sentence}" in (out / "report.html").read_text()
    info = runner.invoke(cli, ["info", str(out)], catch_exceptions=False)
    assert f"search:       stopped: {sentence}" in info.output
