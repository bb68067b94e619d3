"""Serving anywhere (issue 32.5): predict(X, n_threads=..., device=...) on networks, ensembles and
Auto estimators and in the CLI; fit and predict leave torch's thread count as they found it;
a bundle written by a GPU (or bf16) fit loads and predicts on a CPU."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

import archtune
from archtune import NeuralClassifier, NeuralRegressor
from archtune.auto import AutoNeuralClassifier
from archtune.cli import cli
from archtune.errors import InvalidParameterError


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=["a", "b", "c", "d"])
    return X, (X["a"] + X["b"] * X["c"] > 0).astype(int).to_numpy()


def _threads_during_forward(model, call):
    seen = []
    handle = model.module_.register_forward_hook(lambda *_: seen.append(torch.get_num_threads()))
    try:
        call()
    finally:
        handle.remove()
    return seen


def test_predict_runs_on_the_threads_asked_and_restores_them(two_threads):
    X, y = _data()
    model = NeuralClassifier(max_epochs=3, random_state=0).fit(X, y)
    assert torch.get_num_threads() == 2  # fit restored it
    expected = model.predict_proba(X)
    seen = _threads_during_forward(model, lambda: model.predict_proba(X, n_threads=1))
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == 2
    np.testing.assert_allclose(model.predict_proba(X, n_threads=1), expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(model.predict(X, n_threads=1, device="cpu"), model.predict(X))


@pytest.mark.parametrize("bad, words", [({"n_threads": 0}, "n_threads must be None or an integer >= 1"),
                                        ({"device": "tpu"}, "device must be None, 'auto', 'cpu', 'cuda'")])
def test_bad_serving_settings_are_refused_by_name(bad, words):
    X, y = _data(100)
    model = NeuralClassifier(max_epochs=1, random_state=0).fit(X, y)
    with pytest.raises(InvalidParameterError, match=words):
        model.predict(X, **bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU: the refusal is for CPU-only machines")
def test_a_cuda_device_on_a_cpu_only_machine_is_refused_with_the_way_out():
    X, y = _data(100)
    model = NeuralClassifier(max_epochs=1, random_state=0).fit(X, y)
    with pytest.raises(InvalidParameterError, match="no CUDA GPU is available; predict on device='cpu'"):
        model.predict(X, device="cuda")
    assert next(model.module_.parameters()).device.type == "cpu"  # nothing moved


def test_a_bundle_of_a_gpu_fit_and_of_a_bf16_fit_loads_and_predicts_on_a_cpu(tmp_path):
    X, y = _data()
    reg_y = X["a"].to_numpy() * 2
    for name, model in (("gpu", NeuralRegressor(max_epochs=2, random_state=0).fit(X, reg_y)),
                        ("bf16", NeuralRegressor(max_epochs=2, mixed_precision="bf16", random_state=0).fit(X, reg_y))):
        expected = model.predict(X)
        if name == "gpu":
            # What a fit on a GPU saves: its parameters say device="cuda" (the weights are bytes).
            model.set_params(device="cuda")
        archtune.save(model, tmp_path / name)
        loaded = archtune.load(tmp_path / name)
        assert next(loaded.module_.parameters()).device.type == "cpu"
        assert next(loaded.module_.parameters()).dtype == torch.float32
        np.testing.assert_allclose(loaded.predict(X, device="cpu"), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU to write a bundle from a GPU fit")
def test_a_bundle_written_by_a_cuda_fit_predicts_on_the_cpu(tmp_path):
    X, y = _data()
    model = NeuralClassifier(max_epochs=2, device="cuda", random_state=0).fit(X, y)
    expected = model.predict_proba(X)
    archtune.save(model, tmp_path / "cuda")
    loaded = archtune.load(tmp_path / "cuda")
    np.testing.assert_allclose(loaded.predict_proba(X, device="cpu"), expected, rtol=1e-4, atol=1e-5)


def test_a_search_and_an_ensemble_with_a_bag_serve_on_the_threads_asked_in_python_and_the_cli(two_threads, tmp_path):
    from sklearn.metrics import get_scorer

    from archtune.ensemble import Member, make_ensemble
    from archtune.ensemble.bagging import bag

    X, y = _data(400, seed=1)
    model = AutoNeuralClassifier(budget=4, random_state=0, baselines=False, space={"max_epochs": 3}).fit(X, y)
    assert torch.get_num_threads() == 2  # the search restored it
    final = model.final_estimator_
    assert type(final).__name__ == "NeuralClassifier"  # this seed ships its best network
    seen = _threads_during_forward(final, lambda: model.predict_proba(X, n_threads=1, device="cpu"))
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == 2
    np.testing.assert_allclose(model.predict_proba(X, n_threads=1), model.predict_proba(X), rtol=1e-6, atol=1e-7)
    # An ensemble of a network and a bag: every network, the bag's too, predicts on one thread.
    bagged = bag(lambda p: NeuralClassifier(**p), {"max_epochs": 2, "random_state": 0}, X, y, 2, "classification",
                 get_scorer("accuracy"), 0, None, None, list(X.columns))
    ensemble = make_ensemble("classification", [Member("net", final, "network", 0.9),
                                                Member("bag", bagged.ensemble, "bag", 0.9)],
                             np.array([0.5, 0.5]), final.classes_, None, list(X.columns))
    inner = bagged.ensemble.networks[0]
    seen_inner = []
    handle = inner.module_.register_forward_hook(lambda *_: seen_inner.append(torch.get_num_threads()))
    seen = _threads_during_forward(final, lambda: ensemble.predict_proba(X, n_threads=1, device="cpu"))
    handle.remove()
    assert set(seen) == set(seen_inner) == {1}
    assert torch.get_num_threads() == 2
    archtune.save(model, tmp_path / "run")
    X.to_csv(tmp_path / "rows.csv", index=False)
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(cli, ["predict", str(tmp_path / "run"), str(tmp_path / "rows.csv"), "--threads", "1",
                                      "--device", "cpu", "-o", str(out)])
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(pd.read_csv(out)["prediction"], model.predict(X))
    bad = CliRunner().invoke(cli, ["predict", str(tmp_path / "run"), str(tmp_path / "rows.csv"), "--device", "tpu"])
    assert bad.exit_code != 0 and "--device: device must be None" in bad.output
