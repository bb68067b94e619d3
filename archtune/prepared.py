"""What a fit knows once its data is prepared: `TaskSpec` (loss, metric, outputs, divergence
limit, network builder), `FittedData` (what the estimator carries afterwards), `Prepared` (the
tensors, configs and specs `archtune.fitting.train` consumes) and `TrainResult`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from archtune.config import ModelConfig, TrainConfig
from archtune.data.inputs import FittedInputs
from archtune.data.preprocess import Preprocessor
from archtune.data.target import TARGETS
from archtune.models import InputSpec, TabularNetwork, build_model
from archtune.parameters import check_params, recipe_params
from archtune.train.batches import Rows
from archtune.train.losses import (constant_prediction_loss, make_loss, make_member_loss, make_member_metric,
                                   make_metric, make_padded_member_loss)
from archtune.custom_loss import describe, is_custom, make_custom_loss
from archtune.errors import InvalidParameterError
from archtune.quantiles import make_pinball_loss, make_point_metric
from archtune.transfer.copy import CopyReport, copy_matching
from archtune.transfer.freeze import FineTuning
from archtune.transfer.source import Source


DIVERGENCE_FACTOR = 100  # a loss this many times a constant prediction's has exploded


@dataclass(frozen=True)
class TaskSpec:
    """The task a network is trained for: its loss, metric, outputs and divergence limit.

    task : "binary", "multiclass", "multilabel" or "regression"
    n_outputs : int
        Width of the output layer (1 for binary classification, one per label for multi-label).
    loss : str
        cross_entropy, mse, mae, huber or quantile.
    metric_name : str
        "accuracy" or "r2": the validation metric in the history (``val_<metric_name>``).
    class_weights : tuple of float, optional
        Per-class weights of a weighted cross-entropy.
    quantiles : tuple of float
        loss="quantile": the levels of the pinball loss (archtune.quantiles); the network has
        ``n_outputs * len(quantiles)`` outputs and the metric reads the point prediction.
    """

    task: str
    n_outputs: int
    loss: str
    metric_name: str
    class_weights: tuple[float, ...] | None = None
    label_smoothing: float = 0.0
    quantiles: tuple[float, ...] = ()

    def _weights(self) -> torch.Tensor | None:
        return None if self.class_weights is None else torch.tensor(self.class_weights, dtype=torch.float32)

    def loss_fn(self, device: torch.device | str = "cpu") -> Any:
        """``loss(outputs, targets) -> scalar``."""
        if is_custom(self.loss):  # a user's callable: the class weights are theirs to apply
            if self.class_weights is not None:
                raise InvalidParameterError(f"class_weight applies to archtune's cross-entropy; with "
                                            f"loss={describe(self.loss)} weigh the classes in the callable (it gets "
                                            "the class codes) and leave class_weight=None")
            return make_custom_loss(self.loss)
        if self.loss == "quantile":
            return make_pinball_loss(self.quantiles, device)
        return make_loss(self.task, self.loss, self._weights(), device, self.label_smoothing)

    def member_loss_fn(self, device: torch.device | str = "cpu") -> Any:
        """``loss(outputs [K, n, o], targets) -> [K]``: one loss per member of a cohort."""
        return make_member_loss(self.task, self.loss, self._weights(), device, self.label_smoothing)

    def padded_member_loss_fn(self, device: torch.device | str = "cpu") -> Any:
        """``loss(outputs [K, B, o], targets [K, B, ...], weight [K, B]) -> [K]``: members that
        each train on their own rows (archtune.train.member_rows)."""
        return make_padded_member_loss(self.task, self.loss, self._weights(), device, self.label_smoothing)

    def metric_fn(self) -> Any:
        if self.quantiles:
            return make_point_metric(make_metric(self.task), self.quantiles)
        return make_metric(self.task)

    def member_metric_fn(self) -> Any:
        return make_member_metric(self.task)

    @property
    def constant_loss(self) -> float:
        """Roughly the loss of a constant prediction: the yardstick of divergence."""
        return float(constant_prediction_loss(self.task, self.n_outputs))

    @property
    def divergence_limit(self) -> float | None:
        """The training loss that counts as exploded; None (only a non-finite loss does) for a
        user's callable, whose scale archtune cannot know."""
        return None if is_custom(self.loss) else DIVERGENCE_FACTOR * self.constant_loss

    def build_network(self, model_config: ModelConfig, input_spec: InputSpec, seed: int) -> TabularNetwork:
        """The initial network: the same seed gives the same weights, alone or in a cohort."""
        generator = torch.Generator().manual_seed(seed)
        return build_model(model_config, input_spec, self.n_outputs, self.task, generator)


@dataclass(frozen=True)
class FittedData:
    """What the data taught a fit, carried by the estimator afterwards: the preprocessor, the
    target encoder, and what `FittedInputs` checks new X against."""

    preprocessor: Preprocessor
    target: Any  # a ClassificationTarget or RegressionTarget
    inputs: FittedInputs

    def attributes(self) -> dict[str, Any]:
        """Fitted attribute names and values; None removes an attribute a previous fit left."""
        inputs = self.inputs
        return {
            "preprocessor_": self.preprocessor,
            "target_encoder_": self.target,
            **self.target.attributes(),
            "n_features_in_": inputs.n_features,
            "feature_names_in_": (None if inputs.feature_names is None
                                  else np.asarray(inputs.feature_names, dtype=object)),
            "image_shape_": tuple(inputs.image_shape) or None,
            "series_shape_": tuple(inputs.series_shape) or None,
        }


@dataclass(frozen=True)
class Prepared:
    """Tensors, configs and fitted data: everything a trainer needs, and nothing it changes."""

    X_train: Rows  # a dense tensor, or SparseRows for scipy sparse input (densified per batch)
    y_train: torch.Tensor
    X_val: Rows | None
    y_val: torch.Tensor | None
    targets_train: np.ndarray
    seed: int
    model_config: ModelConfig
    train_config: TrainConfig
    input_spec: InputSpec
    device: torch.device
    task: TaskSpec
    fitted: FittedData
    auto_lr: bool = False
    verbose: int = 0
    owner: str = "estimator"
    tabular: bool = True  # whether the default recipe applies (see recipe_params)
    wide: bool = False  # too many numeric columns for default numeric embeddings (see recipe_params)
    lr_finder: Any = None  # learning_rate="auto": the finder's result (LRFinderResult)
    # Row weights of the training and validation rows (None: unweighted, or all equal).
    w_train: torch.Tensor | None = None
    w_val: torch.Tensor | None = None
    # A fit that starts from a trained network (archtune.transfer): the network, and how to fine-tune it.
    source: Source | None = None
    fine_tuning: FineTuning = field(default_factory=FineTuning)
    # Where the training and validation rows came from: positions in X (validation rows: in
    # validation_data's X when it was given; None without validation rows), so that values
    # computed per row of X, such as a teacher's outputs (archtune.shrink.distill), can follow them.
    train_rows: np.ndarray | None = None
    val_rows: np.ndarray | None = None

    @property
    def spec(self) -> InputSpec:
        return self.input_spec

    def build_network(self) -> TabularNetwork:
        """The initial network: built from the seed, then (with a source) the source's
        weights copied in where they fit."""
        return self.initial_network()[0]

    def initial_network(self) -> tuple[TabularNetwork, CopyReport | None]:
        """The initial network and, with a source, what was copied into it."""
        module = self.task.build_network(self.model_config, self.input_spec, self.seed)
        if self.source is None:
            return module, None
        src = self.source
        # The output layer is the source's only for the same classification with the same classes.
        classes = getattr(self.fitted.target, "classes", None)
        keep_head = (src.task == self.task.task and src.classes is not None and classes is not None
                     and tuple(src.classes) == tuple(classes.tolist()))
        return module, copy_matching(src.module, module, keep_head, src.origin)

    def with_learning_rate(self, rate: float, finder: Any = None) -> "Prepared":
        """The same fit at ``rate``; ``finder`` is the learning-rate finder's result that chose
        it (kept on the fitted estimator as ``lr_finder_``)."""
        return dataclasses.replace(self, train_config=dataclasses.replace(self.train_config, learning_rate=rate),
                                   auto_lr=False, lr_finder=finder)

    def for_estimator(self, estimator: Any) -> "Prepared":
        """The same data prepared for another estimator of a cohort: its own model and training
        configs (validated), the data-derived parts and the seed shared."""
        check_params(estimator)
        params = recipe_params(estimator, self.tabular, self.wide)
        # A fit from a source keeps the source's architecture.
        model_config = self.model_config if self.source is not None else dataclasses.replace(
            ModelConfig.from_params(params), wide=self.model_config.wide, image_shape=self.model_config.image_shape,
            series_shape=self.model_config.series_shape)
        train_config = TrainConfig.from_params(params, len(self.X_train), self.seed,
                                               TARGETS[estimator.target_kind].losses)
        return dataclasses.replace(self, model_config=model_config, train_config=train_config,
                                   fine_tuning=FineTuning.from_params(params, self.source),
                                   auto_lr=params["learning_rate"] == "auto", verbose=int(params["verbose"]),
                                   task=dataclasses.replace(self.task, loss=train_config.loss,
                                                            label_smoothing=train_config.label_smoothing))


@dataclass
class TrainResult:
    """A trained network, its history (one dict per epoch) and its best epoch."""

    module: torch.nn.Module
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    report: CopyReport | None = None  # started from a source: what was copied
    lineage: list[dict[str, Any]] = field(default_factory=list)  # where the starting weights came from
