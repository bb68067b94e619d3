"""Issue 12's parts, each checked against its definition: numeric embeddings (PLR, PLE), the
RealMLP recipe's pieces (robust scaling with smooth clipping, parametric activations, the
feature scale, coslog and flat_cos schedules, label smoothing, output clamping), TabM, the
categorical rules; bundles of each; named errors for bad values."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
import torch

import archtune
from archtune import NeuralClassifier, NeuralRegressor
from archtune.config import ModelConfig, TrainConfig
from archtune.config_groups import NumericEmbeddingConfig
from archtune.errors import InvalidParameterError
from archtune.models import InputSpec, build_model
from archtune.models.embeddings import PeriodicEmbeddings, PiecewiseLinearEmbeddings, compute_bins
from tests.conftest import load_shared


# --------------------------------------------------------------------------- numeric embeddings


@pytest.mark.parametrize("lite", [False, True])
def test_periodic_embeddings_equal_the_numpy_formula(lite):
    torch.manual_seed(0)
    emb = PeriodicEmbeddings(3, d_embedding=4, n_frequencies=5, frequency_init_scale=0.3, lite=lite).double()
    x = torch.randn(7, 3, dtype=torch.float64)
    w, W, b = emb.frequencies.detach().numpy(), emb.weight.detach().numpy(), emb.bias.detach().numpy()
    expected = []
    for row in x.numpy():
        features = []
        for i, value in enumerate(row):
            p = 2 * np.pi * value * w[i]
            z = np.concatenate([np.cos(p), np.sin(p)])
            h = z @ (W if lite else W[i]) + (b if lite else b[i])
            features.append(np.maximum(h, 0.0))
        expected.append(np.concatenate(features))
    assert np.allclose(emb(x).detach().numpy(), np.array(expected), atol=1e-12)
    assert np.abs(w).max() <= 3 * 0.3  # frequencies ~ N(0, sigma^2), truncated at 3 sigma


def _encoding_by_definition(value: float, edges: list[float]) -> list[float]:
    """The piecewise-linear encoding, written out: per bin (x - left) / width, clipped to
    [0, 1] except below the first bin and above the last (linear extrapolation there)."""
    T = len(edges) - 1
    out = []
    for t in range(T):
        e = (value - edges[t]) / (edges[t + 1] - edges[t])
        if T == 1:
            out.append(e)
        elif t == 0:
            out.append(min(e, 1.0))
        elif t == T - 1:
            out.append(max(e, 0.0))
        else:
            out.append(min(max(e, 0.0), 1.0))
    return out


def test_piecewise_linear_encoding_equals_its_definition():
    bins = [[0.0, 1.0, 2.0, 4.0], [-1.0, 1.0], [0.0, 0.5, 1.0]]
    emb = PiecewiseLinearEmbeddings(bins, d_embedding=2).double()
    values = [-2.0, 0.0, 0.3, 1.0, 1.5, 3.0, 9.0]
    x = torch.tensor([[v, v, v] for v in values], dtype=torch.float64)
    encoded = emb.encode(x).numpy()
    for r, v in enumerate(values):
        for j, edges in enumerate(bins):
            expected = _encoding_by_definition(v, edges)
            T = len(expected)
            assert np.allclose(encoded[r, j, :T], expected), (v, edges)
            assert np.all(encoded[r, j, T:] == 0)  # past the feature's own bins
    with torch.no_grad():
        emb.encoding_weight.normal_()
    manual = (emb.bias.detach().numpy() + emb.weight.detach().numpy() * x.numpy()[..., None]
              + np.einsum("bft,ftd->bfd", encoded, emb.encoding_weight.detach().numpy()))
    assert np.allclose(emb(x).detach().numpy(), manual.reshape(len(values), -1))
    # At initialisation the encoding's weight is zero: a plain linear embedding.
    assert torch.equal(PiecewiseLinearEmbeddings(bins, 2).encoding_weight, torch.zeros(3, 3, 2))


def test_bins_are_quantiles_or_tree_thresholds():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=500), rng.integers(0, 3, 500), np.full(500, 2.0)])
    quantile = compute_bins(X, n_bins=8)
    assert quantile[0] == list(np.unique(np.quantile(X[:, 0], np.linspace(0, 1, 9))))
    assert quantile[1] == [0.0, 1.0, 2.0]  # duplicate quantiles of a discrete column are merged
    assert quantile[2] == [2.0, 3.0]  # a constant column: one bin
    y = (X[:, 0] > 0.4).astype(int)
    tree = compute_bins(X, n_bins=4, method="tree", y=y, regression=False)
    assert tree[0][0] == X[:, 0].min() and tree[0][-1] == X[:, 0].max() and len(tree[0]) <= 5
    assert any(abs(edge - 0.4) < 0.1 for edge in tree[0])  # the tree finds the target's split


# --------------------------------------------------------------------------- the recipe's parts


def test_robust_scaling_and_smooth_clip_equal_numpy():
    from archtune.data.preprocess import Preprocessor

    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.lognormal(size=300), "b": np.r_[np.zeros(290), np.arange(10.0)]})
    out = Preprocessor("robust").fit(frame).transform(frame)
    for j, col in enumerate(frame.columns):
        values = frame[col].to_numpy()
        q25, q75 = np.quantile(values, [0.25, 0.75])
        scale = (q75 - q25) or 0.5 * (values.max() - values.min())  # b: IQR 0, half the range
        z = (values - np.median(values)) / scale
        assert np.allclose(out[:, j], z / np.sqrt(1 + (z / 3) ** 2), atol=1e-6), col
    assert np.abs(out).max() < 3  # the smooth clip bounds every value


def test_quantile_scaling_follows_the_tabm_setting():
    from archtune.data.preprocess import Preprocessor

    frame = pd.DataFrame({"a": np.random.default_rng(2).exponential(size=3000)})
    pre = Preprocessor("quantile").fit(frame)
    assert len(pre.quantiles_[0]) == 100  # max(min(3000 // 30, 1000), 10)
    out = pre.transform(frame)[:, 0]
    assert abs(out.mean()) < 0.05 and abs(out.std() - 1) < 0.1  # about normal


def test_schedules_coslog_and_flat_cos():
    from archtune.train.optim import LRSchedule, regularisation_factor

    s = LRSchedule("coslog", steps_per_epoch=15, max_epochs=1, warmup_epochs=1)
    assert s.warmup == 0  # coslog rises from zero by itself
    for step in (0, 1, 3, 7):
        assert s.factor(step) == pytest.approx(0.0, abs=1e-12)  # zeros at t = 0, 1/15, 3/15, 7/15
    long = LRSchedule("coslog", steps_per_epoch=1500, max_epochs=1, warmup_epochs=0)
    assert long.factor(round((math.sqrt(2) - 1) / 15 * 1500)) > 0.99  # the first peak
    assert regularisation_factor("flat_cos", 0.3) == 1.0 and regularisation_factor("flat_cos", 0.75) == pytest.approx(0.5)
    assert regularisation_factor("flat_cos", 1.0) == pytest.approx(0.0, abs=1e-12)
    assert regularisation_factor("constant", 0.9) == 1.0


def test_label_smoothing_mixes_a_uniform_distribution_into_the_targets():
    from archtune.train.losses import make_loss

    logits = torch.tensor([[2.0], [-1.0]])
    y = torch.tensor([[1.0], [0.0]])
    smoothed = make_loss("binary", "cross_entropy", label_smoothing=0.2)(logits, y)
    target = y * 0.8 + 0.1
    manual = -(target * torch.log(torch.sigmoid(logits)) + (1 - target) * torch.log(1 - torch.sigmoid(logits))).mean()
    assert float(smoothed) == pytest.approx(float(manual), rel=1e-6)
    logits3 = torch.randn(4, 3)
    codes = torch.tensor([0, 2, 1, 2])
    assert float(make_loss("multiclass", "cross_entropy", label_smoothing=0.1)(logits3, codes)) == pytest.approx(
        float(torch.nn.functional.cross_entropy(logits3, codes, label_smoothing=0.1)))


def test_parametric_activation_starts_as_the_activation_and_the_feature_scale_at_one():
    spec = InputSpec(5)
    plain = build_model(ModelConfig(hidden_sizes=(8,), activation="selu", dropout=0.0), spec, 1, "binary",
                        torch.Generator().manual_seed(0))
    recipe = build_model(ModelConfig(hidden_sizes=(8,), activation="selu", dropout=0.0, parametric_activation=True,
                                     feature_scale=True), spec, 1, "binary", torch.Generator().manual_seed(0))
    x = torch.randn(6, 5)
    assert torch.allclose(plain(x), recipe(x))  # alpha = 1 and scale = 1 at the start
    with torch.no_grad():
        recipe.body[2].alpha.zero_()  # alpha = 0: the unit is linear
        recipe.feature_scale.mul_(2.0)
    linear = recipe.head(recipe.body[0](2 * x))
    assert torch.allclose(recipe(x), linear)


def test_clamp_outputs_keeps_predictions_in_the_training_range(tmp_path):
    X, y = load_shared("574_house_16H.tsv.gz", n=600, seed=0)
    model = NeuralRegressor(clamp_outputs=True, max_epochs=5, random_state=0).fit(X, y)
    far = X * 50  # far outside the training rows
    predictions = model.predict(far)
    assert predictions.min() >= y.min() and predictions.max() <= y.max()
    assert not np.allclose(predictions, predictions[0])
    archtune.save(model, tmp_path / "m")
    assert np.array_equal(archtune.load(tmp_path / "m").predict(far), predictions)


# --------------------------------------------------------------------------- TabM


def test_tabm_with_one_member_and_no_adapters_is_the_plain_mlp():
    spec = InputSpec(6)
    config = dict(hidden_sizes=(16, 8), activation="relu", dropout=0.0)
    mlp = build_model(ModelConfig(arch="mlp", **config), spec, 3, "multiclass", torch.Generator().manual_seed(0))
    tabm = build_model(ModelConfig(arch="tabm", k=1, **config), spec, 3, "multiclass", torch.Generator().manual_seed(1))
    linears = [m for m in mlp.body if isinstance(m, torch.nn.Linear)]
    ensembles = [m for m in tabm.body.layers if hasattr(m, "r")]
    with torch.no_grad():
        for linear, layer in zip(linears, ensembles):
            layer.weight.copy_(linear.weight)
            layer.bias.copy_(linear.bias.unsqueeze(0))
            layer.r.fill_(1.0)  # no adapters
            layer.s.fill_(1.0)
        tabm.head.weight.copy_(mlp.head.weight.T.unsqueeze(0))
        tabm.head.bias.copy_(mlp.head.bias.unsqueeze(0))
    x = torch.randn(9, 6)
    tabm.eval(), mlp.eval()
    assert torch.allclose(tabm(x), torch.log_softmax(mlp(x), dim=1), atol=1e-6)  # mean of 1 member's probabilities
    tabm.train()
    assert tabm(x).shape == (9, 1, 3)  # training: every member's outputs


def test_tabm_members_start_different_and_average_probabilities():
    spec = InputSpec(4)
    net = build_model(ModelConfig(arch="tabm", k=4, hidden_sizes=(8,), dropout=0.0), spec, 1, "binary",
                      torch.Generator().manual_seed(0))
    first = net.body.layers[0]
    assert set(first.r.unique().tolist()) == {-1.0, 1.0} and torch.equal(first.s, torch.ones_like(first.s))
    assert torch.equal(first.bias, first.bias[:1].expand_as(first.bias))  # biases start equal
    x = torch.randn(5, 4)
    members = net.train()(x)  # [5, 4, 1]
    mean_probability = torch.sigmoid(members).mean(dim=1)
    assert torch.allclose(torch.sigmoid(net.eval()(x)), mean_probability, atol=1e-6)


def test_tabm_trains_to_the_mean_of_its_members_losses():
    from archtune.train.losses import make_loss

    outputs = torch.randn(5, 3, 2)
    y = torch.randn(5, 2)
    per_member = [torch.nn.functional.mse_loss(outputs[:, k], y) for k in range(3)]
    assert float(make_loss("regression", "mse")(outputs, y)) == pytest.approx(float(sum(per_member) / 3))


# --------------------------------------------------------------------------- categorical rules


def test_categorical_auto_one_hot_for_few_levels_and_embeddings_above():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"few": rng.choice(list("abc"), 200), "many": rng.choice([f"l{i}" for i in range(20)], 200),
                          "x": rng.normal(size=200)})
    y = rng.integers(0, 2, 200)
    model = NeuralClassifier(categorical="auto", max_epochs=1, random_state=0).fit(frame, y)
    pre = model.preprocessor_
    assert pre.onehot_ == ["few"] and pre.cardinalities == (21,)
    assert model.input_spec_.n_numeric == 1 + 3  # x, then few's three one-hot columns


def test_declared_and_detected_integer_categoricals():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"code": rng.integers(0, 5, 300), "count": rng.integers(0, 100, 300),
                          "x": rng.normal(size=300)})
    y = rng.integers(0, 2, 300)
    auto = NeuralClassifier(categorical_features="auto", max_epochs=1, random_state=0).fit(frame, y)
    assert auto.preprocessor_.categorical_ == ["code"]  # few integer values: codes; many: a number
    declared = NeuralClassifier(categorical_features=["count"], max_epochs=1, random_state=0).fit(frame, y)
    assert declared.preprocessor_.categorical_ == ["count"]
    assert NeuralClassifier(max_epochs=1, random_state=0).fit(frame, y).preprocessor_.categorical_ == []
    with pytest.raises(InvalidParameterError, match="categorical_features: X has no column 'cuont'.*'count'"):
        NeuralClassifier(categorical_features=["cuont"], max_epochs=1).fit(frame, y)
    # An int level and the same float level are one category.
    again = frame.assign(code=frame["code"].astype(float))
    assert np.array_equal(auto.predict_proba(again), auto.predict_proba(frame))


# --------------------------------------------------------------------------- bundles and errors


RECIPES = [
    {"numeric_embedding": "periodic", "d_embedding": 8, "n_frequencies": 6},
    {"numeric_embedding": "periodic_lite", "frequency_init_scale": 0.1},
    {"numeric_embedding": "piecewise_linear", "n_bins": 8},
    {"numeric_embedding": "piecewise_linear", "binning": "tree", "n_bins": 6},
    {"arch": "tabm", "k": 4, "units": 32},
    {"arch": "tabm", "k": 3, "numeric_embedding": "piecewise_linear", "n_bins": 6},
    {"arch": "resnet", "numeric_embedding": "periodic", "parametric_activation": True, "feature_scale": True},
    {"arch": "wide_deep", "inputs": {"wide": ["x0"]}, "numeric_embedding": "piecewise_linear", "n_bins": 6},
    {"scaling": "robust", "categorical": "auto", "categorical_features": "auto", "label_smoothing": 0.1,
     "lr_schedule": "coslog", "beta2": 0.95, "dropout_schedule": "flat_cos", "weight_decay_schedule": "flat_cos"},
    {"scaling": "quantile"},
]


@pytest.mark.parametrize("params", RECIPES, ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items())[:60])
def test_every_new_part_survives_a_bundle(params, tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=150) for i in range(4)})
    frame["c"] = rng.choice(list("pqrs"), 150)
    frame["n"] = rng.integers(0, 4, 150)
    y = (frame["x0"] + (frame["c"] == "p") > 0.3).astype(int)
    model = NeuralClassifier(**{"max_epochs": 2, "random_state": 0, "units": 16, **params}).fit(frame, y)
    archtune.save(model, tmp_path / "bundle")
    again = archtune.load(tmp_path / "bundle")
    assert np.array_equal(again.predict_proba(frame), model.predict_proba(frame))
    diagnosis = archtune.diagnose(model, frame, y)  # the doctor reads every family
    assert "exploding_gradients" in diagnosis.checked


@pytest.mark.parametrize("params, message", [
    ({"numeric_embedding": "fourier"}, "numeric_embedding must be one of"),
    ({"d_embedding": 0}, "d_embedding"),
    ({"n_frequencies": 0}, "n_frequencies"),
    ({"frequency_init_scale": 0.0}, "frequency_init_scale"),
    ({"n_bins": 1}, "n_bins"),
    ({"binning": "kmeans"}, "binning must be one of"),
    ({"k": 0}, "k must be"),
    ({"beta2": 1.0}, "beta2"),
    ({"label_smoothing": 1.0}, "label_smoothing"),
    ({"dropout_schedule": "linear"}, "dropout_schedule must be one of"),
    ({"weight_decay_schedule": "step"}, "weight_decay_schedule must be one of"),
    ({"lr_schedule": "coslog4"}, "lr_schedule must be one of"),
    ({"scaling": "minmax"}, "scaling must be one of"),
    ({"categorical": "hash"}, "categorical must be one of"),
    ({"categorical_features": 5}, "categorical_features must be"),
    ({"clamp_outputs": "yes"}, "clamp_outputs must be one of"),
    ({"parametric_activation": "yes"}, "parametric_activation must be one of"),
    ({"feature_scale": 2}, "feature_scale must be one of"),
])
def test_bad_values_of_the_new_parameters_are_named_errors(params, message):
    X, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2
    with pytest.raises(InvalidParameterError, match=message):
        NeuralClassifier(max_epochs=1, **params).fit(X, y)


def test_task_specific_parameters_on_the_wrong_task_are_named_errors():
    X = np.random.default_rng(0).normal(size=(40, 3))
    with pytest.raises(InvalidParameterError, match="label_smoothing applies to classifiers only"):
        NeuralRegressor(label_smoothing=0.1, max_epochs=1).fit(X, X[:, 0])
    with pytest.raises(InvalidParameterError, match="clamp_outputs applies to regressors only"):
        NeuralClassifier(clamp_outputs=True, max_epochs=1).fit(X, np.arange(40) % 2)


# --------------------------------------------------------------------------- stacked


def _stack_members(dtype):
    rng = np.random.default_rng(0)
    X = torch.tensor(rng.normal(size=(300, 4)), dtype=dtype)
    y = torch.tensor((rng.normal(size=300) + X[:, 0].numpy() > 0).astype("float32"), dtype=dtype).reshape(-1, 1)
    bins = tuple(tuple(edges) for edges in compute_bins(X.numpy(), n_bins=6))
    spec = InputSpec(4, n_continuous=4, bins=bins)
    return spec, X[:200], y[:200], X[200:], y[200:]


@pytest.mark.parametrize("embedding", ["periodic", "periodic_lite", "piecewise_linear"])
def test_cohorts_with_numeric_embeddings_train_each_member_as_alone(embedding):
    """The population oracle (tests/test_population.py) for the new parts: numeric
    embeddings, the feature scale and parametric activations, members of different widths,
    frequency scales, rates, dropout schedules and weight decay, in float64."""
    from archtune.train import Trainer
    from archtune.train.losses import make_loss, make_member_loss, make_member_metric, make_metric
    from archtune.train.population import PopulationTrainer

    spec, Xtr, ytr, Xva, yva = _stack_members(torch.float64)
    members, configs = [], []
    for i, (width, scale, lr) in enumerate([(16, 0.01, 1e-3), (12, 0.1, 3e-3), (16, 1.0, 1e-2)]):
        config = ModelConfig(hidden_sizes=(width, width), activation="relu", dropout=0.0,
                             parametric_activation=True, feature_scale=True,
                             numeric=NumericEmbeddingConfig(embedding, d_embedding=4, n_frequencies=5,
                                                            frequency_init_scale=scale))
        members.append(build_model(config, spec, 1, "binary", torch.Generator().manual_seed(i)).double())
        configs.append(TrainConfig(optimizer="adam", learning_rate=lr, weight_decay=1e-3 * i, batch_size=32,
                                   max_epochs=4, patience=2, loss="cross_entropy", seed=3, beta2=0.95,
                                   weight_decay_schedule="flat_cos", lr_schedule="coslog"))
    alone = []
    for module, config in zip(members, configs):
        module = copy.deepcopy(module)
        trainer = Trainer(module, make_loss("binary", "cross_entropy"), config, metric=make_metric("binary"),
                          metric_name="accuracy")
        trainer.fit(Xtr, ytr, Xva, yva)
        alone.append((trainer.history.records, module.state_dict()))
    together = PopulationTrainer([copy.deepcopy(m) for m in members], configs,
                                 make_member_loss("binary", "cross_entropy"), make_member_metric("binary"),
                                 "accuracy").fit(Xtr, ytr, Xva, yva)
    for (history, state), result in zip(alone, together):
        assert len(history) == len(result.history)
        for a, b in zip(history, result.history):
            assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-8)
        for name, value in state.items():
            assert torch.allclose(value.double(), result.state[name].double(), rtol=1e-7, atol=1e-9), name
