"""Time experiment tracking costs a search: the seconds the search spends in the tracker's
calls (MLflow file store and TensorBoard files; the writing itself is on a background
thread, and the search's end waits for it), and the wall time of the same search (same seed)
with and without tracking, alternated.

    python bench/tracking_overhead.py [TRIALS] [REPEATS]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from sklearn.datasets import load_breast_cancer

from archtune.auto import AutoNeuralClassifier
from archtune.tracking.search_tracker import SearchTracker


def search(X, y, trials: int, folder: str | None) -> float:
    tracking = {} if folder is None else {"mlflow_uri": str(Path(folder) / "mlruns"),
                                          "tensorboard_dir": str(Path(folder) / "tb")}
    started = time.perf_counter()
    AutoNeuralClassifier(budget=trials, space={"max_epochs": 10}, ensemble=False, random_state=0, **tracking).fit(X, y)
    return time.perf_counter() - started


def main(trials: int = 16, repeats: int = 2) -> None:
    spent = {"seconds": 0.0, "calls": 0}
    for name in ("start", "trial_ended", "baselines", "end"):
        original = getattr(SearchTracker, name)

        def timed(self, *args, _original=original, **kwargs):
            started = time.perf_counter()
            try:
                return _original(self, *args, **kwargs)
            finally:
                spent["seconds"] += time.perf_counter() - started
                spent["calls"] += 1

        setattr(SearchTracker, name, timed)
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    plain, tracked = [], []
    for _ in range(repeats):
        plain.append(search(X, y, trials, None))
        with tempfile.TemporaryDirectory() as folder:
            tracked.append(search(X, y, trials, folder))
    total = sum(tracked)
    print(f"{trials} trials x {repeats}: search {min(plain):.1f} s untracked, {min(tracked):.1f} s tracked (best of "
          f"{repeats}); the search's time in the tracker's calls {spent['seconds']:.2f} s in {spent['calls']} calls "
          f"({100 * spent['seconds'] / total:.1f}%; {1000 * spent['seconds'] / (trials * repeats):.0f} ms per trial)")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
