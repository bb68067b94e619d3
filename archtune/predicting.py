"""Where and on how many threads a fitted model predicts: ``predict(X, n_threads=..., device=...)``.

A model trained on a GPU is served on CPUs, and a server decides how many cores each request
gets (AutoGluon's users ask for both: autogluon/autogluon#5360, #4900). `predicting` is the
context every ``predict``/``predict_proba``/``predict_interval`` of archtune's networks, ensembles
and Auto estimators enters: ``n_threads`` sets torch's intra-op threads and the OpenMP/BLAS
pools (threadpoolctl: LightGBM, CatBoost and scikit-learn members) for the call and restores
them after it; ``device`` moves the networks there (they stay there). Without either, a
network predicts where its weights are, at the threads its work pays for
(`archtune.train.threads.inference_threads`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from archtune.errors import InvalidParameterError


def check_n_threads(n_threads: Any) -> int | None:
    """None or an integer >= 1.

    Raises
    ------
    InvalidParameterError
    """
    if n_threads is None:
        return None
    if isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1:
        raise InvalidParameterError(f"n_threads must be None or an integer >= 1; got n_threads={n_threads!r}")
    return int(n_threads)


def check_device(device: Any) -> torch.device | None:
    """None, "auto", "cpu", "cuda" or "cuda:N" as a torch device.

    Raises
    ------
    InvalidParameterError
        Another value, or a CUDA device on a machine without one.
    """
    if device is None:
        return None
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        parsed = None
    if parsed is None or parsed.type not in ("cpu", "cuda"):
        raise InvalidParameterError(f"device must be None, 'auto', 'cpu', 'cuda' or 'cuda:N'; got device={device!r}")
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise InvalidParameterError(f"device={device!r} was requested but no CUDA GPU is available; predict on "
                                    "device='cpu' (a model trained on a GPU predicts on a CPU)")
    return parsed


@contextlib.contextmanager
def predicting(networks: Sequence[Any], n_threads: Any = None, device: Any = None) -> Iterator[None]:
    """The context of one prediction call: ``networks`` (fitted archtune networks) moved to
    ``device``, and ``n_threads`` threads for torch and the native thread pools, restored after.

    Raises
    ------
    InvalidParameterError
        A bad ``n_threads`` or ``device`` (before anything moves).
    """
    threads = check_n_threads(n_threads)
    target = check_device(device)
    if target is not None:
        for network in networks:
            network.module_.to(target)
    with contextlib.ExitStack() as stack:
        if threads is not None:
            from threadpoolctl import threadpool_limits

            from archtune.train.threads import torch_threads

            stack.enter_context(torch_threads(threads))
            stack.enter_context(threadpool_limits(threads))
        yield


__all__ = ["check_device", "check_n_threads", "predicting"]
