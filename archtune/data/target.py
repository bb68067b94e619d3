"""Checking and encoding the target: class labels of any hashable type, or real values."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from archtune.errors import DataError


def _row(i: int) -> str:
    return f"row {i + 1}"


def _plain(value: Any) -> Any:
    """A NumPy scalar as the Python value it holds, so messages read 1, not np.int64(1)."""
    return value.item() if isinstance(value, np.generic) else value


def target_array(y: Any, what: str = "y") -> np.ndarray:
    """y as a NumPy array (1-D, or 2-D for multi-output), warning on a column vector; a
    sequence of label sets (archtune.data.multilabel) as a 1-D object array of frozensets."""
    from archtune.data.multilabel import label_sets

    sets = label_sets(y)
    if sets is not None:
        return sets
    if isinstance(y, (pd.Series, pd.DataFrame)):
        y = y.to_numpy()
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        from sklearn.exceptions import DataConversionWarning

        warnings.warn(
            "A column-vector y was passed when a 1d array was expected. Please change the "
            "shape of y to (n_samples, ), for example using ravel().",
            DataConversionWarning,
            stacklevel=3,
        )
        arr = arr.ravel()
    if arr.ndim == 0 or arr.ndim > 2:
        raise DataError(f"{what} must be 1-dimensional (one label per row); got shape {arr.shape}")
    return arr


def plain_labels(y: np.ndarray) -> np.ndarray:
    """Labels in the type a user compares them with: an object array holding only integers,
    booleans or floats (``pd.Series(['a', 'b']).replace({'a': 0, 'b': 1})``) becomes an array
    of that type; strings and mixed labels stay as they are."""
    if y.dtype != object or not len(y):
        return y
    inferred = pd.Series(y.ravel()).infer_objects()
    if inferred.dtype.kind in "iubf":
        return inferred.to_numpy().reshape(y.shape)
    return y


def encode_classes(y: np.ndarray, what: str = "y") -> tuple[np.ndarray, np.ndarray]:
    """(classes, codes): sorted distinct labels and each row's index into them (object arrays
    of numbers or booleans as their own type: `plain_labels`)."""
    if y.ndim != 1:
        raise DataError(f"{what} must be 1-dimensional for classification; got shape {y.shape}")
    y = plain_labels(y)
    missing = pd.isna(y) if y.dtype.kind in "fcOUS" else np.zeros(len(y), bool)
    if np.any(missing):
        raise DataError(f"{what} {_row(int(np.flatnonzero(missing)[0]))}: the target is missing (NaN or empty)")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise DataError(f"{what} {_row(int(np.flatnonzero(~np.isfinite(y))[0]))}: the target is infinite")
    try:
        classes, codes = np.unique(y, return_inverse=True)
    except TypeError:
        kinds = sorted({type(v).__name__ for v in y})
        raise DataError(f"{what} mixes label types ({', '.join(kinds)}); use one type for all labels") from None
    if len(classes) < 2:
        raise DataError(
            f"{what} contains only one class ({_plain(classes[0])!r}): a classifier needs at least 2 classes"
        )
    return classes, codes.astype("int64")


def regression_target(y: np.ndarray, what: str = "y") -> np.ndarray:
    """y as a float64 matrix (rows x outputs); rejects missing and infinite values."""
    try:
        arr = np.asarray(y, dtype="float64")
    except (TypeError, ValueError):
        flat = np.asarray(y, dtype=object).reshape(len(y), -1)
        for i, row in enumerate(flat):
            for v in row:
                try:
                    float(v)
                except (TypeError, ValueError):
                    raise DataError(f"{what} {_row(i)}: {v!r} is not a number (regression needs numeric targets)") from None
        raise
    arr = arr.reshape(len(arr), -1)
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad.any(axis=1))[0])
        kind = "missing (NaN)" if np.isnan(arr[i]).any() else "infinite"
        raise DataError(f"{what} {_row(i)}: the target is {kind}")
    return arr


def check_varies(arr: np.ndarray, what: str = "y") -> None:
    """Refuse a regression target with one value in every row: the network would learn a
    constant (and R2 is undefined), which is almost always the wrong column or a filter gone wrong."""
    if len(arr) < 2:
        return
    constant = np.flatnonzero(np.all(arr == arr[0], axis=0))
    if constant.size:
        j = int(constant[0])
        output = f" output {j}" if arr.shape[1] > 1 else ""
        raise DataError(f"{what}{output} is constant ({_plain(arr[0, j])!r} in all {len(arr)} rows): "
                        "a regressor needs a target that varies")


# --------------------------------------------------------------------------- target encoders


class ClassificationTarget:
    """Class labels <-> integer codes. Binary targets train one logit (a [n, 1] float tensor of
    0/1), more classes one logit per class (a [n] tensor of codes).

    Parameters
    ----------
    classes : ndarray of shape (n_classes,)
        The sorted distinct labels.
    """

    kind = "classification"
    losses = ("cross_entropy",)
    metric = "accuracy"

    def __init__(self, classes: np.ndarray):
        self.classes = classes

    @classmethod
    def fit(cls, y: np.ndarray) -> tuple["ClassificationTarget", np.ndarray]:
        """The labels of every row (validation rows too): (target, codes); a 2-D y or label sets
        give a `MultiLabelTarget` and its indicator matrix instead (archtune.data.multilabel)."""
        from archtune.data.multilabel import MultiLabelTarget, is_indicator

        if is_indicator(y) or (y.ndim == 1 and len(y) and isinstance(y[0], frozenset)):
            return MultiLabelTarget.fit(y)
        if y.dtype.kind == "f" and np.isfinite(y).all() and np.any(np.mod(y, 1) != 0):
            raise DataError("Unknown label type: y holds continuous values (e.g. "
                            f"{y[np.flatnonzero(np.mod(y, 1) != 0)[0]]!r}); use NeuralRegressor for a continuous target")
        classes, codes = encode_classes(y, "y")
        return cls(classes), codes

    def fit_scale(self, codes: np.ndarray, clamp: bool = False) -> "ClassificationTarget":
        return self

    @property
    def task(self) -> str:
        return "binary" if len(self.classes) == 2 else "multiclass"

    @property
    def n_outputs(self) -> int:
        return 1 if self.task == "binary" else len(self.classes)

    def encode(self, y: np.ndarray, what: str) -> np.ndarray:
        """Codes of labels seen in fit; an unseen label is a DataError."""
        y = plain_labels(np.asarray(y))
        known = set(self.classes.tolist())
        unknown = [c for c in (np.unique(y) if len(y) else []) if c not in known]
        if unknown:
            raise DataError(f"{what} has label {_plain(unknown[0])!r}, which does not occur in the training labels")
        return np.searchsorted(self.classes, y).astype("int64")

    def tensor(self, codes: np.ndarray) -> Any:
        import torch

        if self.task == "binary":
            return torch.from_numpy(codes.astype("float32")).reshape(-1, 1)
        return torch.from_numpy(codes)

    def stratify(self, codes: np.ndarray, n_val: int) -> np.ndarray | None:
        """The codes to stratify a validation split by, when every class can be in both parts."""
        counts = np.bincount(codes)
        if counts.min() >= 2 and n_val >= len(counts) and len(codes) - n_val >= len(counts):
            return codes
        return None

    def check_params(self, params: dict[str, Any]) -> None:
        """The task-specific parameters: class_weight against the labels; clamp_outputs is
        for regressors."""
        from archtune.errors import InvalidParameterError

        if params.get("clamp_outputs") is True:
            raise InvalidParameterError("clamp_outputs applies to regressors only (it clips predictions to the "
                                        "training target's range); got clamp_outputs=True on NeuralClassifier")
        self.check_class_weight(params.get("class_weight"))

    def check_class_weight(self, class_weight: Any) -> None:
        from archtune.checks import check_number
        from archtune.errors import InvalidParameterError

        if class_weight is None or (isinstance(class_weight, str) and class_weight == "balanced"):
            return
        if not isinstance(class_weight, dict):
            raise InvalidParameterError(f"class_weight must be None, 'balanced' or a dict {{label: weight}}; "
                                        f"got class_weight={class_weight!r}")
        known = set(self.classes.tolist())
        by_text = {str(c): c for c in known}
        for label, weight in class_weight.items():
            if label not in known and not (isinstance(label, str) and label in by_text):
                raise InvalidParameterError(f"class_weight has label {label!r}, which is not one of the classes "
                                            f"{sorted(known, key=str)}")
            check_number(f"class_weight[{label!r}]", weight, 0.0)

    def _class_weight_of(self, class_weight: dict[Any, Any], label: Any) -> float:
        """A class's weight in a dict keyed by its label, or by the label's text (the keys of a
        dict read from JSON, such as ``archtune tune --set 'class_weight={"0": 1, "1": 3}'``,
        are always strings); 1 for a class the dict leaves out."""
        if label in class_weight:
            return float(class_weight[label])
        return float(class_weight.get(str(label), 1.0))

    def loss_weights(self, codes: np.ndarray, class_weight: Any,
                     sample_weight: np.ndarray | None = None) -> tuple[float, ...] | None:
        """Per-class weights of the loss: "balanced" (n / (classes * count), rows counted by
        their ``sample_weight``, so that a weight of 2 counts as a duplicated row), a dict, or
        None."""
        if class_weight is None:
            return None
        if isinstance(class_weight, str):  # "balanced"
            counts = np.bincount(codes, weights=sample_weight, minlength=len(self.classes)).astype("float64")
            total = len(codes) if sample_weight is None else float(np.sum(sample_weight))
            smallest = 1.0 if sample_weight is None else float(np.min(sample_weight[sample_weight > 0]))
            weights = total / (len(self.classes) * np.maximum(counts, smallest))
        else:
            weights = np.array([self._class_weight_of(class_weight, c) for c in self.classes.tolist()])
        return tuple(float(w) for w in weights)

    def attributes(self) -> dict[str, Any]:
        """The estimator's fitted attributes that describe the target."""
        return {"classes_": self.classes}


class RegressionTarget:
    """Real targets, standardised for training with the training rows' mean and scale, and
    mapped back at prediction.

    Parameters
    ----------
    n_outputs : int
    one_d : bool
        y was 1-D: predictions are returned as shape (n_samples,).
    mean, scale : ndarray of shape (n_outputs,), optional
        Set by `fit_scale`.
    """

    kind = "regression"
    losses = ("mse", "mae", "huber", "quantile")
    metric = "r2"
    task = "regression"

    def __init__(self, n_outputs: int, one_d: bool, mean: np.ndarray | None = None,
                 scale: np.ndarray | None = None, low: np.ndarray | None = None, high: np.ndarray | None = None):
        self.n_outputs = n_outputs
        self.one_d = one_d
        self.mean = mean
        self.scale = scale
        self.low = low  # the training target's range: predictions are clipped to it when set
        self.high = high

    @classmethod
    def fit(cls, y: np.ndarray) -> tuple["RegressionTarget", np.ndarray]:
        values = regression_target(y, "y")
        check_varies(values, "y")
        return cls(values.shape[1], y.ndim == 1), values

    def fit_scale(self, values: np.ndarray, clamp: bool = False) -> "RegressionTarget":
        """The mean and scale of the training rows (and with ``clamp`` their range)."""
        scale = values.std(axis=0)
        return RegressionTarget(self.n_outputs, self.one_d, values.mean(axis=0), np.where(scale > 0, scale, 1.0),
                                values.min(axis=0) if clamp else None, values.max(axis=0) if clamp else None)

    def encode(self, y: np.ndarray, what: str) -> np.ndarray:
        out = regression_target(y, what)
        if out.shape[1] != self.n_outputs:
            raise DataError(f"{what} has {out.shape[1]} outputs but y has {self.n_outputs}")
        return out

    def tensor(self, values: np.ndarray) -> Any:
        import torch

        return torch.from_numpy(((values - self.mean) / self.scale).astype("float32"))

    def stratify(self, values: np.ndarray, n_val: int) -> None:
        return None

    def check_params(self, params: dict[str, Any]) -> None:
        """Parameters that only classifiers read are named errors on a regressor."""
        from archtune.errors import InvalidParameterError

        if params.get("class_weight") is not None:
            raise InvalidParameterError(
                f"class_weight applies to classifiers only; got class_weight={params['class_weight']!r} on "
                "NeuralRegressor")
        smoothing = params.get("label_smoothing")
        if not isinstance(smoothing, str) and smoothing:
            raise InvalidParameterError(
                f"label_smoothing applies to classifiers only; got label_smoothing={params['label_smoothing']!r} on "
                "NeuralRegressor")

    def loss_weights(self, values: np.ndarray, class_weight: Any, sample_weight: np.ndarray | None = None) -> None:
        return None

    def decode(self, outputs: np.ndarray) -> np.ndarray:
        """Network outputs (standardised) as predictions in the target's units and shape."""
        out = outputs * self.scale + self.mean
        if self.low is not None:
            out = np.clip(out, self.low, self.high)
        return out.ravel() if self.one_d else out

    def attributes(self) -> dict[str, Any]:
        return {"n_outputs_": self.n_outputs, "target_mean_": self.mean, "target_scale_": self.scale}


TARGETS: dict[str, type] = {"classification": ClassificationTarget, "regression": RegressionTarget}
