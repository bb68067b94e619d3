"""Process-wide settings changed for the length of a job and restored afterwards.

torch's thread count and Optuna's log level are global to the process. A search changes them
while it runs; `scoped` keeps the change safe when searches overlap (threads of one process,
``n_jobs > 1``, or a search started while another runs): the first to enter saves the value,
overlapping jobs keep the first job's setting, and the last to leave restores the original.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


__all__ = ["scoped", "torch_threads"]
