"""MLflow as a tracking backend: one parent run per search, one nested run per trial and
per baseline (MLflow's ``mlflow.parentRunId`` tag, as its UI nests them).

It talks to the store through `mlflow.tracking.MlflowClient` with explicit run ids, never
through the fluent ``mlflow.start_run`` API: the search's threads (``n_jobs``) log
concurrently, and a run the user has active in their own code is left alone. Metrics,
parameters and tags go in `log_batch` calls (a trial's whole history at once, at its end).

mlflow is an optional extra (``pip install 'archtune[mlflow]'``, the ``mlflow-skinny``
client), imported when a tracker is made.

Every run ends with the status of how its trial or search ended (archtune.tracking.records,
`RUN_STATUS`): complete and budget FINISHED, diverged and failed FAILED, pruned and
interrupted KILLED; the tags ``archtune.end_state``, ``archtune.end_reason`` and (budget)
``archtune.stopped_by_budget`` say which.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from archtune.tracking.records import EndState, TrialRecord, epoch_metrics, param_text

MLFLOW_EXTRA = "pip install 'archtune[mlflow]'"
# Items per log_batch call that every MLflow store accepts.
BATCH = {"metrics": 1000, "params": 100, "tags": 100}


def require_mlflow() -> Any:
    """The mlflow package, or ImportError naming the optional extra."""
    try:
        import mlflow
    except ImportError as exc:
        raise ImportError(f"tracking to MLflow needs the optional package mlflow-skinny ({exc.name} is missing): "
                          f"{MLFLOW_EXTRA}") from None
    return mlflow


def is_local_store(uri: str) -> bool:
    """Whether ``uri`` names MLflow's file store: ``file:`` URIs and plain directory paths."""
    return uri.startswith("file:") or "://" not in uri and not uri.startswith(("databricks", "sqlite:"))


@contextlib.contextmanager
def _file_store_allowed() -> Iterator[None]:
    """MLflow 3 refuses its file store unless MLFLOW_ALLOW_FILE_STORE is set; a user who names a
    directory asked for it. Set only while the client opens it (MLflow caches the store)."""
    before = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
        else:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = before


def client_for(uri: str) -> Any:
    """An `MlflowClient` for the tracking ``uri`` (a plain directory path is a file store).

    Raises
    ------
    ImportError
        mlflow is not installed (the message names the extra).
    """
    require_mlflow()
    from mlflow.tracking import MlflowClient

    if is_local_store(uri):
        if not uri.startswith("file:"):
            uri = Path(uri).expanduser().resolve().as_uri()
        with _file_store_allowed():
            return MlflowClient(tracking_uri=uri)
    return MlflowClient(tracking_uri=uri)


def experiment_id(client: Any, name: str) -> str:
    """The id of the experiment called ``name``, created when missing."""
    found = client.get_experiment_by_name(name)
    return found.experiment_id if found is not None else client.create_experiment(name)


def log_batch(client: Any, run_id: str, metrics: list[tuple[str, float, int]] = (),
              params: dict[str, Any] | None = None, tags: dict[str, Any] | None = None) -> None:
    """Metrics ((name, value, step) each), parameters and tags of one run, in as few calls as
    the store's limits allow."""
    import time

    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    items = {"metrics": [Metric(k, v, now, s) for k, v, s in metrics],
             "params": [Param(k, param_text(v)) for k, v in (params or {}).items()],
             "tags": [RunTag(k, param_text(v)) for k, v in (tags or {}).items()]}
    while any(items.values()):
        chunk = {kind: values[:BATCH[kind]] for kind, values in items.items()}
        client.log_batch(run_id, **chunk)
        items = {kind: values[BATCH[kind]:] for kind, values in items.items()}


def log_directory(client: Any, run_id: str, directory: Path, artifact_path: str | None = None,
                  exclude: tuple[str, ...] = ()) -> list[str]:
    """Every file under ``directory`` (except those with a path part in ``exclude``) as
    artifacts of run ``run_id``, under ``artifact_path``; returns their artifact paths."""
    logged = []
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if not path.is_file() or set(relative.parts) & set(exclude):
            continue
        where = "/".join(p for p in (artifact_path, relative.parent.as_posix()) if p and p != ".")
        client.log_artifact(run_id, str(path), where or None)
        logged.append("/".join(p for p in (where, path.name) if p))
    return logged


class MLflowSearchLog:
    """A search in MLflow: a parent run, a nested run per trial and per baseline.

    Parameters
    ----------
    uri : str
        Tracking URI: ``file:///path/mlruns`` or a plain directory (MLflow's file store),
        ``sqlite:///mlflow.db``, ``http://host:5000``.
    experiment : str
        The experiment the runs go to (created when missing).
    """

    def __init__(self, uri: str, experiment: str):
        self.uri = uri
        self.target = f"MLflow at {uri}"
        self.client = client_for(uri)
        self.experiment_id = experiment_id(self.client, experiment)
        self.run_id: str | None = None

    def start(self, name: str, params: dict[str, Any], tags: dict[str, Any]) -> None:
        run = self.client.create_run(self.experiment_id, run_name=name, tags={"archtune.kind": "search", **tags})
        self.run_id = run.info.run_id
        log_batch(self.client, self.run_id, params=params)

    def _child(self, name: str, kind: str, tags: dict[str, Any]) -> str:
        run = self.client.create_run(self.experiment_id, run_name=name, tags={
            "mlflow.parentRunId": self.run_id, "archtune.kind": kind, **tags})
        return run.info.run_id

    def trial(self, record: TrialRecord) -> None:
        attrs = record.attrs
        diagnosis = attrs.get("diagnosis") or {}
        end = record.end_state
        tags = {"archtune.trial": record.number, "archtune.state": record.state,
                "archtune.searched": ",".join(record.searched), **end.tags()}
        for key in ("fail_reason", "pruned_at_epoch", "best_epoch", "cohort", "cohort_leader", "recipe"):
            if attrs.get(key) is not None:
                tags[f"archtune.{key}"] = attrs[key]
        if diagnosis:
            tags["archtune.diagnosis.codes"] = ",".join(map(str, diagnosis.get("codes") or []))
            tags["archtune.diagnosis.worst"] = diagnosis.get("worst")
        run_id = self._child(record.name, "trial", tags)
        metrics = epoch_metrics(record.history)
        last = max((step for _, _, step in metrics), default=0)
        for key in ("n_params", "fit_seconds", "epochs_run"):
            if isinstance(attrs.get(key), (int, float)):
                metrics.append((key, float(attrs[key]), last))
        if record.value is not None:
            metrics.append(("value", float(record.value), last))
        log_batch(self.client, run_id, metrics, params=record.params)
        if diagnosis:
            self.client.log_dict(run_id, diagnosis, "diagnosis.json")
        self.client.set_terminated(run_id, end.run_status)

    def baselines(self, baselines: list[dict[str, Any]]) -> None:
        for b in baselines:
            error = b.get("error")
            end = EndState("complete") if error is None else EndState("failed", str(error))
            run_id = self._child(b["name"], "baseline", {"archtune.state": "baseline" if error is None else "failed",
                                                         **({"archtune.error": error} if error else {}), **end.tags()})
            metrics = [("fit_seconds", float(b["fit_seconds"]), 0)] if b.get("fit_seconds") is not None else []
            if error is None and b.get("score") is not None:
                metrics.append(("value", float(b["score"]), 0))
            log_batch(self.client, run_id, metrics, params={"params": b.get("params") or ""})
            self.client.set_terminated(run_id, end.run_status)

    def end(self, metrics: dict[str, float], tags: dict[str, Any], files: dict[str, bytes], end: EndState) -> None:
        """The search's summary metrics and tags, small files (name -> content) as artifacts,
        and how it ended: the parent run's status and end-state tags."""
        import tempfile

        if self.run_id is None:  # the search failed before it started
            return
        log_batch(self.client, self.run_id, [(k, float(v), 0) for k, v in metrics.items()],
                  tags={**tags, **end.tags()})
        if files:
            with tempfile.TemporaryDirectory() as folder:
                for name, content in files.items():
                    (Path(folder) / name).write_bytes(content)
                self.client.log_artifacts(self.run_id, folder)
        self.client.set_terminated(self.run_id, end.run_status)



__all__ = ["MLFLOW_EXTRA", "MLflowSearchLog", "client_for", "log_batch", "log_directory", "require_mlflow"]
