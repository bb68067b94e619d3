"""Structured pruning (archtune.shrink): the units removed are the ones the measure ranks
lowest, a pruned network equals the original with those units' outgoing weights zeroed, the
termination condition holds, and the result is an ordinary estimator that saves and loads."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

import archtune
from archtune import InvalidParameterError, NeuralClassifier, NeuralRegressor
from archtune.cli import cli
from archtune.fitting import input_matrix, set_fitted, target_tensor, task_spec
from archtune.shrink.importance import magnitude, taylor
from archtune.shrink.prune_rounds import n_params
from archtune.shrink.surgery import unit_layers, zero_outgoing

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ONE_ROUND = {"max_score_drop": None, "target_params": 10**9, "fine_tune_epochs": 0}  # stops after round 1


def _table(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 5)), columns=[f"x{i}" for i in range(5)])
    y = (X["x0"] + 0.5 * X["x1"] - X["x2"] > 0).map({True: "yes", False: "no"}).to_numpy()
    return X, y


def _small(estimator=NeuralClassifier, **params):
    defaults = dict(hidden_sizes=(8, 6), numeric_embedding=None, feature_scale=False, norm="batch",
                    parametric_activation=True, max_epochs=2, random_state=0, batch_size=64)
    return estimator(**{**defaults, **params})


def _outputs(model, net, X) -> torch.Tensor:
    with torch.no_grad():
        return net.eval()(input_matrix(model, X))


def _perturb_per_unit_state(net) -> None:
    """Random norm weights, running statistics and alphas: the slices must keep each unit's own."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.running_mean.copy_(torch.randn(m.num_features, generator=g))
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            if hasattr(m, "alpha"):
                m.alpha.copy_(torch.rand(m.alpha.shape, generator=g) + 0.5)


def test_magnitude_removes_the_units_with_tiny_incoming_weights_and_equals_the_masked_network():
    X, y = _table()
    model = _small().fit(X, y)
    body = model.module_.body  # [Linear, norm, activation, dropout] per hidden layer
    _perturb_per_unit_state(model.module_)
    with torch.no_grad():
        body[0].weight[[2, 5]] *= 1e-4
        body[4].weight[[1, 3]] = 0.0
    pruned, report = archtune.prune(model, X, y, importance="magnitude", step=0.25, **ONE_ROUND)
    assert report.rounds["removed"].iloc[1] == {"layer0": [2, 5], "layer1": [1, 3]}
    assert pruned.model_config_.hidden_sizes == (6, 4) and pruned.get_params()["hidden_sizes"] == (6, 4)
    assert body[0].weight.shape == (8, 5)  # the input model keeps its network
    # Oracle: the original with the removed units' outgoing weights set to zero, by hand.
    masked = copy.deepcopy(model.module_)
    with torch.no_grad():
        masked.body[4].weight[:, [2, 5]] = 0.0
        masked.head.weight[:, [1, 3]] = 0.0
    torch.testing.assert_close(_outputs(model, pruned.module_, X), _outputs(model, masked, X), atol=1e-6, rtol=0)
    assert n_params(pruned.module_) == report.rounds["n_params"].iloc[1] < n_params(model.module_)


def test_taylor_ranks_a_unit_that_never_reaches_the_output_lowest():
    X, y = _table()
    model = _small(norm=None).fit(X, y)
    net = model.module_
    with torch.no_grad():
        net.body[4].weight[:, 0] = 0.0  # layer 0, unit 0 feeds nothing
        net.head.weight[:, 4] = 0.0  # layer 1, unit 4 feeds nothing
    layers = unit_layers(net, input_matrix(model, X)[:2])
    spec = task_spec(model)
    scores = taylor(net, layers, input_matrix(model, X), target_tensor(model, y), spec.loss_fn())
    assert scores[0][0] == 0 and scores[1][4] == 0
    assert (scores[0][1:] > 0).all() and (torch.cat([scores[1][:4], scores[1][5:]]) > 0).all()
    pruned, report = archtune.prune(model, X, y, importance="taylor", step=0.15, **ONE_ROUND)
    assert report.rounds["removed"].iloc[1] == {"layer0": [0], "layer1": [4]}
    # A unit that feeds nothing changes nothing: the pruned network predicts as the original.
    torch.testing.assert_close(_outputs(model, pruned.module_, X), _outputs(model, net, X), atol=1e-6, rtol=0)


def test_magnitude_scores_are_the_l1_norms_of_incoming_weights():
    X, y = _table()
    model = _small().fit(X, y)
    layers = unit_layers(model.module_, input_matrix(model, X)[:2])
    scores = magnitude(layers)
    body = model.module_.body
    expected = [body[0].weight.detach().abs().sum(dim=1), body[4].weight.detach().abs().sum(dim=1)]
    for got, want in zip(scores, expected):
        torch.testing.assert_close(got, want)


@pytest.fixture(scope="module")
def magic_model(magic_small):
    X, y = magic_small
    X_fit, X_val, y_fit, y_val = X.iloc[:1400], X.iloc[1400:], y.iloc[:1400], y.iloc[1400:]
    model = NeuralClassifier(hidden_sizes=(64, 64), max_epochs=6, random_state=0).fit(X_fit, y_fit)
    return model, X_fit, y_fit, X_val, y_val


def test_termination_score_drop_holds_and_the_input_model_is_unchanged(magic_model):
    model, X_fit, y_fit, X_val, y_val = magic_model
    state = {k: v.clone() for k, v in model.module_.state_dict().items()}
    params, config, lineage = model.get_params(), model.model_config_, list(getattr(model, "lineage_", []))
    pruned, report = archtune.prune(model, X_fit, y_fit, validation_data=(X_val, y_val), step=0.3,
                                    max_score_drop=0.005, fine_tune_epochs=1, random_state=0)
    # Recomputed independently of the report: the drop on the validation rows is within bounds.
    assert model.score(X_val, y_val) - pruned.score(X_val, y_val) <= 0.005 + 1e-12
    assert pruned.score(X_val, y_val) == pytest.approx(report.rounds["score"].iloc[report.kept_round])
    if report.stop_reason.startswith("the validation score dropped"):
        assert report.rounds["score_drop"].iloc[-1] > 0.005 and report.kept_round == len(report.rounds) - 2
    for key, value in model.module_.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert model.get_params() == params and model.model_config_ == config
    assert list(getattr(model, "lineage_", [])) == lineage
    entry = pruned.lineage_[0]  # newest first
    assert entry["step"] == "pruned" and entry["params_after"] == n_params(pruned.module_)
    assert entry["params_before"] == n_params(model.module_)


def test_target_params_is_respected_and_the_pruned_model_saves_and_loads(magic_model, tmp_path):
    model, X_fit, y_fit, X_val, y_val = magic_model
    target = n_params(model.module_) // 2
    pruned, report = archtune.prune(model, X_fit, y_fit, importance="magnitude", step=0.25, max_score_drop=None,
                                    target_params=target, fine_tune_epochs=1, random_state=0)
    assert n_params(pruned.module_) <= target < report.rounds["n_params"].iloc[report.kept_round - 1]
    assert report.stop_reason.startswith("target_params")
    archtune.save(pruned, tmp_path / "pruned")
    loaded = archtune.load(tmp_path / "pruned")
    assert loaded.model_config_.hidden_sizes == pruned.model_config_.hidden_sizes
    np.testing.assert_array_equal(loaded.predict_proba(X_val), pruned.predict_proba(X_val))


def test_regressor_prunes_with_a_holdout_of_x_y(house_small):
    X, y = house_small
    X, y = X.iloc[:800], y.iloc[:800]
    model = NeuralRegressor(hidden_sizes=(32, 32), max_epochs=4, random_state=0).fit(X, y)
    pruned, report = archtune.prune(model, X, y, max_score_drop=0.02, fine_tune_epochs=1, random_state=0)
    assert report.metric == "r2" and isinstance(pruned, NeuralRegressor)
    assert report.rounds["score_drop"].iloc[report.kept_round] <= 0.02
    assert pruned.predict(X.iloc[:5]).shape == (5,)


def test_tabm_units_are_sliced_across_members():
    X, y = _table()
    model = _small(arch="tabm", k=4, norm=None, hidden_sizes=(8, 8)).fit(X, y)
    pruned, report = archtune.prune(model, X, y, importance="magnitude", step=0.25, **ONE_ROUND)
    removed = report.rounds["removed"].iloc[1]
    masked = zero_outgoing(model.module_, input_matrix(model, X)[:2],
                           {0: removed["layer0"], 1: removed["layer1"]})
    torch.testing.assert_close(_outputs(model, pruned.module_, X), _outputs(model, masked, X), atol=1e-6, rtol=0)
    assert pruned.model_config_.hidden_sizes == (6, 6)


def test_cnn_channels_are_pruned_and_the_bundle_rebuilds_them(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.normal(size=(80, 1, 8, 8)).astype("float32")
    labels = (images[:, 0, :4].mean(axis=(1, 2)) > images[:, 0, 4:].mean(axis=(1, 2))).astype(int)
    model = NeuralClassifier(arch="cnn", conv_blocks=2, filters=4, hidden_sizes=(8,), max_epochs=2, augment=False,
                             random_state=0).fit(images, labels)
    original = {k: v.clone() for k, v in model.module_.state_dict().items()}
    pruned, report = archtune.prune(model, images, labels, importance="magnitude", step=0.25, **ONE_ROUND)
    assert pruned.model_config_.conv_filters == (3, 6) and pruned.model_config_.hidden_sizes == (6,)
    removed = report.rounds["removed"].iloc[1]
    masked = zero_outgoing(model.module_, input_matrix(model, images)[:2],
                           {i: removed[f"layer{i}"] for i in range(3)})
    torch.testing.assert_close(_outputs(model, pruned.module_, images), _outputs(model, masked, images),
                               atol=1e-5, rtol=0)
    assert all(torch.equal(v, original[k]) for k, v in model.module_.state_dict().items())
    archtune.save(pruned, tmp_path / "cnn")
    loaded = archtune.load(tmp_path / "cnn")
    np.testing.assert_array_equal(loaded.predict_proba(images), pruned.predict_proba(images))
    info = CliRunner().invoke(cli, ["info", str(tmp_path / "cnn")])
    assert info.exit_code == 0 and "conv block(s) of 3, 6 filters" in info.output, info.output


def test_unstructured_zeroes_weights_but_keeps_the_shape(tmp_path):
    X, y = _table()
    model = _small(norm=None).fit(X, y)
    pruned, report = archtune.prune(model, X, y, method="unstructured", importance="magnitude", step=0.5,
                                    **ONE_ROUND)
    before = [model.module_.body[i].weight for i in (0, 4)]
    after = [pruned.module_.body[i].weight for i in (0, 4)]
    for w0, w1 in zip(before, after):
        assert w1.shape == w0.shape
        assert int((w1 == 0).sum()) == round(0.5 * w0.numel())
        # The weights kept are the largest in magnitude, unchanged (no fine-tuning).
        kept = w1 != 0
        assert w0.detach().abs()[kept].min() >= w0.detach().abs()[~kept].max()
    assert report.rounds["n_nonzero"].iloc[1] < report.rounds["n_nonzero"].iloc[0]
    assert report.rounds["n_params"].iloc[1] == report.rounds["n_params"].iloc[0]
    archtune.save(pruned, tmp_path / "u")
    np.testing.assert_array_equal(archtune.load(tmp_path / "u").predict_proba(X), pruned.predict_proba(X))


def test_bad_parameters_and_families_are_refused_by_name():
    X, y = _table(120)
    model = _small(max_epochs=1).fit(X, y)
    with pytest.raises(InvalidParameterError, match="termination condition"):
        archtune.prune(model, X, y, max_score_drop=None)
    with pytest.raises(InvalidParameterError, match="importance"):
        archtune.prune(model, X, y, importance="random")
    with pytest.raises(InvalidParameterError, match="step"):
        archtune.prune(model, X, y, step=1.0)
    with pytest.raises(InvalidParameterError, match="unfitted NeuralClassifier"):
        archtune.prune(NeuralClassifier(), X, y)
    resnet = _small(arch="resnet", max_epochs=1).fit(X, y)
    with pytest.raises(InvalidParameterError, match="resnet"):
        archtune.prune(resnet, X, y)


def test_cli_prune_round_trip(tmp_path):
    X, y = _table(300)
    frame = X.assign(target=y)
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    run = tmp_path / "run"
    model = _small(norm=None).fit(X, y)
    archtune.save(model, run, metadata={"target": "target", "task": "classification"})
    out = tmp_path / "run2"
    result = CliRunner().invoke(cli, ["prune", str(run), str(data), "--target", "target", "--max-drop", "1",
                                      "--target-params", "1", "--fine-tune-epochs", "0", "--importance", "magnitude",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    loaded = archtune.load(out)
    assert "round" in result.output and f"{n_params(loaded.module_):,}" in result.output
    assert n_params(loaded.module_) < n_params(model.module_)
    assert (out / "prune_rounds.csv").is_file()
    same = CliRunner().invoke(cli, ["prune", str(run), str(data), "--target", "target", "--out", str(run)])
    assert same.exit_code == 2 and "RUN itself" in same.output
    missing = CliRunner().invoke(cli, ["prune", str(run), str(data), "--target", "label", "--out", str(out)])
    assert missing.exit_code == 2 and "'label'" in missing.output and "data.csv" in missing.output
