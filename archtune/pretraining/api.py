"""``archtune.pretrain(X, ...)``: pretraining from estimator parameters or an estimator."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archtune.pretraining.result import Pretrained
from archtune.pretraining.run import PRETRAIN_EPOCHS, check_estimator
from archtune.pretraining.run import pretrain as pretrain_with
from archtune.train.callbacks import Callback


def pretrain(X: Any, *, estimator: Any = None, pretext: str = "auto", pretrain_epochs: int = PRETRAIN_EPOCHS,
             corruption_rate: float | None = None, predict_mask: bool | None = None, mask_weight: float | None = None,
             callbacks: Sequence[Callback] = (), **params: Any) -> Pretrained:
    """Self-supervised pretraining on unlabeled rows; returns a `Pretrained` network.

    Parameters
    ----------
    X : table, dict of arrays, or image array (N x C x H x W)
        Unlabeled rows.
    estimator : NeuralClassifier or NeuralRegressor, optional
        Its parameters describe the network and its training (see
        `archtune.pretraining.run.pretrain`); it is not changed. Default: ``NeuralClassifier()``.
    pretext : {"auto", "masked_features", "rotation"}
        Masked-feature reconstruction (VIME with SCARF's swap noise) for tables, rotation
        prediction (RotNet) for images; "auto" picks rotation for images with arch="cnn".
    pretrain_epochs : int
        The most epochs (early stopping on a holdout of the rows may stop sooner).
    corruption_rate, predict_mask, mask_weight : optional
        Settings of masked features (defaults 0.3, True, 2.0; see archtune.pretraining.tasks).
    callbacks : sequence of Callback
    **params
        Estimator parameters (``arch="cnn"``, ``hidden_layers=3``, ``random_state=0``, ...),
        set on a copy of ``estimator``. ``random_state`` seeds everything random here (the
        holdout, the initial weights, batch order, dropout and the pretext's noise); None (the
        default) draws a fresh seed from NumPy's global generator in every call, so each call
        pretrains another network: pass an integer to repeat one.

    Returns
    -------
    Pretrained
        ``module_``, ``preprocessor_``, ``history_`` (``phase`` = "pretrain"), ... and
        ``to_source()``, the `Source` a fit starts from.

    Raises
    ------
    InvalidParameterError, DataError, TrainingDivergedError

    Notes
    -----
    Reproducibility: the same rows, parameters and integer ``random_state`` give the same
    network and ``history_`` (but for its ``seconds`` column, which is measured time), whatever
    the session drew from NumPy's or torch's global generators before. The training steps
    are float sums that torch may split among its threads (`archtune.train.threads`: one
    thread unless the steps are large, at most the idle cores, i.e. the load average), so
    another thread count can change their last bits and, through early stopping, the epoch
    kept; ``torch.set_num_threads(n)`` fixes it (archtune keeps a count the user set). On a
    GPU, PyTorch's non-deterministic kernels add their own differences.

    Examples
    --------
    >>> import archtune
    >>> pretrained = archtune.pretrain(X_unlabeled, pretrain_epochs=20, random_state=0)  # doctest: +SKIP
    >>> archtune.pretrain(images, arch="cnn", conv_blocks=2)  # rotation prediction  # doctest: +SKIP
    """
    from sklearn.base import clone

    from archtune.estimators import NeuralClassifier

    estimator = NeuralClassifier() if estimator is None else clone(check_estimator(estimator))
    if params:
        estimator.set_params(**params)
    settings = {name: value for name, value in (("corruption_rate", corruption_rate), ("predict_mask", predict_mask),
                                                ("mask_weight", mask_weight)) if value is not None}
    return pretrain_with(X, estimator, pretext=pretext, pretrain_epochs=pretrain_epochs, callbacks=callbacks,
                         **settings)


__all__ = ["pretrain"]
