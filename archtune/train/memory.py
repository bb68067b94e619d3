"""Host memory that training frees is kept for its next step instead of going back to the OS.

PyTorch's CPU tensors come from the C library's ``malloc``. glibc serves blocks above its
mmap threshold (128 KiB, rising only as such blocks are freed) with fresh ``mmap`` pages and
hands them back on ``free``, so a step that allocates a cohort's activations (32 members x
128 rows x 128 units = 2 MiB per tensor, dozens per step) touches fresh pages every step, and
every first touch of a page is a page fault. Measured on the project's 2-core VM, 32 members
of 128 units, batch 128: 1,799 page faults and 29-33 ms per step by default, 8 faults and
19 ms with the settings below (reproduce: bench/population.py against the same run with
``ARCHTUNE_KEEP_FREED_MEMORY=0``).

`keep_freed_memory` raises the mmap threshold to 32 MiB (glibc's largest on 64-bit) and the
trim threshold to 1 GiB with ``mallopt``, the knobs glibc documents for this (``man
mallopt``; PyTorch's CPU performance guide reaches the same end with jemalloc or tcmalloc).
The cost: the process keeps up to 1 GiB of freed memory for reuse rather than returning it, so
its resident size stays near its peak after training. It acts once per process, only with
glibc on Linux, and not at all when ``ARCHTUNE_KEEP_FREED_MEMORY=0``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import threading

# mallopt's parameter numbers (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # DEFAULT_MMAP_THRESHOLD_MAX on 64-bit: larger values are refused
TRIM_THRESHOLD = 1024 * 1024 * 1024
ENV = "ARCHTUNE_KEEP_FREED_MEMORY"

_LOCK = threading.Lock()
_STATE: dict[str, bool] = {}


def keep_freed_memory() -> bool:
    """Make glibc keep freed blocks for reuse (see the module's notes); True when in effect.

    Idempotent and thread-safe; False where it does not apply (not Linux, not glibc, or
    ``ARCHTUNE_KEEP_FREED_MEMORY=0``) or where ``mallopt`` refused.
    """
    with _LOCK:
        if "done" not in _STATE:
            _STATE["done"] = _apply()
        return _STATE["done"]


def _apply() -> bool:
    if os.environ.get(ENV, "1") == "0" or platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success; both or neither (a lone high mmap threshold would keep
    # freed blocks only until the default trim threshold gives them back).
    return bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)) and bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


__all__ = ["ENV", "keep_freed_memory"]
