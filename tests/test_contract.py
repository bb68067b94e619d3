"""The contract every artefact keeps, as a matrix of cells (issue 28):

task {binary, multiclass, regression, two-output regression}
x artefact {network, bag, ensemble with a LightGBM member, pruned, distilled, fine-tuned}
x entry {Python: archtune.save / archtune.load; CLI: archtune predict / info / report / export}

- what is saved predicts what the model predicted before saving (Python), and the CLI's
  predictions of the saved directory equal Python's;
- ``predict_proba`` exists for classifiers only (``hasattr`` tells the truth);
- ``info`` describes it, ``report`` writes a page or refuses by name, ``export`` writes an
  ONNX file or refuses by name; no cell ends in a traceback.

The artefacts are tiny (a few hundred rows, two epochs, 16 units) and built once per task, so
the matrix runs in about a minute; no search runs here (tests/test_search_artefact.py saves
real searches).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.base import is_classifier

import archtune
from archtune.cli import cli
from tests.conftest import load_shared

TASKS = ("binary", "multiclass", "regression", "two-output")
ARTEFACTS = ("network", "bag", "ensemble", "pruned", "distilled", "fine-tuned")
SMALL = {"max_epochs": 2, "hidden_layers": 1, "units": 16, "numeric_embedding": None, "random_state": 0,
         "verbose": 0}


def _data(task: str):
    """(X_train, y_train, X_test, y_test) of a real table for ``task``."""
    if task == "binary":
        X, y = load_shared("magic.tsv.gz", n=400, seed=1)
    elif task == "multiclass":
        X, y = load_shared("satimage.tsv.gz", n=400, seed=1)
        X = X.iloc[:, :12]
    else:
        X, y = load_shared("574_house_16H.tsv.gz", n=400, seed=1)
        if task == "two-output":  # a second target: one of the columns, taken out of X
            y = pd.DataFrame({"target": y.to_numpy(), "P1": X.pop("P1").to_numpy()})
    y = y.to_numpy()
    return X.iloc[:300], y[:300], X.iloc[300:], y[300:]


def _neural(task: str, **params):
    cls = archtune.NeuralClassifier if task in ("binary", "multiclass") else archtune.NeuralRegressor
    return cls(**{**SMALL, **params})


def _build(task: str, kind: str, tmp_path_factory) -> tuple:
    from archtune.ensemble.bagging import bag
    from archtune.ensemble.gbm import LightGBMTableClassifier, LightGBMTableRegressor
    from archtune.ensemble.model import Member, make_ensemble
    from archtune.task import CLASSIFICATION, REGRESSION

    X, y, X_test, y_test = _data(task)
    the_task = CLASSIFICATION if task in ("binary", "multiclass") else REGRESSION
    network = _neural(task).fit(X, y)
    if kind == "network":
        return network, X_test
    if kind == "bag":
        scorer = "accuracy" if the_task.is_classification else "r2"
        from sklearn.metrics import get_scorer

        made = bag(lambda params: _neural(task, **params), {}, X, y, 2, the_task.name, get_scorer(scorer), seed=0,
                   columns=list(X.columns))
        assert made is not None
        return made, X_test
    if kind in ("ensemble", "distilled"):
        gbm = (LightGBMTableClassifier if the_task.is_classification else LightGBMTableRegressor)(
            kinds={c: "numeric" for c in X.columns}, random_state=0).fit(X, y)
        ensemble = make_ensemble(the_task.name, [Member("network #0 (mlp)", network, "network", 0.5, 0),
                                                 Member("lightgbm", gbm, "lightgbm", 0.6)], np.array([0.4, 0.6]),
                                 np.unique(y) if the_task.is_classification else None, columns=list(X.columns))
        if kind == "ensemble":
            return ensemble, X_test
        return archtune.distill(ensemble, X, y, _neural(task), random_state=0), X_test
    if kind == "pruned":
        pruned, _ = archtune.prune(network, X, y, step=0.5, max_score_drop=1.0, max_rounds=1, fine_tune_epochs=1,
                                   random_state=0)
        return pruned, X_test
    if kind == "fine-tuned":
        source = tmp_path_factory.mktemp("source")
        archtune.save(network, source)
        return _neural(task, init_from=str(source)).fit(X, y), X_test
    raise AssertionError(kind)


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory):
    """Every (task, artefact) cell's model, its test rows and its saved directory, built once."""
    built = {}
    for task in TASKS:
        for kind in ARTEFACTS:
            model, X_test = _build(task, kind, tmp_path_factory)
            directory = tmp_path_factory.mktemp(f"{task}-{kind}")
            archtune.save(model, directory)
            data = directory.parent / f"{directory.name}.csv"
            X_test.to_csv(data, index=False)
            built[task, kind] = (model, X_test, directory, data)
    return built


def _predictions(model, X) -> tuple[np.ndarray, np.ndarray | None]:
    predicted = model.predict(X)
    return predicted, (model.predict_proba(X) if is_classifier(model) else None)


CELLS = [(task, kind) for task in TASKS for kind in ARTEFACTS]


@pytest.mark.parametrize("task, kind", CELLS)
def test_python_save_and_load_predicts_what_was_saved(artefacts, task, kind):
    model, X_test, directory, _ = artefacts[task, kind]
    loaded = archtune.load(directory)
    before, proba_before = _predictions(getattr(model, "ensemble", model), X_test)
    after, proba_after = _predictions(loaded, X_test)
    np.testing.assert_array_equal(before, after) if task in ("binary", "multiclass") else \
        np.testing.assert_allclose(after, before, rtol=0, atol=1e-9)
    if proba_before is not None:
        np.testing.assert_allclose(proba_after, proba_before, rtol=0, atol=1e-9)
    classifier = task in ("binary", "multiclass")
    assert is_classifier(loaded) is classifier
    assert hasattr(loaded, "predict_proba") is classifier  # a regressor has none, not one that raises
    if task == "two-output":
        assert after.shape == (len(X_test), 2)


@pytest.mark.parametrize("task, kind", CELLS)
def test_cli_predict_equals_python(artefacts, task, kind):
    _, X_test, directory, data = artefacts[task, kind]
    result = CliRunner().invoke(cli, ["predict", str(directory), str(data)])
    assert result.exit_code == 0, result.output
    printed = pd.read_csv(__import__("io").StringIO(result.stdout))
    loaded = archtune.load(directory)
    predicted, proba = _predictions(loaded, X_test)
    if predicted.ndim == 2:
        np.testing.assert_array_equal(printed[[f"prediction_{j}" for j in range(2)]].to_numpy(), predicted)
    elif proba is None:
        np.testing.assert_array_equal(printed["prediction"].to_numpy(), predicted)
    else:
        assert [str(v) for v in printed["prediction"]] == [str(v) for v in predicted]
        np.testing.assert_array_equal(printed[[f"proba_{c}" for c in loaded.classes_]].to_numpy(), proba)
    assert bool([c for c in printed.columns if c.startswith("proba_")]) is (proba is not None)


@pytest.mark.parametrize("task, kind", CELLS)
def test_cli_info_describes_every_artefact(artefacts, task, kind):
    _, _, directory, _ = artefacts[task, kind]
    result = CliRunner().invoke(cli, ["info", str(directory)])
    assert result.exit_code == 0, result.output
    expected = "Ensemble" if kind in ("bag", "ensemble") else "Neural"
    assert expected in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("task, kind", CELLS)
def test_cli_report_writes_a_page_or_refuses_by_name(artefacts, task, kind, tmp_path):
    _, _, directory, _ = artefacts[task, kind]
    page = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["report", str(directory), "-o", str(page)])
    if kind in ("bag", "ensemble"):  # a bare ensemble bundle is no run: the refusal names what to give
        assert result.exit_code != 0 and "an ensemble bundle; `archtune report` takes a run folder" in result.output
        assert "Traceback" not in result.output and not page.exists()
    else:
        assert result.exit_code == 0, result.output
        assert page.stat().st_size > 1000


@pytest.mark.parametrize("task, kind", CELLS)
def test_cli_export_writes_onnx_or_refuses_by_name(artefacts, task, kind, tmp_path):
    pytest.importorskip("onnxruntime", reason="the onnx extra (pip install 'archtune[onnx]') is not installed")
    model, X_test, directory, _ = artefacts[task, kind]
    target = tmp_path / "model.onnx"
    result = CliRunner().invoke(cli, ["export", str(directory), "--out", str(target)])
    if kind in ("bag", "ensemble"):
        assert result.exit_code != 0 and "cannot be exported as one network" in result.output
        assert "Traceback" not in result.output and not target.exists()
        return
    assert result.exit_code == 0, result.output
    import onnxruntime

    session = onnxruntime.InferenceSession(str(target))
    assert session.get_inputs()  # a graph that loads; tests/test_export.py compares its outputs with predict


@pytest.mark.parametrize("task, kind", CELLS)
def test_cli_intervals_equal_python_or_are_refused_by_name(artefacts, task, kind):
    """`archtune predict --interval 0.9`: every regressor calibrated on rows it did not train
    on gives Python's `predict_interval`; an ensemble made by `make_ensemble` alone has no
    calibration and a classifier has no intervals, both refused by name."""
    _, X_test, directory, data = artefacts[task, kind]
    result = CliRunner().invoke(cli, ["predict", str(directory), str(data), "--interval", "0.9"])
    loaded = archtune.load(directory)
    if task in ("binary", "multiclass"):
        assert result.exit_code != 0 and "--interval:" in result.output and "holds a classifier" in result.output
        assert not hasattr(loaded, "predict_interval")
        return
    if kind == "ensemble":  # make_ensemble alone: nothing held out to calibrate on
        assert result.exit_code != 0 and "regressor without a calibration" in result.output
        return
    assert result.exit_code == 0, result.output
    printed = pd.read_csv(__import__("io").StringIO(result.stdout))
    lower, upper = loaded.predict_interval(X_test, coverage=0.9)
    if task == "two-output":
        np.testing.assert_allclose(printed[["lower_0", "lower_1"]].to_numpy(), lower)
        np.testing.assert_allclose(printed[["upper_0", "upper_1"]].to_numpy(), upper)
    else:
        np.testing.assert_allclose(printed["lower"].to_numpy(), lower)
        np.testing.assert_allclose(printed["upper"].to_numpy(), upper)
    assert (upper > lower).all()


@pytest.mark.parametrize("task, kind", CELLS)
def test_cli_prediction_sets_equal_python_or_are_refused_by_name(artefacts, task, kind):
    """`archtune predict --set 0.9`: every classifier calibrated on rows it did not train on
    gives Python's `predict_set` (a set_<label> column per class, the predicted class always in
    its set); an ensemble made by `make_ensemble` alone has no calibration and a regressor has
    no prediction sets, both refused by name."""
    _, X_test, directory, data = artefacts[task, kind]
    result = CliRunner().invoke(cli, ["predict", str(directory), str(data), "--set", "0.9"])
    loaded = archtune.load(directory)
    if task not in ("binary", "multiclass"):
        assert result.exit_code != 0 and "--set:" in result.output and "holds a regressor" in result.output
        assert not hasattr(loaded, "predict_set")
        return
    if kind == "ensemble":  # make_ensemble alone: nothing held out to calibrate on
        assert result.exit_code != 0 and "classifier without a calibration" in result.output
        return
    assert result.exit_code == 0, result.output
    printed = pd.read_csv(__import__("io").StringIO(result.stdout))
    inside = loaded.predict_set(X_test, coverage=0.9)
    columns = [f"set_{label}" for label in loaded.classes_]
    np.testing.assert_array_equal(printed[columns].to_numpy(), inside.astype(int))
    predicted = np.searchsorted(loaded.classes_, loaded.predict(X_test))
    assert inside[np.arange(len(predicted)), predicted].all()
