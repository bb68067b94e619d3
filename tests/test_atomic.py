"""Nothing lost: bundles, checkpoints and leaderboards survive SIGKILL mid-save and a full disk.

Every file archtune writes goes through `archtune.files.atomic_write_bytes` (temporary file,
fsync, rename). The kill test starts one helper process that fits two small models, then
forks a writer that saves them alternately in a tight loop and SIGKILLs it after a random
5-50 ms, again and again; after each kill the files must hold the previous version or the new
one, whole. Forking from a warm helper makes each round cost milliseconds, not a Python and
torch start-up.
"""

from __future__ import annotations

import errno
import io
import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

import archtune
import archtune.bundles.network
from archtune import NeuralClassifier, SaveError
from archtune.recipes import CLASSIC
from archtune.cli import cli
from archtune.files import atomic_write_bytes
from archtune.train import Checkpoint
from tests.conftest import load_shared

KILLS = 60

KILLER = textwrap.dedent('''
    import json, os, random, signal, sys, time
    import torch
    torch.set_num_threads(1)  # before any torch op: the writers are forked from this process
    import numpy as np, pandas as pd
    from safetensors.torch import load_file
    import archtune
    from archtune.files import atomic_write_bytes, write_weights

    folder, kills = sys.argv[1], int(sys.argv[2])
    data = pd.read_csv(os.path.join(folder, "data.csv"))
    X, y = data.drop(columns="target"), data["target"]
    models = [archtune.NeuralClassifier(hidden_sizes=(256, 256), max_epochs=1, random_state=s).fit(X, y)
              for s in (1, 2)]
    expected = [m.predict_proba(X) for m in models]
    states = [{k: v.clone() for k, v in m.module_.state_dict().items()} for m in models]
    boards = [pd.DataFrame({"model": [f"network #{i}" for i in range(4000)], "val_score": np.linspace(v, 0, 4000)})
              .to_csv(index_label="rank").encode() for v in (0.9, 0.8)]
    bundle, ckpt, board = (os.path.join(folder, n) for n in ("bundle", "best.safetensors", "leaderboard.csv"))

    def save(v):
        archtune.save(models[v], bundle, metadata={"version": v})
        write_weights(models[v].module_, ckpt)
        atomic_write_bytes(board, boards[v])

    def which_state(state):
        return [v for v in (0, 1) if state.keys() == states[v].keys()
                and all(torch.equal(state[k], states[v][k]) for k in state)]

    def temp_files():
        return {os.path.join(d, n) for d in (folder, bundle) for n in os.listdir(d) if n.endswith(".tmp")}

    save(0)
    rng = random.Random(0)
    report = {"kills": 0, "survived": 0, "bundle_versions": [0, 0], "failures": [], "stale_temp_files": 0,
              "kills_mid_write": 0}
    for i in range(kills):
        before = temp_files()
        pid = os.fork()
        if pid == 0:  # the writer: alternate the two versions until killed
            v = i % 2  # on a slow machine a writer may finish only one save: vary the first
            while True:
                save(v)
                v = 1 - v
        time.sleep(rng.uniform(0.005, 0.05))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        report["kills"] += 1
        report["kills_mid_write"] += bool(temp_files() - before)  # a temporary file was being written
        try:
            model = archtune.load(bundle)
            v = model.bundle_metadata_["version"]
            # The JSON and the weights are the same version: predictions say so.
            assert np.array_equal(model.predict_proba(X), expected[v]), "bundle mixes two versions"
            assert which_state(load_file(ckpt)), "checkpoint is neither version"
            with open(board, "rb") as fh:
                assert fh.read() in boards, "leaderboard is neither version"
            report["bundle_versions"][v] += 1
            report["survived"] += 1
        except Exception as exc:
            report["failures"].append(f"kill {i}: {type(exc).__name__}: {exc}")
    report["stale_temp_files"] = sum(n.endswith(".tmp") for n in os.listdir(bundle))
    archtune.save(models[0], bundle, metadata={"version": 0})  # a save after the kills tidies up
    report["temp_files_after_a_save"] = sum(n.endswith(".tmp") for n in os.listdir(bundle))
    print(json.dumps(report))
''')


# Tiny networks on a busy machine: a second torch thread only spin-waits.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def table() -> tuple[pd.DataFrame, pd.Series]:
    return load_shared("magic.tsv.gz", n=200)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the writers are forked")
def test_sigkill_while_saving_always_leaves_a_whole_version(table, tmp_path):
    X, y = table
    X.assign(target=y).to_csv(tmp_path / "data.csv", index=False)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", KILLER, str(tmp_path), str(KILLS)], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"SIGKILL while saving: {report['survived']}/{report['kills']} kills left a loadable bundle, checkpoint "
          f"and leaderboard (bundle after a kill: old-or-new versions {report['bundle_versions']}; "
          f"{report['kills_mid_write']} kills caught a file half-written; "
          f"{report['stale_temp_files']} temporary files of killed saves in the bundle)")
    assert report["failures"] == []
    assert report["kills"] == report["survived"] == KILLS
    # Both versions were seen after a kill: the writer was really overwriting the files.
    assert min(report["bundle_versions"]) > 0
    assert report["temp_files_after_a_save"] == 0
    # And this process, which never saw the writers, loads the survivor too.
    assert archtune.load(tmp_path / "bundle").bundle_metadata_["version"] in (0, 1)


# =========================================================================== full disk


class _FullDisk:
    """Makes writes fail as a full disk does: ``at="write"`` when data reaches the file,
    ``at="fsync"`` when it is flushed (as on delayed-allocation and network filesystems)."""

    def __init__(self, monkeypatch, at: str):
        self.monkeypatch, self.at = monkeypatch, at

    def __enter__(self):
        error = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if self.at == "fsync":
            def fsync(fd):
                raise error
            self.monkeypatch.setattr(os, "fsync", fsync)
        else:
            real_fdopen = os.fdopen

            def fdopen(fd, *args, **kwargs):
                fh = real_fdopen(fd, *args, **kwargs)
                return _FailingWrites(fh, error)
            self.monkeypatch.setattr(os, "fdopen", fdopen)
        return self

    def __exit__(self, *exc):
        self.monkeypatch.undo()


class _FailingWrites(io.RawIOBase):
    def __init__(self, fh, error):
        self.fh, self.error = fh, error

    def write(self, data):
        self.fh.write(bytes(data)[: len(data) // 2])  # part of it lands, as on a real disk
        raise self.error

    def fileno(self):
        return self.fh.fileno()

    def close(self):
        self.fh.close()


def _hidden_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def two_models(table):
    X, y = table
    return [NeuralClassifier(hidden_layers=1, units=16, max_epochs=2, random_state=s).fit(X, y) for s in (1, 2)], X


@pytest.mark.parametrize("at", ["write", "fsync"])
def test_full_disk_keeps_the_previous_bundle(two_models, tmp_path, monkeypatch, at):
    (old, new), X = two_models
    bundle = archtune.save(old, tmp_path / "bundle")
    files = sorted(p.name for p in bundle.iterdir())
    with _FullDisk(monkeypatch, at), pytest.raises(SaveError) as info:
        archtune.save(new, bundle)
    message = str(info.value)
    assert str(bundle) in message and "no space left on device" in message and "previous version" in message
    assert isinstance(info.value, OSError)  # callers catching OSError still do
    assert sorted(p.name for p in bundle.iterdir()) == files  # no temporary file, no orphan weights
    np.testing.assert_array_equal(archtune.load(bundle).predict_proba(X), old.predict_proba(X))


def test_full_disk_on_a_first_save_leaves_no_directory(two_models, tmp_path, monkeypatch):
    (model, _), _ = two_models
    with _FullDisk(monkeypatch, "write"), pytest.raises(SaveError, match="no space left on device"):
        archtune.save(model, tmp_path / "new")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("at", ["write", "fsync"])
def test_full_disk_keeps_the_previous_leaderboard(tmp_path, monkeypatch, at):
    path = tmp_path / "leaderboard.csv"
    atomic_write_bytes(path, b"rank,model\n1,old\n")
    with _FullDisk(monkeypatch, at), pytest.raises(SaveError, match=f"{path}: cannot save: no space left on device"):
        atomic_write_bytes(path, b"rank,model\n1,new\n" * 10000)
    assert path.read_bytes() == b"rank,model\n1,old\n"
    assert _hidden_files(tmp_path) == []


class _DiskFillsAfter(Checkpoint):
    """A Checkpoint whose disk is full from epoch ``full_at`` on."""

    def __init__(self, path, monkeypatch, full_at):
        super().__init__(path, monitor="train_loss")
        self.monkeypatch, self.full_at, self.saved = monkeypatch, full_at, {}

    def on_epoch_end(self, trainer, logs):
        if logs["epoch"] == self.full_at:
            _FullDisk(self.monkeypatch, "write").__enter__()
        super().on_epoch_end(trainer, logs)
        self.saved[logs["epoch"]] = {k: v.clone() for k, v in trainer.module.state_dict().items()}


def test_full_disk_during_training_keeps_the_previous_checkpoint(table, tmp_path, monkeypatch):
    X, y = table
    path = tmp_path / "best.safetensors"
    checkpoint = _DiskFillsAfter(path, monkeypatch, full_at=3)
    model = NeuralClassifier(**{**CLASSIC, "hidden_layers": 1, "units": 16, "max_epochs": 6, "early_stopping": False},
                             random_state=0)
    with pytest.raises(SaveError, match=f"{path}: cannot save: no space left on device"):
        model.fit(X, y, callbacks=[checkpoint])
    monkeypatch.undo()
    state = load_file(path)
    assert all(torch.equal(state[k], checkpoint.saved[2][k]) for k in state)  # the last good epoch's
    assert _hidden_files(tmp_path) == []


def test_full_disk_through_the_cli_is_one_line_and_leaves_nothing(table, tmp_path, monkeypatch):
    X, y = table
    X.assign(target=y).to_csv(tmp_path / "magic.csv", index=False)
    real_save = archtune.bundles.network.save

    def save_on_a_full_disk(*args, **kwargs):  # training runs normally; the disk fills as it saves
        with _FullDisk(monkeypatch, "fsync"):
            return real_save(*args, **kwargs)
    monkeypatch.setattr(archtune.bundles.network, "save", save_on_a_full_disk)
    result = CliRunner().invoke(cli, ["fit", str(tmp_path / "magic.csv"), "-t", "target", "-q", "--set", "max_epochs=2",
                                      "--set", "units=8", "-o", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    assert lines[0].startswith(f"archtune: error: {tmp_path / 'run'}") and "no space left on device" in lines[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_saved_files_get_the_mode_the_umask_gives(two_models, tmp_path, umask):
    models, _ = two_models
    previous = os.umask(umask)
    try:
        archtune.save(models[0], tmp_path / "run")
        atomic_write_bytes(tmp_path / "run" / "leaderboard.csv", b"rank\n")
    finally:
        os.umask(previous)
    files = [p for p in (tmp_path / "run").iterdir() if p.is_file()]
    assert len(files) >= 3  # weights, JSON, leaderboard
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path.name
