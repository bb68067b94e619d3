"""Cohorts on a CUDA GPU: the same arithmetic as on the CPU, and no host synchronisation per step.

These need a CUDA device; on a machine without one they skip (the project's device tool runs
them when a GPU is lent: ``.venv/bin/python -m pytest tests/test_gpu_cohort.py``).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification

from archtune import NeuralClassifier
from archtune.recipes import CLASSIC
from archtune.train.losses import make_member_loss, make_member_metric
from archtune.train.population import PopulationTrainer
from tests.test_population import MLP_WIDTHS, _magic, _members

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; this machine has none")
pytestmark = needs_cuda


def _data():
    X, y = make_classification(600, 12, n_informative=6, random_state=0)
    return X.astype(np.float64), y


def _cohort(device: str) -> list[NeuralClassifier]:
    # Widths differ (padding and masks), rates and weight decay differ; no dropout, whose random
    # numbers differ between a CPU and a GPU generator.
    configs = [dict(units=u, learning_rate=lr, weight_decay=wd) for u, lr, wd in
               ((32, 3e-3, 1e-4), (40, 1e-3, 0.0), (44, 3e-4, 1e-3))]
    return [NeuralClassifier(**dict(CLASSIC, hidden_layers=2, dropout=0.0, max_epochs=3, early_stopping=False,
                                    random_state=0, device=device, **c)) for c in configs]


def assert_cohort_on_gpu_equals_cpu(modules, configs, data) -> None:
    """The same cohort trained on the CPU and on the GPU (binary task): equal histories and
    weights to 1e-7 relative (float64 networks)."""
    _, Xtr, ytr, Xva, yva = data
    results = []
    for device in ("cpu", "cuda"):
        trainer = PopulationTrainer([copy.deepcopy(m) for m in modules], configs,
                                    make_member_loss("binary", "cross_entropy"), make_member_metric("binary"),
                                    "accuracy", device=torch.device(device))
        results.append(trainer.fit(Xtr, ytr, Xva, yva))
    for k, (cpu, gpu) in enumerate(zip(*results)):
        assert cpu.status == gpu.status == "complete", k
        assert [r["val_loss"] for r in gpu.history] == pytest.approx([r["val_loss"] for r in cpu.history], rel=1e-7)
        for name, value in cpu.state.items():
            np.testing.assert_allclose(gpu.state[name].cpu().numpy(), value.numpy(), rtol=1e-7, atol=1e-9,
                                       err_msg=f"member {k}, {name}")


def assert_step_does_not_sync(engine, xb, yb, lrs) -> None:
    """Steps of a `StackedEngine` on a GPU never make the host wait for it."""
    engine.begin()
    engine.train_mode(True)
    engine.step(xb, yb, [lrs[0]] * len(lrs))  # the first step allocates the optimiser's state
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any host-device synchronisation raises
    try:
        for _ in range(3):
            engine.step(xb, yb, lrs)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_a_cohort_on_the_gpu_equals_the_cohort_on_the_cpu():
    # float64, six members that differ in width (padding and masks), rate, schedule, weight
    # decay, L1/L2, max-norm and clipping (tests/test_population.py's oracle set).
    data = _magic(torch.float64)
    assert_cohort_on_gpu_equals_cpu(*_members(data[0], torch.float64, MLP_WIDTHS), data)


def test_a_cohort_step_on_the_gpu_does_not_wait_for_the_gpu():
    from archtune.fitting import prepare
    from archtune.train.engines import StackedEngine

    X, y = _data()
    estimators = _cohort("cuda")
    estimators[1].set_params(dropout=0.2)  # the dropout op's per-member rates too
    leader = prepare(estimators[0], X, y)
    members = [leader] + [leader.for_estimator(e) for e in estimators[1:]]
    device = torch.device("cuda")
    engine = StackedEngine([p.build_network() for p in members], [p.train_config for p in members],
                           members[0].task.member_loss_fn(device), members[0].task.member_metric_fn(), device)
    assert_step_does_not_sync(engine, members[0].X_train[:64].to(device), members[0].y_train[:64].to(device),
                              [1e-3, 5e-4, 2e-4])
