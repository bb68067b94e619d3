"""archtune.train.memory: freed blocks are reused, so fresh activations cost no page faults."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="the setting is glibc's (Linux); elsewhere keep_freed_memory does nothing")

# Page faults of ten allocations, each written then freed, each a quarter MiB larger than the
# last: by default glibc serves every one with fresh mmap pages (each is larger than any block
# freed before, so its adaptive threshold never catches up); kept freed blocks are reused and
# only extended. The second series starts above the first, for the same reason.
PROBE = textwrap.dedent("""
    import resource, torch
    from archtune.train.memory import keep_freed_memory

    def faults(start_mib):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for i in range(10):
            t = torch.empty(int((start_mib + 0.25 * i) * 2**20) // 4)
            t.fill_(1.0)
            del t
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    first = faults(2.0)
    applied = keep_freed_memory()
    print(first, faults(5.0), applied)
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
    assert before >= 10 * 512  # default glibc: every page of every allocation faults in
    assert after < before / 2, (before, after)  # though the second series is twice as large


def test_the_environment_variable_turns_it_off():
    before, after, applied = _probe("0")
    assert not applied
    assert after > before, (before, after)  # still faulting in every (larger) allocation
