"""archtune.train.memory: freed blocks are reused, so fresh activations cost no page faults."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="the setting is glibc's (Linux); elsewhere keep_freed_memory does nothing")

# Page faults of 10 rounds like a training step's: 20 tensors of 2 MiB allocated and written,
# then all freed; before and after.
PROBE = textwrap.dedent("""
    import resource, sys, torch
    from archtune.train.memory import keep_freed_memory

    def faults():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(10):
            tensors = [torch.empty(512 * 1024) for _ in range(20)]
            for t in tensors:
                t.fill_(1.0)
            del tensors
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    faults()
    first = faults()
    applied = keep_freed_memory()
    faults()
    print(first, faults(), applied)
""")


def _probe(env_value: str | None) -> tuple[int, int, bool]:
    import os

    env = dict(os.environ)
    env.pop("ARCHTUNE_KEEP_FREED_MEMORY", None)
    if env_value is not None:
        env["ARCHTUNE_KEEP_FREED_MEMORY"] = env_value
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True)
    before, after, applied = out.stdout.split()
    return int(before), int(after), applied == "True"


def test_freed_blocks_are_reused_instead_of_faulted_in_again():
    before, after, applied = _probe(None)
    assert applied
    assert before >= 10 * 20 * 512 // 10  # default glibc: many freed pages go back and fault in again
    assert after < before / 10, (before, after)


def test_the_environment_variable_turns_it_off():
    before, after, applied = _probe("0")
    assert not applied
    assert after > before / 2, (before, after)  # still faulting: nothing changed
