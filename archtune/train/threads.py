"""Process-wide settings changed for the length of a job and restored afterwards, and the
number of threads a training run uses.

torch's thread count and Optuna's log level are global to the process. A search changes them
while it runs; `scoped` keeps the change safe when searches overlap (threads of one process,
``n_jobs > 1``, or a search started while another runs): the first to enter saves the value,
overlapping jobs keep the first job's setting, and the last to leave restores the original.

Threads (issue 14): torch's default is one intra-op thread per core, and its OpenMP threads
wait for each other at every operation. A small network's step (a few hundred microseconds
of arithmetic) gains almost nothing from a second thread and, on a machine where another
process is busy (a CI runner, ``GridSearchCV(n_jobs=2)``, a second fit), loses up to 20x
while the threads wait for a core (bench/threads.py). `training_threads` therefore gives a
run one thread unless its step is large, and never more threads than idle cores; a setting
the user made (``torch.set_num_threads``, ``OMP_NUM_THREADS``, threadpoolctl) is kept.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

_LOCK = threading.Lock()
_ACTIVE: dict[str, list[Any]] = {}  # setting -> [depth, the value to restore]


@contextmanager
def scoped(name: str, get: Callable[[], Any], set_: Callable[[Any], None], value: Any) -> Iterator[None]:
    """Set a process-wide value for the length of the ``with`` block (see the module's notes)."""
    with _LOCK:
        entry = _ACTIVE.get(name)
        if entry is None:
            _ACTIVE[name] = [1, get()]
            set_(value)
        else:
            entry[0] += 1
    try:
        yield
    finally:
        with _LOCK:
            entry = _ACTIVE[name]
            entry[0] -= 1
            if entry[0] == 0:
                set_(entry[1])
                del _ACTIVE[name]


def torch_threads(n: int) -> Any:
    """torch's intra-op thread count set to ``n`` for the block."""
    import torch

    return scoped("torch_threads", torch.get_num_threads, torch.set_num_threads, max(1, int(n)))


# Multiply-adds per training step (forward and backward, about 3x the forward's) that one
# more thread must have to pay for its synchronisation: below it, one thread is as fast on an
# idle machine (bench/threads.py) and much faster on a busy one.
WORK_PER_THREAD = 2e9
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def user_set_threads() -> bool:
    """Whether the thread count is someone's choice rather than torch's default: an
    environment variable torch reads, a count set by ``torch.set_num_threads`` or threadpoolctl
    (anything but one thread per core), or a job of archtune's own (a search with n_jobs)."""
    import torch

    if any(os.environ.get(name) for name in THREAD_ENV) or "torch_threads" in _ACTIVE:
        return True
    return torch.get_num_threads() not in {cores(), os.cpu_count() or 1}


def busy_cores() -> float:
    """Cores other work keeps busy now: the 1-minute load average (0 where unknown)."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return 0.0


def idle_cores() -> int:
    """Cores no other work keeps busy now (at least one)."""
    return max(1, int(cores() - busy_cores() + 0.5))


def threads_for(work: float, available: int | None = None, busy: float | None = None) -> int:
    """Threads for a training step of ``work`` multiply-adds: one per `WORK_PER_THREAD`, at
    most the idle cores (``available`` less ``busy``), at least one."""
    available = cores() if available is None else available
    busy = busy_cores() if busy is None else busy
    idle = int(available - busy + 0.5)
    return max(1, min(int(work // WORK_PER_THREAD), idle, available))


def step_work(modules: Sequence[Any], row: Any, batch_size: int) -> float:
    """Multiply-adds of one training step of ``modules`` (cohort members) on batches of
    ``batch_size`` rows like ``row`` (shape (1, width)): each Linear, convolution and recurrent
    layer's forward count, counted by hooks on one forward pass, times 3 for the backward."""
    import torch
    from torch import nn

    total = 0.0

    def count(layer: nn.Module, inputs: tuple, output: Any) -> None:
        nonlocal total
        out = output[0] if isinstance(output, tuple) else output
        if isinstance(layer, nn.Linear):
            total += out.numel() * layer.in_features
        elif isinstance(layer, (nn.Conv1d, nn.Conv2d)):
            total += out.numel() * layer.weight[0].numel()
        elif isinstance(layer, (nn.LSTM, nn.GRU, nn.RNN)):
            total += out.numel() * sum(p.numel() for p in layer.parameters()) / max(1, out.shape[-1])

    for module in modules:
        hooks = [m.register_forward_hook(count) for m in module.modules()
                 if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.LSTM, nn.GRU, nn.RNN))]
        training = module.training
        try:
            module.eval()
            with torch.no_grad():
                module(row)
        except Exception:  # a family the hooks cannot follow: count its parameters once per row
            total += sum(p.numel() for p in module.parameters())
        finally:
            module.train(training)
            for hook in hooks:
                hook.remove()
    return 3.0 * total * batch_size


def training_threads(modules: Sequence[Any], row: Any, batch_size: int) -> Any:
    """A context in which a training run has the threads its work pays for (see the module's
    notes); the user's own setting when there is one."""
    if user_set_threads():
        return nullcontext()
    return torch_threads(threads_for(step_work(modules, row, batch_size)))


def inference_threads(modules: Sequence[Any], n_rows: int) -> Any:
    """A context in which a forward pass of ``modules`` over ``n_rows`` rows has the threads
    its work pays for, at most the idle cores; the user's own setting when there is one. A
    search scores, diagnoses and ensembles its small networks on a few thousand rows: at
    torch's default of one thread per core, beside a busy process, a 400-row probe took 1.3 s
    instead of 0.02 s. The work is counted without running the network (a predict must not
    run an extra forward pass, which the user's hooks would see): the parameter count per
    row, the multiply-adds of a network of dense layers; a network with convolutions or
    recurrent layers, whose weights act many times per row, keeps torch's threads."""
    from torch import nn

    if user_set_threads():
        return nullcontext()
    layers = [layer for module in modules for layer in module.modules()]
    if any(isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.LSTM, nn.GRU, nn.RNN)) for layer in layers):
        return nullcontext()
    per_row = sum(p.numel() for module in modules for p in module.parameters())
    return torch_threads(threads_for(float(per_row) * max(1, int(n_rows))))


# Table cells per extra thread for the libraries the baselines use (scikit-learn's OpenMP and
# BLAS pools, LightGBM): below a million cells one thread (HistGradientBoosting on 6,000 x 10
# rows took 6.4 s with two threads beside a busy process, 0.4 s with one).
CELLS_PER_THREAD = 1_000_000


def library_threads(cells: int) -> Any:
    """A context limiting the OpenMP and BLAS thread pools (threadpoolctl) to the threads a
    table of ``cells`` values pays for, at most the idle cores; the user's own setting when
    there is one."""
    if user_set_threads():
        return nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=max(1, min(int(cells // CELLS_PER_THREAD), idle_cores())))


__all__ = ["CELLS_PER_THREAD", "WORK_PER_THREAD", "library_threads", "busy_cores", "cores", "idle_cores", "scoped", "step_work", "threads_for", "torch_threads",
           "training_threads", "user_set_threads"]
