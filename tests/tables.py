"""Small synthetic tables shared by several test files."""

from __future__ import annotations

import numpy as np
import pandas as pd


def five_class_table(n: int = 160, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Two numeric columns and a categorical one; a 5-class target that needs all three."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(["u", "v", "w"], n)})
    y = (X["a"] * 2 + X["b"] > 0).astype(int) + 2 * (X["c"] == "u") + (X["a"] > 1)
    return X, y.to_numpy()
