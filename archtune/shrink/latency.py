"""CPU latency of a network, measured the same way every time so that rounds compare."""

from __future__ import annotations

import copy
import time

import torch
from torch import nn

from archtune.train.threads import torch_threads

ROWS = 1000


def latency_ms(module: nn.Module, X: torch.Tensor, repeats: int = 20) -> float:
    """Milliseconds a forward pass of ``module`` takes on 1000 rows, on the CPU, with one
    torch thread: the fastest of ``repeats`` timed passes after two untimed ones.

    Parameters
    ----------
    module : nn.Module
        Copied to the CPU in evaluation mode (the original is not changed).
    X : tensor of shape (n_rows, n_columns)
        Preprocessed rows; repeated (or cut) to exactly 1000. Preprocessing itself is not
        timed: it is the same before and after pruning.

    Returns
    -------
    float
        Milliseconds per 1000 rows. One thread, and the fastest pass (other processes' load
        only ever adds time, so the fastest pass is the least disturbed, as ``timeit``
        advises), keep the figure comparable between rounds on a busy machine.
    """
    net = copy.deepcopy(module).cpu().eval()
    rows = X.cpu()
    if len(rows) == 0:
        raise ValueError("latency_ms needs at least one row")
    rows = rows.repeat(-(-ROWS // len(rows)), *([1] * (rows.dim() - 1)))[:ROWS]
    times = []
    with torch_threads(1), torch.inference_mode():
        for i in range(repeats + 2):
            started = time.perf_counter()
            net(rows)
            if i >= 2:
                times.append(time.perf_counter() - started)
    return 1000.0 * min(times)


__all__ = ["ROWS", "latency_ms"]
