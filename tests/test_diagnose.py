"""archtune.diagnose (issue 5): each detector fires on a network built to have its problem and
stays silent on healthy default networks trained on real data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import archtune
from archtune import diagnose
from archtune.doctor import CODES
from archtune.doctor.probes import duplicate_units, unit_stats
from archtune.errors import BundleError, InvalidParameterError
from archtune.fitting import prepare
from archtune.recipes import CLASSIC
from tests.conftest import load_shared



def NeuralClassifier(**params):  # noqa: N802
    """The doctor's detectors were calibrated on the classic defaults (ReLU networks, where
    units can die): its tests build their networks from them (archtune.recipes.CLASSIC)."""
    return archtune.NeuralClassifier(**{**CLASSIC, **params})


def NeuralRegressor(**params):  # noqa: N802
    return archtune.NeuralRegressor(**{**CLASSIC, **params})


NETWORK_CHECKS = {"vanishing_gradients", "exploding_gradients", "dead_units", "update_ratio", "loss_oscillation",
                  "symmetry", "overfitting", "underfitting", "val_below_train"}
DATA_CHECKS = {"constant_features", "class_imbalance", "train_val_leak"}


@pytest.fixture(scope="module")
def magic():
    return load_shared("magic.tsv.gz", n=3000, seed=1)


@pytest.fixture(scope="module")
def house():
    return load_shared("574_house_16H.tsv.gz", n=3000, seed=1)


# ---------------------------------------------------------------- silence on healthy networks

def test_healthy_default_network_on_magic_is_silent(magic):
    X, y = magic
    # The classic defaults (ReLU): every check applies.
    diagnosis = diagnose(NeuralClassifier(random_state=0), X, y)
    assert diagnosis.findings == [], str(diagnosis)
    assert NETWORK_CHECKS | DATA_CHECKS <= set(diagnosis.checked)
    assert "no problems found" in str(diagnosis)


def test_the_default_recipe_network_on_magic_is_silent(magic):
    X, y = magic
    diagnosis = diagnose(archtune.NeuralClassifier(random_state=0), X, y)
    assert diagnosis.findings == [], str(diagnosis)
    # Mish units never stop passing a gradient: dead_units is for the ReLU family (tested above).
    assert (NETWORK_CHECKS - {"dead_units"}) | DATA_CHECKS <= set(diagnosis.checked)


@pytest.mark.parametrize("name, estimator", [("574_house_16H.tsv.gz", NeuralRegressor),
                                             ("adult.tsv.gz", NeuralClassifier)])
def test_healthy_default_networks_on_other_datasets_get_no_warning(name, estimator):
    X, y = load_shared(name, n=3000, seed=1)
    diagnosis = diagnose(estimator(random_state=0), X, y, max_epochs=20)
    assert diagnosis.healthy, str(diagnosis)


def test_a_fitted_healthy_network_and_its_saved_bundle_are_silent(magic, tmp_path):
    X, y = magic
    model = NeuralClassifier(random_state=0, max_epochs=15).fit(X, y)
    assert diagnose(model, X, y).findings == []
    archtune.save(model, tmp_path / "run")
    from_disk = diagnose(tmp_path / "run", X, y)
    assert from_disk.findings == [] and from_disk.source == str(tmp_path / "run")


# ---------------------------------------------------------------- each detector fires

def _biases_minus_5(module):
    for layer in module.hidden_linears():
        layer.bias.fill_(-5.0)


def _constant_weights(module):
    for layer in module.hidden_linears():
        layer.weight.fill_(0.05)
        layer.bias.zero_()


def _weights_times_6(module):
    for layer in module.hidden_linears():
        layer.weight.mul_(6.0)


def _magic_scaled_feature(X, y):
    X = X.copy()
    X["FLength"] = X["FLength"] * 1e4
    return X, y


SICK = [
    # (code, estimator, data transform, diagnose kwargs)
    ("vanishing_gradients", NeuralClassifier(hidden_layers=20, units=64, activation="sigmoid", random_state=0),
     None, {"max_epochs": 3}),
    ("exploding_gradients", NeuralClassifier(learning_rate=5, random_state=0), None, {"max_epochs": 3}),
    ("dead_units", NeuralClassifier(random_state=0), None, {"initialize": _biases_minus_5, "max_epochs": 3}),
    ("saturation", NeuralClassifier(activation="tanh", random_state=0), None,
     {"initialize": _weights_times_6, "max_epochs": 3}),
    ("update_ratio", NeuralClassifier(learning_rate=1e-7, random_state=0), None, {"max_epochs": 3}),
    ("symmetry", NeuralClassifier(dropout=0.0, random_state=0), None, {"initialize": _constant_weights, "max_epochs": 3}),
    ("underfitting", NeuralClassifier(hidden_layers=1, units=1, dropout=0.5, random_state=0), None, {"max_epochs": 8}),
    ("unscaled_features", NeuralClassifier(scaling=None, random_state=0), _magic_scaled_feature, {"max_epochs": 2}),
]


@pytest.mark.parametrize("code, estimator, transform, kwargs", SICK, ids=[case[0] for case in SICK])
def test_detector_fires_on_a_network_built_to_have_its_problem(magic, code, estimator, transform, kwargs):
    X, y = transform(*magic) if transform else magic
    diagnosis = diagnose(estimator, X, y, **kwargs)
    assert code in diagnosis, str(diagnosis)
    finding = diagnosis[code]
    assert finding.advice and finding.evidence and finding.message
    assert not hasattr(estimator, "module_")  # the caller's estimator is not fitted by the doctor


def test_vanishing_gradient_evidence_and_advice(magic):
    X, y = magic
    finding = diagnose(NeuralClassifier(hidden_layers=20, units=64, activation="sigmoid", random_state=0), X, y,
                       max_epochs=2)["vanishing_gradients"]
    assert finding.evidence["first_to_last_ratio"] < 1e-6
    assert len(finding.evidence["gradient_rms"]) == 21
    assert any("relu" in tip for tip in finding.advice) and any("resnet" in tip for tip in finding.advice)


def test_dead_units_are_dead_from_the_start_with_biases_at_minus_5(magic):
    X, y = magic
    finding = diagnose(NeuralClassifier(random_state=0), X, y, initialize=_biases_minus_5,
                       max_epochs=2)["dead_units"]
    assert "already dead at initialisation" in finding.message
    assert max(finding.evidence["dead_share"].values()) >= 0.5
    assert any("leaky_relu" in tip for tip in finding.advice)


def test_exploding_gradients_with_sgd_divergence_is_an_error(magic):
    X, y = magic
    diagnosis = diagnose(NeuralClassifier(optimizer="sgd", learning_rate=5, random_state=0), X, y, max_epochs=5)
    finding = diagnosis["exploding_gradients"]
    assert finding.severity == "error" and "diverged" in finding.evidence
    assert any("gradient_clip" in tip for tip in finding.advice)


def test_overfitting_on_500_rows_with_six_layers_of_512(magic):
    X, y = load_shared("magic.tsv.gz", n=500, seed=3)
    diagnosis = diagnose(NeuralClassifier(hidden_layers=6, units=512, dropout=0.0, weight_decay=0.0, random_state=0),
                         X, y)
    finding = diagnosis["overfitting"]
    history_best = finding.evidence["best_epoch"]
    assert finding.evidence["val_loss_last"] > finding.evidence["val_loss_min"] * 1.1
    assert any(f"epoch {history_best}" in tip for tip in finding.advice)


def test_loss_oscillation_with_a_high_constant_rate_and_not_with_the_default(house):
    X, y = house
    high = NeuralRegressor(optimizer="rmsprop", learning_rate=0.01, lr_schedule="constant", random_state=0)
    diagnosis = diagnose(high, X, y, max_epochs=20)
    assert "loss_oscillation" in diagnosis, str(diagnosis)
    assert len(diagnosis["loss_oscillation"].evidence["zigzag_epochs"]) >= 3
    assert "loss_oscillation" not in diagnose(NeuralRegressor(random_state=0), X, y, max_epochs=20)


def test_val_below_train_with_heavy_dropout():
    X, y = load_shared("197_cpu_act.tsv.gz", n=3000, seed=1)
    diagnosis = diagnose(NeuralRegressor(dropout=0.5, random_state=0), X, y, max_epochs=10)
    finding = diagnosis["val_below_train"]
    assert finding.severity == "info" and finding.evidence["val_to_train_ratio"] < 0.8
    assert any("dropout (0.5)" in tip for tip in finding.advice)


def test_data_problems_constant_column_imbalance_and_duplicated_rows(magic):
    X, y = magic
    X = X.assign(station=7.0)
    common, uncommon = y.value_counts().index
    rare = np.flatnonzero(y.to_numpy() == uncommon)[:100]  # keep 100 rows of the rarer class: 5% of the other
    keep = np.concatenate([np.flatnonzero(y.to_numpy() == common), rare])
    X, y = X.iloc[keep].reset_index(drop=True), y.iloc[keep].reset_index(drop=True)
    doubled = pd.concat([X, X], ignore_index=True), pd.concat([y, y], ignore_index=True)
    diagnosis = diagnose(NeuralClassifier(random_state=0), *doubled, max_epochs=2)
    assert {"constant_features", "class_imbalance", "train_val_leak"} <= set(diagnosis.codes), str(diagnosis)
    assert diagnosis["constant_features"].evidence["columns"] == ["station"]
    assert diagnosis["class_imbalance"].evidence["counts"][str(uncommon)] == 200
    # Each row appears twice, so most validation rows have their twin among the training rows.
    assert diagnosis["train_val_leak"].evidence["share"] > 0.8
    weighted = diagnose(NeuralClassifier(class_weight="balanced", random_state=0), X, y, max_epochs=1)
    assert weighted["class_imbalance"].severity == "info"


# ---------------------------------------------------------------- fitted models and run directories

def test_fitted_model_with_copied_units_shows_symmetry(magic):
    X, y = magic
    model = NeuralClassifier(random_state=0, max_epochs=2).fit(X, y)
    with torch.no_grad():
        _constant_weights(model.module_)
    assert "symmetry" in diagnose(model, X, y)
    assert "symmetry" in diagnose(model)  # the weights alone show it


def test_overfitting_is_read_from_a_saved_run_without_data(tmp_path):
    X, y = load_shared("magic.tsv.gz", n=500, seed=3)
    model = NeuralClassifier(hidden_layers=6, units=512, dropout=0.0, weight_decay=0.0, random_state=0).fit(X, y)
    archtune.save(model, tmp_path / "run")
    diagnosis = diagnose(str(tmp_path / "run"))
    assert "overfitting" in diagnosis
    assert diagnosis["overfitting"].evidence["best_epoch"] == model.best_epoch_


# ---------------------------------------------------------------- probes against hand computation

def test_unit_probes_match_a_hand_computation():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 1))
    with torch.no_grad():
        net[0].bias.copy_(torch.tensor([-100.0, 0.0, 100.0, -100.0, 0.5]))
        net[2].weight.mul_(20)
    X = torch.randn(64, 3)
    stats = unit_stats(net, X)
    z1 = X @ net[0].weight.T + net[0].bias
    z2 = torch.relu(z1) @ net[2].weight.T + net[2].bias
    assert stats[0].dead == int((z1.max(dim=0).values <= 0).sum()) >= 2
    assert stats[1].saturated_share == pytest.approx(float((z2.abs() > 4).double().mean()))
    with torch.no_grad():
        net[0].weight[1] = net[0].weight[0]
        net[0].bias[1] = net[0].bias[0]
    assert duplicate_units(net)[0] == ("hidden layer 1", 5, 2)


# ---------------------------------------------------------------- the report and its errors

def test_diagnosis_reports_are_ordered_readable_and_json_ready(magic):
    import json

    X, y = magic
    diagnosis = diagnose(NeuralClassifier(learning_rate=5, random_state=0), X, y, max_epochs=2)
    severities = [f.severity for f in diagnosis]
    assert severities == sorted(severities, key=["error", "warning", "info"].index)
    assert set(diagnosis.codes) <= set(CODES)
    assert json.loads(json.dumps(diagnosis.to_dict()))["findings"][0]["code"] == diagnosis.codes[0]
    assert diagnosis.summary() == {"codes": diagnosis.codes, "worst": "error"}
    text = str(diagnosis)
    assert "[error] exploding_gradients" in text and "lower the learning rate" in text
    with pytest.raises(KeyError, match="no 'symmetry' finding"):
        diagnosis["symmetry"]


def test_bad_calls_are_named(magic, tmp_path):
    X, y = magic
    with pytest.raises(InvalidParameterError, match="not fitted: pass X and y"):
        diagnose(NeuralClassifier())
    with pytest.raises(InvalidParameterError, match="both X and y"):
        diagnose(NeuralClassifier(), X)
    with pytest.raises(InvalidParameterError, match="max_epochs"):
        diagnose(NeuralClassifier(), X, y, max_epochs=0)
    with pytest.raises(InvalidParameterError, match="not list"):
        diagnose([1, 2], X, y)
    with pytest.raises(BundleError, match="no such model bundle"):
        diagnose(tmp_path / "missing")


# ---------------------------------------------------------------- learning_rate="auto" and the search

def test_learning_rate_auto_trains_with_the_finder_suggestion(magic):
    from archtune import lr_find

    X, y = magic
    auto = NeuralClassifier(learning_rate="auto", random_state=0, max_epochs=4).fit(X, y)
    suggestion = lr_find(NeuralClassifier(random_state=0), X, y).suggestion
    # Oracle: training with the rate the finder chose gives the same network epoch for epoch,
    # and that rate is close to what the public finder suggests on all rows (fit runs it on
    # its 90% training split).
    fixed = NeuralClassifier(learning_rate=auto.learning_rate_, random_state=0, max_epochs=4).fit(X, y)
    assert list(auto.history_["val_loss"]) == list(fixed.history_["val_loss"])
    assert auto.learning_rate_ == pytest.approx(suggestion, rel=0.5)  # whole data vs its 90% split
    assert fixed.learning_rate_ == auto.learning_rate_ and auto.learning_rate == "auto"
    with pytest.raises(InvalidParameterError, match="positive number or 'auto'"):
        NeuralClassifier(learning_rate="fast").fit(X, y)


def test_search_centres_each_configuration_on_the_finder_suggestion():
    from archtune import AutoNeuralClassifier

    X, y = load_shared("magic.tsv.gz", n=1500, seed=1)
    space = {"learning_rate": "auto", "max_epochs": 8, "hidden_layers": (1, 2), "units": (16, 64)}
    model = AutoNeuralClassifier(budget=6, space=space, baselines=False, random_state=0).fit(X, y)
    trials = [t for t in model.study_.trials if "learning_rate_scale" in t.params]
    assert len(trials) >= 6
    for trial in trials:
        attrs = trial.user_attrs
        assert attrs["learning_rate"] == pytest.approx(attrs["lr_finder_suggestion"] * trial.params["learning_rate_scale"])
        assert 0.1 <= trial.params["learning_rate_scale"] <= 10
    best = model.best_trial_
    assert model.best_params_["learning_rate"] == best.user_attrs["learning_rate"]
    assert "learning_rate_scale" not in model.best_params_
    assert model.best_estimator_.learning_rate == best.user_attrs["learning_rate"]


def test_search_stops_dead_networks_with_the_reason_and_stores_each_diagnosis():
    from optuna.trial import TrialState

    from archtune import AutoNeuralClassifier

    X, y = load_shared("magic.tsv.gz", n=1500, seed=1)
    space = {**CLASSIC, "learning_rate": [5.0, 1e-3], "max_epochs": 8, "hidden_layers": 2, "units": 64, "arch": "mlp",
             "activation": "relu", "optimizer": "adamw", "lr_schedule": "constant"}
    model = AutoNeuralClassifier(budget=10, space=space, population=False, pruner=None, baselines=False,
                                 random_state=0).fit(X, y)
    reasons = [t.user_attrs["fail_reason"] for t in model.study_.trials if t.state == TrialState.FAIL]
    assert any(r.startswith("dead: ") and "same value for every validation row" in r for r in reasons), reasons
    assert all(r.startswith(("dead: ", "diverged: ")) for r in reasons)
    dead = [t for t in model.study_.trials if t.user_attrs.get("fail_reason", "").startswith("dead")]
    assert all(t.params["learning_rate"] == 5.0 for t in dead)
    for trial in model.study_.trials:
        if trial.state == TrialState.COMPLETE:
            summary = trial.user_attrs["diagnosis"]
            assert set(summary["codes"]) <= set(CODES)
            if trial.params["learning_rate"] == 1e-3:
                assert "dead_units" not in summary["codes"]


def test_a_dead_layer_gives_constant_outputs_and_the_reporter_stops_it():
    from archtune.errors import DeadNetworkError
    from archtune.train import Trainer
    from archtune.tune.epochs import EpochReporter

    X, y = load_shared("magic.tsv.gz", n=600, seed=1)
    healthy = NeuralClassifier(random_state=0, max_epochs=1).fit(X, y)
    assert healthy.history_["val_output_std"].iloc[-1] > 0.01
    est = NeuralClassifier(random_state=0, max_epochs=2)
    prepared = prepare(est, X, y)
    module = prepared.build_network()
    with torch.no_grad():
        module.hidden_linears()[1].bias.fill_(-100.0)  # the second hidden layer never activates
    trainer = Trainer(module, prepared.task.loss_fn(), prepared.train_config)
    history = trainer.fit(prepared.X_train, prepared.y_train, prepared.X_val, prepared.y_val).records
    assert history[-1]["val_output_std"] == 0.0
    reporter = EpochReporter("val_loss", -1.0, lambda epoch, value: True)
    with pytest.raises(DeadNetworkError, match="same value for every validation row at epoch 2"):
        reporter.on_epoch_end(trainer, history[-1])


def test_diagnose_runs_the_finder_for_learning_rate_auto_and_one_validation_row_is_not_dead(magic):
    X, y = magic
    diagnosis = diagnose(NeuralClassifier(learning_rate=1e-7, random_state=0), X, y, max_epochs=2)
    auto = diagnose(NeuralClassifier(learning_rate="auto", random_state=0), X, y, max_epochs=2)
    assert "update_ratio" in diagnosis and "update_ratio" not in auto
    from archtune.train import Trainer

    est = NeuralClassifier(random_state=0, max_epochs=1)
    prepared = prepare(est, X, y)
    trainer = Trainer(prepared.build_network(), prepared.task.loss_fn(), prepared.train_config)
    history = trainer.fit(prepared.X_train, prepared.y_train, prepared.X_val[:1], prepared.y_val[:1]).records
    assert "val_output_std" not in history[-1]  # one row cannot show constant outputs


def test_images_get_no_column_advice_for_their_pixels():
    """Images with an always-black border: a table with such columns would be told to drop
    them, but pixels of an N x C x H x W array are not columns one can drop."""
    rng = np.random.default_rng(0)
    X = np.zeros((120, 1, 10, 10), dtype=np.uint8)
    X[:, :, 2:8, 2:8] = rng.integers(0, 255, size=(120, 1, 6, 6))
    y = (X[:, 0, 2:8, 2:5].mean(axis=(1, 2)) > X[:, 0, 2:8, 5:8].mean(axis=(1, 2))).astype(int)
    images = diagnose(NeuralClassifier(arch="cnn", filters=4, units=16, random_state=0), X, y, max_epochs=2)
    assert "constant_features" not in images.checked and "class_imbalance" in images.checked
    assert not [f for f in images.findings if f.code in ("constant_features", "unscaled_features")]
    pixels = diagnose(NeuralClassifier(units=16, random_state=0), X.reshape(120, -1), y, max_epochs=2)
    assert "constant_features" in [f.code for f in pixels.findings]
