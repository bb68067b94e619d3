"""A search whose every trial starts from one trained network (init_from fixed in the space)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import optuna
import pytest

import archtune
from archtune import InvalidParameterError, NeuralClassifier
from archtune.auto import AutoNeuralClassifier
from archtune.fitting import ARCHITECTURE_PARAMS
from archtune.transfer.reading import read_source
from archtune.tune.space import Range, resolve_space
from tests.tables import five_class_table

optuna.logging.set_verbosity(optuna.logging.WARNING)
NEURAL_PARAMS = sorted(NeuralClassifier().get_params())
SEARCH = dict(sampler="random", pruner=None, ensemble=False, baselines=False, random_state=0)


def _table(n=160, seed=0):
    return five_class_table(n, seed)  # 5 classes


@pytest.fixture(scope="module")
def source():
    X, y = _table()
    return NeuralClassifier(hidden_layers=2, units=16, numeric_embedding=None, batch_size=32, max_epochs=3,
                            random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def saved(source, tmp_path_factory):
    return str(archtune.save(source, tmp_path_factory.mktemp("src") / "source"))


def _body_tensors(model):
    return len([n for n in model.module_.state_dict() if not n.startswith("head.")])


# --------------------------------------------------------------------------- the space


def test_a_fixed_init_from_drops_the_architecture_and_searches_the_fine_tuning():
    space = resolve_space({"init_from": "runs/source", "freeze": ["body", 2, None], "units": (16, 64)}, NEURAL_PARAMS)
    searched = {d.name for d in space.dimensions if d.kind != "fixed"}
    assert not searched & set(ARCHITECTURE_PARAMS)
    assert {"freeze", "fine_tune_lr_factor", "learning_rate"} <= searched
    # What is dropped: the default space's architecture dimensions and the user's own override.
    plain = {d.name for d in resolve_space({"units": (16, 64)}, NEURAL_PARAMS).dimensions if d.kind != "fixed"}
    assert set(space.dropped) == plain & set(ARCHITECTURE_PARAMS) and "units" in space.dropped
    assert next(d for d in space.dimensions if d.name == "freeze").choices == ("body", 2, None)
    assert resolve_space({"units": (16, 64)}, NEURAL_PARAMS).dropped == []


@pytest.mark.parametrize("space, match", [
    ({"init_from": ["runs/a", "runs/b"]}, "init_from can only be fixed"),
    ({"freeze": ["body", None]}, "does not fix init_from"),
    ({"init_from": "runs/a", "freeze": ["body", "head"]}, "freeze must be None, 'body' or a number"),
    ({"init_from": "runs/a", "fine_tune_lr_factor": Range(-1.0, 1.0)}, "fine_tune_lr_factor"),
])
def test_bad_transfer_spaces_are_refused_before_any_data_is_read(space, match):
    with pytest.raises(InvalidParameterError, match=match):
        AutoNeuralClassifier(space=space, budget=1).fit(None, None)


# --------------------------------------------------------------------------- the search


def test_every_trial_and_the_refit_start_from_the_source_one_at_a_time(source, saved, tmp_path):
    X, y = _table(n=120, seed=3)
    space = {"init_from": saved, "freeze": ["body", 1, None], "fine_tune_lr_factor": (0.03, 1.0),
             "freeze_epochs": 1, "max_epochs": 3, "units": (16, 64)}
    with pytest.warns(UserWarning, match=r"init_from is fixed: every trial uses its network's architecture "
                                         r"\(bundle .*\); not searched: .*units"):
        model = AutoNeuralClassifier(budget=5, space=space, population=True, **{**SEARCH, "baselines": True}
                                     ).fit(X, y % 3)
    trials = [t for t in model.study_.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(trials) == 5
    # Every trial's network started from the source: all its body copied (the head is new: 3 classes, not 5).
    n_body, n_all = _body_tensors(source), len(source.module_.state_dict())
    for t in trials:
        assert t.user_attrs["init_report"].startswith(f"copied {n_body} of {n_all} tensors")
        assert saved in t.user_attrs["init_report"]
        assert not set(t.params) & set(ARCHITECTURE_PARAMS)
        assert "cohort" not in t.user_attrs and "cohort_leader" not in t.user_attrs  # never stacked
    freezes = [t.params["freeze"] for t in trials]
    assert len(set(freezes)) >= 2
    networks = model.leaderboard_[model.leaderboard_["model"].str.startswith("network")]
    assert sorted(networks["params"].str.extract(r"freeze=([^,]+)")[0]) == sorted(map(str, freezes))
    assert (networks["model"].str.endswith("(mlp)")).all()
    assert (model.leaderboard_["state"] == "BASELINE").any()  # the baselines still run
    # The refit: the source's architecture, its weights as the start, init_from as given.
    best = model.best_estimator_
    assert best.model_config_ == source.model_config_ and best.init_from == saved
    assert best.lineage_[0]["step"] == "init_from" and saved in best.lineage_[0]["from"]
    assert best.lineage_[0]["copied"] == n_body
    assert model.best_params_["init_from"] == saved and model.best_params_["freeze"] == model.best_trial_.params["freeze"]
    assert model.study_.user_attrs["init_from"]["path"] == saved
    assert model.study_.user_attrs["init_from"]["origin"] == read_source(saved).origin
    # Saved and loaded: the lineage and the predictions survive.
    again = archtune.load(archtune.save(best, tmp_path / "best"))
    assert again.lineage_ == best.lineage_ and again.init_from == saved
    np.testing.assert_array_equal(again.predict_proba(X), best.predict_proba(X))


def test_cross_validation_starts_each_fold_from_the_source(source, saved):
    X, y = _table(n=120, seed=4)
    model = AutoNeuralClassifier(budget=2, cv=2, space={"init_from": saved, "freeze_epochs": 1, "max_epochs": 2},
                                 **SEARCH).fit(X, y % 2)
    for t in model.study_.trials:
        assert len(t.user_attrs["fold_scores"]) == 2
        assert np.mean(t.user_attrs["fold_scores"]) == pytest.approx(t.value)
    assert model.best_estimator_.lineage_[0]["copied"] == _body_tensors(source)


def test_an_object_init_from_is_read_once_and_a_resume_needs_it_again(source, tmp_path):
    X, y = _table(n=120, seed=5)
    storage = f"sqlite:///{tmp_path / 's.db'}"
    space = {"init_from": source, "freeze": ["body", None], "freeze_epochs": 1, "max_epochs": 2}
    settings = dict(storage=storage, study_name="s", **SEARCH)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        first = AutoNeuralClassifier(budget=2, space=space, **settings).fit(X, y % 2)
    stored = first.study_.user_attrs["space"]["overrides"]["init_from"]
    assert stored == {"object": "a fitted NeuralClassifier (5 classes)"}
    assert first.study_.user_attrs["init_from"]["path"] is None
    assert first.best_estimator_.init_from is source
    for again in ("default", {"fine_tune_lr_factor": (0.1, 1.0)}):
        with pytest.raises(InvalidParameterError, match=r"searched from an init_from object \(a fitted "
                                                        r"NeuralClassifier \(5 classes\)\).*pass it again"):
            AutoNeuralClassifier(budget=3, space=again, **settings).fit(X, y % 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        resumed = AutoNeuralClassifier(budget=3, space=space, **settings).fit(X, y % 2)
    assert len(resumed.study_.trials) == 3
    assert all(t.user_attrs["init_report"].endswith("new: head.weight, head.bias") for t in resumed.study_.trials)


def test_a_source_that_does_not_fit_the_data_is_refused_before_any_trial(saved):
    X, _ = _table(n=60)
    with pytest.raises(archtune.DataError, match="shares no column with init_from's network"):
        AutoNeuralClassifier(budget=2, space={"init_from": saved}, **SEARCH).fit(
            X.rename(columns={"a": "p", "b": "q", "c": "r"}), np.arange(60) % 2)


# --------------------------------------------------------------------------- the CLI


def test_cli_tune_init_from_round_trip_and_resume(source, saved, tmp_path):
    from click.testing import CliRunner

    from archtune.cli import cli

    X, y = _table(n=120, seed=6)
    data = tmp_path / "few.csv"
    X.assign(label=y % 3).to_csv(data, index=False)
    out = tmp_path / "run"
    args = ["tune", str(data), "--target", "label", "--sampler", "random", "--pruner", "none", "--no-baselines",
            "--no-ensemble", "--no-report", "-q", "--out", str(out)]
    result = CliRunner().invoke(cli, [*args, "--trials", "2", "--init-from", saved, "--space", "freeze=body,none",
                                      "--set", "max_epochs=2", "--set", "freeze_epochs=1"])
    assert result.exit_code == 0, result.output
    assert "note: init_from is fixed: every trial uses its network's architecture" in result.output
    model = archtune.load(out)
    assert model.init_from == saved and saved in model.lineage_[0]["from"]
    assert model.model_config_ == source.model_config_
    assert json.loads((out / "metrics.json").read_text())["settings"]["init_from"] == saved
    # --resume without --init-from (nor the space): the study keeps the path, the new trial starts from it.
    result = CliRunner().invoke(cli, [*args, "--trials", "3", "--resume"])
    assert result.exit_code == 0, result.output
    study = optuna.load_study(study_name="archtune", storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == 3 and all(saved in t.user_attrs["init_report"] for t in study.trials)
    assert {t.params["freeze"] for t in study.trials} <= {"body", None}


def test_a_new_zero_head_that_the_first_step_leaves_at_zero_is_not_a_dead_network(saved):
    # 96 training rows in one batch: an epoch is one step, and coslog's first step has rate 0,
    # so after epoch 1 the new head (which starts at zero) still gives every row the same output.
    X, y = _table(n=120, seed=7)
    model = AutoNeuralClassifier(budget=1, space={"init_from": saved, "lr_schedule": "coslog", "batch_size": 256,
                                                  "freeze": "body", "freeze_epochs": 1, "max_epochs": 3},
                                 **SEARCH).fit(X, y % 3)
    assert [t.state.name for t in model.study_.trials] == ["COMPLETE"]
    assert list(model.best_estimator_.history_["phase"]) == ["head", "fine_tune", "fine_tune"]
