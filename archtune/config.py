"""Frozen descriptions of a network (`ModelConfig`) and of its training (`TrainConfig`).

A Config is the one currency between the estimators, the search and the trainer: the search
space only produces Configs, the trainer only consumes them. Construction validates every
field and raises `InvalidParameterError` naming the parameter, the rule and the value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from archtune.checks import check_choice, check_number
from archtune.errors import InvalidParameterError
from archtune.custom_loss import is_custom
from archtune.blocks import (
    ACTIVATIONS,
    INITIALIZERS,
    REJECTED_ACTIVATIONS,
    REJECTED_INITIALIZERS,
    canonical_activation,
    canonical_initializer,
)
from archtune.config_groups import ConvConfig, NumericEmbeddingConfig, SequenceConfig, WideConfig
from archtune.families import FAMILIES, family_params, list_families
from archtune.quantiles import check_quantiles, resolve_quantiles

SHAPES = ("constant", "funnel", "pyramid")
NORMS = (None, "batch", "layer")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw", "nadam")
SCHEDULES = ("constant", "step", "exponential", "cosine", "one_cycle", "plateau", "coslog")
REGULARISATION_SCHEDULES = ("constant", "flat_cos")
# Mixed precision of a training step's forward pass (archtune.train.engines._forward).
MIXED_PRECISION = (None, "bf16")
REGRESSION_LOSSES = ("mse", "mae", "huber", "quantile")
CLASSIFICATION_LOSSES = ("cross_entropy",)
# learning_rate="auto" until the finder has run: it only lets the other values be checked.
AUTO_LR_PLACEHOLDER = 1e-3
# label_smoothing="auto" for classifiers (RealMLP's value).
AUTO_LABEL_SMOOTHING = 0.1


# --------------------------------------------------------------------------- model


def resolve_hidden_sizes(
    hidden_layers: int, units: int, shape: str, hidden_sizes: tuple[int, ...] | None
) -> tuple[int, ...]:
    """Widths of the hidden layers, from an explicit tuple or from (depth, widest, shape)."""
    if hidden_sizes is not None:
        if isinstance(hidden_sizes, (int, str)) or not hasattr(hidden_sizes, "__iter__"):
            raise InvalidParameterError(
                f"hidden_sizes must be a tuple of positive integers such as (256, 128); "
                f"got hidden_sizes={hidden_sizes!r}"
            )
        sizes = tuple(hidden_sizes)
        for s in sizes:
            check_number("hidden_sizes", s, 1, integer=True)
        return tuple(int(s) for s in sizes)
    layers = check_number("hidden_layers", hidden_layers, 0, 100, integer=True)
    width = check_number("units", units, 1, 1_000_000, integer=True)
    check_choice("shape", shape, SHAPES)
    if shape == "constant":
        return (width,) * layers
    if shape == "funnel":
        return tuple(max(1, round(width / 2**i)) for i in range(layers))
    # pyramid: a straight line from `units` down toward the output layer.
    return tuple(max(1, round(width * (layers - i) / layers)) for i in range(layers))


# Estimator parameters by the part of the network that reads them. The dense layers belong to
# every family but the declared layer list; the others to the families (and data) that use them.
PARAM_GROUPS: dict[str, tuple[str, ...]] = {
    "dense": ("hidden_layers", "units", "shape", "hidden_sizes", "norm", "parametric_activation", "feature_scale"),
    "numeric_embedding": tuple(f.name for f in fields(NumericEmbeddingConfig)),
    "conv": tuple(f.name for f in fields(ConvConfig)),
    "sequence": tuple(f.name for f in fields(SequenceConfig)),
    "inputs": ("inputs",),
    # Each family's own parameters, under its name (archtune/families: "tabm", "layers").
    **{spec.name: tuple(p.name for p in spec.params) for spec in FAMILIES.values() if spec.params},
    # Read by every family: a fit that starts from a trained network (archtune.transfer).
    "transfer": ("init_from", "freeze", "freeze_epochs", "fine_tune_lr_factor", "layer_lr_decay",
                 "pretrain_epochs", "pretext"),  # self-supervised pretraining: a source of its own making
}


def _with_family_fields(cls: type) -> type:
    """Add each family's own parameters (archtune/families) to ``cls`` as fields, after the
    others, with the default the family declares (as its rule stores it)."""
    for param in family_params():
        cls.__annotations__[param.name] = "Any"
        setattr(cls, param.name, param.check(param.default))
    return cls


@dataclass(frozen=True)
@_with_family_fields
class ModelConfig:
    """Everything that defines a network's architecture.

    The dense layers (``hidden_sizes``, ``activation``, ``initializer``, ``dropout``,
    ``norm``) are shared by the families; the shared groups live in their sub-configs
    (``numeric``, ``conv``, ``sequence``, ``wide``); each family's own parameters (TabM's
    ``k`` and ``arch_type``, the declared ``layers``) are fields added from the family's
    declaration (archtune/families), checked by its rules.
    ``image_shape`` (C, H, W) and ``series_shape`` (T, F) come from the data, not the user.
    """

    arch: str = "mlp"
    hidden_sizes: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    initializer: str = "auto"
    dropout: float = 0.1
    norm: str | None = None
    parametric_activation: bool = False  # y = x + alpha * (f(x) - x), alpha per unit from 1 (RealMLP)
    feature_scale: bool = False  # a learnable scale per input feature, from 1, in front of the body (RealMLP)
    numeric: NumericEmbeddingConfig = field(default_factory=NumericEmbeddingConfig)
    conv: ConvConfig = field(default_factory=ConvConfig)
    sequence: SequenceConfig = field(default_factory=SequenceConfig)
    wide: WideConfig = field(default_factory=WideConfig)
    # arch="cnn": explicit filters of each conv block (a pruned network, archtune.shrink.prune);
    # empty: ``conv.filters`` doubled per block.
    conv_filters: tuple[int, ...] = ()
    image_shape: tuple[int, ...] = ()
    series_shape: tuple[int, ...] = ()
    # loss="quantile": the levels of the non-crossing quantile head (archtune.quantiles); the
    # output layer has one unit per target and level. Empty: one unit per target.
    quantiles: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        check_choice("arch", self.arch, tuple(list_families()))
        object.__setattr__(self, "hidden_sizes", resolve_hidden_sizes(0, 1, "constant", self.hidden_sizes))
        object.__setattr__(self, "activation", canonical_activation(self.activation))
        object.__setattr__(self, "initializer", canonical_initializer(self.initializer))
        if self.activation in REJECTED_ACTIVATIONS:
            raise InvalidParameterError(REJECTED_ACTIVATIONS[self.activation])
        check_choice("activation", self.activation, tuple(ACTIVATIONS))
        if self.initializer in REJECTED_INITIALIZERS:
            raise InvalidParameterError(REJECTED_INITIALIZERS[self.initializer])
        check_choice("initializer", self.initializer, ("auto", *INITIALIZERS))
        check_number("dropout", self.dropout, 0.0, 1.0, high_open=True)
        check_choice("norm", self.norm, NORMS)
        check_choice("parametric_activation", self.parametric_activation, (True, False))
        check_choice("feature_scale", self.feature_scale, (True, False))
        object.__setattr__(self, "conv_filters", tuple(int(v) for v in self.conv_filters))
        for filters in self.conv_filters:
            check_number("conv_filters", filters, 1, 4096, integer=True)
        if self.conv_filters and len(self.conv_filters) != self.conv.conv_blocks:
            raise InvalidParameterError(f"conv_filters must give the filters of each of the {self.conv.conv_blocks} "
                                        f"conv blocks; got conv_filters={self.conv_filters}")
        object.__setattr__(self, "image_shape", tuple(int(v) for v in self.image_shape))
        object.__setattr__(self, "series_shape", tuple(int(v) for v in self.series_shape))
        object.__setattr__(self, "quantiles", check_quantiles(self.quantiles) if len(self.quantiles) else ())
        # Each family's rules (the declared layers: objects, every argument checked, the JSON
        # form {"type": "Dense", ...} converted).
        for param in family_params():
            object.__setattr__(self, param.name, param.check(getattr(self, param.name)))

    @classmethod
    def from_params(cls, params: Mapping[str, Any], **data: Any) -> "ModelConfig":
        """The config an estimator's parameters describe; ``data`` adds what the data decides
        (``image_shape``, ``series_shape``, ``wide``)."""
        sizes = resolve_hidden_sizes(params["hidden_layers"], params["units"], params["shape"],
                                     params["hidden_sizes"])
        return cls(arch=params["arch"], hidden_sizes=sizes, activation=params["activation"],
                   initializer=params["initializer"], dropout=params["dropout"], norm=params["norm"],
                   parametric_activation=params["parametric_activation"], feature_scale=params["feature_scale"],
                   numeric=NumericEmbeddingConfig(**{name: params[name] for name in PARAM_GROUPS["numeric_embedding"]}),
                   conv=ConvConfig(**{name: params[name] for name in PARAM_GROUPS["conv"]}),
                   sequence=SequenceConfig(**{name: params[name] for name in PARAM_GROUPS["sequence"]}),
                   quantiles=resolve_quantiles(params.get("loss"), params.get("quantiles")),
                   **{p.name: params[p.name] for p in family_params()}, **data)

    def to_dict(self) -> dict[str, Any]:
        """A flat JSON-ready dict (the bundle's ``model_config``); layers stay objects."""
        flat: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("numeric", "conv", "sequence", "wide"):
                flat.update({k: _listed(v) for k, v in asdict(value).items()})
            elif f.name != "layers":
                flat[f.name] = _listed(value)
        flat["layers"] = list(self.layers)
        return flat

    @classmethod
    def from_dict(cls, flat: Mapping[str, Any]) -> "ModelConfig":
        """The inverse of `to_dict` (unknown keys are an error, as for any parameter)."""
        flat = dict(flat)
        groups = {name: {f.name: flat.pop(f.name) for f in fields(kind) if f.name in flat}
                  for name, kind in (("numeric", NumericEmbeddingConfig), ("conv", ConvConfig),
                                     ("sequence", SequenceConfig), ("wide", WideConfig))}
        return cls(numeric=NumericEmbeddingConfig(**groups["numeric"]), conv=ConvConfig(**groups["conv"]),
                   sequence=SequenceConfig(**groups["sequence"]), wide=WideConfig(**groups["wide"]), **flat)


def _listed(value: Any) -> Any:
    """Tuples (nested too) as lists, for JSON."""
    if isinstance(value, (tuple, list)):
        return [_listed(v) for v in value]
    return value


# --------------------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines how a network is trained."""

    optimizer: str = "adamw"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    beta2: float = 0.999
    weight_decay: float = 1e-4
    l1: float = 0.0
    l2: float = 0.0
    max_norm: float | None = None
    gradient_clip: float | None = None
    batch_size: int = 128
    max_epochs: int = 100
    lr_schedule: str = "plateau"
    warmup_epochs: int = 1
    early_stopping: bool = True
    patience: int = 10
    min_delta: float = 0.0
    loss: str = "mse"
    label_smoothing: float = 0.0
    dropout_schedule: str = "constant"
    weight_decay_schedule: str = "constant"
    seed: int = 0
    mixed_precision: str | None = None
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_number("learning_rate", self.learning_rate, 0.0, low_open=True)
        check_number("momentum", self.momentum, 0.0, 1.0, high_open=True)
        check_number("beta2", self.beta2, 0.0, 1.0, high_open=True)
        check_number("weight_decay", self.weight_decay, 0.0)
        check_number("l1", self.l1, 0.0)
        check_number("l2", self.l2, 0.0)
        if self.max_norm is not None:
            check_number("max_norm", self.max_norm, 0.0, low_open=True)
        if self.gradient_clip is not None:
            check_number("gradient_clip", self.gradient_clip, 0.0, low_open=True)
        check_number("batch_size", self.batch_size, 1, integer=True)
        check_number("max_epochs", self.max_epochs, 1, integer=True)
        check_choice("lr_schedule", self.lr_schedule, SCHEDULES)
        check_number("warmup_epochs", self.warmup_epochs, 0, integer=True)
        if not isinstance(self.early_stopping, bool):
            raise InvalidParameterError(
                f"early_stopping must be True or False; got early_stopping={self.early_stopping!r}"
            )
        check_number("patience", self.patience, 1, integer=True)
        check_number("min_delta", self.min_delta, 0.0)
        if not is_custom(self.loss):  # a user's callable (archtune.train.custom_loss)
            check_choice("loss", self.loss, REGRESSION_LOSSES + CLASSIFICATION_LOSSES + ("binary_cross_entropy",))
        check_number("label_smoothing", self.label_smoothing, 0.0, 1.0, high_open=True)
        check_choice("dropout_schedule", self.dropout_schedule, REGULARISATION_SCHEDULES)
        check_choice("weight_decay_schedule", self.weight_decay_schedule, REGULARISATION_SCHEDULES)
        check_choice("mixed_precision", self.mixed_precision, MIXED_PRECISION)

    def to_dict(self) -> dict:
        out = asdict(self)
        out.pop("extra")
        return out

    @classmethod
    def from_params(cls, params: Mapping[str, Any], n_train: int, seed: int,
                    task_losses: tuple[str, ...]) -> "TrainConfig":
        """The config an estimator's parameters describe for ``n_train`` training rows.

        ``learning_rate="auto"`` stands in as `AUTO_LR_PLACEHOLDER` until the learning-rate
        finder has run on the prepared data; ``loss="auto"`` is the task's first loss.
        """
        rate = params["learning_rate"]
        smoothing = params["label_smoothing"]
        if isinstance(smoothing, str):
            if smoothing != "auto":
                raise InvalidParameterError(f"label_smoothing must be a number in [0, 1) or 'auto'; "
                                            f"got label_smoothing={smoothing!r}")
            # "auto": RealMLP's 0.1 for classifiers; regression has no labels to smooth.
            smoothing = AUTO_LABEL_SMOOTHING if tuple(task_losses) == CLASSIFICATION_LOSSES else 0.0
        if isinstance(rate, str) and rate != "auto":
            raise InvalidParameterError(f"learning_rate must be a positive number or 'auto'; "
                                        f"got learning_rate={rate!r}")
        loss = params["loss"]
        if not is_custom(loss):
            check_choice("loss", loss, ("auto", *task_losses))
        return cls(
            optimizer=params["optimizer"], learning_rate=AUTO_LR_PLACEHOLDER if rate == "auto" else rate,
            momentum=params["momentum"], beta2=params["beta2"], weight_decay=params["weight_decay"], l1=params["l1"],
            l2=params["l2"],
            max_norm=params["max_norm"], gradient_clip=params["gradient_clip"],
            batch_size=resolve_batch_size(params["batch_size"], n_train), max_epochs=params["max_epochs"],
            lr_schedule=params["lr_schedule"], warmup_epochs=params["warmup_epochs"],
            early_stopping=params["early_stopping"], patience=params["patience"], min_delta=params["min_delta"],
            loss=task_losses[0] if loss == "auto" else loss, label_smoothing=smoothing,
            dropout_schedule=params["dropout_schedule"], weight_decay_schedule=params["weight_decay_schedule"],
            seed=seed, mixed_precision=params.get("mixed_precision"))


def resolve_batch_size(batch_size: int | str, n_train: int) -> int:
    """Turn ``"auto"`` / ``"full"`` / an int into a concrete batch size for ``n_train`` rows."""
    if batch_size == "full":
        return max(1, n_train)
    if batch_size == "auto":
        # About 50 steps per epoch, as a power of two between 32 and 512: small data gets
        # enough updates per epoch, large data gets batches that use the hardware well.
        target = max(1, n_train // 50)
        power = 2 ** round(math.log2(target)) if target > 1 else 1
        return int(min(512, max(32, power)))
    if isinstance(batch_size, str):
        raise InvalidParameterError(
            f"batch_size must be a positive integer, 'auto' or 'full'; got batch_size={batch_size!r}"
        )
    return check_number("batch_size", batch_size, 1, integer=True)
