"""Export to ONNX and TorchScript: the exported file, run by onnxruntime (or torch.jit) on raw
columns, predicts what the model predicts on every row of a shared table with categorical
and missing values."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

import archtune
from archtune import NeuralClassifier, NeuralRegressor
from archtune.errors import BundleError, InvalidParameterError
from archtune.exporting.ops import interp, interp_table, ndtri
from archtune.exporting.torchscript import encode
from tests.conftest import load_shared

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CATEGORICAL = ["workclass", "education", "marital-status", "occupation", "relationship", "race", "sex",
               "native-country"]
SETTINGS = {"max_epochs": 3, "random_state": 0, "units": 64}


@pytest.fixture(scope="module")
def ort():
    return pytest.importorskip("onnxruntime", reason="onnxruntime is not installed: pip install 'archtune[onnx]'")


@pytest.fixture(scope="module")
def adult() -> pd.DataFrame:
    """2000 rows of adult: its coded categoricals as strings, 10% of three numeric columns
    missing, and a few categorical values missing."""
    X, y = load_shared("adult.tsv.gz", n=2000)
    X = X.copy()
    for name in CATEGORICAL:
        X[name] = "c" + X[name].astype(str)
    rng = np.random.default_rng(0)
    for name in ["age", "fnlwgt", "capital-gain"]:
        X.loc[rng.random(len(X)) < 0.1, name] = np.nan
    for name in ["occupation", "sex"]:
        X[name] = X[name].astype(object)
        X.loc[rng.random(len(X)) < 0.02, name] = None
    return X.assign(target=y)


def _classifier(adult: pd.DataFrame, scaling: str = "robust") -> NeuralClassifier:
    return NeuralClassifier(scaling=scaling, **SETTINGS).fit(adult.drop(columns="target"), adult["target"])


@pytest.fixture(scope="module")
def classifier(adult):
    return _classifier(adult)  # the default settings: robust scaling, piecewise-linear embeddings


@pytest.fixture(scope="module")
def regressor(adult):
    X = adult.drop(columns=["target", "hours-per-week"])
    return NeuralRegressor(**SETTINGS).fit(X, adult["hours-per-week"])


def _feed(frame: pd.DataFrame, session) -> dict[str, np.ndarray]:
    """onnxruntime's inputs for raw rows: numbers as float64 (NaN missing), categories as
    strings ("" for missing)."""
    feed = {}
    for spec in session.get_inputs():
        column = frame[spec.name]
        if spec.type == "tensor(double)":
            feed[spec.name] = column.to_numpy(dtype="float64", na_value=np.nan)
        else:
            feed[spec.name] = np.array(["" if pd.isna(v) else str(v) for v in column], dtype=object)
    return feed


def _session(ort, path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


_EXPORTED: dict[int, tuple] = {}  # one export per model for the module (each takes seconds)


def _run(ort, model, frame, tmp_path):
    """The exported graph's outputs on ``frame`` (by name), and what `export` returned."""
    if id(model) not in _EXPORTED:
        exported = archtune.export(model, tmp_path / "model.onnx")
        _EXPORTED[id(model)] = (model, exported, _session(ort, exported.path))
    _, exported, session = _EXPORTED[id(model)]
    outputs = session.run(None, _feed(frame, session))
    return dict(zip([o.name for o in session.get_outputs()], outputs)), exported


# --------------------------------------------------------------------------- ONNX equals predict


# Each export takes seconds (torch's exporter): the other scalings are variations, run by CI.
@pytest.mark.parametrize("scaling", ["robust", pytest.param("standard", marks=pytest.mark.slow),
                                     pytest.param("quantile", marks=pytest.mark.slow)])
def test_onnx_classifier_equals_predict_proba_on_every_row(ort, adult, classifier, scaling, tmp_path):
    model = classifier if scaling == "robust" else _classifier(adult, scaling)
    X = adult.drop(columns="target")
    out, exported = _run(ort, model, X, tmp_path)
    proba = model.predict_proba(X)
    assert out["probabilities"].shape == proba.shape == (len(X), 2)
    assert np.abs(out["probabilities"] - proba).max() <= 1e-5
    assert np.array_equal(out["label"], model.predict(X))
    assert [name for name, _ in exported.inputs] == list(X.columns)


def test_onnx_regressor_equals_predict_in_the_targets_units(ort, adult, regressor, tmp_path):
    X = adult.drop(columns=["target", "hours-per-week"])
    out, _ = _run(ort, regressor, X, tmp_path)
    expected = regressor.predict(X)
    assert out["prediction"].shape == expected.shape == (len(X),)
    # The network computes in float32 (onnxruntime's and torch's kernels round differently):
    # compared in standardised units, the units of the network's output.
    assert np.abs(out["prediction"] - expected).max() / regressor.target_scale_[0] <= 1e-5
    # The clamp to the training range is in the graph: extreme inputs stay inside it.
    extreme = X.iloc[:50].copy()
    extreme[["age", "fnlwgt", "capital-gain"]] = [[1e6, 1e9, 1e9]] * 50
    far, _ = _run(ort, regressor, extreme, tmp_path)
    y = adult["hours-per-week"]
    assert far["prediction"].min() >= y.min() - 1e-9 and far["prediction"].max() <= y.max() + 1e-9
    assert np.abs(far["prediction"] - regressor.predict(extreme)).max() / regressor.target_scale_[0] <= 1e-5


def test_an_unknown_or_missing_level_is_coded_as_archtune_codes_it(ort, adult, classifier, tmp_path):
    X = adult.drop(columns="target").iloc[:200].reset_index(drop=True)
    unknown = X.assign(**{"native-country": "atlantis", "occupation": "astronaut"})
    missing = X.assign(**{"native-country": None, "occupation": None})
    out_unknown, _ = _run(ort, classifier, unknown, tmp_path)
    out_missing, _ = _run(ort, classifier, missing, tmp_path)
    # Oracle 1: archtune's own prediction for the unknown levels.
    assert np.abs(out_unknown["probabilities"] - classifier.predict_proba(unknown)).max() <= 1e-5
    # Oracle 2: an unknown level and a missing value share code 0.
    assert np.array_equal(out_unknown["probabilities"], out_missing["probabilities"])
    assert not np.allclose(out_unknown["probabilities"], classifier.predict_proba(X))  # the change mattered


def test_a_single_row_and_string_labels(ort, adult, tmp_path):
    labels = np.where(adult["target"] == 1, "high", "low")
    X = adult.drop(columns="target")
    model = NeuralClassifier(**SETTINGS).fit(X, labels)
    out, exported = _run(ort, model, X.iloc[[7]], tmp_path)
    assert out["label"].tolist() == model.predict(X.iloc[[7]]).tolist()
    assert exported.outputs[0] == ("label", "string [rows]")
    assert np.abs(out["probabilities"] - model.predict_proba(X.iloc[[7]])).max() <= 1e-5


def test_the_network_alone_takes_the_preprocessed_matrix(ort, adult, classifier, tmp_path):
    X = adult.drop(columns="target").iloc[:300]
    exported = archtune.export(classifier, tmp_path / "net.onnx", include_preprocessing=False)
    session = _session(ort, exported.path)
    matrix = classifier.preprocessor_.transform(X)
    (logits,) = session.run(None, {"X": matrix})
    with torch.no_grad():
        expected = classifier.module_(torch.from_numpy(matrix)).numpy()
    assert np.abs(logits - expected).max() <= 1e-5


# --------------------------------------------------------------------------- TorchScript


@pytest.mark.parametrize("task", ["classifier", "regressor"])
def test_torchscript_round_trip_equals_predict(adult, classifier, regressor, task, tmp_path):
    model = classifier if task == "classifier" else regressor
    X = adult.drop(columns=["target"] + ([] if task == "classifier" else ["hours-per-week"]))
    exported = archtune.export(model, tmp_path / "model.pt", format="torchscript")
    module = torch.jit.load(str(exported.path))
    description = json.loads(exported.description_path.read_text())
    with torch.no_grad():
        out = module(*encode(description, X))
    if task == "classifier":
        label_index, proba = out
        assert np.abs(proba.numpy() - model.predict_proba(X)).max() <= 1e-12
        assert np.array_equal(np.asarray(description["classes"])[label_index.numpy()], model.predict(X))
    else:
        assert np.abs(out[0].numpy() - model.predict(X)).max() <= 1e-9


def test_the_torchscript_description_is_inside_the_file(adult, classifier, tmp_path):
    exported = archtune.export(classifier, tmp_path / "model.pt", format="torchscript")
    files = {"archtune.json": ""}
    torch.jit.load(str(exported.path), _extra_files=files)
    assert json.loads(files["archtune.json"]) == json.loads(exported.description_path.read_text())


# --------------------------------------------------------------------------- refusals


def _bundle(model, tmp_path):
    return archtune.save(model, tmp_path / "bundle")


def _change_weights(path):
    weights = next(path.glob("weights-*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))


def _change_description(path):
    meta = json.loads((path / "archtune.json").read_text())
    meta["preprocessor"]["medians_"][0] += 1.0
    (path / "archtune.json").write_text(json.dumps(meta, indent=1))


@pytest.mark.parametrize("format", ["onnx", "torchscript"])
@pytest.mark.parametrize("tamper", [_change_weights, _change_description], ids=["weights", "description"])
def test_a_tampered_bundle_is_refused_and_nothing_is_written(classifier, tmp_path, tamper, format):
    path = _bundle(classifier, tmp_path)
    tamper(path)
    out = tmp_path / "model.out"
    with pytest.raises(BundleError, match="checksum mismatch"):
        archtune.export(path, out, format=format)
    assert not out.exists() and not (tmp_path / "model.out.json").exists()


@pytest.mark.parametrize("format", ["onnx", "torchscript"])
def test_a_date_column_is_named_with_the_way_out(format, tmp_path):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=80), "when": pd.date_range("2024-01-01", periods=80).astype(str)})
    model = NeuralClassifier(max_epochs=1, units=8, random_state=0).fit(X, rng.integers(0, 2, 80))
    with pytest.raises(InvalidParameterError, match=r"column 'when' is a date column.*include_preprocessing=False"):
        archtune.export(model, tmp_path / "m", format=format)
    assert not (tmp_path / "m").exists()
    archtune.export(model, tmp_path / "net", format=format, include_preprocessing=False)  # the way out works
    assert (tmp_path / "net").stat().st_size > 0


def test_ensembles_are_refused_with_the_way_to_export_their_networks(classifier, tmp_path):
    from archtune.ensemble.model import Member, make_ensemble

    ensemble = make_ensemble("classification", [Member("network #1 (mlp)", classifier, "network", 0.8)], np.ones(1),
                        classes=classifier.classes_)
    with pytest.raises(InvalidParameterError, match="ensemble.*members"):
        archtune.export(ensemble, tmp_path / "e.pt", format="torchscript")
    # A search's run whose ensemble predicts (the fitted state of a search, built by hand).
    from archtune.bundles.search import final_ensemble_dir
    from archtune.auto import AutoNeuralClassifier

    search = AutoNeuralClassifier()
    search.best_estimator_, search.final_estimator_ = classifier, ensemble
    run = archtune.save(search, tmp_path / "run")
    with pytest.raises(InvalidParameterError, match=r"export its networks one by one \(.*member-0"):
        archtune.export(final_ensemble_dir(run), tmp_path / "e.pt", format="torchscript")
    with pytest.raises(InvalidParameterError, match="predicts with its ensemble.*--best-network"):
        archtune.export(run, tmp_path / "e.pt", format="torchscript")
    assert not (tmp_path / "e.pt").exists()
    exported = archtune.export(run, tmp_path / "e.pt", format="torchscript", best_network=True)
    assert exported.path.exists() and "ensemble" in exported.notes[0]


def test_without_the_optional_packages_the_error_names_the_extra(classifier, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # import onnxscript raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'archtune\[onnx\]'"):
        archtune.export(classifier, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


# --------------------------------------------------------------------------- CLI


def test_cli_export_round_trip(ort, adult, classifier, tmp_path):
    from archtune.cli import cli

    run = _bundle(classifier, tmp_path)
    result = CliRunner().invoke(cli, ["export", str(run), "--format", "onnx", "--out", str(tmp_path / "m.onnx")])
    assert result.exit_code == 0, result.output
    assert "age: float64 [rows], NaN = missing" in result.output
    assert "native-country: string [rows]" in result.output and "probabilities: float64 [rows, 2]" in result.output
    X = adult.drop(columns="target").iloc[:300]
    session = _session(ort, tmp_path / "m.onnx")
    label, proba = session.run(["label", "probabilities"], _feed(X, session))
    assert np.abs(proba - classifier.predict_proba(X)).max() <= 1e-5
    _change_weights(run)
    refused = CliRunner().invoke(cli, ["export", str(run), "--out", str(tmp_path / "n.onnx")])
    assert refused.exit_code == 2 and "checksum mismatch" in refused.output
    assert not (tmp_path / "n.onnx").exists()


# --------------------------------------------------------------------------- the operations


def test_interp_and_ndtri_equal_numpy_and_scipy():
    from scipy.special import ndtri as scipy_ndtri

    p = np.concatenate([np.linspace(1e-7, 1 - 1e-7, 20001), [1e-300, 1e-20, 0.5, 0.075, 0.925]])
    expected = scipy_ndtri(p)
    assert np.max(np.abs(ndtri(torch.tensor(p)).numpy() - expected) / np.maximum(1, np.abs(expected))) < 1e-14
    rng = np.random.default_rng(0)
    # Tied points (quantiles of a column with repeated values) and columns of unequal length.
    points = [np.sort(np.round(rng.normal(size=30), 1)).tolist(), [0.0, 0.0, 1.0, 1.0, 1.0], [2.0, 3.0]]
    values = [np.linspace(0, 1, len(p)).tolist() for p in points]
    x = np.column_stack([np.concatenate([rng.normal(size=500) * 2, points[0]]),
                         np.concatenate([rng.normal(size=500), [0.0, 1.0] * 15]),
                         np.concatenate([rng.normal(size=500) + 2.5, [2.0, 3.0] * 15])])
    got = interp(torch.tensor(x), *interp_table(points, values)).numpy()
    want = np.column_stack([np.interp(x[:, j], points[j], values[j]) for j in range(3)])
    assert np.array_equal(got, want)


def test_columns_a_transferred_preprocessor_fills_are_no_inputs(adult, classifier, tmp_path):
    import copy

    model = copy.deepcopy(classifier)
    model.preprocessor_.filled_ = ["capital-gain", "occupation"]  # as archtune.transfer sets it
    exported = archtune.export(model, tmp_path / "model.pt", format="torchscript")
    description = json.loads(exported.description_path.read_text())
    columns = [c for spec in description["inputs"] for c in spec["columns"]]
    assert "capital-gain" not in columns and "occupation" not in columns and "age" in columns
    X = adult.drop(columns="target").iloc[:300]
    with torch.no_grad():
        _, proba = torch.jit.load(str(exported.path))(*encode(description, X))
    # Oracle: the original model with every value of those columns missing.
    expected = classifier.predict_proba(X.assign(**{"capital-gain": np.nan, "occupation": None}))
    assert np.abs(proba.numpy() - expected).max() <= 1e-12
