"""Optuna plumbing: budgets, samplers, pruners, storages with heartbeats, stale-trial sweeps.

Nothing outside `archtune.tune` imports Optuna.
"""

from __future__ import annotations

import math
import re
import threading
import warnings
import time
from typing import Any

import optuna

from archtune.errors import InvalidParameterError, nearest
from archtune.tune.storages import (is_journal, journal_path, open_journal, rdb_url, record_journal_heartbeat,
                                    stale_journal_trials)

SAMPLERS = ("tpe", "random", "grid", "cmaes", "gp", "qmc", "nsga2")
PRUNERS = ("hyperband", "sha", "median", None)
# A trial whose heartbeat is older than GRACE_PERIOD seconds belongs to a dead process.
HEARTBEAT_INTERVAL = 2
GRACE_PERIOD = 8
MAX_GRID = 100_000

_UNITS = {"s": 1, "sec": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "minute": 60, "minutes": 60,
          "h": 3600, "hour": 3600, "hours": 3600}


def parse_budget(budget: Any) -> tuple[float | None, int | None]:
    """(seconds, trials): a time such as "90s", "5m", "1h30m", an integer number of trials, or
    "auto" (a search that stops itself, archtune.tune.stopping): its time cap as the seconds,
    `AUTO_CAP_SECONDS` unless written "auto:2h"."""
    from archtune.tune.stopping import AUTO, AUTO_CAP_SECONDS, is_auto_text

    if isinstance(budget, bool):
        raise InvalidParameterError(_budget_message(budget))
    if isinstance(budget, int):
        if budget < 1:
            raise InvalidParameterError(f"budget in trials must be at least 1; got budget={budget}")
        return None, budget
    if isinstance(budget, str):
        text = budget.strip().lower().replace(" ", "")
        if is_auto_text(text):  # "auto" or "auto:<time>"
            if text == AUTO:
                return AUTO_CAP_SECONDS, None
            seconds = _seconds(text[len(AUTO) + 1:])
            if seconds is not None:
                return seconds, None
            raise InvalidParameterError(f"budget 'auto:<time>' caps a search that stops itself with a time such as "
                                        f"'auto:30m' or 'auto:2h'; got budget={budget!r}")
        if text.isdigit():
            return parse_budget(int(text))
        seconds = _seconds(text)
        if seconds is not None:
            return seconds, None
    raise InvalidParameterError(_budget_message(budget))


def _seconds(text: str) -> float | None:
    """"90s", "5m", "1h30m" in seconds (positive), or None."""
    parts = re.findall(r"(\d+(?:\.\d+)?)([a-z]+)", text)
    if parts and "".join(n + u for n, u in parts) == text and all(u in _UNITS for _, u in parts):
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
        if seconds > 0:
            return seconds
    return None


def _budget_message(budget: Any) -> str:
    return (f"budget must be a time such as '90s', '5m', '1h', '1h30m', a number of trials such as 20, or 'auto' "
            f"(stop when more trials are not expected to improve on the validation noise, within a time cap: "
            f"'auto' or 'auto:2h'); got budget={budget!r}")


def make_sampler(name: str, seed: int, grid: dict[str, list[Any]] | None = None) -> optuna.samplers.BaseSampler:
    if name not in SAMPLERS:
        raise InvalidParameterError(f"sampler must be one of {', '.join(SAMPLERS)}; got sampler={name!r}{nearest(str(name), SAMPLERS)}")
    with warnings.catch_warnings():
        # Multivariate/grouped TPE is marked experimental; it is what we want regardless.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return _make_sampler(name, seed, grid)


def _make_sampler(name: str, seed: int, grid: dict[str, list[Any]] | None) -> optuna.samplers.BaseSampler:
    if name not in SAMPLERS:
        raise InvalidParameterError(f"sampler must be one of {', '.join(SAMPLERS)}; got sampler={name!r}{nearest(str(name), SAMPLERS)}")
    if name == "tpe":
        # Multivariate TPE models the interactions (learning rate with batch size, depth with
        # width) that matter for networks; group=True handles the conditional dimensions.
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, n_startup_trials=8)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "nsga2":  # several objectives (archtune.tune.objectives); Deb et al. 2002
        return optuna.samplers.NSGAIISampler(seed=seed)
    if name == "grid":
        size = math.prod(len(v) for v in (grid or {}).values())
        if size > MAX_GRID:
            raise InvalidParameterError(
                f"sampler='grid' over this space means {size:,} combinations (over {MAX_GRID:,}); narrow the "
                "space with a dict of a few choices per parameter, or use sampler='tpe' or 'random'")
        return optuna.samplers.GridSampler(grid or {}, seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False,
                                            independent_sampler=optuna.samplers.RandomSampler(seed=seed))
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, independent_sampler=optuna.samplers.RandomSampler(seed=seed))
    return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False,
                                      independent_sampler=optuna.samplers.RandomSampler(seed=seed))


def make_pruner(name: str | None, max_epochs: int) -> optuna.pruners.BasePruner:
    if name not in PRUNERS:
        raise InvalidParameterError(f"pruner must be one of 'hyperband', 'sha', 'median' or None; got pruner={name!r}"
                                    f"{nearest(str(name), [p for p in PRUNERS if p])}")
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_epochs, reduction_factor=3)
    if name == "sha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3)
    return optuna.pruners.NopPruner()


def make_storage(url: str | None) -> optuna.storages.BaseStorage | None:
    """In memory (None), a journal file (``journal:///path.log``, archtune.tune.storages), or an
    RDB storage; trials send heartbeats in both, so that a trial left RUNNING by a killed
    process is failed and retried with the same parameters."""
    if url is None:
        return None
    journal = journal_path(url)
    if journal is not None:
        return open_journal(journal)
    if not isinstance(url, str) or "://" not in url:
        raise InvalidParameterError(f"storage must be None or a URL such as 'sqlite:///study.db', "
                                    f"'journal:///runs/study.log' or 'postgresql://user@host/db'; "
                                    f"got storage={url!r}")
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # Wait for a lock rather than failing with "database is locked" under parallel workers.
        engine_kwargs = {"connect_args": {"timeout": 60}}
    try:
        with warnings.catch_warnings():
            # Heartbeats and the retry callback are marked experimental; we rely on them.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                rdb_url(url), engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_INTERVAL,
                grace_period=GRACE_PERIOD,
                heartbeat_stale_trial_callback=_retry_callback())
    except ImportError as exc:
        raise InvalidParameterError(f"storage {url!r} needs a database driver that is not installed ({exc}); "
                                    "for PostgreSQL: pip install psycopg2-binary") from None
    except Exception as exc:
        raise InvalidParameterError(f"cannot open storage {url!r}: {type(exc).__name__}: {exc}") from None


def _retry_callback() -> Any:
    """Re-queue a stale trial's parameters (at most twice), so the configuration is retried."""
    retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or optuna.storages.RetryFailedTrialCallback
    return retry(max_retry=2)


def _heartbeat_enabled(storage: Any) -> bool:
    return is_journal(storage) or (isinstance(storage, optuna.storages.RDBStorage)
                                   and storage.get_heartbeat_interval() is not None)


def _record_heartbeat(storage: Any, trial_id: int) -> None:
    if is_journal(storage):
        record_journal_heartbeat(storage, trial_id)
    else:
        storage.record_heartbeat(trial_id)


class Heartbeat:
    """Records a trial's heartbeat every HEARTBEAT_INTERVAL seconds while training runs."""

    def __init__(self, storage: Any, trial_id: int):
        self.storage = storage
        self.trial_id = trial_id
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "Heartbeat":
        if _heartbeat_enabled(self.storage):
            _record_heartbeat(self.storage, self.trial_id)
            self._thread = threading.Thread(target=self._beat, daemon=True)
            self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_INTERVAL):
            try:
                _record_heartbeat(self.storage, self.trial_id)
            except Exception:  # a missed beat only delays nothing; the next one retries
                pass

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def sweep_stale_trials(study: optuna.Study, storage: Any, wait: bool) -> int:
    """Fail (and so retry) trials whose process died. With ``wait``, first give RUNNING trials
    that may have just been killed time to become stale. Returns how many were failed."""
    if not _heartbeat_enabled(storage):
        return 0
    running = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))]
    if not running:
        return 0
    if wait:
        time.sleep(GRACE_PERIOD + 1)
    before = len(running)
    if is_journal(storage):
        _fail_stale_journal_trials(study, storage)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
    after = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)))
    return before - after


def _fail_stale_journal_trials(study: optuna.Study, storage: Any) -> None:
    """`optuna.storages.fail_stale_trials` for a journal: fail the trials whose heartbeat
    stopped, then re-queue their parameters as the RDB storages' callback does."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        callback = _retry_callback()
    for trial_id in stale_journal_trials(study, storage, GRACE_PERIOD):
        try:
            if not storage.set_trial_state_values(trial_id, state=optuna.trial.TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another process failed (or finished) it first
        callback(study, storage.get_trial(trial_id))
