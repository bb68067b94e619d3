"""Searches on several processes: archtune worker, journal and PostgreSQL storages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd
import pytest
from sklearn.datasets import make_classification

from archtune.auto import AutoNeuralClassifier
from archtune.errors import DataError
from archtune.tune.study import make_storage
from archtune.tune.worker import run_worker
from tests.postgres import postgres_server

ROOT = Path(__file__).resolve().parents[1]
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def _data(n: int = 300):
    X, y = make_classification(n, 6, random_state=0)
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(6)]), y


def _auto(storage: str, budget: int) -> AutoNeuralClassifier:
    return AutoNeuralClassifier(budget=budget, storage=storage, study_name="s", baselines=False, ensemble=False,
                                space={"max_epochs": 3}, population=2, random_state=0)


@pytest.fixture(scope="module")
def postgres_url():
    try:
        with postgres_server() as url:
            yield url
    except RuntimeError as exc:
        pytest.skip(str(exc))


def test_two_workers_started_first_and_the_coordinator_finish_the_budget_once(tmp_path):
    url = f"journal:///{tmp_path}/study.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    workers = [subprocess.Popen([sys.executable, "-m", "archtune", "worker", "--storage", url, "--study", "s",
                                 "--threads", "1", "--wait", "120", "--index", str(i)], env=env, cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in (1, 2)]
    X, y = _data()
    model = _auto(url, 14).fit(X, y)
    outputs = [w.communicate(timeout=300) for w in workers]
    assert all(w.returncode == 0 for w in workers), [err[-1000:] for _, err in outputs]
    study = optuna.load_study(study_name="s", storage=make_storage(url))
    states = [t.state for t in study.trials]
    assert sum(s in FINISHED for s in states) == 14
    assert optuna.trial.TrialState.RUNNING not in states and optuna.trial.TrialState.WAITING not in states
    # Each trial was trained by one process, and what each worker says it told is in the storage.
    by_worker: dict[str, int] = {}
    for t in study.trials:
        by_worker[t.user_attrs["worker"]] = by_worker.get(t.user_attrs["worker"], 0) + 1
    told = sorted(int(out.split("worker: ")[1].split(" trials")[0]) for out, _ in outputs)
    coordinator = len(study.trials) - sum(told)
    assert sorted(by_worker.values()) == sorted([n for n in told if n] + [coordinator])
    assert model.best_score_ == max(t.value for t in study.trials if t.value is not None)


@pytest.mark.parametrize("kind", ["journal", "postgresql"])
def test_a_stored_search_continues_to_its_budget(tmp_path, kind, request, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a PostgreSQL search writes its worker data in the working directory
    url = f"journal:///{tmp_path}/study.log" if kind == "journal" else request.getfixturevalue("postgres_url")
    X, y = _data()
    _auto(url, 3).fit(X, y)
    first = optuna.load_study(study_name="s", storage=make_storage(url))
    before = [(t.number, t.state) for t in first.trials]
    _auto(url, 6).fit(X, y)
    study = optuna.load_study(study_name="s", storage=make_storage(url))
    assert sum(t.state in FINISHED for t in study.trials) == 6
    assert [(t.number, t.state) for t in study.trials[:len(before)]] == before  # the first run's trials are kept
    numbers = [t.number for t in study.trials]
    assert numbers == list(range(len(numbers)))


def test_a_worker_without_its_coordinator_says_so(tmp_path):
    url = f"journal:///{tmp_path}/study.log"
    with pytest.raises(DataError, match="no study named 's'.*start the coordinator"):
        run_worker(url, "s", wait=0.6)


def test_a_worker_refuses_bad_options(tmp_path):
    from archtune.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="threads"):
        run_worker(f"journal:///{tmp_path}/s.log", "s", threads=0, wait=0)


# A worker killed mid-cohort and a heartbeat that fails its trials: about a minute. Slow; workers
# stay in CI with test_two_workers_started_first_and_the_coordinator_finish_the_budget_once and
# the stored searches, and a killed process's trials with tests/test_search.py's
# test_resume_after_sigkill_finishes_exactly_the_requested_trials.
@pytest.mark.slow
def test_a_worker_killed_mid_cohort_has_its_trials_failed_by_heartbeat_and_retried(tmp_path):
    import signal
    import threading
    import time

    url = f"journal:///{tmp_path}/study.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    worker = subprocess.Popen([sys.executable, "-m", "archtune", "worker", "--storage", url, "--study", "s",
                               "--threads", "1", "--wait", "120"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    X, y = _data(600)
    model = AutoNeuralClassifier(budget=8, storage=url, study_name="s", baselines=False, ensemble=False,
                                 space={"max_epochs": 40, "patience": 40}, population=2, random_state=0)
    coordinator = threading.Thread(target=model.fit, args=(X, y))
    coordinator.start()
    storage = make_storage(url)
    mark = f":{worker.pid}:"
    killed: list[int] = []
    deadline = time.monotonic() + 240
    while not killed and time.monotonic() < deadline and coordinator.is_alive():
        try:
            study = optuna.load_study(study_name="s", storage=storage)
        except KeyError:
            time.sleep(0.2)
            continue
        killed = [t.number for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
                  if mark in str(t.user_attrs.get("worker"))]
        time.sleep(0.2)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    coordinator.join(timeout=300)
    assert killed, "the worker never trained a trial"
    study = optuna.load_study(study_name="s", storage=make_storage(url))
    states = [t.state for t in study.trials]
    assert sum(s in FINISHED for s in states) == 8
    assert optuna.trial.TrialState.RUNNING not in states and optuna.trial.TrialState.WAITING not in states
    for number in killed:
        assert study.trials[number].state == optuna.trial.TrialState.FAIL
        retries = [t for t in study.trials if t.system_attrs.get("failed_trial") == number]
        assert len(retries) == 1 and retries[0].state in FINISHED
        assert study.trials[number].params.items() <= retries[0].params.items()


def test_ray_workers_join_a_search_from_the_python_api():
    pytest.importorskip("ray", reason="Ray is an optional extra (pip install 'archtune[ray]')")
    X, y = _data()
    model = AutoNeuralClassifier(budget=10, n_jobs=1, backend="ray", study_name="s", baselines=False, ensemble=False,
                                 space={"max_epochs": 3}, population=2, random_state=0).fit(X, y)
    trials = model.study_.trials  # copied into memory from the run's temporary journal
    assert sum(t.state in FINISHED for t in trials) == 10
    assert all(t.state in FINISHED or t.state == optuna.trial.TrialState.FAIL for t in trials)
    assert model.best_score_ == max(t.value for t in trials if t.value is not None)


def test_the_ray_backend_without_ray_is_a_clear_error(monkeypatch):
    from archtune.errors import InvalidParameterError
    from archtune.tune.ray_backend import start_ray_workers

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(InvalidParameterError, match=r"archtune\[ray\]"):
        start_ray_workers("journal:///nowhere.log", "s", 1, 1, None)


def test_a_bad_backend_is_a_clear_error():
    from archtune.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="backend must be"):
        AutoNeuralClassifier(backend="dask", budget=1).fit(*_data(50))


def test_ray_without_workers_is_a_clear_cli_error(tmp_path):
    from click.testing import CliRunner

    from archtune.cli import cli

    result = CliRunner().invoke(cli, ["tune", "breast_cancer", "--trials", "2", "--ray", "local", "--out",
                                      str(tmp_path / "run")])
    assert result.exit_code == 2 and "--ray runs the --workers as Ray tasks" in result.output
