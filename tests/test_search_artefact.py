"""A search ends with one final model, and what a run saves is what it predicts: from Python
(`archtune.save` / `archtune.load`) and from the CLI (`archtune tune` then `predict`, `info`)
alike, for every task, with an ensemble, a bag or a network as the final model (issue 28)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import archtune
from archtune.auto import AutoNeuralClassifier, AutoNeuralRegressor
from archtune.cli import cli
from archtune.ensemble.model import EnsembleClassifier, EnsembleRegressor
from archtune.errors import BundleError, SaveError
from tests.conftest import load_shared

TINY = {"max_epochs": 2, "units": (16, 32), "hidden_layers": 1, "numeric_embedding": None}


def _table(task: str, n: int = 500):
    if task == "binary":
        X, y = load_shared("magic.tsv.gz", n=n, seed=4)
    elif task == "multiclass":
        X, y = load_shared("satimage.tsv.gz", n=n, seed=4)
        X = X.iloc[:, :12]
    else:
        X, y = load_shared("574_house_16H.tsv.gz", n=n, seed=4)
        if task == "two-output":
            return X.drop(columns="P1"), pd.DataFrame({"target": y.to_numpy(), "P1": X["P1"].to_numpy()})
    return X, y


def _search(task: str, **params):
    X, y = _table(task)
    cls = AutoNeuralClassifier if task in ("binary", "multiclass") else AutoNeuralRegressor
    model = cls(**{"budget": 2, "space": TINY, "population": False, "random_state": 0, **params})
    return model.fit(X.iloc[:400], y.iloc[:400]), X.iloc[400:]


def _strict_json(path: Path):
    def refuse(constant):
        raise ValueError(f"{path}: {constant} is not JSON")
    return json.loads(path.read_text(), parse_constant=refuse)


# The kind of final model each seeded search selects (pinned: a change of outcome is a change
# to look at, not a pass either way).
FINAL = {"binary": EnsembleClassifier, "multiclass": EnsembleClassifier, "regression": EnsembleRegressor,
         "two-output": EnsembleRegressor}


@pytest.mark.parametrize("task", list(FINAL))
def test_a_saved_search_predicts_what_it_predicted_before_saving(task, tmp_path):
    model, X_test = _search(task)
    assert type(model.final_estimator_) is FINAL[task]
    before = model.predict(X_test)
    archtune.save(model, tmp_path / "run")
    loaded = archtune.load(tmp_path / "run")
    assert type(loaded) is FINAL[task]
    network = archtune.load(tmp_path / "run", best_network=True)  # kept for --best-network
    if task in ("binary", "multiclass"):
        assert (loaded.predict(X_test) == before).all()
        np.testing.assert_allclose(loaded.predict_proba(X_test), model.predict_proba(X_test), rtol=0, atol=1e-9)
        np.testing.assert_allclose(network.predict_proba(X_test), model.best_estimator_.predict_proba(X_test),
                                   rtol=0, atol=1e-9)
    else:
        np.testing.assert_allclose(loaded.predict(X_test), before, rtol=0, atol=1e-9)
        np.testing.assert_allclose(network.predict(X_test), model.best_estimator_.predict(X_test), rtol=0, atol=1e-9)
        assert not hasattr(model, "predict_proba") and not hasattr(loaded, "predict_proba")
        assert before.shape == ((len(X_test), 2) if task == "two-output" else (len(X_test),))
    # The CLI predicts what Python's archtune.load predicts.
    data = tmp_path / "test.csv"
    X_test.to_csv(data, index=False)
    result = CliRunner().invoke(cli, ["predict", str(tmp_path / "run"), str(data)])
    assert result.exit_code == 0, result.output
    printed = pd.read_csv(io.StringIO(result.stdout))
    if task == "two-output":
        np.testing.assert_array_equal(printed[["prediction_0", "prediction_1"]].to_numpy(), before)
    elif task == "regression":
        np.testing.assert_array_equal(printed["prediction"].to_numpy(), before)
        assert not [c for c in printed.columns if c.startswith("proba_")]
    else:
        assert [str(v) for v in printed["prediction"]] == [str(v) for v in before]


def test_tune_then_predict_on_a_regression_table_where_baselines_win(tmp_path):
    """The first regression fault: `predict` after `tune` ended in a traceback whenever an
    ensemble or a baseline predicted (hasattr(..., "predict_proba") was True)."""
    X, y = load_shared("574_house_16H.tsv.gz", n=900, seed=5)
    X.iloc[:700].assign(MedHouseVal=y.iloc[:700]).to_csv(tmp_path / "train.csv", index=False)
    X.iloc[700:].to_csv(tmp_path / "test.csv", index=False)
    out = tmp_path / "run"
    tuned = CliRunner().invoke(cli, ["tune", str(tmp_path / "train.csv"), "--target", "MedHouseVal", "--trials", "2",
                                     "--set", "max_epochs=1", "-q", "--no-report", "--out", str(out)])
    assert tuned.exit_code == 0, tuned.output
    metrics = _strict_json(out / "metrics.json")
    assert metrics["final"]["kind"] == "ensemble"  # the seeded search: baselines predict, not the network
    predicted = CliRunner().invoke(cli, ["predict", str(out), str(tmp_path / "test.csv")])
    assert predicted.exit_code == 0, predicted.output
    printed = pd.read_csv(io.StringIO(predicted.stdout))
    assert list(printed.columns) == ["prediction"]
    final = archtune.load(out)
    assert isinstance(final, EnsembleRegressor) and not hasattr(final, "predict_proba")
    np.testing.assert_array_equal(printed["prediction"].to_numpy(), final.predict(X.iloc[700:]))
    info = CliRunner().invoke(cli, ["info", str(out)])
    assert info.exit_code == 0 and "predicts:     the ensemble in" in info.output


def test_tune_with_bagging_saves_a_run_with_strict_json_everywhere(tmp_path):
    """The bagging fault: the bag's members entered the saved ensemble with NaN scores, a
    literal NaN was written and the run ended without its network bundle."""
    X, y = load_shared("magic.tsv.gz", n=500, seed=6)
    X.assign(y=y).to_csv(tmp_path / "cls.csv", index=False)
    out = tmp_path / "run"
    tuned = CliRunner().invoke(cli, ["tune", str(tmp_path / "cls.csv"), "--target", "y", "--bagging", "3",
                                     "--trials", "2", "--set", "max_epochs=2", "--holdout", "0.2", "-q",
                                     "--no-baselines", "--out", str(out)])
    assert tuned.exit_code == 0, tuned.output
    files = sorted(out.rglob("*.json"))
    assert len(files) == 7  # the network, the bag's ensemble and its 3 members, metrics, evaluation
    for path in files:
        _strict_json(path)
    for name in ("archtune.json", "leaderboard.csv", "metrics.json", "report.html", "evaluation.json"):
        assert (out / name).is_file(), name
    final = archtune.load(out)
    assert isinstance(final, EnsembleClassifier)
    # The seeded search's outcome: no ensemble holds up, so the bag predicts (bagging replaces the refit).
    assert [m.name for m in final.members] == ["bag member 1", "bag member 2", "bag member 3"]
    assert all(np.isfinite(m.val_score) for m in final.members)  # each scored on the fold it did not see
    assert "the bag of 3" in tuned.output and "predicts" in tuned.output
    info = CliRunner().invoke(cli, ["info", str(out)])
    assert info.exit_code == 0 and "NeuralClassifier" in info.output and "bag member 3  (alone 0." in info.output


@pytest.mark.parametrize("bagging", [None, 3])
def test_a_two_output_regression_search_ensembles_every_output(bagging):
    """The multi-output fault: ensemble members kept the first output only."""
    model, X_test = _search("two-output", bagging=bagging)
    X, Y = _table("two-output")
    predicted = model.predict(X_test)
    assert predicted.shape == (len(X_test), 2)
    assert model.score(X_test, Y.iloc[400:]) > 0.0
    if bagging:
        assert model.bag_.oof.shape == (400, 2)
    members = model.final_estimator_.members
    assert all(m.prediction(X_test, None).shape == (len(X_test), 2) for m in members)


def test_a_save_that_fails_leaves_the_previous_run_as_it_was(tmp_path, monkeypatch):
    first, X_test = _search("regression")
    second, _ = _search("regression", random_state=1)
    run = tmp_path / "run"
    archtune.save(first, run)
    expected = first.predict(X_test)

    import archtune.bundles.network as bundle_io

    def failing(*args, **kwargs):
        raise SaveError(f"{run}: disk full")

    monkeypatch.setattr(bundle_io, "save", failing)
    with pytest.raises(SaveError):
        archtune.save(second, run)
    monkeypatch.undo()
    np.testing.assert_array_equal(archtune.load(run).predict(X_test), expected)
    # Nothing of the failed save is left: no scratch folder, no second ensemble.
    from archtune.bundles.search import final_ensemble_dir

    folder = final_ensemble_dir(run)
    assert [p.name for p in run.iterdir() if p.name.startswith((".ensemble-", "ensemble-"))] == [folder.name]
    # An ensemble that is not the one its network's description names is refused by name.
    meta = json.loads((folder / "archtune.json").read_text())
    meta["val_score"] = 0.5
    (folder / "archtune.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="not the one saved with"):
        archtune.load(run)
    result = CliRunner().invoke(cli, ["predict", str(run), str(tmp_path / "none.csv")])
    assert result.exit_code != 0 and "Traceback" not in result.output


def test_a_network_saved_over_an_older_run_is_what_loads(tmp_path):
    """A run saved before the final model was named kept its ensemble in ensemble/: a network
    saved there later names itself as what predicts, and the user's own folders stay."""
    from archtune.bundles.ensemble import save_ensemble
    from archtune.ensemble.gbm import LightGBMTableRegressor
    from archtune.ensemble.model import Member, make_ensemble

    X, y = _table("regression", n=300)
    network = archtune.NeuralRegressor(max_epochs=2, units=16, hidden_layers=1, random_state=0).fit(X, y)
    gbm = LightGBMTableRegressor(kinds={c: "numeric" for c in X.columns}).fit(X, y)
    run = tmp_path / "run"
    save_ensemble(make_ensemble("regression", [Member("lightgbm", gbm, "lightgbm", 0.5)], np.ones(1)),
                  run / "ensemble")  # as an older archtune left it
    (run / "ensemble-notes").mkdir(parents=True)  # a folder of the user's
    (run / "ensemble-notes" / "todo.txt").write_text("keep me")
    archtune.save(network, run)
    np.testing.assert_array_equal(archtune.load(run).predict(X), network.predict(X))
    assert (run / "ensemble-notes" / "todo.txt").read_text() == "keep me"
    # A scikit-learn search over a network saves its refitted best network.
    from sklearn.model_selection import GridSearchCV

    search = GridSearchCV(archtune.NeuralRegressor(max_epochs=1, hidden_layers=1, random_state=0),
                          {"units": [8, 16]}, cv=2).fit(X, y)
    archtune.save(search, tmp_path / "grid")
    np.testing.assert_array_equal(archtune.load(tmp_path / "grid").predict(X), search.predict(X))


def test_a_two_output_search_saves_a_run_and_its_report(tmp_path):
    from archtune.report.html import section_data
    from archtune.run_folder import save_search_run

    model, X_test = _search("two-output")
    _, Y = _table("two-output")
    out = tmp_path / "run"
    report = save_search_run(model, out, {"task": "regression", "metric": "r2"}, X_test, Y.iloc[400:], seed=0)
    assert report["holdout"]["r2"] == pytest.approx(model.score(X_test, Y.iloc[400:]))
    evaluation = _strict_json(out / "evaluation.json")
    assert evaluation["n_outputs"] == 2 and len(evaluation["points"]["actual"]) == len(X_test)
    assert evaluation["points"]["actual"] == Y.iloc[400:, 0].tolist()  # the first output's points
    result = CliRunner().invoke(cli, ["report", str(out)])
    assert result.exit_code == 0, result.output
    data = section_data((out / "report.html").read_text())
    assert data["holdout"]["metrics"]["r2"] == pytest.approx(report["holdout"]["r2"])


def test_a_run_saved_before_the_final_model_was_named_still_predicts_with_its_ensemble(tmp_path):
    """Runs written before 2026-12 kept the ensemble in ensemble/ and no "final" field."""
    from archtune.bundles.format import DESCRIPTION_KEY, description_digest
    from archtune.bundles.ensemble import save_ensemble
    from archtune.ensemble.gbm import LightGBMTableRegressor
    from archtune.ensemble.model import Member, make_ensemble

    X, y = _table("regression", n=300)
    network = archtune.NeuralRegressor(max_epochs=2, units=16, hidden_layers=1, random_state=0).fit(X, y)
    gbm = LightGBMTableRegressor(kinds={c: "numeric" for c in X.columns}).fit(X, y)
    run = tmp_path / "old-run"
    archtune.save(network, run)
    meta = json.loads((run / "archtune.json").read_text())
    del meta["final"]
    meta[DESCRIPTION_KEY] = description_digest(meta)
    (run / "archtune.json").write_text(json.dumps(meta))
    ensemble = make_ensemble("regression", [Member("lightgbm", gbm, "lightgbm", 0.5)], np.ones(1))
    save_ensemble(ensemble, run / "ensemble")
    np.testing.assert_array_equal(archtune.load(run).predict(X), gbm.predict(X))
    np.testing.assert_array_equal(archtune.load(run, best_network=True).predict(X), network.predict(X))
