"""Threads chosen from the work, the user's setting kept (issue 14, fault 11)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from archtune import NeuralRegressor
from archtune.train.callbacks import Callback
from archtune.train.threads import WORK_PER_THREAD, cores, step_work, threads_for, user_set_threads


def test_step_work_counts_the_multiply_adds_of_every_layer():
    mlp = nn.Sequential(nn.Linear(8, 256), nn.ReLU(), nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 1))
    by_hand = 8 * 256 + 256 * 64 + 64 * 1
    assert step_work([mlp], torch.zeros(1, 8), batch_size=128) == 3 * by_hand * 128
    conv = nn.Sequential(nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 4, 3, padding=1), nn.Flatten(), nn.Linear(256, 2))
    # A convolution's weights are used at each of its 8 x 8 output positions.
    assert step_work([conv], torch.zeros(1, 64), batch_size=1) == 3 * (4 * 64 * 9 + 256 * 2)
    # A cohort's work is its members' sum.
    assert step_work([mlp, mlp], torch.zeros(1, 8), 128) == 2 * step_work([mlp], torch.zeros(1, 8), 128)


@pytest.mark.parametrize("work, available, busy, expected", [
    (0.2e9, 2, 0.0, 1),              # a default tabular network: one thread
    (3 * WORK_PER_THREAD, 2, 0.0, 2),  # a large step on an idle machine: both cores
    (3 * WORK_PER_THREAD, 2, 1.2, 1),  # the same with another process busy: never wait for a core
    (10 * WORK_PER_THREAD, 8, 3.0, 5),
    (10 * WORK_PER_THREAD, 2, 5.0, 1),
])
def test_threads_follow_the_work_and_the_idle_cores(work, available, busy, expected):
    assert threads_for(work, available, busy) == expected


class _Threads(Callback):
    def __init__(self):
        self.seen = []

    def on_epoch_end(self, trainer, logs):
        self.seen.append(torch.get_num_threads())


def _fit_recording_threads():
    from archtune.fitting import finish, prepare, train

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8))
    y = X[:, 0] + 0.1 * rng.normal(size=300)
    model = NeuralRegressor(units=32, hidden_layers=2, max_epochs=2, random_state=0)
    record = _Threads()
    prepared = prepare(model, X, y)
    finish(model, prepared, train(prepared, [record]))
    return record.seen


@pytest.mark.skipif(cores() < 2, reason="needs a machine with at least 2 cores: one core has one thread to give")
def test_a_small_network_trains_on_one_thread_and_the_default_comes_back(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    previous = torch.get_num_threads()
    torch.set_num_threads(cores())  # torch's own default: one thread per core
    try:
        assert not user_set_threads()
        assert _fit_recording_threads() == [1, 1]
        assert torch.get_num_threads() == cores()
    finally:
        torch.set_num_threads(previous)


@pytest.mark.skipif(cores() < 2, reason="needs a machine with at least 2 cores: one core has one thread to give")
def test_an_explicit_torch_setting_is_kept(monkeypatch):
    import archtune.train.threads as threads

    # Whatever the rule would choose (here: every core), a count the user set stays.
    monkeypatch.setattr(threads, "threads_for", lambda work, available=None, busy=None: cores())
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert user_set_threads()
        assert _fit_recording_threads() == [1, 1]
    finally:
        torch.set_num_threads(previous)
    torch.set_num_threads(cores())
    try:
        assert _fit_recording_threads() == [cores(), cores()]  # the same rule, with the default left to it
    finally:
        torch.set_num_threads(previous)


def test_an_environment_setting_is_kept(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert user_set_threads()
    previous = torch.get_num_threads()
    torch.set_num_threads(cores())
    try:
        # The environment names the user's choice; archtune leaves the count as it finds it.
        assert _fit_recording_threads() == [cores(), cores()]
    finally:
        torch.set_num_threads(previous)


def test_library_pools_get_one_thread_for_a_small_table(monkeypatch):
    from threadpoolctl import threadpool_info

    from archtune.train.threads import CELLS_PER_THREAD, library_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    previous = torch.get_num_threads()
    torch.set_num_threads(cores())
    try:
        before = {(p["internal_api"], p["num_threads"]) for p in threadpool_info()}
        with library_threads(CELLS_PER_THREAD // 10):
            inside = {p["num_threads"] for p in threadpool_info()}
        assert inside == {1}
        assert {(p["internal_api"], p["num_threads"]) for p in threadpool_info()} == before  # restored
    finally:
        torch.set_num_threads(previous)
