"""Multi-objective search: the Pareto front, the prefer rule, pruning on the score alone,
the leaderboard's pareto column, resume checks and the CLI round trip."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pandas as pd
import pytest

import archtune
from archtune import InvalidParameterError
from archtune.auto import AutoNeuralClassifier
from archtune.tune.objectives import check_objectives, resolve_sampler
from archtune.tune.pareto import Prefer, choose, pareto_front, parse_prefer
from archtune.tune.score_pruning import ScorePruning
from tests.conftest import load_shared

optuna.logging.set_verbosity(optuna.logging.WARNING)
TrialState = optuna.trial.TrialState
FAST_SPACE = {"max_epochs": 10, "hidden_layers": (1, 2), "units": (8, 128)}


def brute_force_front(points: np.ndarray, directions: list[str]) -> np.ndarray:
    """O(n^2): a point is on the front when no other point dominates it."""
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    costs = points * signs
    on = []
    for i, p in enumerate(costs):
        if np.isnan(p).any():
            on.append(False)
            continue
        dominated = any(not np.isnan(q).any() and (q <= p).all() and (q < p).any()
                        for j, q in enumerate(costs) if j != i)
        on.append(not dominated)
    return np.array(on)


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("seed", range(6))
def test_front_equals_brute_force_dominance_on_random_points(k, seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    points = rng.integers(0, 6, size=(n, k)).astype(float)  # small integers: many ties
    points[rng.random(n) < 0.1, 0] = np.nan
    directions = list(rng.choice(["maximize", "minimize"], size=k))
    np.testing.assert_array_equal(pareto_front(points, directions), brute_force_front(points, directions))


def test_front_rejects_bad_shapes_and_directions():
    with pytest.raises(InvalidParameterError, match="shape"):
        pareto_front(np.zeros((3, 2)), ["maximize"])
    with pytest.raises(InvalidParameterError, match="'up'"):
        pareto_front(np.zeros((3, 2)), ["maximize", "up"])


def test_prefer_parses_strictly_and_lists_the_accepted_forms():
    assert parse_prefer("score") == Prefer("score")
    assert parse_prefer("  Smallest   within 0.005 ") == Prefer("smallest", 0.005)
    assert parse_prefer("smallest within 1e-3") == Prefer("smallest", 0.001)
    for bad in ("smallest", "smallest within -0.1", "fastest within 0.01", "score within 0.1", 0.005, None):
        with pytest.raises(InvalidParameterError, match="smallest within T") as info:
            parse_prefer(bad)
        assert "prefer" in str(info.value)


@pytest.mark.parametrize("seed", range(5))
def test_prefer_picks_the_cheapest_front_point_within_the_tolerance(seed):
    rng = np.random.default_rng(seed)
    scores = rng.choice([0.80, 0.81, 0.815, 0.82, 0.83], size=25)
    costs = rng.integers(1, 12, size=25).astype(float)
    front = brute_force_front(np.column_stack([scores, costs]), ["maximize", "minimize"])
    for tolerance in (0.0, 0.005, 0.02, 1.0):
        picked = choose(scores, costs, Prefer("smallest", tolerance))
        eligible = [i for i in range(25) if front[i] and scores[i] >= scores.max() - tolerance]
        assert picked in eligible
        assert costs[picked] == min(costs[i] for i in eligible)
    best = choose(scores, costs, Prefer("score"))
    assert scores[best] == scores.max() and costs[best] == costs[scores == scores.max()].min()


def test_objectives_and_samplers_are_checked():
    assert check_objectives("score,latency") == ("score", "latency")
    assert check_objectives(["score", "n_params"]) == ("score", "n_params")
    for bad in (("latency",), ("score", "latency", "n_params"), ("score", "speed"), "score;latency", 3):
        with pytest.raises(InvalidParameterError, match="objectives must be"):
            check_objectives(bad)
    assert resolve_sampler("auto", ("score",)) == "tpe"
    assert resolve_sampler("auto", ("score", "latency")) == "nsga2"
    assert resolve_sampler("tpe", ("score", "latency")) == "tpe"  # TPE handles several: the user's choice stands
    with pytest.raises(InvalidParameterError, match="sampler='cmaes' optimises one objective"):
        resolve_sampler("cmaes", ("score", "n_params"))
    X, y = np.zeros((20, 2)), np.arange(20) % 2
    with pytest.raises(InvalidParameterError, match="cmaes"):
        AutoNeuralClassifier(budget=2, sampler="cmaes", objectives=("score", "latency")).fit(X, y)
    with pytest.raises(InvalidParameterError, match="prefer must be"):
        AutoNeuralClassifier(budget=2, objectives=("score", "latency"), prefer="tiniest").fit(X, y)


def _history(study, curves, tell):
    for curve in curves:
        trial = study.ask()
        for epoch, value in enumerate(curve, start=1):
            tell(trial, epoch, value)


def test_score_pruning_decides_as_the_pruner_does_in_a_single_objective_study():
    """The same history and the same pruner: the shadow of a two-objective study prunes
    exactly where a one-objective study prunes."""
    good = [[0.6, 0.7, 0.8, 0.85, 0.9]] * 5
    probe = [0.6, 0.62, 0.5, 0.45, 0.44]
    single = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(2, 1))
    for curve in good:
        t = single.ask()
        for epoch, value in enumerate(curve, start=1):
            t.report(value, epoch)
        single.tell(t, curve[-1])
    t = single.ask()
    expected = []
    for epoch, value in enumerate(probe, start=1):
        t.report(value, epoch)
        expected.append(not t.should_prune())

    multi = optuna.create_study(directions=["maximize", "minimize"])
    pruning = ScorePruning(multi, optuna.pruners.MedianPruner(2, 1))
    for curve in good:  # finished before the shadow exists: brought in from the study
        t = multi.ask()
        pruning.start(t)
        for epoch, value in enumerate(curve, start=1):
            assert pruning.report(t, epoch, value)
        pruning.finish(t, TrialState.COMPLETE, curve[-1])
        multi.tell(t, [curve[-1], 1.0])
    late = ScorePruning(multi, optuna.pruners.MedianPruner(2, 1))  # a resumed process's shadow
    t = multi.ask()
    late.start(t)
    got = [late.report(t, epoch, value) for epoch, value in enumerate(probe, start=1)]
    assert got == expected and False in got
    # The per-epoch scores are on the real trial too (the leaderboard's note, the report's curves).
    late.finish(t, TrialState.PRUNED, None)
    multi.tell(t, state=TrialState.PRUNED)
    assert multi.trials[-1].intermediate_values == dict(enumerate(probe, start=1))


@pytest.fixture(scope="module")
def latency_search():
    X, y = load_shared("magic.tsv.gz", n=800, seed=2)
    model = AutoNeuralClassifier(budget=10, space=FAST_SPACE, objectives=("score", "latency"),
                                 prefer="smallest within 0.02", random_state=0).fit(X, y)
    return model, X, y


def test_latency_search_marks_the_front_of_its_own_rows(latency_search):
    model, X, _ = latency_search
    board = model.leaderboard_
    assert [d.name for d in model.study_.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert isinstance(model.study_.sampler, optuna.samplers.NSGAIISampler)
    trials = board[board["state"] == "COMPLETE"]
    assert len(trials) >= 2 and trials["latency_ms"].notna().all() and (trials["latency_ms"] > 0).all()
    expected = brute_force_front(trials[["val_score", "latency_ms"]].to_numpy(float), ["maximize", "minimize"])
    assert trials["pareto"].tolist() == expected.tolist()
    # The leaderboard shows what the study was told.
    told = {f"network #{t.number} ({t.user_attrs.get('config', {}).get('arch', 'mlp')})": t.values
            for t in model.study_.trials if t.state == TrialState.COMPLETE}
    for _, row in trials.iterrows():
        assert list(told[row["model"]]) == pytest.approx([row["val_score"], row["latency_ms"]])
    # Other trials are never on the front; baselines have a latency and no place on it.
    assert not board.loc[board["state"].isin(["PRUNED", "FAIL"]), "pareto"].any()
    baselines = board[board["state"] == "BASELINE"]
    assert baselines["pareto"].isna().all() and (baselines["latency_ms"] > 0).all()


def test_latency_search_prunes_on_the_score_and_prefers_as_told(latency_search):
    model, X, y = latency_search
    study = model.study_
    states = [t.state for t in study.trials]
    assert TrialState.PRUNED in states  # Hyperband on the score's shadow stopped some trials
    for t in study.trials:
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
            assert sorted(t.intermediate_values) == list(range(1, len(t.intermediate_values) + 1))
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    best = max(t.values[0] for t in complete)
    front = brute_force_front(np.array([t.values for t in complete]), ["maximize", "minimize"])
    eligible = [t for t, on in zip(complete, front) if on and t.values[0] >= best - 0.02]
    assert model.best_trial_.values[1] == min(t.values[1] for t in eligible)
    assert model.best_score_ == model.best_trial_.values[0]
    # A rule that picks one network: no ensemble unless asked; the chosen configuration predicts.
    assert model.ensemble_ is None
    assert all(model.best_estimator_.get_params()[k] == v for k, v in model.best_params_.items())
    assert model.predict(X).shape == (len(X),)


def test_a_stored_study_continues_only_with_its_objectives(tmp_path):
    X, y = load_shared("magic.tsv.gz", n=300, seed=3)
    storage = f"sqlite:///{tmp_path / 's.db'}"
    settings = dict(space={"max_epochs": 3, "hidden_layers": 1, "units": (8, 16)}, storage=storage,
                    study_name="mo", baselines=False, population=False, random_state=0)
    AutoNeuralClassifier(budget=2, objectives=("score", "n_params"), **settings).fit(X, y)
    with pytest.raises(InvalidParameterError, match="objectives=\\('score', 'n_params'\\)"):
        AutoNeuralClassifier(budget=3, **settings).fit(X, y)
    again = AutoNeuralClassifier(budget=3, objectives=("score", "n_params"), **settings).fit(X, y)
    assert "pareto" in again.leaderboard_.columns and len(again.study_.trials) >= 3


def test_cli_round_trip_with_two_objectives(tmp_path):
    from click.testing import CliRunner

    from archtune.cli import cli

    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["tune", "breast_cancer", "--trials", "5", "--set", "max_epochs=6", "-q",
                                      "--no-baselines", "--objectives", "score,n_params", "--prefer",
                                      "smallest within 0.01", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Kept by prefer='smallest within 0.01': network #" in result.output
    board = pd.read_csv(out / "leaderboard.csv", index_col="rank")
    trials = board[board["state"] == "COMPLETE"]
    expected = brute_force_front(trials[["val_score", "n_params"]].to_numpy(float), ["maximize", "minimize"])
    assert trials["pareto"].astype(bool).tolist() == expected.tolist()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["settings"]["objectives"] == ["score", "n_params"]
    assert not list(out.glob("ensemble*")) and archtune.load(out).__class__.__name__.startswith("Neural")  # one network
    shown = CliRunner().invoke(cli, ["leaderboard", str(out)])
    assert shown.exit_code == 0 and "pareto" in shown.output
    report = (out / "report.html").read_text()
    assert "Pareto front" in report and ">front<" in report
    bad = CliRunner().invoke(cli, ["tune", "breast_cancer", "--trials", "2", "--objectives", "score,speed",
                                   "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "objectives must be" in bad.stderr


def test_equal_networks_are_timed_once_and_get_equal_latencies():
    from archtune import NeuralClassifier
    from archtune.data.table import Table
    from archtune.tune.data import Split
    from archtune.tune.objectives import TrialObjectives

    X, y = load_shared("magic.tsv.gz", n=200, seed=4)
    split = Split(Table.of_frame(X.iloc[:150]), y.to_numpy()[:150], Table.of_frame(X.iloc[150:]), y.to_numpy()[150:])
    study = optuna.create_study(directions=["maximize", "minimize"])
    objectives = TrialObjectives(study, ("score", "latency"), optuna.pruners.NopPruner(),
                                 lambda p: NeuralClassifier(random_state=0, verbose=0, **p), split, None)
    trials = [study.ask() for _ in range(3)]
    for trial, params in zip(trials, [{"units": 16, "learning_rate": 1e-3, "dropout": 0.0},
                                      {"units": 16, "learning_rate": 3e-2, "dropout": 0.3},
                                      {"units": 64, "learning_rate": 1e-3, "dropout": 0.0}]):
        objectives.start(trial, params)
    latencies = [study.trials[t.number].user_attrs["latency_ms"] for t in trials]
    assert latencies[0] == latencies[1] and latencies[2] != latencies[0] and min(latencies) > 0
    for trial, state in zip(trials, [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL]):
        objectives.tell(study, trial, state, 0.8 if state == TrialState.COMPLETE else None, {})
    assert study.trials[0].values == [0.8, latencies[0]]
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL]
