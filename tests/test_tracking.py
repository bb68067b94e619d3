"""Experiment tracking (archtune.tracking): what a search and a fit log to MLflow and as
TensorBoard event files, read back with MLflow's own client and an event-file reader, against
what the search itself reports (its leaderboard, its study, the fitted networks' histories)."""

from __future__ import annotations

import importlib.util
import io
import json
import struct
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.datasets import load_breast_cancer

from archtune import InvalidParameterError, NeuralClassifier
from archtune.auto import AutoNeuralClassifier
from archtune.cli import cli
from archtune.train.callbacks import Callback
from archtune.tune.trial_records import trial_config

mlflow = pytest.importorskip("mlflow", reason="needs the mlflow extra: pip install 'archtune[mlflow]'")
from archtune.tracking.mlflow_runs import client_for  # noqa: E402  (after the skip)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# TensorBoard files are written and read with tensorboardX (the tensorboard extra).
HAS_TENSORBOARDX = importlib.util.find_spec("tensorboardX") is not None
SPACE = {"max_epochs": 4, "hidden_layers": (1, 2), "units": (8, 32), "arch": "mlp"}


@pytest.fixture(scope="module")
def data():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, data):
    """One tiny search (4 trials, baselines, no refit: the best network is its trial's own)
    tracked to an MLflow file store and TensorBoard files."""
    root = tmp_path_factory.mktemp("tracked")
    X, y = data
    uri = (root / "mlruns").as_uri()
    model = AutoNeuralClassifier(budget=4, space=SPACE, refit=False, ensemble=False, random_state=0,
                                 mlflow_uri=uri, tensorboard_dir=str(root / "tb") if HAS_TENSORBOARDX else None
                                 ).fit(X, y)
    client = client_for(uri)
    experiment = client.get_experiment_by_name("archtune").experiment_id
    runs = client.search_runs([experiment])
    return model, client, runs, root


def _children(runs, parent_id, kind):
    return {r.info.run_name: r for r in runs
            if r.data.tags.get("mlflow.parentRunId") == parent_id and r.data.tags.get("archtune.kind") == kind}


def test_mlflow_runs_contain_what_the_leaderboard_says(tracked):
    model, client, runs, _ = tracked
    parent = model.mlflow_run_id_
    trials = _children(runs, parent, "trial")
    baselines = _children(runs, parent, "baseline")
    board = model.leaderboard_
    networks = board[board["model"].str.startswith("network")]
    assert len(networks) == 4 and set(trials) == set(networks["model"])
    states = {"COMPLETE": ("complete", "FINISHED"), "PRUNED": ("pruned", "KILLED"), "FAIL": ("failed", "FAILED")}
    by_number = {t.number: t for t in model.study_.trials}
    for _, row in networks.iterrows():
        run = trials[row["model"]]
        number = int(run.data.tags["archtune.trial"])
        assert row["model"].startswith(f"network #{number} ")
        # The same parameters as the study holds (read from its storage, not from the tracker).
        assert run.data.params == {k: str(v) for k, v in trial_config(by_number[number]).items()}
        assert (run.data.tags["archtune.state"], run.info.status) == states[row["state"]]
        if pd.isna(row["val_score"]):
            assert "value" not in run.data.metrics
        else:
            assert run.data.metrics["value"] == row["val_score"]
        assert run.data.metrics["n_params"] == row["n_params"]
    scored = board[board["state"] == "BASELINE"]
    assert len(scored) >= 2
    for _, row in scored.iterrows():
        assert baselines[row["model"]].data.metrics["value"] == row["val_score"]


def test_parent_run_holds_the_leaderboard_and_the_best_score(tracked, data):
    model, client, runs, root = tracked
    parent = client.get_run(model.mlflow_run_id_)
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["best_score"] == model.best_score_
    X, _ = data
    assert (parent.data.params["rows"], parent.data.params["columns"]) == (str(len(X)), str(X.shape[1]))
    assert parent.data.params["sampler"] == model.sampler
    where = client.download_artifacts(model.mlflow_run_id_, "leaderboard.csv", str(root))
    logged = pd.read_csv(where, index_col="rank")
    expected = pd.read_csv(io.StringIO(model.leaderboard_.to_csv(index_label="rank")), index_col="rank")
    pd.testing.assert_frame_equal(logged, expected)


def test_per_epoch_metrics_equal_the_trials_history(tracked):
    model, client, runs, _ = tracked
    trials = _children(runs, model.mlflow_run_id_, "trial")
    for run in trials.values():
        trial = model.study_.trials[int(run.data.tags["archtune.trial"])]
        # What the pruner saw each epoch (the study's intermediate values) is the logged curve.
        logged = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "val_accuracy")}
        assert logged == trial.intermediate_values and logged
        assert {m.step for m in client.get_metric_history(run.info.run_id, "train_loss")} == set(logged)
    # The best trial's own network (refit=False keeps it) trained with the logged losses.
    best = next(r for r in trials.values() if int(r.data.tags["archtune.trial"]) == model.best_trial_.number)
    history = model.best_estimator_.history_
    for column in ("train_loss", "val_loss", "lr"):
        logged = sorted((m.step, m.value) for m in client.get_metric_history(best.info.run_id, column))
        assert logged == list(zip(history["epoch"].astype(int), history[column].astype(float)))


def test_diagnosis_is_logged_with_each_completed_trial(tracked, tmp_path):
    model, client, runs, _ = tracked
    complete = [r for r in _children(runs, model.mlflow_run_id_, "trial").values()
                if r.data.tags["archtune.state"] == "complete"]
    assert complete
    for run in complete:
        stored = model.study_.trials[int(run.data.tags["archtune.trial"])].user_attrs["diagnosis"]
        path = client.download_artifacts(run.info.run_id, "diagnosis.json", str(tmp_path))
        assert json.loads(Path(path).read_text()) == stored
        assert run.data.tags["archtune.diagnosis.codes"] == ",".join(stored["codes"])


def _events(folder: Path):
    """Every event of the event files of ``folder``, in order. TFRecord framing (length, its
    CRC, the Event protobuf, its CRC) read here, the Event parsed by the protobuf classes of
    the writer."""
    from tensorboardX.proto.event_pb2 import Event

    for path in sorted(folder.glob("events.out.tfevents.*")):
        raw = path.read_bytes()
        at = 0
        while at < len(raw):
            (length,) = struct.unpack("<Q", raw[at:at + 8])
            yield Event.FromString(raw[at + 12:at + 12 + length])
            at += 12 + length + 4


def _scalars(folder: Path) -> dict[str, dict[int, float]]:
    """Every scalar in the event files of ``folder``: tag -> {step: value}."""
    out: dict[str, dict[int, float]] = {}
    for event in _events(folder):
        for value in event.summary.value:
            if value.HasField("simple_value"):
                out.setdefault(value.tag, {})[event.step] = value.simple_value
    return out


def test_tensorboard_events_hold_each_trials_curves(tracked):
    if not HAS_TENSORBOARDX:
        pytest.skip("needs the tensorboard extra: pip install 'archtune[tensorboard]'")
    model, _, _, root = tracked
    from archtune.tracking.tensorboard_events import trial_folder

    for trial in model.study_.trials:
        scalars = _scalars(root / "tb" / trial_folder(trial.number))
        assert scalars["val_accuracy"] == pytest.approx(trial.intermediate_values, rel=1e-6)  # float32 in the file
        assert set(scalars["train_loss"]) == set(trial.intermediate_values)
    values = _scalars(root / "tb" / "search")["trial_value"]
    complete = {t.number: t.value for t in model.study_.trials if t.state.name == "COMPLETE"}
    assert values == pytest.approx(complete, rel=1e-6)


def test_a_broken_tracking_uri_warns_and_the_search_completes(tmp_path, data):
    X, y = data
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.warns(RuntimeWarning, match="experiment tracking to .* could not start"):
        model = AutoNeuralClassifier(budget=2, space=SPACE, baselines=False, ensemble=False, random_state=0,
                                     mlflow_uri=(blocker / "mlruns").as_uri()).fit(X, y)
    assert model.mlflow_run_id_ is None
    assert model.leaderboard_["state"].isin(["COMPLETE", "PRUNED"]).sum() == 2


def test_a_tracking_error_mid_search_is_one_warning(tmp_path, data, monkeypatch):
    from archtune.tracking.mlflow_runs import MLflowSearchLog

    def broken(self, record):
        raise OSError("disk full")

    monkeypatch.setattr(MLflowSearchLog, "trial", broken)
    X, y = data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = AutoNeuralClassifier(budget=3, space=SPACE, baselines=False, ensemble=False, random_state=0,
                                     mlflow_uri=str(tmp_path / "mlruns")).fit(X, y)
    stopped = [w for w in caught if "experiment tracking" in str(w.message)]
    assert len(stopped) == 1 and "disk full" in str(stopped[0].message)
    assert model.leaderboard_["state"].isin(["COMPLETE", "PRUNED"]).sum() == 3
    # Tracking stopped at the first trial: its parent run is marked failed, nothing more is logged.
    client = client_for(str(tmp_path / "mlruns"))
    runs = client.search_runs([client.get_experiment_by_name("archtune").experiment_id])
    assert [(r.data.tags["archtune.kind"], r.info.status) for r in runs] == [("search", "FAILED")]
    assert model.mlflow_run_id_ is None


def test_bad_tracking_parameters_are_named(data, monkeypatch):
    X, y = data
    with pytest.raises(InvalidParameterError, match="mlflow_uri"):
        AutoNeuralClassifier(budget=1, mlflow_uri=3).fit(X, y)
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed
    with pytest.raises(ImportError, match=r"archtune\[mlflow\]"):
        AutoNeuralClassifier(budget=1, mlflow_uri="/tmp/never").fit(X, y)


def test_mlflow_logger_records_a_single_fit(tmp_path, data):
    from archtune.train import MLflowLogger

    X, y = data
    logger = MLflowLogger(str(tmp_path / "mlruns"), flush_every=2)
    model = NeuralClassifier(max_epochs=5, units=16, hidden_layers=1, random_state=0).fit(X, y, callbacks=[logger])
    client = client_for(str(tmp_path / "mlruns"))
    run = client.get_run(logger.run_id)
    assert run.info.status == "FINISHED"
    logged = sorted((m.step, m.value) for m in client.get_metric_history(logger.run_id, "val_loss"))
    assert logged == list(zip(model.history_["epoch"].astype(int), model.history_["val_loss"].astype(float)))
    assert run.data.metrics["n_params"] == sum(p.numel() for p in model.module_.parameters())


def test_cli_tune_logs_the_saved_run(tmp_path):
    out = tmp_path / "run"
    uri = (tmp_path / "mlruns").as_uri()
    result = CliRunner().invoke(cli, [
        "tune", "breast_cancer", "--trials", "2", "--set", "max_epochs=3", "--set", "units=16", "--set",
        "hidden_layers=1", "--no-baselines", "--no-ensemble", "-q", "--out", str(out), "--mlflow", uri])
    assert result.exit_code == 0, result.output
    client = client_for(uri)
    experiment = client.get_experiment_by_name("archtune").experiment_id
    parent = [r for r in client.search_runs([experiment]) if r.data.tags.get("archtune.kind") == "search"]
    assert len(parent) == 1 and parent[0].info.run_id in result.output

    def listed(path=None):
        for item in client.list_artifacts(parent[0].info.run_id, path):
            yield from listed(item.path) if item.is_dir else [item.path]

    artifacts = set(listed())
    saved = {f"run/{p.relative_to(out).as_posix()}" for p in out.rglob("*") if p.is_file() and p.name != "study.db"}
    assert saved <= artifacts and {"run/report.html", "run/leaderboard.csv", "run/archtune.json"} <= saved
    board = pd.read_csv(out / "leaderboard.csv")
    trials = [r for r in client.search_runs([experiment]) if r.data.tags.get("archtune.kind") == "trial"]
    assert sorted(r.info.run_name for r in trials) == sorted(board["model"])
    assert np.isfinite(parent[0].data.metrics["best_score"])


def test_cli_fit_logs_its_curves_and_bundle(tmp_path):
    out = tmp_path / "fit"
    uri = str(tmp_path / "mlruns")  # a plain directory is a file store too
    result = CliRunner().invoke(cli, ["fit", "breast_cancer", "--set", "max_epochs=3", "--set", "units=16", "-q",
                                      "--no-report", "--out", str(out), "--mlflow", uri])
    assert result.exit_code == 0, result.output
    client = client_for(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("archtune").experiment_id])
    assert run.info.run_id in result.output
    history = archtune_history(out)
    logged = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "train_loss")}
    assert logged == pytest.approx(dict(history), rel=1e-8)  # the bundle keeps 10 digits
    assert {a.path for a in client.list_artifacts(run.info.run_id, "model")} >= {"model/archtune.json"}


def test_cli_fit_writes_its_curves_for_tensorboard(tmp_path):
    if not HAS_TENSORBOARDX:
        pytest.skip("tensorboardX is not installed (pip install 'archtune[tensorboard]')")
    out = tmp_path / "fit"
    result = CliRunner().invoke(cli, ["fit", "breast_cancer", "--set", "max_epochs=3", "--set", "units=16", "-q",
                                      "--no-report", "--out", str(out), "--tensorboard", str(tmp_path / "tb")])
    assert result.exit_code == 0, result.output
    assert _scalars(tmp_path / "tb")["train_loss"] == pytest.approx(dict(archtune_history(out)), rel=1e-6)


def archtune_history(bundle: Path) -> list[tuple[int, float]]:
    """(epoch, train_loss) of a saved bundle's history, read with archtune.load."""
    from archtune import load

    history = load(bundle).history_
    return list(zip(history["epoch"].astype(int), history["train_loss"].astype(float)))


def test_cli_names_the_missing_extra_before_reading_data(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed
    for command in ("tune", "fit"):
        result = CliRunner().invoke(cli, [command, "breast_cancer", "--out", str(tmp_path / command),
                                          "--mlflow", str(tmp_path / "mlruns")])
        assert result.exit_code == 2, result.output
        assert "archtune[mlflow]" in result.output and "Traceback" not in result.output
        assert not (tmp_path / command).exists() and not (tmp_path / "mlruns").exists()


# --------------------------------------------------------------------------- end states
# Every way a fit, a search's trial or a search ends gives its MLflow run the matching status
# and tag archtune.end_state, and its TensorBoard event file the text summary end_state
# (archtune.tracking.records). The cases are named as the issue names them: "raised" (another
# error) is the end state "failed".

STATUS = {"complete": "FINISHED", "budget": "FINISHED", "pruned": "KILLED", "diverged": "FAILED", "raised": "FAILED",
          "interrupted": "KILLED"}
END_STATE = {"raised": "failed"}  # otherwise the case's own name
DIVERGING = {"learning_rate": 1000.0, "optimizer": "sgd"}  # the loss explodes in the first epochs


def _texts(folder: Path) -> dict[str, list[str]]:
    """Every text summary in the event files of ``folder``: tag -> its texts, in order."""
    out: dict[str, list[str]] = {}
    for event in _events(folder):
        for value in event.summary.value:
            if value.metadata.plugin_data.plugin_name == "text":
                tag = value.tag.removesuffix("/text_summary")
                out.setdefault(tag, []).extend(s.decode() for s in value.tensor.string_val)
    return out


def _fail_at_epoch(monkeypatch, epoch: int, error: BaseException) -> None:
    """Training raises ``error`` inside the loop at the end of ``epoch`` (its divergence check),
    whichever engine trains: what an error or Ctrl-C in the middle of training looks like."""
    from archtune.train import state

    checked = state.divergence

    def failing(logs, limit, learning_rate):
        if logs["epoch"] == epoch:
            raise error
        return checked(logs, limit, learning_rate)

    monkeypatch.setattr(state, "divergence", failing)


def _assert_end(run, tb: Path | None, case: str) -> None:
    """The run's status and end-state tag, and the event file's end_state, say ``case``."""
    state = END_STATE.get(case, case)
    assert (run.info.status, run.data.tags.get("archtune.end_state")) == (STATUS[case], state)
    assert (run.data.tags.get("archtune.stopped_by_budget") == "true") == (case == "budget")
    assert ("archtune.end_reason" in run.data.tags) == (case not in ("complete", "budget"))
    if tb is not None and HAS_TENSORBOARDX:
        texts = _texts(tb)
        assert texts["end_state"] == [state]
        assert ("end_reason" in texts) == (case not in ("complete", "budget"))


class _RaiseAt(Callback):
    """A callback that raises ``error`` at the end of ``epoch``."""

    def __init__(self, error: BaseException, epoch: int = 2):
        self.error, self.epoch = error, epoch

    def on_epoch_end(self, trainer, logs):
        if logs["epoch"] == self.epoch:
            raise self.error


FIT_CASES = {"complete": ({}, None, None),
             "diverged": (DIVERGING, None, "TrainingDivergedError"),
             "pruned": ({}, "pruned", "TrialPruned"),  # an Optuna objective's pruning callback
             "raised": ({}, RuntimeError("a callback failed"), "RuntimeError"),
             "interrupted": ({}, KeyboardInterrupt(), "KeyboardInterrupt")}


@pytest.mark.parametrize("case", list(FIT_CASES))
def test_a_fit_ends_in_mlflow_and_tensorboard_as_its_training_ended(case, tmp_path, data):
    import optuna

    from archtune.train import MLflowLogger, TensorBoardLogger

    X, y = data
    params, error, raised = FIT_CASES[case]
    error = optuna.TrialPruned("pruned at epoch 2") if error == "pruned" else error
    logger = MLflowLogger(str(tmp_path / "mlruns"))
    callbacks = [logger, *([TensorBoardLogger(tmp_path / "tb")] if HAS_TENSORBOARDX else []),
                 *([_RaiseAt(error)] if error is not None else [])]
    model = NeuralClassifier(max_epochs=4, units=8, hidden_layers=1, random_state=0, **params)
    if raised is None:
        model.fit(X, y, callbacks=callbacks)
    else:
        with pytest.raises(BaseException) as caught:
            model.fit(X, y, callbacks=callbacks)
        assert type(caught.value).__name__ == raised
    client = client_for(str(tmp_path / "mlruns"))
    run = client.get_run(logger.run_id)
    _assert_end(run, tmp_path / "tb", case)
    assert logger.end_state.state == END_STATE.get(case, case)
    if raised is not None:
        assert run.data.tags["archtune.end_reason"].startswith(raised)
    # The epochs trained before the end are logged (buffered epochs are flushed however it ends;
    # a diverging epoch ends training before the callbacks see it).
    steps = {m.step for m in client.get_metric_history(logger.run_id, "train_loss")}
    assert steps == {"complete": {1, 2, 3, 4}, "diverged": {1}}.get(case, {1, 2})


CLI_CASES = {"complete": 0, "diverged": 2, "raised": 1, "interrupted": 1}  # the exit codes


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_fit_ends_in_mlflow_and_tensorboard_as_its_training_ended(case, tmp_path, monkeypatch):
    uri = str(tmp_path / "mlruns")
    args = ["fit", "breast_cancer", "--set", "max_epochs=4", "--set", "units=8", "--set", "hidden_layers=1", "-q",
            "--no-report", "--out", str(tmp_path / "fit"), "--mlflow", uri,
            *(["--tensorboard", str(tmp_path / "tb")] if HAS_TENSORBOARDX else [])]
    if case == "diverged":
        args += [f"--set={k}={v}" for k, v in DIVERGING.items()]
    elif case != "complete":
        _fail_at_epoch(monkeypatch, 2, RuntimeError("out of memory") if case == "raised" else KeyboardInterrupt())
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == CLI_CASES[case], result.output
    client = client_for(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("archtune").experiment_id])
    _assert_end(run, tmp_path / "tb", case)
    if case == "diverged":
        assert "diverged" in result.output and run.data.tags["archtune.end_reason"].startswith("TrainingDivergedError")


SEARCH_SPACE = {"max_epochs": 4, "hidden_layers": 1, "units": 8, "arch": "mlp"}
# (budget, space, what the search raises); the injected errors come at the first trial's second epoch.
SEARCH_CASES = {"complete": (2, SEARCH_SPACE, None),
                "diverged": (2, {**SEARCH_SPACE, **DIVERGING}, "DataError"),  # no trial trained: they all diverged
                "pruned": (2, SEARCH_SPACE, None),  # the best pruned trial is the search's network
                "budget": ("2s", {**SEARCH_SPACE, "max_epochs": 100000, "early_stopping": False}, None),
                "raised": (2, SEARCH_SPACE, "RuntimeError"),
                "interrupted": (2, SEARCH_SPACE, "KeyboardInterrupt")}


@pytest.fixture(scope="module")
def searches(tmp_path_factory, data):
    """case -> (MLflow client, its runs, the TensorBoard folder): one tracked search per case,
    run when a test first asks for it."""
    done: dict[str, tuple] = {}

    def run(case: str) -> tuple:
        if case in done:
            return done[case]
        import optuna

        root = tmp_path_factory.mktemp(f"search_{case}")
        budget, space, raised = SEARCH_CASES[case]
        X, y = data
        model = AutoNeuralClassifier(budget=budget, space=space, baselines=False, ensemble=False, refit=False,
                                     pruner=None, random_state=0, mlflow_uri=str(root / "mlruns"),
                                     tensorboard_dir=str(root / "tb") if HAS_TENSORBOARDX else None)
        with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if case == "pruned":
                patch.setattr(optuna.trial.Trial, "should_prune", lambda self: True)
            elif case in ("raised", "interrupted"):
                _fail_at_epoch(patch, 2, RuntimeError("out of memory") if case == "raised" else KeyboardInterrupt())
            if raised is None:
                model.fit(X, y)
            else:
                with pytest.raises(BaseException) as caught:
                    model.fit(X, y)
                assert type(caught.value).__name__ == raised
        client = client_for(str(root / "mlruns"))
        done[case] = client, client.search_runs([client.get_experiment_by_name("archtune").experiment_id]), root / "tb"
        return done[case]

    return run


@pytest.mark.parametrize("case", list(SEARCH_CASES))
def test_a_search_trial_ends_in_mlflow_and_tensorboard_as_it_ended(case, searches):
    from archtune.tracking.tensorboard_events import trial_folder

    client, runs, tb = searches(case)
    trials = [r for r in runs if r.data.tags.get("archtune.kind") == "trial"]
    assert trials
    for run in trials:  # every trial of the case ended so
        _assert_end(run, tb / trial_folder(int(run.data.tags["archtune.trial"])), case)
        # archtune.state stays the Optuna state: an interrupted or failed trial is failed in the study.
        assert run.data.tags["archtune.state"] == {"complete": "complete", "budget": "complete",
                                                   "pruned": "pruned"}.get(case, "failed")


@pytest.mark.parametrize("case", [c for c in SEARCH_CASES if c != "pruned"])
def test_a_search_parent_run_ends_in_mlflow_and_tensorboard_as_the_search_ended(case, searches):
    client, runs, tb = searches(case)
    (parent,) = [r for r in runs if r.data.tags.get("archtune.kind") == "search"]
    _assert_end(parent, tb / "search", case)
    if case == "diverged":
        assert parent.data.tags["archtune.end_reason"].startswith("every trial diverged")


def test_a_tracking_error_mid_fit_warns_once_and_marks_its_run_failed(tmp_path, data, monkeypatch):
    from archtune.train import MLflowLogger, tracking

    def broken(history):
        raise OSError("disk full")

    monkeypatch.setattr(tracking, "epoch_metrics", broken)  # the first flush of epochs fails
    X, y = data
    logger = MLflowLogger(str(tmp_path / "mlruns"), flush_every=2)
    with pytest.warns(RuntimeWarning, match="disk full") as caught:
        NeuralClassifier(max_epochs=4, units=8, hidden_layers=1, random_state=0).fit(X, y, callbacks=[logger])
    assert len([w for w in caught if "experiment tracking" in str(w.message)]) == 1
    run = client_for(str(tmp_path / "mlruns")).get_run(logger.run_id)
    # Not left RUNNING: failed, and the reason is tracking's, not training's (which completed).
    assert run.info.status == "FAILED" and "tracking stopped" in run.data.tags["archtune.end_reason"]
    assert logger.end_state.state == "complete"
