"""Which Optuna storage a search's processes share, named by one string.

* ``journal:///path/study.log`` (or a bare path ending in ``.log``): Optuna's JournalStorage
  over an append-only file (`optuna.storages.journal.JournalFileBackend`), the storage for
  several processes on one machine (or on a shared file system with working file locks).
* ``postgresql://user@host/db`` (or any SQLAlchemy URL): an RDB storage, for many machines.
* ``sqlite:///path/study.db``: the single-process default; Optuna's own code warns that
  SQLite is not for parallel optimisation (its writers lock the whole file).

JournalStorage has no heartbeat of its own (Optuna implements heartbeats for RDB storages
only), so a trial's liveness is kept here as a system attribute, ``archtune:heartbeat`` (the
Unix time of its last beat), written by the process that trains it; `stale_journal_trials`
finds the RUNNING trials whose beat is older than the grace period.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import optuna

from archtune.errors import InvalidParameterError

JOURNAL_SCHEME = "journal://"
HEARTBEAT_ATTR = "archtune:heartbeat"


def journal_path(url: Any) -> Path | None:
    """The journal file a storage string names (``journal:///p`` or a ``.log`` path), else None."""
    if not isinstance(url, str):
        return None
    if url.startswith(JOURNAL_SCHEME):
        path = url[len(JOURNAL_SCHEME):]
        if not path:
            raise InvalidParameterError(f"storage {url!r}: give the journal file, e.g. journal:///runs/study.log")
        return Path(path)
    if "://" not in url and url.endswith(".log"):
        return Path(url)
    return None


def journal_url(path: str | os.PathLike[str]) -> str:
    """The storage string of a journal file: ``journal:///absolute/path``."""
    return JOURNAL_SCHEME + str(Path(path).resolve())


def open_journal(path: Path) -> optuna.storages.BaseStorage:
    """JournalStorage over ``path`` (created with its folder)."""
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return JournalStorage(JournalFileBackend(str(path)))
    except OSError as exc:
        raise InvalidParameterError(f"cannot open the journal storage {path}: {exc}") from None


def rdb_url(url: str) -> str:
    """``url`` with a PostgreSQL driver that is installed: SQLAlchemy 2.1 reads a bare
    ``postgresql://`` as psycopg 3, while the ``postgres`` extra installs psycopg2-binary."""
    if url.startswith("postgresql://"):
        import importlib.util

        if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
            return "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


def is_sqlite(url: Any) -> bool:
    return isinstance(url, str) and url.startswith("sqlite")


def is_shared(url: Any) -> bool:
    """Whether several processes can share this storage safely (a journal or a server database)."""
    return isinstance(url, str) and not is_sqlite(url) and (journal_path(url) is not None or "://" in url)


def is_journal(storage: Any) -> bool:
    from optuna.storages.journal import JournalStorage

    return isinstance(storage, JournalStorage)


def record_journal_heartbeat(storage: Any, trial_id: int) -> None:
    storage.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())


def stale_journal_trials(study: optuna.Study, storage: Any, grace_period: float) -> list[int]:
    """Trial ids of RUNNING trials whose last heartbeat (or start, before the first beat) is
    older than ``grace_period`` seconds."""
    now = time.time()
    stale = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        beat = trial.system_attrs.get(HEARTBEAT_ATTR)
        if beat is None and trial.datetime_start is not None:
            beat = trial.datetime_start.timestamp()
        if beat is not None and now - float(beat) > grace_period:
            # Public API only: the id from the study's name and the trial's number.
            study_id = storage.get_study_id_from_name(study.study_name)
            stale.append(storage.get_trial_id_from_study_id_trial_number(study_id, trial.number))
    return stale


__all__ = ["HEARTBEAT_ATTR", "is_journal", "is_shared", "is_sqlite", "journal_path", "journal_url", "open_journal",
           "rdb_url", "record_journal_heartbeat", "stale_journal_trials"]
