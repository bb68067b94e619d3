"""Knowledge distillation: train a small network to imitate a fitted model.

`distill(teacher, X, y)` follows Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a
Neural Network": the student learns from the true labels and from the teacher's outputs
softened by a temperature (the loss: `archtune.shrink.distill_loss`). Optionally it imitates the
teacher on more rows than the labelled ones: rows the user gives without labels, or synthetic
rows made by swap noise (`archtune.shrink.augment`), as Bucila et al. (2006, "Model
Compression") train their students on teacher-labelled synthetic data.

The student trains through archtune's one fit path (`archtune.fitting`: prepare -> train ->
finish), so its validation split, early stopping, schedules, history and bundle are those of
an ordinary fit. The teacher's outputs follow the rows through the validation split by the
positions `prepare` records (``Prepared.train_rows`` / ``val_rows``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from archtune.custom_loss import describe as describe_loss, is_custom
from archtune.checks import check_choice, check_number
from archtune.doctor.lr_finder import resolve_learning_rate
from archtune.data.multilabel import is_multilabel, is_multilabel_target
from archtune.data.table import Table
from archtune.errors import InvalidParameterError
from archtune.estimators import NeuralClassifier, NeuralRegressor
from archtune.fitting import calibration, finish, prepare, set_fitted, train, transform_rows
from archtune.prepared import Prepared
from archtune.shrink.augment import AUGMENTATIONS, swap_noise
from archtune.shrink.distill_loss import DistillationTask, targets
from archtune.shrink.teacher import describe, label_logits, teacher_logits, teacher_task, teacher_values
from archtune.train import Callback

# The default student: two hidden layers of 64 units, without the piecewise-linear numeric
# embedding. The embedding (48 bins x 16 values per numeric column) holds most of the default
# network's parameters and a good share of its prediction time, which is what distillation
# exists to save; the rest of the default recipe (RealMLP's training) is kept.
DEFAULT_STUDENT = {"hidden_layers": 2, "units": 64, "numeric_embedding": None}


def default_student(task: str, random_state: int | None = None) -> NeuralClassifier | NeuralRegressor:
    """An unfitted `NeuralClassifier`/`NeuralRegressor` with `DEFAULT_STUDENT`'s parameters."""
    cls = NeuralClassifier if task == "classification" else NeuralRegressor
    return cls(**DEFAULT_STUDENT, random_state=random_state)


def distill(teacher: Any, X: Any, y: Any, student: NeuralClassifier | NeuralRegressor | None = None, *,
            temperature: float = 2.0, alpha: float = 0.5, X_unlabeled: Any = None, augment: str | None = None,
            augment_size: int = 1, swap_probability: float = 0.15, sample_weight: Any = None,
            validation_data: tuple[Any, ...] | None = None, random_state: int | None = None,
            callbacks: Sequence[Callback] | None = None) -> NeuralClassifier | NeuralRegressor:
    """Train ``student`` to imitate ``teacher`` on (X, y) (knowledge distillation).

    Classification minimises, per row (Hinton et al. 2015),
    ``alpha * CE(y, s) + (1 - alpha) * T^2 * KL(softmax(t / T) || softmax(s / T))``: the
    student's own cross-entropy on the true label (with its label smoothing and class weights)
    and the divergence from the teacher's logits t softened by the temperature T, where s are
    the student's logits. A teacher that gives probabilities has its log-probabilities as
    logits (exact under a softmax). Regression minimises
    ``alpha * loss(y, s) + (1 - alpha) * loss(teacher's prediction, s)`` with the student's
    loss (mse, mae or huber) in its standardised target space.

    Parameters
    ----------
    teacher : fitted model
        Classification: ``predict_proba`` and ``classes_`` (an archtune NeuralClassifier,
        AutoNeuralClassifier, a loaded ensemble bundle, any scikit-learn classifier, LightGBM).
        Regression: ``predict``. It is called on X as given (and on X_unlabeled, the
        augmented rows and validation_data's X), never refitted.
    X : table or array of shape (n_samples, n_features)
        What the student's ``fit`` accepts.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        The true labels (the student's classes are theirs, and must be the teacher's).
    student : NeuralClassifier or NeuralRegressor, optional
        Trained in place and returned (any previous fit is replaced). Default
        (`default_student`): two hidden layers of 64 units without numeric embeddings.
    temperature : float, default 2.0
        T > 0: how much the teacher's and the student's distributions are softened (classification).
    alpha : float in [0, 1], default 0.5
        Weight of the true labels; ``1 - alpha`` is the teacher's. ``alpha=1`` is ordinary
        training (identical to ``student.fit(X, y)``), ``alpha=0`` pure imitation.
    X_unlabeled : table or array of shape (n_unlabeled, n_features), optional
        More rows, without labels, for the student to imitate the teacher on (their weight
        in the hard-label term is 0). Training rows only: validation stays on labelled rows.
    augment : {None, "swap"}
        "swap": ``augment_size`` copies of the training rows with swap noise (each cell
        replaced with probability ``swap_probability`` by the same column's value in a random
        training row; `archtune.shrink.augment`), labelled by the teacher only. Tables only.
    augment_size : int >= 1, default 1
        Synthetic rows as a multiple of the training rows.
    swap_probability : float in (0, 1), default 0.15
    sample_weight : array-like of shape (n_samples,), optional
        Row weights of X, as in ``fit``; unlabeled and synthetic rows get the mean weight.
    validation_data : (X_val, y_val) or (X_val, y_val, sample_weight_val), optional
        Early-stopping rows instead of a split of (X, y); the validation loss is the
        distillation loss (the teacher is called on X_val), the metric the ordinary one.
    random_state : int, optional
        Sets the student's ``random_state``, which seeds everything random here: the
        validation split, the student's initial weights, batch order and dropout, and the
        swap-noise rows. None keeps the student's own; when that is None too (as for the
        default student), a fresh seed is drawn from NumPy's global generator in every call,
        so each call trains another student: pass an integer to repeat one.
    callbacks : list of archtune.train.Callback, optional

    Returns
    -------
    student : fitted NeuralClassifier or NeuralRegressor
        An ordinary estimator (predict, ``history_``, ``archtune.save``) with ``lineage_``
        (newest step first): ``{"step": "distilled", "from": <teacher description>,
        "temperature": T, "alpha": a, "augment": ..., "rows": {"labelled", "unlabeled",
        "augmented"}}`` (and ``"teacher_lineage"``: the teacher's own ``lineage_``, when it has
        one), then what the fit recorded about its starting weights, if anything.

    Raises
    ------
    InvalidParameterError
        A parameter out of range; a teacher without ``predict_proba``/``predict``; a teacher
        of the other task than the student (a regressor teacher for a classifier student);
        the teacher's classes not those of y; X_unlabeled or augment with sparse X; a
        multi-label teacher with a single-label y or the reverse (archtune.data.multilabel); a
        student with loss="quantile" (a quantile teacher teaches its median to a point student).
    DataError
        X, y, X_unlabeled or validation_data cannot be used (named), as in ``fit``.

    Notes
    -----
    Reproducibility: the same teacher, rows, parameters and seed give the same student
    (weights, ``history_`` but for its ``seconds`` column, which is measured time) whatever
    the session drew from NumPy's or torch's global generators before. What the seed does not
    fix: the teacher's outputs are taken as the teacher gives them (a teacher whose
    predictions vary between calls passes that on); and the student's training steps are
    float sums that torch may split among its threads (`archtune.train.threads`: one thread
    unless the steps are large, at most the idle cores, i.e. the load average), so another
    thread count can change their last bits and, through early stopping, the epoch kept;
    ``torch.set_num_threads(n)`` fixes it (archtune keeps a count the user set). On a GPU,
    PyTorch's non-deterministic kernels add their own differences.
    """
    temperature = check_number("temperature", temperature, 0.0, low_open=True)
    alpha = check_number("alpha", alpha, 0.0, 1.0)
    check_choice("augment", augment, (None, *AUGMENTATIONS))
    augment_size = check_number("augment_size", augment_size, 1, integer=True)
    swap_probability = check_number("swap_probability", swap_probability, 0.0, 1.0, low_open=True, high_open=True)
    task = teacher_task(teacher)
    # A multi-label teacher: archtune's, or scikit-learn's MultiOutputClassifier (a classes_ per label).
    multi = is_multilabel(teacher) or isinstance(getattr(teacher, "classes_", None), list)
    if task == "classification" and multi != is_multilabel_target(y):
        raise InvalidParameterError(
            f"teacher {describe(teacher)} is {'' if multi else 'not '}multi-label but y is "
            f"{'' if is_multilabel_target(y) else 'not '}(a 0/1 matrix or label sets): a student learns the "
            "teacher's task on the same labels")
    if student is None:
        student = default_student(task, random_state)
    elif not isinstance(student, (NeuralClassifier, NeuralRegressor)):
        raise InvalidParameterError(f"student must be a NeuralClassifier or NeuralRegressor; got a "
                                    f"{type(student).__name__}")
    if student.target_kind != task:
        raise InvalidParameterError(f"teacher {describe(teacher)} is a {_kind(task)} but the student is a "
                                    f"{type(student).__name__}; distil a {_kind(student.target_kind)} into a "
                                    f"{type(student).__name__}, or a {_kind(task)} into a "
                                    f"{'NeuralClassifier' if task == 'classification' else 'NeuralRegressor'}")
    if is_custom(student.get_params().get("loss")):
        raise InvalidParameterError(f"a student with loss={describe_loss(student.get_params()['loss'])} cannot be "
                                    "distilled: distillation trains on its own loss (the teacher's soft targets and "
                                    "the labels); give the student a loss archtune names, such as the default 'auto'")
    if student.get_params().get("loss") == "quantile":
        raise InvalidParameterError("a student with loss='quantile' cannot be distilled: the distillation loss "
                                    "matches the teacher's point predictions, not quantiles; distil into a student "
                                    "with loss mse, mae or huber (a quantile teacher teaches its median)")
    if random_state is not None:
        student.set_params(random_state=random_state)

    prepared = prepare(student, X, y, validation_data, sample_weight=sample_weight)
    outputs = _teacher_outputs(teacher, prepared)
    taught = outputs(X)  # every row of X, once: the split's two parts index it
    taught_train = torch.from_numpy(taught[prepared.train_rows])
    extra_X, extra_taught, counts = _extra_rows(teacher, prepared, X, X_unlabeled, augment, augment_size,
                                                swap_probability, outputs, random_state)
    y_train = targets(prepared.y_train, torch.ones(len(prepared.y_train)), taught_train)
    y_val = None
    if prepared.y_val is not None:
        taught_val = torch.from_numpy((taught if validation_data is None else outputs(validation_data[0]))
                                      [prepared.val_rows])
        y_val = targets(prepared.y_val, torch.ones(len(prepared.y_val)), taught_val)
    fields = {f.name: getattr(prepared.task, f.name) for f in dataclasses.fields(prepared.task)}
    distillation = DistillationTask(**fields, temperature=float(temperature), alpha=float(alpha),
                                    unlabeled=extra_X is not None)
    if extra_X is not None:
        n_extra = len(extra_X)
        hard = torch.zeros((n_extra, *prepared.y_train.shape[1:]), dtype=prepared.y_train.dtype)
        y_train = torch.cat([y_train, targets(hard, torch.zeros(n_extra), extra_taught)])
        w_train = prepared.w_train
        if w_train is not None:
            w_train = torch.cat([w_train, torch.full((n_extra,), float(w_train.mean()), dtype=w_train.dtype)])
        prepared = dataclasses.replace(prepared, X_train=torch.cat([prepared.X_train, extra_X]),
                                       w_train=w_train).for_estimator(student)  # its batches count the new rows
    labels_val = prepared.y_val  # the validation rows' own targets: the student's interval calibration
    prepared = dataclasses.replace(prepared, y_train=y_train, y_val=y_val, task=distillation)
    prepared = resolve_learning_rate(prepared)
    set_fitted(student, {"lineage_": None})  # an earlier fit's record must not pass for this one's
    finish(student, prepared, train(prepared, list(callbacks or [])))
    set_fitted(student, {"conformal_": calibration(dataclasses.replace(prepared, y_val=labels_val), student.module_)})
    entry: dict[str, Any] = {"step": "distilled", "from": describe(teacher), "temperature": float(temperature),
                             "alpha": float(alpha), "augment": augment, "rows": counts}
    if getattr(teacher, "lineage_", None):
        entry["teacher_lineage"] = [dict(step) for step in teacher.lineage_]
    # This step first, then where the starting weights came from (what the fit recorded, if anything).
    return set_fitted(student, {"lineage_": [entry, *(getattr(student, "lineage_", None) or [])]})


def _kind(task: str) -> str:
    return "classifier" if task == "classification" else "regressor"


def _teacher_outputs(teacher: Any, prepared: Prepared) -> Any:
    """``outputs(rows) -> ndarray [n, k]`` float32: the teacher's logits (classification) or
    its predictions standardised as the student's targets (regression)."""
    target = prepared.fitted.target
    if prepared.task.task == "regression":
        def values(rows: Any) -> np.ndarray:
            return target.tensor(teacher_values(teacher, rows, prepared.task.n_outputs)).numpy()

        return values
    classes = target.attributes()["classes_"]
    if prepared.task.task == "multilabel":  # one Bernoulli logit per label
        return lambda rows: label_logits(teacher, rows, classes)
    return lambda rows: teacher_logits(teacher, rows, classes)


def _extra_rows(teacher: Any, prepared: Prepared, X: Any, X_unlabeled: Any, augment: str | None,
                augment_size: int, swap_probability: float, outputs: Any,
                random_state: int | None) -> tuple[torch.Tensor | None, torch.Tensor | None, dict[str, int]]:
    """The rows the student imitates the teacher on beyond the labelled ones: their network
    input, the teacher's outputs on them, and the counts for the lineage."""
    counts = {"labelled": len(prepared.X_train), "unlabeled": 0, "augmented": 0}
    tables = []
    if X_unlabeled is not None:
        tables.append(("X_unlabeled", X_unlabeled))
        counts["unlabeled"] = len(X_unlabeled)
    if augment is not None:
        rng = np.random.default_rng(prepared.seed if random_state is None else random_state)
        synthetic = swap_noise(_rows(X, prepared.train_rows), augment_size, swap_probability, rng)
        tables.append(("augmented rows", synthetic))
        counts["augmented"] = len(synthetic)
    if not tables:
        return None, None, counts
    if not isinstance(prepared.X_train, torch.Tensor):
        raise InvalidParameterError("X_unlabeled and augment need dense X; a scipy sparse X is not supported")
    fitted = prepared.fitted
    inputs = [transform_rows(fitted.preprocessor, Table.later(fitted.inputs, rows, what), what)
              for what, rows in tables]
    taught = [torch.from_numpy(outputs(rows)) for _, rows in tables]
    return torch.cat(inputs).to(prepared.X_train.dtype), torch.cat(taught), counts


def _rows(X: Any, positions: np.ndarray) -> Any:
    """The rows of X at ``positions``, in X's own type (a DataFrame or an array)."""
    if isinstance(X, pd.DataFrame):
        return X.iloc[positions]
    arr = np.asarray(X) if not hasattr(X, "iloc") else X.to_numpy()
    if arr.ndim != 2:
        raise InvalidParameterError(f"augment='swap' needs a table (a DataFrame or a 2-D array); got X of shape "
                                    f"{arr.shape}")
    return arr[positions]


__all__ = ["DEFAULT_STUDENT", "default_student", "distill"]
