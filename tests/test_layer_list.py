"""The explicit layer list (issue 6): shape inference for every layer, oracles against the
built-in MLP and against unpadded sequences, bundles, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import archtune
from archtune import NeuralClassifier
from archtune.errors import ArchtuneError, InvalidParameterError
from archtune.models import layer_list as L
from tests.conftest import load_shared

CASES = [
    ((10,), [L.Dense(7, "relu"), L.Dropout(0.1), L.BatchNorm(), L.LayerNorm(), L.Activation("tanh")], (7,)),
    ((12,), [L.Reshape((3, 4)), L.Permute((2, 1)), L.Flatten()], (12,)),
    ((5,), [L.RepeatVector(4), L.LSTM(6, return_sequences=True), L.GRU(3, bidirectional=True)], (6,)),
    ((8,), [L.Embedding(20, 4), L.SpatialDropout1D(0.2), L.Conv1D(5, 3), L.MaxPool1D(2), L.AvgPool1D(2),
            L.UpSampling1D(2), L.BatchNorm(), L.GlobalPool1D("avg")], (5,)),
    ((8,), [L.Embedding(20, 4), L.Masking(0.0), L.LSTM(3, return_sequences=True), L.ActivityRegularization(l2=0.1)],
     (8, 3)),
    ((48,), [L.Reshape((3, 4, 4)), L.Conv2D(6, 3, activation="relu"), L.SpatialDropout2D(0.1), L.BatchNorm(),
             L.MaxPool2D(2), L.UpSampling2D(2), L.AvgPool2D(2), L.Conv2D(2, 1, padding="valid"),
             L.GlobalAvgPool2D()], (2,)),
    ((16,), [L.Reshape((1, 4, 4)), L.Conv2D(3, 3, strides=2, padding="valid")], (3, 1, 1)),
    ((6,), [L.Lambda(lambda x: x[:, :3] * 2)], (3,)),
]


@pytest.mark.parametrize("shape, layers, expected", CASES, ids=[str(i) for i in range(len(CASES))])
def test_every_layer_infers_the_shape_it_produces(shape, layers, expected):
    module, inferred = L.compile_layers(layers, shape)
    assert inferred == expected
    x = torch.randint(0, 20, (3, *shape)).float()
    module.train()
    assert tuple(module(x).shape[1:]) == expected
    module.eval()
    assert tuple(module(x).shape[1:]) == expected


def test_every_keras_layer_named_in_the_issue_exists():
    wanted = {"Dense", "Activation", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "BatchNorm", "LayerNorm",
              "Flatten", "Reshape", "Permute", "RepeatVector", "Masking", "Lambda", "ActivityRegularization",
              "Conv1D", "Conv2D", "MaxPool1D", "MaxPool2D", "AvgPool1D", "AvgPool2D", "UpSampling1D",
              "UpSampling2D", "LSTM", "GRU", "Embedding"}
    assert wanted <= set(L.LAYERS)


def test_a_declared_mlp_trains_exactly_like_the_built_in_one():
    X, y = load_shared("magic.tsv.gz", n=800, seed=1)
    built_in = NeuralClassifier(hidden_layers=2, units=32, dropout=0.0, max_epochs=3, random_state=0).fit(X, y)
    declared = NeuralClassifier(arch="layers", layers=[L.Dense(32, "relu"), L.Dense(32, "relu")], dropout=0.0,
                                max_epochs=3, random_state=0).fit(X, y)
    # Same initialiser (He, from the same generator, in the same order), same training.
    assert list(declared.history_["val_loss"]) == pytest.approx(list(built_in.history_["val_loss"]), rel=1e-6)


def test_masked_lstm_output_equals_the_unpadded_sequence():
    torch.manual_seed(0)
    module, _ = L.compile_layers([L.Embedding(10, 4), L.Masking(0.0), L.LSTM(5)], (6,))
    module.eval()
    padded = torch.tensor([[3.0, 5, 2, 0, 0, 0]])
    to_codes, embed, recurrent = module
    with torch.no_grad():
        unpadded, _ = recurrent.rnn(embed(to_codes(torch.tensor([[3.0, 5, 2]]))))
        assert torch.allclose(module(padded), unpadded[:, -1], atol=1e-6)


def _token_data(n=400, seed=0):
    """Sequences of 12 token codes (0 = padding at the end); the label says whether token 7 occurs."""
    rng = np.random.default_rng(seed)
    X = rng.integers(1, 10, size=(n, 12))
    lengths = rng.integers(4, 13, size=n)
    for i, length in enumerate(lengths):
        X[i, length:] = 0
    y = (X == 7).any(axis=1).astype(int)
    return X, y


def test_a_declared_sequence_model_learns_from_token_codes_and_survives_a_bundle(tmp_path):
    X, y = _token_data()
    layers = [L.Embedding(10, 8), L.Conv1D(16, 3, activation="relu"), L.GlobalPool1D("max"), L.Dense(16, "relu")]
    model = NeuralClassifier(arch="layers", layers=layers, max_epochs=30, learning_rate=3e-3, random_state=0)
    model.fit(X, y)
    assert model.preprocessor_.scaling is None  # token codes reach the Embedding unscaled
    X_test, y_test = _token_data(200, seed=1)
    assert model.score(X_test, y_test) >= 0.9
    archtune.save(model, tmp_path / "seq")
    loaded = archtune.load(tmp_path / "seq")
    assert loaded.layers == model.layers
    np.testing.assert_allclose(loaded.predict_proba(X_test), model.predict_proba(X_test), atol=1e-6)


def test_activity_regularization_shrinks_the_activations_it_penalises():
    X, y = load_shared("magic.tsv.gz", n=600, seed=1)
    common = {"arch": "layers", "dropout": 0.0, "max_epochs": 20, "learning_rate": 1e-2, "early_stopping": False,
              "random_state": 0}

    def mean_activation(model):
        rows = torch.from_numpy(model.preprocessor_.transform(X, "X"))
        with torch.no_grad():
            return float(model.module_.body(rows).abs().mean())

    plain = NeuralClassifier(layers=[L.Dense(16, "relu")], **common).fit(X, y)
    penalised = NeuralClassifier(layers=[L.Dense(16, "relu"), L.ActivityRegularization(l1=1.0)], **common).fit(X, y)
    assert mean_activation(penalised) < 0.5 * mean_activation(plain)


def test_layer_list_errors_are_named(tmp_path):
    X, y = load_shared("magic.tsv.gz", n=200, seed=1)
    with pytest.raises(InvalidParameterError, match=r"Conv2D.*cannot take input of shape \(10,\)"):
        NeuralClassifier(arch="layers", layers=[L.Conv2D(4, 3)], max_epochs=1).fit(X, y)
    with pytest.raises(InvalidParameterError, match="is not an archtune layer"):
        NeuralClassifier(arch="layers", layers=[torch.nn.Linear(3, 3)], max_epochs=1).fit(X, y)
    with pytest.raises(InvalidParameterError, match="needs layers="):
        NeuralClassifier(arch="layers", max_epochs=1).fit(X, y)
    with pytest.raises(InvalidParameterError, match="cannot be reshaped"):
        L.compile_layers([L.Reshape((3, 3))], (10,))
    model = NeuralClassifier(arch="layers", layers=[L.Lambda(torch.tanh)], max_epochs=1).fit(X, y)
    with pytest.raises(ArchtuneError, match="Lambda layer holds code"):
        archtune.save(model, tmp_path / "lambda")
    assert not (tmp_path / "lambda").exists()


def test_layer_list_models_pickle_deepcopy_and_diagnose_after_fitting():
    import copy
    import pickle

    from archtune import diagnose

    X, y = _token_data(200)
    layers = [L.Embedding(10, 4), L.Permute((2, 1)), L.Permute((2, 1)), L.UpSampling1D(2), L.GlobalPool1D("avg"),
              L.RepeatVector(2), L.LSTM(4), L.ActivityRegularization(l2=0.01), L.Dense(8, "relu")]
    model = NeuralClassifier(arch="layers", layers=layers, max_epochs=2, random_state=0).fit(X, y)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(again.predict_proba(X), model.predict_proba(X), atol=1e-6)
    copy.deepcopy(model)  # the activity penalty of the last step is not kept
    assert diagnose(model, X, y).checked


def test_a_layer_list_reads_time_series_as_steps_by_features():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 20, 3)).astype(np.float32)
    y = (X[:, :, 0].sum(axis=1) > 0).astype(int)
    model = NeuralClassifier(arch="layers", layers=[L.GRU(16), L.Dense(16, "relu")], max_epochs=20,
                             random_state=0).fit(X[:200], y[:200])
    assert model.series_shape_ == (20, 3)
    assert model.score(X[200:], y[200:]) >= 0.8
