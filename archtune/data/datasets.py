"""Built-in datasets, by name, from scikit-learn's bundled loaders (no download)."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from archtune.errors import DataError, nearest


def _sklearn(loader_name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, loader_name)(as_frame=True)
        frame = bunch.frame.copy()
        if "target_names" in bunch and loader_name != "load_diabetes":
            # Class names read better than codes in predictions and leaderboards.
            names = list(bunch.target_names)
            frame["target"] = [names[int(i)] for i in frame["target"]]
        return frame

    return load


BUILTIN_DATASETS: dict[str, tuple[Callable[[], pd.DataFrame], str]] = {
    "digits": (_sklearn("load_digits"), "8x8 handwritten digits, 1797 rows, 10 classes"),
    "breast_cancer": (_sklearn("load_breast_cancer"), "Wisconsin breast cancer, 569 rows, binary"),
    "wine": (_sklearn("load_wine"), "wine cultivars, 178 rows, 3 classes"),
    "iris": (_sklearn("load_iris"), "iris flowers, 150 rows, 3 classes"),
    "diabetes": (_sklearn("load_diabetes"), "diabetes progression, 442 rows, regression"),
}
BUILTIN_TARGET = "target"


def list_datasets() -> list[str]:
    return sorted(BUILTIN_DATASETS)


def load_dataset(name: str) -> pd.DataFrame:
    """A built-in dataset as a DataFrame whose last column, ``target``, is the target."""
    if name not in BUILTIN_DATASETS:
        raise DataError(
            f"unknown built-in dataset {name!r}{nearest(name, BUILTIN_DATASETS)}; "
            f"built-in datasets are: {', '.join(list_datasets())}"
        )
    return BUILTIN_DATASETS[name][0]()
