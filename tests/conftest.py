"""Shared fixtures: fixed seeds and small samples of the real datasets in ../shared/datasets."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

SHARED_DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
TABULAR = SHARED_DATASETS / "tabular"


@pytest.fixture(scope="session", autouse=True)
def _one_config_per_boosting_family():
    """The searches of the tests fit the gradient-boosting portfolio cut to its first LightGBM
    and first CatBoost configuration: a portfolio's configurations of one family differ only in
    their parameters (the table, its dtypes, weights, outputs and bundles reach them through
    the same code), and the eight of the shipped portfolio cost a search on a tiny table about
    ten seconds. tests/test_portfolio.py trains every configuration of the shipped file and runs
    the search's baselines with all of them."""
    from archtune.tune import baselines
    from archtune.tune.portfolio import load_portfolio

    configs = load_portfolio()
    firsts = [next(c for c in configs if c.family == family) for family in ("lightgbm", "catboost")]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(baselines, "load_portfolio", lambda: firsts)
        yield


@pytest.fixture(autouse=True)
def _fixed_seeds():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


def shared_path(name: str) -> Path:
    """Path of a file in ../shared/datasets/tabular; skips the test when the folder is absent."""
    path = TABULAR / name
    if not path.exists():
        pytest.skip(f"shared dataset {path} is not available (tests read real data from ../shared/datasets)")
    return path


def load_shared(name: str, n: int | None = None, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """(X, y) of a shared tabular dataset, optionally a random sample of n rows."""
    sep = "\t" if ".tsv" in name else ","
    frame = pd.read_csv(shared_path(name), sep=sep)
    if n is not None and n < len(frame):
        frame = frame.sample(n=n, random_state=seed).reset_index(drop=True)
    return frame.drop(columns="target"), frame["target"]


@pytest.fixture(scope="session")
def magic_small() -> tuple[pd.DataFrame, pd.Series]:
    """2000 rows of the MAGIC gamma telescope data (binary, 10 numeric features)."""
    return load_shared("magic.tsv.gz", n=2000)


@pytest.fixture(scope="session")
def house_small() -> tuple[pd.DataFrame, pd.Series]:
    """2000 rows of house_16H (regression, 16 numeric features)."""
    return load_shared("574_house_16H.tsv.gz", n=2000)


@pytest.fixture
def float64(monkeypatch):
    """Estimator fits in float64, alone and in cohorts: networks built in float64 and the
    prepared rows cast to it (for oracle tests to 1e-8)."""
    import dataclasses

    import archtune.estimators
    import archtune.fitting
    import archtune.population

    prepare = archtune.fitting.prepare

    def prepare64(*args, **kwargs):
        p = prepare(*args, **kwargs)
        cast = {name: getattr(p, name).double() for name in ("X_train", "X_val", "y_train", "y_val", "w_train", "w_val")
                if getattr(p, name) is not None and getattr(p, name).is_floating_point()}
        return dataclasses.replace(p, **cast)

    for module in (archtune.fitting, archtune.estimators, archtune.population):  # a fit alone, and a cohort
        if hasattr(module, "prepare"):
            monkeypatch.setattr(module, "prepare", prepare64)
    matrix = archtune.estimators.input_matrix
    monkeypatch.setattr(archtune.estimators, "input_matrix", lambda *a, **k: matrix(*a, **k).double())
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(default)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a test module (modules opt in with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``), restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
