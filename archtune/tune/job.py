"""What a search's coordinator publishes so that workers (`archtune worker`, possibly on other
machines) train the same trials it would: the job record, a study user attribute, and the
prepared data, a Parquet file beside it.

The coordinator (`archtune tune`, or an AutoNeural* ``fit``) reads the data once, splits it
and publishes both: the rows as it searches them (a Python API caller's in-memory X included,
so workers never need the caller's data source), and each split's row positions, so that a
worker's splits are the coordinator's row for row. Everything else a trial depends on (the
space, the sampler, the pruner, the scorer, the budget) is in the record.

The data file lies beside a file storage (a journal or SQLite file); for a server storage
(PostgreSQL) in ``data_dir`` (the working directory by default), which workers on other
machines must reach under the same path (a shared file system), or be given with
``archtune worker --data PATH``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd

from archtune.errors import DataError
from archtune.tune.storages import journal_path

JOB_ATTR = "worker_job"
TARGET_COLUMN = "__archtune_target__"
WEIGHT_COLUMN = "__archtune_weight__"


def data_file(storage_url: str, study_name: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the coordinator writes the prepared rows of ``study_name``."""
    if data_dir is None:
        journal = journal_path(storage_url)
        if journal is not None:
            data_dir = journal.resolve().parent
        elif storage_url.startswith("sqlite:///"):
            data_dir = Path(storage_url[len("sqlite:///"):]).resolve().parent
        else:
            data_dir = Path.cwd()
    return Path(data_dir).resolve() / f"{study_name}.worker-data.parquet"


def publish(study: optuna.Study, path: Path, frame: pd.DataFrame, y: np.ndarray, weights: np.ndarray | None,
            positions: list[tuple[np.ndarray, np.ndarray]], record: dict[str, Any]) -> None:
    """Write the rows (with the target and weights) to ``path`` and each split's (train,
    validation) row positions beside it, then store ``record`` with the data's path as the
    study's job. Written before the record, so that a worker that sees the job finds its data."""
    table = frame.copy()
    table.columns = [str(c) for c in table.columns]
    outputs = _target_columns(y)
    for j, column in enumerate(outputs):  # one column per output of a multi-output target
        table[column] = y if y.ndim == 1 else y[:, j]
    if weights is not None:
        table[WEIGHT_COLUMN] = weights
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    table.to_parquet(partial, index=False)
    os.replace(partial, path)
    splits = {f"{kind}{i}": idx for i, pair in enumerate(positions) for kind, idx in zip(("train", "val"), pair)}
    np.savez(_splits_file(path), **splits)
    study.set_user_attr(JOB_ATTR, {**record, "data": str(path), "columns": [str(c) for c in frame.columns],
                                   "n_splits": len(positions), "targets": outputs})


def refuse(study: optuna.Study, reason: str) -> None:
    """Record that this study's trials cannot be trained by workers, and why."""
    study.set_user_attr(JOB_ATTR, {"unsupported": reason})


def read_data(job: dict[str, Any], path: str | os.PathLike[str] | None = None
              ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray | None, list[tuple[np.ndarray, np.ndarray]]]:
    """(rows, target, weights, split positions) of a published job; ``path`` overrides where
    the data file is (the same file mounted elsewhere). Raises `DataError` naming the file."""
    file = Path(path) if path is not None else Path(job["data"])
    if not file.is_file() or not _splits_file(file).is_file():
        raise DataError(f"the search's data file {file} (or its split file {_splits_file(file).name}) is not here: "
                        "a worker must reach the coordinator's data under the same path (a shared file system), "
                        "or be given it with --data PATH")
    table = pd.read_parquet(file)
    outputs = job.get("targets", [TARGET_COLUMN])
    y = np.column_stack([table.pop(c).to_numpy() for c in outputs]) if len(outputs) > 1 else table.pop(outputs[0]).to_numpy()
    weights = table.pop(WEIGHT_COLUMN).to_numpy() if WEIGHT_COLUMN in table else None
    with np.load(_splits_file(file)) as stored:
        positions = [(stored[f"train{i}"], stored[f"val{i}"]) for i in range(int(job["n_splits"]))]
    return table, y, weights, positions


def _target_columns(y: np.ndarray) -> list[str]:
    """The data file's target column(s): one, or one per output of a multi-output target."""
    if y.ndim == 1:
        return [TARGET_COLUMN]
    return [TARGET_COLUMN.replace("target", f"target_{j}") for j in range(y.shape[1])]


def _splits_file(path: Path) -> Path:
    return path.with_name(path.name.replace(".parquet", "") + ".splits.npz")


__all__ = ["JOB_ATTR", "data_file", "publish", "read_data", "refuse"]
