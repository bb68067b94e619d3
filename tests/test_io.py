"""Model bundles: identical predictions after a round trip; bad bundles refused, nothing executed."""

from __future__ import annotations

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


def test_unknown_format_version_is_refused(tmp_path, mixed_classifier):
    path = _saved(tmp_path, mixed_classifier)
    meta = json.loads((path / "archtune.json").read_text())
    meta["format_version"] = 99
    (path / "archtune.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="format version 99 is not supported"):
        archtune.load(path)


def test_wrong_types_in_json_are_refused(tmp_path, mixed_classifier):
    path = _saved(tmp_path, mixed_classifier)
    meta = json.loads((path / "archtune.json").read_text())
    meta["n_features_in"] = "eleven"
    (path / "archtune.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="n_features_in should be int"):
        archtune.load(path)


def test_truncated_weights_are_refused(tmp_path, mixed_classifier):
    path = _saved(tmp_path, mixed_classifier)
    weights = next(path.glob("weights-*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(BundleError, match="corrupted or truncated"):
        archtune.load(path)


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


def test_missing_bundle_and_unfitted_model(tmp_path):
    with pytest.raises(BundleError, match="no such model bundle"):
        archtune.load(tmp_path / "nothing")
    with pytest.raises(BundleError, match="unfitted"):
        archtune.save(NeuralClassifier(), tmp_path / "x")
    assert not (tmp_path / "x").exists()
