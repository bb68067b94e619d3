"""Detectors of data problems: unscaled or constant features, class imbalance, and rows
duplicated across the training/validation split."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from archtune.data.table import Table
from archtune.doctor.findings import Finding
from archtune.train.batches import SparseRows

UNSCALED_SPREAD = 100.0  # largest over smallest feature standard deviation
IMBALANCE_RATIO = 0.1  # rarest class at under a tenth of the commonest
LEAK_SHARE = 0.01  # 1% of validation rows also in the training rows


def run_all(model: Any, table: Table, y: Any, prepared: Any, checked: list[str],
            arrays: bool = False) -> list[Finding]:
    """The data checks of a typed `Table` (a DataFrame's rows, with their kinds: nothing is
    read or inferred again here). ``arrays``: X came as images or series, seen here as rows
    of pixels or steps. Their columns are not features one could drop or rescale (a border
    pixel that is always black is normal), so the column checks are skipped."""
    frame, kinds = table.rows, table.typed().kinds
    numeric = frame[[c for c in frame.columns if kinds[str(c)] == "numeric"]].apply(pd.to_numeric, errors="coerce")
    findings: list[Finding] = []
    column_checks = () if arrays else (
        ("unscaled_features", lambda: unscaled_features(numeric, model.scaling)),
        ("constant_features", lambda: constant_features(frame)))
    for name, check in (*column_checks,
                        ("class_imbalance", lambda: class_imbalance(model, y)),
                        ("train_val_leak", lambda: train_val_leak(prepared))):
        result = check()
        if result is not None:
            checked.append(name)
            findings += result
    return findings


def unscaled_features(numeric: pd.DataFrame, scaling: str | None) -> list[Finding] | None:
    if scaling is not None:
        return None  # the preprocessor scales every numeric column
    stds = numeric.std(skipna=True)
    stds = stds[stds > 0]
    if len(stds) < 2:
        return []
    spread = float(stds.max() / stds.min())
    if spread < UNSCALED_SPREAD:
        return []
    return [Finding("unscaled_features", "warning",
                    f"feature standard deviations span {spread:.0f}x ({stds.idxmax()!s}: {stds.max():.3g}, "
                    f"{stds.idxmin()!s}: {stds.min():.3g}) and scaling is off: the large features dominate the "
                    "first layer and its gradients",
                    {"std_spread": spread, "largest": {str(stds.idxmax()): float(stds.max())},
                     "smallest": {str(stds.idxmin()): float(stds.min())}},
                    ["scale the features: scaling='standard' (the default) or 'quantile' for skewed columns"])]


def constant_features(frame: pd.DataFrame) -> list[Finding]:
    constant = [str(c) for c in frame.columns if frame[c].nunique(dropna=True) <= 1]
    if not constant:
        return []
    shown = ", ".join(constant[:10]) + (f" and {len(constant) - 10} more" if len(constant) > 10 else "")
    return [Finding("constant_features", "warning", f"{len(constant)} column(s) hold a single value: {shown}",
                    {"columns": constant}, ["drop them: a constant column carries no information"])]


def class_imbalance(model: Any, y: Any) -> list[Finding] | None:
    if model.target_kind == "regression":
        return None
    counts = pd.Series(np.asarray(y).reshape(-1)).value_counts()
    if len(counts) < 2:
        return []
    ratio = float(counts.iloc[-1] / counts.iloc[0])
    if ratio >= IMBALANCE_RATIO:
        return []
    weighted = model.class_weight is not None
    advice = ([] if weighted else ["weight the classes (class_weight='balanced')"]) + [
        "judge the model by balanced accuracy, F1 or ROC AUC, not accuracy (archtune tune --scoring)",
        "gather more rows of the rare class"]
    return [Finding("class_imbalance", "info" if weighted else "warning",
                    f"class {counts.index[-1]!r} has {counts.iloc[-1]} rows against {counts.iloc[0]} of "
                    f"{counts.index[0]!r} ({ratio:.1%})" + ("; class_weight is set" if weighted else ""),
                    {"counts": {str(k): int(v) for k, v in counts.items()}, "ratio": ratio}, advice)]


def _row_keys(X: Any, y: Any) -> list[bytes]:
    """One key per row of features and target: a copy is the same example twice (the same
    features with another label is noise, not a leak)."""
    targets = np.ascontiguousarray(y.numpy()).reshape(len(y), -1).astype(np.float64)
    return [f + t.tobytes() for f, t in zip(_feature_keys(X), targets)]


def _feature_keys(X: Any) -> list[bytes]:
    """Each row's features as bytes; a sparse row as its columns and values (never densified)."""
    if isinstance(X, SparseRows):
        m = X.matrix.copy()
        m.sort_indices()  # the same row must give the same bytes whatever its entries' order
        return [m.indices[a:b].tobytes() + m.data[a:b].tobytes() for a, b in zip(m.indptr[:-1], m.indptr[1:])]
    return [row.tobytes() for row in np.ascontiguousarray(X.numpy()).reshape(len(X), -1)]


def train_val_leak(prepared: Any) -> list[Finding] | None:
    if prepared is None or prepared.X_val is None or len(prepared.X_val) == 0:
        return None
    train = set(_row_keys(prepared.X_train, prepared.y_train))
    val = _row_keys(prepared.X_val, prepared.y_val)
    shared = sum(key in train for key in val)
    share = shared / len(val)
    if share < LEAK_SHARE:
        return []
    return [Finding("train_val_leak", "warning",
                    f"{shared} of {len(val)} validation rows ({share:.1%}) are copies of training rows: the "
                    "validation loss is optimistic and early stopping trusts it",
                    {"duplicated_rows": int(shared), "validation_rows": len(val), "share": share},
                    ["remove duplicate rows before fitting (DataFrame.drop_duplicates())",
                     "if the copies are real repeated measurements, split by group so copies stay together"])]
