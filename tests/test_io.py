"""Model bundles: identical predictions after a round trip; bad bundles refused, nothing executed."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import archtune
from archtune import BundleError, NeuralClassifier, NeuralRegressor


@pytest.fixture(scope="module")
def mixed_classifier(magic_small):
    X, y = magic_small
    X = X.copy()
    X["band"] = pd.qcut(X["FAlpha"], 3, labels=["lo", "mid", "hi"]).astype(object)
    X.loc[::7, "FLength"] = np.nan
    model = NeuralClassifier(max_epochs=4, norm="batch", random_state=0, class_weight="balanced",
                             hidden_sizes=(32, 16)).fit(X, "class_" + y.astype(str))
    return model, X


def test_round_trip_classifier_predicts_identically(tmp_path, mixed_classifier):
    model, X = mixed_classifier
    archtune.save(model, tmp_path / "bundle")
    loaded = archtune.load(tmp_path / "bundle")
    assert isinstance(loaded, NeuralClassifier)
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert np.array_equal(loaded.predict(X), model.predict(X))
    assert list(loaded.classes_) == list(model.classes_)
    assert loaded.get_params() == model.get_params()
    assert loaded.best_epoch_ == model.best_epoch_
    pd.testing.assert_frame_equal(loaded.history_, model.history_, check_dtype=False)


def test_round_trip_multi_output_regressor(tmp_path, house_small):
    X, y = house_small
    Y = np.column_stack([y, X["P1"]])
    model = NeuralRegressor(max_epochs=3, random_state=0, scaling="quantile").fit(X.drop(columns="P1").to_numpy(), Y)
    archtune.save(model, tmp_path / "r")
    loaded = archtune.load(tmp_path / "r")
    data = X.drop(columns="P1").to_numpy()
    assert np.array_equal(loaded.predict(data), model.predict(data))
    assert not hasattr(loaded, "feature_names_in_")


def test_saving_again_replaces_the_bundle_and_leaves_one_weights_file(tmp_path, mixed_classifier):
    model, X = mixed_classifier
    archtune.save(model, tmp_path / "b")
    other = NeuralClassifier(max_epochs=1, random_state=1, hidden_sizes=(8,)).fit(X, model.predict(X))
    archtune.save(other, tmp_path / "b")
    assert len(list((tmp_path / "b").glob("weights-*.safetensors"))) == 1
    assert np.array_equal(archtune.load(tmp_path / "b").predict_proba(X), other.predict_proba(X))


def _saved(tmp_path, mixed_classifier) -> Path:
    model, _ = mixed_classifier
    return archtune.save(model, tmp_path / "b")


def test_corrupted_json_is_refused(tmp_path, mixed_classifier):
    path = _saved(tmp_path, mixed_classifier)
    (path / "archtune.json").write_text('{"format": "archtune-bundle", "format_ver')
    with pytest.raises(BundleError, match="corrupted bundle description"):
        archtune.load(path)


@pytest.mark.parametrize("version", [99, 0, "1", None, 1.5])
def test_unknown_format_version_is_refused(tmp_path, mixed_classifier, version):
    path = _saved(tmp_path, mixed_classifier)
    meta = json.loads((path / "archtune.json").read_text())
    meta["format_version"] = version
    (path / "archtune.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match=f"format version {version!r} is not supported".replace(".", r"\.")):
        archtune.load(path)


def _set(path: list, value):
    def mutate(meta: dict) -> None:
        node = meta
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return mutate


@pytest.mark.parametrize("mutate, message", [
    (_set(["n_features_in"], "eleven"), "n_features_in should be int"),
    (_set(["format"], "pytorch-pickle"), "not an archtune bundle (format='pytorch-pickle')"),
    (_set(["estimator"], "os.system"), "unknown estimator 'os.system'"),
    (_set(["params"], ["units", 8]), "params should be dict"),
    (_set(["params", "learning_rate"], "fast"), "invalid parameter in the bundle (learning_rate must be"),
    (_set(["params", "dropout"], 7), "invalid parameter in the bundle (dropout must be in [0, 1)"),
    (_set(["params", "no_such_param"], 1), "invalid bundle description (TypeError"),
    (_set(["model_config", "hidden_sizes"], "32,16"), "model_config.hidden_sizes should be list"),
    (_set(["target", "classes", "dtype"], "|O"), "unsupported dtype '|O'"),
    (_set(["target", "classes"], "class_0"), "target.classes should be dict"),
    (_set(["input_spec"], {}), "invalid bundle description (KeyError"),
    (_set(["weights_file"], "../../elsewhere.safetensors"), "must be a file name inside the bundle"),
    (_set(["weights_file"], 7), "weights_file should be str"),
    (_set(["history"], {"loss": 1}), "history should be list"),
    (_set(["best_epoch"], True), "best_epoch should be int"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_wrong_types_in_json_are_refused(tmp_path, mixed_classifier, mutate, message):
    path = _saved(tmp_path, mixed_classifier)
    meta = json.loads((path / "archtune.json").read_text())
    mutate(meta)
    (path / "archtune.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError) as info:
        archtune.load(path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_json_that_is_not_an_object_is_refused(tmp_path, mixed_classifier):
    path = _saved(tmp_path, mixed_classifier)
    (path / "archtune.json").write_text("[1, 2, 3]")
    with pytest.raises(BundleError, match="archtune.json should be dict"):
        archtune.load(path)


def test_truncated_weights_are_refused(tmp_path, mixed_classifier):
    path = _saved(tmp_path, mixed_classifier)
    weights = next(path.glob("weights-*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(BundleError, match="corrupted or truncated"):
        archtune.load(path)


def _point_at(path: Path, data: bytes) -> None:
    """Replace the bundle's weights by ``data`` with a matching checksum, as a forger would:
    then only the safetensors parser stands between the file and the model."""
    meta = json.loads((path / "archtune.json").read_text())
    (path / meta["weights_file"]).write_bytes(data)
    meta["weights_sha256"] = hashlib.sha256(data).hexdigest()
    (path / "archtune.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("keep", [0, 7, 8, 100, -1])
def test_truncated_safetensors_with_a_matching_checksum_are_refused(tmp_path, mixed_classifier, keep):
    path = _saved(tmp_path, mixed_classifier)
    weights = next(path.glob("weights-*.safetensors")).read_bytes()
    _point_at(path, weights[:keep])
    with pytest.raises(BundleError, match="not a valid safetensors file|weights do not match") as info:
        archtune.load(path)
    assert "\n" not in str(info.value)


class _Marker:
    """A pickle payload that would create a file if it were ever unpickled."""

    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


def test_pickles_and_torch_files_are_never_loaded(tmp_path):
    marker = tmp_path / "executed"
    pkl = tmp_path / "model.pkl"
    pkl.write_bytes(pickle.dumps(_Marker(marker)))
    pt = tmp_path / "model.pt"
    torch.save({"payload": _Marker(marker)}, pt)
    for path in (pkl, pt):
        with pytest.raises(BundleError, match="never loads pickles"):
            archtune.load(path)
    # A bundle directory whose weights file is a pickle in disguise.
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "archtune.json").write_text(json.dumps({"format": "archtune-bundle", "format_version": 1}))
    (fake / "weights-0.safetensors").write_bytes(pkl.read_bytes())
    with pytest.raises(BundleError):
        archtune.load(fake)
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["pickle", "torch"])
def test_a_malicious_weights_file_with_a_matching_checksum_is_never_unpickled(tmp_path, mixed_classifier, kind):
    marker = tmp_path / "executed"
    path = _saved(tmp_path, mixed_classifier)
    if kind == "pickle":
        payload = pickle.dumps(_Marker(marker))
    else:
        torch.save({"weight": _Marker(marker)}, tmp_path / "evil.pt")
        payload = (tmp_path / "evil.pt").read_bytes()
    _point_at(path, payload)
    with pytest.raises(BundleError, match="not a valid safetensors file"):
        archtune.load(path)
    assert not marker.exists()


@pytest.mark.parametrize("command", ["predict", "info"])
def test_the_cli_refuses_pickles_and_torch_files_without_running_them(tmp_path, command):
    from click.testing import CliRunner

    from archtune.cli import cli

    marker = tmp_path / "executed"
    torch.save({"model": _Marker(marker)}, tmp_path / "model.pt")
    (tmp_path / "rows.csv").write_text("a,b\n1,2\n")
    args = [command, str(tmp_path / "model.pt")] + (["rows.csv"] if command == "predict" else [])
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.strip().startswith("archtune: error: ") and "never loads pickles" in result.stderr
    assert not marker.exists()


def test_missing_bundle_and_unfitted_model(tmp_path):
    with pytest.raises(BundleError, match="no such model bundle"):
        archtune.load(tmp_path / "nothing")
    with pytest.raises(BundleError, match="unfitted"):
        archtune.save(NeuralClassifier(), tmp_path / "x")
    assert not (tmp_path / "x").exists()
