"""Search spaces: named dimensions that produce estimator parameters from an Optuna trial.

The default space encodes common practice for tabular networks, with conditions where they
matter: SELU goes without batch/layer norm (it normalises itself, and gets AlphaDropout from
the estimator); momentum is searched only for the SGD optimisers; warm-up only where the
schedule has none of its own; the learning-rate range follows the optimiser family.

`max_epochs` is not a searched dimension: it is the fidelity that the pruner hands out.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from archtune.errors import InvalidParameterError, nearest

DEFAULT_MAX_EPOCHS = 60
# learning_rate="auto" in a space: the finder's suggestion for each configuration, times a
# searched factor in this range (log-scaled) - the range is centred on the suggestion.
AUTO_LR_SCALE = (0.1, 10.0)
AUTO_LR_SCALE_PARAM = "learning_rate_scale"


@dataclass(frozen=True)
class Dimension:
    """One searched (or fixed) parameter.

    ``kind`` is "int", "float", "categorical" or "fixed". ``when`` restricts the dimension to
    trials whose already-sampled parameters satisfy it; otherwise ``otherwise`` is used.
    """

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple = ()
    value: Any = None
    when: Callable[[dict[str, Any]], bool] | None = field(default=None, compare=False)
    otherwise: Any = None

    def applies(self, params: dict[str, Any]) -> bool:
        return self.when is None or self.when(params)

    def suggest(self, trial: Any) -> Any:
        if self.kind == "fixed":
            return self.value
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)

    def grid_values(self, points: int = 3) -> list[Any]:
        """A few representative values, for the grid sampler."""
        if self.kind == "fixed":
            return [self.value]
        if self.kind == "categorical":
            return list(self.choices)
        lo, hi = float(self.low), float(self.high)
        if self.log:
            values = [math.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * i / (points - 1)) for i in range(points)]
        else:
            values = [lo + (hi - lo) * i / (points - 1) for i in range(points)]
        if self.kind == "int":
            return sorted({int(round(v)) for v in values})
        return [min(hi, max(lo, v)) for v in values]  # exp/log round-off must not leave the range

    def describe(self) -> str:
        if self.kind == "fixed":
            return f"{self.value!r}"
        if self.kind == "categorical":
            return "{" + ", ".join(repr(c) for c in self.choices) + "}"
        return f"{self.low:g}..{self.high:g}{' (log)' if self.log else ''}"


def _adam_family(p: dict[str, Any]) -> bool:
    return p.get("optimizer") in ("adam", "adamw", "nadam", "rmsprop", "adagrad")


def _default_dimensions() -> list[Dimension]:
    return [
        Dimension("arch", "categorical", choices=("mlp", "resnet")),
        Dimension("hidden_layers", "int", 1, 8),
        Dimension("units", "int", 16, 1024, log=True),
        Dimension("shape", "categorical", choices=("constant", "funnel", "pyramid")),
        Dimension("activation", "categorical", choices=("relu", "leaky_relu", "elu", "selu", "gelu", "silu")),
        Dimension("initializer", "fixed", value="auto"),
        Dimension("norm", "categorical", choices=(None, "batch", "layer"),
                  when=lambda p: p.get("activation") != "selu", otherwise=None),
        Dimension("dropout", "float", 0.0, 0.5),
        Dimension("weight_decay", "float", 1e-6, 1e-1, log=True),
        Dimension("optimizer", "categorical", choices=("adamw", "adam", "nesterov", "rmsprop")),
        Dimension("momentum", "float", 0.8, 0.99, when=lambda p: p.get("optimizer") in ("momentum", "nesterov"),
                  otherwise=0.9),
        # Adaptive optimisers want smaller rates than SGD; together they span 1e-5..1e-1.
        Dimension("learning_rate", "float", 1e-5, 1e-2, log=True, when=_adam_family),
        Dimension("learning_rate", "float", 1e-4, 1e-1, log=True, when=lambda p: not _adam_family(p)),
        Dimension("batch_size", "categorical", choices=(32, 64, 128, 256, 512, 1024)),
        Dimension("lr_schedule", "categorical", choices=("constant", "cosine", "one_cycle")),
        Dimension("warmup_epochs", "int", 0, 5, when=lambda p: p.get("lr_schedule") != "one_cycle", otherwise=0),
    ]


def _cnn_dimensions() -> list[Dimension]:
    """Images: the convolutional family's depth, filters, kernel, separable or not, pooling and
    dropout; a small dense head; the optimiser choices of the default space. conv_blocks=0 is
    the dense family on the pixels (an MLP), so the search weighs both families."""
    convolutional = lambda p: p.get("conv_blocks", 1) > 0  # noqa: E731
    return [
        Dimension("arch", "fixed", value="cnn"),
        Dimension("conv_blocks", "int", 0, 3),
        Dimension("filters", "categorical", choices=(16, 32, 64), when=convolutional, otherwise=32),
        Dimension("kernel_size", "categorical", choices=(3, 5), when=convolutional, otherwise=3),
        Dimension("separable", "categorical", choices=(False, True), when=convolutional, otherwise=False),
        Dimension("residual", "categorical", choices=(False, True), when=convolutional, otherwise=False),
        Dimension("pooling", "categorical", choices=("max", "avg"), when=convolutional, otherwise="max"),
        # An MLP on pixels needs at least one hidden layer to be more than a linear model.
        Dimension("hidden_layers", "int", 0, 2, when=convolutional),
        Dimension("hidden_layers", "int", 1, 3, when=lambda p: not convolutional(p)),
        Dimension("units", "categorical", choices=(64, 128, 256)),
        Dimension("activation", "categorical", choices=("relu", "gelu")),
        Dimension("dropout", "float", 0.0, 0.5),
        Dimension("weight_decay", "float", 1e-6, 1e-2, log=True),
        Dimension("optimizer", "categorical", choices=("adamw", "nesterov")),
        Dimension("momentum", "float", 0.8, 0.99, when=lambda p: p.get("optimizer") in ("momentum", "nesterov"),
                  otherwise=0.9),
        Dimension("learning_rate", "float", 1e-4, 1e-2, log=True, when=_adam_family),
        Dimension("learning_rate", "float", 1e-3, 1e-1, log=True, when=lambda p: not _adam_family(p)),
        Dimension("batch_size", "categorical", choices=(64, 128, 256)),
        Dimension("lr_schedule", "categorical", choices=("constant", "cosine")),
    ]


# Text columns: the sequence encoder joins the default space.
TEXT_DIMENSIONS = [
    Dimension("sequence", "categorical", choices=("conv", "lstm", "gru")),
    Dimension("embedding_dim", "categorical", choices=(32, 64, 128)),
    Dimension("sequence_units", "categorical", choices=(64, 128, 256)),
    Dimension("bidirectional", "categorical", choices=(False, True), when=lambda p: p.get("sequence") != "conv",
              otherwise=False),
]

# Columns of image paths in a table: their conv encoders' choices join the default space.
IMAGE_COLUMN_DIMENSIONS = [
    Dimension("conv_blocks", "int", 1, 3),
    Dimension("filters", "categorical", choices=(16, 32, 64)),
    Dimension("kernel_size", "categorical", choices=(3, 5)),
    Dimension("separable", "categorical", choices=(False, True)),
    Dimension("residual", "categorical", choices=(False, True)),
    Dimension("pooling", "categorical", choices=("max", "avg")),
]

# Time series (N x T x F arrays with arch="sequence"): the encoder's choices without the
# embedding, which only token inputs have.
SERIES_DIMENSIONS = [d for d in TEXT_DIMENSIONS if d.name != "embedding_dim"]


def _small_dimensions() -> list[Dimension]:
    return [
        Dimension("arch", "fixed", value="mlp"),
        Dimension("hidden_layers", "int", 1, 3),
        Dimension("units", "int", 32, 256, log=True),
        Dimension("activation", "categorical", choices=("relu", "gelu")),
        Dimension("dropout", "float", 0.0, 0.3),
        Dimension("weight_decay", "float", 1e-6, 1e-2, log=True),
        Dimension("optimizer", "fixed", value="adamw"),
        Dimension("learning_rate", "float", 1e-4, 1e-2, log=True),
        Dimension("batch_size", "categorical", choices=(64, 128, 256, 512)),
        Dimension("lr_schedule", "categorical", choices=("constant", "cosine")),
    ]


class SearchSpace:
    """An ordered list of dimensions plus the fidelity (``max_epochs``).

    Parameters
    ----------
    dimensions : list of Dimension
    max_epochs : int
        Most epochs a trial may train; the pruner's maximum resource.
    """

    def __init__(self, dimensions: list[Dimension], max_epochs: int = DEFAULT_MAX_EPOCHS):
        self.dimensions = list(dimensions)
        self.max_epochs = int(max_epochs)

    @classmethod
    def default(cls) -> "SearchSpace":
        return cls(_default_dimensions())

    @classmethod
    def cnn(cls) -> "SearchSpace":
        return cls(_cnn_dimensions(), max_epochs=30)

    @classmethod
    def small(cls) -> "SearchSpace":
        return cls(_small_dimensions(), max_epochs=30)

    @property
    def names(self) -> list[str]:
        return list(dict.fromkeys(d.name for d in self.dimensions))

    def sample(self, trial: Any) -> dict[str, Any]:
        """Estimator parameters for ``trial`` (an Optuna trial or anything with suggest_*)."""
        params: dict[str, Any] = {}
        for dim in self.dimensions:
            if dim.applies(params):
                params[dim.name] = dim.suggest(trial)
            elif dim.name not in params:
                # A later variant of the same name (e.g. learning_rate per optimiser family)
                # may still apply and replace this placeholder.
                params[dim.name] = dim.otherwise
        if _is_auto(params.get("learning_rate")):
            params[AUTO_LR_SCALE_PARAM] = trial.suggest_float(AUTO_LR_SCALE_PARAM, *AUTO_LR_SCALE, log=True)
        params["max_epochs"] = self.max_epochs
        return params

    def grid(self, points: int = 3) -> dict[str, list[Any]]:
        """Each searched dimension's representative values (for ``sampler="grid"``)."""
        grid: dict[str, list[Any]] = {}
        for dim in self.dimensions:
            if dim.kind != "fixed":
                grid[dim.name] = sorted(set(grid.get(dim.name, [])) | set(dim.grid_values(points)),
                                        key=lambda v: (v is None, str(type(v)), v if v is not None else 0))
            elif dim.name == "learning_rate" and _is_auto(dim.value):
                grid[AUTO_LR_SCALE_PARAM] = [0.3, 1.0, 3.0]
        return grid

    def with_overrides(self, overrides: Mapping[str, Any], estimator_params: list[str]) -> "SearchSpace":
        """A copy narrowed or extended by a dict.

        A list gives categorical choices, a 2-tuple a numeric range (log-scaled where the
        default was), any other value fixes the parameter. ``max_epochs`` caps the fidelity.
        """
        dims = list(self.dimensions)
        max_epochs = self.max_epochs
        for name, value in overrides.items():
            if name not in estimator_params:
                raise InvalidParameterError(
                    f"unknown search-space parameter {name!r}{nearest(name, estimator_params)}; "
                    f"searchable: {', '.join(self.names)}; any estimator parameter may be fixed"
                )
            if name == "max_epochs":
                if isinstance(value, (list, tuple)):
                    raise InvalidParameterError("max_epochs is the search's fidelity: fix it to one integer, "
                                                f"got max_epochs={value!r}")
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise InvalidParameterError(f"max_epochs must be a positive integer; got max_epochs={value!r}")
                max_epochs = value
                continue
            variants = [d for d in dims if d.name == name]
            template = variants[0] if variants else None
            new = _dimension_from_override(name, value, template)
            if len(variants) > 1:
                # One override replaces every conditional variant (hidden_layers per family,
                # learning_rate per optimiser): it applies to all trials.
                new = dataclasses.replace(new, when=None, otherwise=None)
            dims = [d for d in dims if d.name != name]
            dims.append(new)
        return SearchSpace(_order(dims, [d.name for d in self.dimensions]), max_epochs)

    def describe(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for d in self.dimensions:
            out[d.name] = out[d.name] + " | " + d.describe() if d.name in out else d.describe()
        out["max_epochs"] = f"{self.max_epochs} (fidelity)"
        return out


def _is_auto(value: Any) -> bool:
    return isinstance(value, str) and value == "auto"


_ORDER = [d.name for d in _default_dimensions()]


def _order(dims: list[Dimension], base: list[str]) -> list[Dimension]:
    """Names in the order of the space they came from (``base``: conditions read earlier
    choices, e.g. the image space's hidden_layers reads conv_blocks), then other known names
    in the default order, then the rest."""
    rank = {name: i for i, name in enumerate(dict.fromkeys(base + _ORDER))}
    return sorted(dims, key=lambda d: rank.get(d.name, len(rank)))


def _dimension_from_override(name: str, value: Any, template: Dimension | None) -> Dimension:
    when = template.when if template is not None and name not in ("learning_rate",) else None
    otherwise = template.otherwise if template is not None else None
    if isinstance(value, list):
        if not value:
            raise InvalidParameterError(f"search-space choices for {name} are empty; give at least one value")
        return Dimension(name, "categorical", choices=tuple(value), when=when, otherwise=otherwise)
    if isinstance(value, tuple):
        if len(value) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise InvalidParameterError(
                f"search-space range for {name} must be (low, high) numbers; got {name}={value!r}")
        low, high = value
        if not low < high:
            raise InvalidParameterError(f"search-space range for {name} is empty: low must be below high; "
                                        f"got {name}=({low!r}, {high!r})")
        log = template.log if template is not None and template.kind in ("int", "float") else False
        if log and low <= 0:
            raise InvalidParameterError(f"search-space range for {name} is log-scaled and must be positive; "
                                        f"got {name}=({low!r}, {high!r})")
        kind = "int" if isinstance(low, int) and isinstance(high, int) and (template is None or template.kind == "int") else "float"
        return Dimension(name, kind, low, high, log=log, when=when, otherwise=otherwise)
    return Dimension(name, "fixed", value=value)


def resolve_space(space: Any, estimator_params: list[str], data: str = "table") -> SearchSpace:
    """"default", "small", "cnn", a dict of overrides of the default space, or a SearchSpace.

    ``data`` says what the search sees: "images" (3-D or 4-D arrays) makes the CNN space the
    default, unless the overrides fix ``arch="sequence"``: then the arrays are N x T x F time
    series and the sequence encoder's dimensions join the default space. Tables: "text" (text
    columns) adds the sequence encoder's dimensions, with the embedding's, and
    "image_columns" (columns of image paths) the conv encoder's; "text+image_columns" both.
    """
    if isinstance(space, SearchSpace):
        return space
    kinds = set(data.split("+"))
    if "images" in kinds and isinstance(space, Mapping) and space.get("arch") == "sequence":
        kinds = {"series"}
    base = SearchSpace.cnn() if "images" in kinds else SearchSpace.default()
    extra = ((TEXT_DIMENSIONS if "text" in kinds else []) + (SERIES_DIMENSIONS if "series" in kinds else [])
             + (IMAGE_COLUMN_DIMENSIONS if "image_columns" in kinds else []))
    if extra:
        base = SearchSpace(base.dimensions + extra, base.max_epochs)
    if space is None or space == "default":
        return base
    if space == "small":
        return SearchSpace.small()
    if space == "cnn":
        return SearchSpace.cnn()
    if isinstance(space, Mapping):
        return base.with_overrides(space, estimator_params)
    raise InvalidParameterError(
        f"space must be 'default', 'small', 'cnn', a dict of overrides or a SearchSpace; got space={space!r}")


__all__ = ["AUTO_LR_SCALE", "AUTO_LR_SCALE_PARAM", "DEFAULT_MAX_EPOCHS", "IMAGE_COLUMN_DIMENSIONS", "SERIES_DIMENSIONS",
           "TEXT_DIMENSIONS", "Dimension", "SearchSpace", "resolve_space"]
