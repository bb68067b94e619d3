"""A time budget holds on a loaded machine: the search's wall time stays within its budget plus
the refit allowance, the allowance being half of one fit of the default network on the same
rows, measured in the same test under the same load (no fixed number of seconds).

Measured here (2 cores, two busy processes and a benchmark beside): before the search's
probes and predictions ran at the threads their work pays for and the leaderboard's bootstrap
was computed as row sums, a 10 s search took 19.5 s against a reference fit of 17.7 s (this
test fails: 19.5 > 10 + 8.9); after, 12.0 s against 17.7-20.1 s."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from archtune.auto import AutoNeuralClassifier
from archtune.estimators import NeuralClassifier

HOG = "import time\nend = time.monotonic() + 120\nwhile time.monotonic() < end:\n    pass\n"


@pytest.fixture
def loaded_machine():
    """Two busy processes (as many as this machine's cores in CI) for the test's length."""
    hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(2)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


# A reference fit and a 10 s search beside two busy processes: slow. The budget's decisions
# stay in CI (tests/test_search.py::test_no_trial_starts_after_the_time_budget and
# test_a_budget_spent_before_the_first_trial_still_trains_one).
@pytest.mark.slow
def test_a_time_budget_is_kept_within_the_refit_allowance_on_a_loaded_machine(magic_small, loaded_machine):
    X, y = magic_small
    started = time.monotonic()
    NeuralClassifier(random_state=0).fit(X, y)  # the reference: the default network, all rows, this load
    reference = time.monotonic() - started
    budget = 10.0
    started = time.monotonic()
    model = AutoNeuralClassifier(budget=f"{budget:g}s", random_state=0).fit(X, y)
    wall = time.monotonic() - started
    assert model.predict(X.iloc[:5]).shape == (5,)
    print(f"wall {wall:.1f} s, budget {budget:g} s, reference fit {reference:.1f} s")
    assert wall <= budget + reference / 2, (wall, reference)
