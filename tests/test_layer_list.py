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
from archtune.models.layer_compile import check_layers, compile_layers, layer_to_dict
from archtune.recipes import CLASSIC
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
    module, inferred = compile_layers(layers, shape)
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
    # The classic training, which a declared list (not a table recipe family) gets by default.
    built_in = NeuralClassifier(**{**CLASSIC, "hidden_layers": 2, "units": 32, "dropout": 0.0, "max_epochs": 3},
                                random_state=0).fit(X, y)
    declared = NeuralClassifier(arch="layers", layers=[L.Dense(32, "relu"), L.Dense(32, "relu")], dropout=0.0,
                                max_epochs=3, random_state=0).fit(X, y)
    # Same initialiser (He, from the same generator, in the same order), same training.
    assert list(declared.history_["val_loss"]) == pytest.approx(list(built_in.history_["val_loss"]), rel=1e-6)


def test_masked_lstm_output_equals_the_unpadded_sequence():
    torch.manual_seed(0)
    module, _ = compile_layers([L.Embedding(10, 4), L.Masking(0.0), L.LSTM(5)], (6,))
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
        compile_layers([L.Reshape((3, 3))], (10,))
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


# ------------------------------------------------------------------ bad layer specs: one clear line each

SEQ = "sequence"  # fit on a (rows, 6 steps, 3 features) series instead of a flat table of 16 columns
BAD_LAYERS = [
    ([L.Dense(-5)], None, r"layers\[0\]: Dense\(units=-5.*units must be a positive integer; got units=-5"),
    ([L.Dense(0)], None, r"layers\[0\]: Dense.*units must be a positive integer; got units=0"),
    ([L.Dense("64")], None, r"layers\[0\]: Dense.*units must be a positive integer; got units='64'"),
    ([L.Dense(64.5)], None, r"layers\[0\]: Dense.*units must be a positive integer; got units=64.5"),
    ([L.Dense(True)], None, r"units must be a positive integer; got units=True"),
    ([L.Dense(8, "relux")], None, r"layers\[0\]: Dense.*activation must be one of .*did you mean 'relu'"),
    ([L.Dense(8), L.Dropout(1.5)], None,
     r"layers\[1\]: Dropout\(rate=1.5\): rate must be in \[0, 1\); got rate=1.5"),
    ([L.Dropout(-0.1)], None, r"layers\[0\]: Dropout\(rate=-0.1\): rate must be in \[0, 1\)"),
    ([L.SpatialDropout1D(1.0)], SEQ,
     r"layers\[0\]: SpatialDropout1D\(rate=1.0\): rate must be in \[0, 1\)"),
    ([L.Reshape((1, 4, 4)), L.SpatialDropout2D(-1)], None,
     r"layers\[1\]: SpatialDropout2D.*rate must be in \[0, 1\)"),
    ([L.LSTM(0)], SEQ, r"layers\[0\]: LSTM\(units=0.*units must be a positive integer"),
    ([L.GRU(0)], SEQ, r"layers\[0\]: GRU\(units=0.*units must be a positive integer"),
    ([L.GRU(4, bidirectional="yes")], SEQ, r"layers\[0\]: GRU.*bidirectional must be True or False"),
    ([L.Reshape((1, 4, 4)), L.MaxPool2D(0)], None,
     r"layers\[1\]: MaxPool2D\(pool_size=0\): pool_size must be a positive"),
    ([L.Reshape((1, 4, 4)), L.AvgPool2D(-2)], None,
     r"layers\[1\]: AvgPool2D\(pool_size=-2\): pool_size must be a positive"),
    ([L.MaxPool1D(0)], SEQ, r"layers\[0\]: MaxPool1D\(pool_size=0\): pool_size must be a positive integer"),
    ([L.AvgPool1D(1.5)], SEQ,
     r"layers\[0\]: AvgPool1D\(pool_size=1.5\): pool_size must be a positive integer"),
    ([L.Reshape((1, 4, 4)), L.Conv2D(8, 3, strides=0)], None,
     r"layers\[1\]: Conv2D.*strides must be a positive integer"),
    ([L.Reshape((1, 4, 4)), L.Conv2D(8, 0, padding="valid")], None,
     r"layers\[1\]: Conv2D.*kernel_size must be a positive integer; got kernel_size=0"),
    ([L.Reshape((1, 4, 4)), L.Conv2D(0, 3)], None,
     r"layers\[1\]: Conv2D\(filters=0.*filters must be a positive integer"),
    ([L.Reshape((1, 4, 4)), L.Conv2D(4, 3, padding="full")], None,
     r"layers\[1\]: Conv2D.*padding must be 'same' or 'valid'"),
    ([L.Reshape((1, 4, 4)), L.Conv2D(4, 5, padding="valid")], None, r"layers\[1\]: Conv2D.*leaves an empty output"),
    ([L.Conv1D(8, 3, strides=0)], SEQ, r"layers\[0\]: Conv1D.*strides must be a positive integer"),
    ([L.Conv1D(8, 0, padding="valid")], SEQ, r"layers\[0\]: Conv1D.*kernel_size must be a positive integer"),
    ([L.Conv1D(0, 3)], SEQ, r"layers\[0\]: Conv1D\(filters=0.*filters must be a positive integer"),
    ([L.Conv1D(4, 2)], SEQ, r"layers\[0\]: Conv1D.*padding='same' needs an odd kernel_size"),
    ([L.GlobalAvgPool2D()], None,
     r"layers\[0\]: GlobalAvgPool2D\(\) cannot take input of shape \(16,\): it needs a \(channels, height, width\) "
     r"image \(3 dimensions\), got 1 dimension"),
    ([L.GlobalAvgPool2D()], SEQ,
     r"layers\[0\]: GlobalAvgPool2D\(\) cannot take input of shape \(6, 3\).*got 2 dimensions"),
    ([L.UpSampling1D(2)], None,
     r"layers\[0\]: UpSampling1D\(size=2\) cannot take input of shape \(16,\): it needs a \(steps, channels\) "
     r"sequence \(2 dimensions\), got 1 dimension"),
    ([L.UpSampling2D(2)], None, r"layers\[0\]: UpSampling2D\(size=2\) cannot take input of shape \(16,\): it needs a "
                                r"\(channels, height, width\) image \(3 dimensions\), got 1"),
    ([L.UpSampling1D(0)], SEQ, r"layers\[0\]: UpSampling1D\(size=0\): size must be a positive integer"),
    ([L.Dense(4), L.Conv1D(4, 3)], None, r"layers\[1\]: Conv1D.*cannot take input of shape \(4,\)"),  # via _fail
    ([L.Dense(4), L.LSTM(4)], None, r"layers\[1\]: LSTM.*cannot take input of shape \(4,\)"),
    ([L.RepeatVector(0)], None, r"layers\[0\]: RepeatVector\(n=0\): n must be a positive integer"),
    ([L.Reshape((0, 16))], None, r"layers\[0\]: Reshape.*target_shape must be a non-empty tuple of positive integers"),
    ([L.Reshape((3, 5))], None, r"layers\[0\]: Reshape.*16 values cannot be reshaped to \(3, 5\)"),
    ([L.Permute((1, 2))], None, r"layers\[0\]: Permute.*dims must be a permutation of 1..1"),
    ([L.Masking(float("nan"))], SEQ, r"layers\[0\]: Masking.*mask_value must be a finite number"),
    ([L.ActivityRegularization(l1=-1.0)], None,
     r"layers\[0\]: ActivityRegularization.*l1 must be a finite number >= 0"),
    ([L.Embedding(1, 4)], None, r"layers\[0\]: Embedding.*input_dim must be an integer >= 2"),
    ([L.Embedding(10, 0)], None, r"layers\[0\]: Embedding.*output_dim must be a positive integer"),
    ([L.GlobalPool1D("mean")], SEQ, r"layers\[0\]: GlobalPool1D.*kind must be 'max' or 'avg'"),
    ([L.Activation("nope")], None, r"layers\[0\]: Activation\(name='nope'\): name must be one of relu"),
    ([L.Lambda(lambda x: x @ torch.ones(3, 3))], None, r"layers\[0\]: Lambda.*cannot take input of shape \(16,\)"),
    ([L.Lambda("tanh")], None, r"layers\[0\]: Lambda.*function must be a function"),
]


@pytest.mark.parametrize("layers, data, match", BAD_LAYERS, ids=[str(i) for i in range(len(BAD_LAYERS))])
def test_a_bad_layer_is_refused_before_training_with_its_position(layers, data, match, monkeypatch):
    from archtune.train import Trainer

    monkeypatch.setattr(Trainer, "fit", lambda *a, **k: pytest.fail("training started with a bad layer list"))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 6, 3) if data == SEQ else (40, 16)).astype(np.float32)
    y = np.arange(40) % 2
    with pytest.raises(InvalidParameterError, match=match) as info:
        NeuralClassifier(arch="layers", layers=layers, max_epochs=1).fit(X, y)
    assert "\n" not in str(info.value)


def test_every_argument_of_every_layer_has_a_rule():
    import dataclasses

    for name, cls in L.LAYERS.items():
        fields = {f.name for f in dataclasses.fields(cls)}
        assert set(cls.RULES) == fields, name


# ------------------------------------------------------------------ layers as JSON dicts (the bundle's form)

JSON_LAYERS = [{"type": "Dense", "units": 16, "activation": "relu"}, {"type": "Dropout", "rate": 0.1},
               {"type": "Dense", "units": 8, "activation": "tanh"}]


def test_a_layer_list_of_dicts_equals_the_layer_objects(tmp_path):
    X, y = load_shared("magic.tsv.gz", n=300, seed=1)
    objects = [L.Dense(16, "relu"), L.Dropout(0.1), L.Dense(8, "tanh")]
    assert [layer_to_dict(layer) for layer in objects] == JSON_LAYERS
    assert check_layers(JSON_LAYERS) == tuple(objects)
    common = {"arch": "layers", "max_epochs": 2, "random_state": 0}
    from_dicts = NeuralClassifier(layers=JSON_LAYERS, **common).fit(X, y)
    from_objects = NeuralClassifier(layers=objects, **common).fit(X, y)
    np.testing.assert_allclose(from_dicts.predict_proba(X), from_objects.predict_proba(X), atol=1e-6)
    archtune.save(from_dicts, tmp_path / "dicts")
    assert archtune.load(tmp_path / "dicts").layers == objects


@pytest.mark.parametrize("spec, match", [
    ({"type": "Dens", "units": 4}, r"layers\[1\]: .*unknown type 'Dens' \(did you mean 'Dense'\?\)"),
    ({"type": "Dense", "unit": 4}, r"layers\[1\]: .*Dense has no argument 'unit' \(did you mean 'units'\?\)"),
    ({"type": "Dense"}, r"layers\[1\]: .*Dense needs 'units'"),
    ({"units": 4}, r"layers\[1\]: .*has no 'type'"),
    ({"type": "Dense", "units": -4}, r"layers\[1\]: Dense\(units=-4.*units must be a positive integer"),
    ({"type": "Lambda", "function": "tanh"}, r"layers\[1\]: a Lambda layer holds code"),
])
def test_bad_json_layers_are_named(spec, match):
    X, y = np.zeros((20, 4)), np.arange(20) % 2
    with pytest.raises(InvalidParameterError, match=match):
        NeuralClassifier(arch="layers", layers=[{"type": "Flatten"}, spec], max_epochs=1).fit(X, y)
    with pytest.raises(InvalidParameterError, match=match):
        check_layers([L.Flatten(), spec])


def test_the_cli_accepts_a_layer_list_in_json(tmp_path, monkeypatch):
    import json

    from click.testing import CliRunner

    from archtune.cli import cli
    from archtune.data import readers

    X, y = load_shared("magic.tsv.gz", n=200, seed=1)
    data = tmp_path / "magic.csv"
    X.assign(target=y).to_csv(data, index=False)
    layers = '--set=layers=' + json.dumps(JSON_LAYERS)
    result = CliRunner().invoke(cli, ["fit", str(data), "--target", "target", layers, "--set", "arch=layers",
                                      "--set", "max_epochs=2", "-q", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, (result.output, result.exception)
    model = archtune.load(tmp_path / "out")
    assert model.layers == [L.Dense(16, "relu"), L.Dropout(0.1), L.Dense(8, "tanh")]
    assert [type(m).__name__ for m in model.module_.body][:4] == ["Linear", "ReLU", "Dropout", "Linear"]

    # A bad layer is refused in one line before the data is read.
    monkeypatch.setattr(readers, "load_table", lambda *a, **k: pytest.fail("the data was read"))
    bad = '--set=layers=[{"type": "Dense", "units": 4}, {"type": "Dropot", "rate": 0.2}]'
    result = CliRunner().invoke(cli, ["fit", str(data), "--target", "target", bad, "--set", "arch=layers",
                                      "--out", str(tmp_path / "bad")])
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("archtune: error: layers[1]: "), result.stderr
    assert "unknown type 'Dropot' (did you mean 'Dropout'" in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize("layers, message", [
    ({"type": "Dense", "units": 4}, r"got one dict .*wrap it in \[\.\.\.\]"),
    ([L.Lambda(lambda x: x.reshape(-1))], r"layers\[0\]: .*changes the batch dimension"),
    ([L.Dense(4), L.Lambda(lambda x: x[:1])], r"layers\[1\]: .*changes the batch dimension"),
])
def test_a_single_dict_and_batch_changing_lambdas_are_refused(layers, message):
    X = np.random.default_rng(0).normal(size=(30, 5)).astype(np.float32)
    with pytest.raises(InvalidParameterError, match=message):
        NeuralClassifier(arch="layers", layers=layers, max_epochs=1).fit(X, np.arange(30) % 2)
