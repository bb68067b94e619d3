"""Multi-label targets: several yes/no labels per row, one sigmoid output each.

A classifier's y is multi-label when it is a 2-D 0/1 indicator matrix (n_samples, n_labels)
with at least 2 columns (scikit-learn's ``type_of_target`` "multilabel-indicator"), or a
sequence of label sets (each row a set, or rows of different lengths: scikit-learn's
`MultiLabelBinarizer` input). The network then has one logit per label and trains binary
cross-entropy on each (as scikit-learn's `MLPClassifier` does for multilabel targets).

``classes_`` holds the label names: the sorted distinct labels of label sets, or the column
indices 0..n_labels-1 of an indicator matrix (as `MLPClassifier`). ``predict`` returns the
0/1 indicator matrix (threshold 0.5 on each label's probability), ``predict_proba`` the
(n_samples, n_labels) matrix of each label's probability, like `MLPClassifier` and unlike
`MultiOutputClassifier` (a list of n_labels (n_samples, 2) arrays).

The validation metric ("accuracy" in the history, ``val_accuracy``) is the subset accuracy,
the share of rows whose every label is right: scikit-learn's ``accuracy_score`` and
``ClassifierMixin.score`` on multilabel targets, so the history, ``score`` and a search's
default scorer agree.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from archtune.errors import DataError

SET_TYPES = (set, frozenset)


def label_sets(y: Any) -> np.ndarray | None:
    """y as a 1-D object array of frozensets when it is a sequence of label sets, else None.

    Label sets are rows that are sets, or list/tuple rows of different lengths (which NumPy
    cannot make a matrix of); list rows of one length are a matrix, as scikit-learn reads
    them (``[[0, 1], [1, 0]]`` is an indicator matrix)."""
    if isinstance(y, np.ndarray):
        if y.dtype != object or y.ndim != 1:
            return None
    elif not isinstance(y, (list, tuple, pd.Series)):
        return None
    rows = list(y.tolist() if isinstance(y, (pd.Series, np.ndarray)) else y)
    if not rows:
        return None
    if all(isinstance(r, SET_TYPES) for r in rows):
        pass
    elif all(isinstance(r, (list, tuple, set, frozenset)) for r in rows):
        if len({len(r) for r in rows}) == 1 and not any(isinstance(r, SET_TYPES) for r in rows):
            return None  # a rectangular list of lists: a matrix
    else:
        return None
    out = np.empty(len(rows), dtype=object)
    out[:] = [frozenset(r) for r in rows]
    return out


def is_indicator(y: np.ndarray) -> bool:
    """A 2-D y of at least 2 columns: a classifier reads it as a multi-label indicator matrix."""
    return y.ndim == 2 and y.shape[1] >= 2


def is_multilabel(model: Any) -> bool:
    """Whether a fitted classifier (network, or anything with ``target_encoder_``) is multi-label."""
    return getattr(getattr(model, "target_encoder_", None), "task", None) == "multilabel"


def is_multilabel_target(y: Any) -> bool:
    """Whether a classifier would read y as multi-label: label sets, or 2-D of >= 2 columns."""
    return label_sets(y) is not None or (np.ndim(y) == 2 and np.shape(y)[1] >= 2)


def refuse_multilabel(what: str, y: Any = None, models: Any = ()) -> None:
    """Refuse, naming ``what``, a step that is for one label per row: a multi-label target y
    (classification) or a multi-label model among ``models``.

    Raises
    ------
    InvalidParameterError
    """
    from archtune.errors import InvalidParameterError

    if (y is not None and is_multilabel_target(y)) or any(is_multilabel(m) for m in models):
        raise InvalidParameterError(f"{what} is not supported for multi-label classification (one sigmoid per "
                                    "label); train, prune, fine-tune, save and export the network itself")


def indicator_matrix(y: np.ndarray, what: str = "y") -> np.ndarray:
    """A 2-D 0/1 target as an int64 matrix; missing or other values are a DataError naming
    the row and column."""
    values = y
    if values.dtype == object:
        values = pd.DataFrame(values).infer_objects().to_numpy()
    if values.dtype.kind == "b":
        return values.astype("int64")
    if values.dtype.kind not in "iuf":
        bad = next((i, j) for i, j in np.ndindex(*values.shape) if values[i, j] not in (0, 1))
        value = values[bad].item() if isinstance(values[bad], np.generic) else values[bad]
        raise DataError(f"{what} row {bad[0] + 1}, column {bad[1]}: {value!r} is not 0 or 1; a 2-D classifier "
                        "target is a multi-label indicator matrix (n_samples, n_labels) of 0/1 values "
                        "(for label sets, give each row as a set, e.g. {'a', 'b'}: rows of one length are read "
                        "as a matrix)")
    good = (values == 0) | (values == 1)
    if not good.all():
        i, j = (int(k[0]) for k in np.nonzero(~good))
        value = values[i, j].item() if isinstance(values[i, j], np.generic) else values[i, j]
        raise DataError(f"{what} row {i + 1}, column {j}: {value!r} is not 0 or 1; a 2-D classifier target is a "
                        "multi-label indicator matrix (n_samples, n_labels) of 0/1 values (multiclass-multioutput "
                        "targets are not supported)")
    return values.astype("int64")


class MultiLabelTarget:
    """Label names <-> a 0/1 indicator matrix, trained as one logit per label (a [n, n_labels]
    float tensor of 0/1).

    Parameters
    ----------
    classes : ndarray of shape (n_labels,)
        The label names (column indices for an indicator matrix).
    from_sets : bool
        y was given as label sets: later targets are label sets too (an indicator matrix is
        accepted as well).
    """

    kind = "classification"
    losses = ("cross_entropy",)
    metric = "accuracy"
    task = "multilabel"

    def __init__(self, classes: np.ndarray, from_sets: bool = False):
        self.classes = np.asarray(classes)
        self.from_sets = from_sets

    @classmethod
    def fit(cls, y: np.ndarray) -> tuple["MultiLabelTarget", np.ndarray]:
        """(target, indicator matrix) of label sets (1-D object array of frozensets) or of a 2-D
        0/1 matrix."""
        if y.ndim == 1:
            from sklearn.preprocessing import MultiLabelBinarizer

            try:
                binarizer = MultiLabelBinarizer().fit(y)
            except TypeError:
                raise DataError("y: the label sets mix label types; use one type for all labels") from None
            target, codes = cls(binarizer.classes_, from_sets=True), binarizer.transform(y).astype("int64")
        else:
            codes = indicator_matrix(y, "y")
            target = cls(np.arange(codes.shape[1]))
        if len(target.classes) < 2:
            raise DataError(f"y holds {len(target.classes)} label(s): a multi-label classifier needs at least 2 "
                            "(for one yes/no label pass a 1-D target)")
        return target, codes

    @property
    def n_outputs(self) -> int:
        return len(self.classes)

    def fit_scale(self, codes: np.ndarray, clamp: bool = False) -> "MultiLabelTarget":
        return self

    def encode(self, y: np.ndarray, what: str) -> np.ndarray:
        """The indicator matrix of later targets (label sets or a 0/1 matrix); an unseen label or
        another number of columns is a DataError."""
        if y.ndim == 1 and (len(y) == 0 or isinstance(y[0], frozenset)):
            known = {c: j for j, c in enumerate(self.classes.tolist())}
            out = np.zeros((len(y), len(known)), dtype="int64")
            for i, labels in enumerate(y):
                for label in labels:
                    if label not in known:
                        raise DataError(f"{what} row {i + 1} has label {label!r}, which does not occur in the "
                                        "training labels")
                    out[i, known[label]] = 1
            return out
        if y.ndim != 2:
            raise DataError(f"{what} must be a 0/1 indicator matrix of {self.n_outputs} columns or a list of label "
                            f"sets (the classifier is multi-label); got shape {y.shape}")
        if y.shape[1] != self.n_outputs:
            raise DataError(f"{what} has {y.shape[1]} labels (columns) but y has {self.n_outputs}")
        return indicator_matrix(y, what)

    def tensor(self, codes: np.ndarray) -> Any:
        import torch

        return torch.from_numpy(codes.astype("float32")).reshape(len(codes), -1)

    def stratify(self, codes: np.ndarray, n_val: int) -> None:
        return None  # label combinations are too many to stratify by

    def check_params(self, params: dict[str, Any]) -> None:
        """clamp_outputs is for regressors; class_weight weighs classes of one label, which a
        multi-label target does not have."""
        from archtune.errors import InvalidParameterError

        if params.get("clamp_outputs") is True:
            raise InvalidParameterError("clamp_outputs applies to regressors only (it clips predictions to the "
                                        "training target's range); got clamp_outputs=True on NeuralClassifier")
        if params.get("class_weight") is not None:
            raise InvalidParameterError(
                f"class_weight is not supported for multi-label targets (y has {self.n_outputs} labels); got "
                f"class_weight={params['class_weight']!r}: weight rows with sample_weight instead")

    def loss_weights(self, codes: np.ndarray, class_weight: Any, sample_weight: np.ndarray | None = None) -> None:
        return None

    def attributes(self) -> dict[str, Any]:
        return {"classes_": self.classes}


__all__ = ["MultiLabelTarget", "indicator_matrix", "is_indicator", "is_multilabel", "is_multilabel_target",
           "label_sets", "refuse_multilabel"]
