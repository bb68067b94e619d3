"""Search spaces, define-by-run: each family samples itself from a trial, in plain Python.

A space runs sampling functions (archtune.tune.families) that ask a `Sampler`
(archtune.tune.sampler) for the parameters they need, the Optuna idiom: conditions are ``if``
statements a reader can follow. The data decides which functions run: the tabular families,
the CNN family for image arrays, plus the encoders of text columns, time series and columns of
image paths.

The user's overrides are explicit objects (archtune.tune.sampler, importable from here too):
`Choice` (categorical values), `Range` (a numeric range, log-scaled where the default is unless
``log`` says otherwise) and `Fixed` (one value, any type, tuples included). A dict of overrides
is sugar: a list is a Choice, a 2-tuple of numbers a Range, anything else Fixed. An override
replaces what the space would ask for that parameter; an override of a parameter the space does
not search extends it.

`max_epochs` is not a searched dimension: it is the fidelity that the pruner hands out.

A space that fixes ``init_from`` (every trial starts from one trained network) does not sample
the architecture: the source's is used (`ARCHITECTURE_PARAMS`), so those dimensions, and the
user's overrides of them, are dropped (`SearchSpace.dropped` names them); the fine-tuning
parameters join it instead (`sample_fine_tuning`).

What a space may ask for (`SearchSpace.dimensions`, `describe`, `grid`) is found by walking
it at random: archtune.tune.space_dimensions.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from archtune.errors import InvalidParameterError, nearest
from archtune.fitting import ARCHITECTURE_PARAMS
from archtune.tune.families import BODIES, ENCODERS, sample_fine_tuning
from archtune.tune.sampler import Choice, Fixed, Override, Range, Sampler, as_override
from archtune.tune.space_dimensions import Dimension, Walk, discover

DEFAULT_MAX_EPOCHS = 64  # the default recipe's epochs (its coslog schedule spans them)
# learning_rate="auto" in a space: the finder's suggestion for each configuration, times a
# searched factor in this range (log-scaled) - the range is centred on the suggestion.
AUTO_LR_SCALE = (0.1, 10.0)
AUTO_LR_SCALE_PARAM = "learning_rate_scale"


# --------------------------------------------------------------------------- the space


class SearchSpace:
    """A body family's sampler, encoders' samplers, the user's overrides and the fidelity.

    Parameters
    ----------
    body : {"table", "small", "classic", "images"}
        Which sampling function chooses the network's family and size.
    encoders : sequence of {"text", "series", "image_columns"}
        Encoders whose dimensions join the space (text columns, time series, image paths).
    overrides : dict of str to Choice, Range or Fixed
    max_epochs : int
        Most epochs a trial may train; the pruner's maximum resource.
    """

    def __init__(self, body: str = "table", encoders: Sequence[str] = (),
                 overrides: Mapping[str, Override] | None = None, max_epochs: int = DEFAULT_MAX_EPOCHS):
        self.body = body
        self.encoders = tuple(encoders)
        self.overrides = dict(overrides or {})
        self.max_epochs = int(max_epochs)
        # Values fixed because of the data, not by the user (numeric embeddings off on a wide
        # table): the search still starts with its recipes.
        self.data_fixed: dict[str, Any] = {}

    @classmethod
    def default(cls) -> "SearchSpace":
        return cls("table")

    @classmethod
    def cnn(cls) -> "SearchSpace":
        return cls("images", max_epochs=30)

    @classmethod
    def small(cls) -> "SearchSpace":
        return cls("small", max_epochs=30)

    @classmethod
    def classic(cls) -> "SearchSpace":
        """The space before the recipes: MLPs and ResNets of 1-8 layers, every activation, norm
        and optimiser, with the classic defaults (archtune.recipes.CLASSIC)."""
        return cls("classic")

    def __repr__(self) -> str:
        return (f"SearchSpace(body={self.body!r}, encoders={self.encoders!r}, overrides={self.overrides!r}, "
                f"max_epochs={self.max_epochs})")

    def sample(self, trial: Any) -> dict[str, Any]:
        """Estimator parameters for ``trial`` (an Optuna trial or anything with suggest_*)."""
        params = self._sampler(trial).params
        if _is_auto(params.get("learning_rate")):
            params[AUTO_LR_SCALE_PARAM] = trial.suggest_float(AUTO_LR_SCALE_PARAM, *AUTO_LR_SCALE, log=True)
        params["max_epochs"] = self.max_epochs
        return params

    def _sampler(self, trial: Any) -> Sampler:
        """The sampler after the space's sampling functions and the overrides ran on ``trial``."""
        s = Sampler(trial, self.overrides, self.moot)
        BODIES[self.body](s)
        for encoder in self.encoders:
            ENCODERS[encoder](s)
        if self.from_source:
            sample_fine_tuning(s)
        s.rest()
        return s

    @property
    def from_source(self) -> bool:
        """Whether every trial starts from one trained network (``init_from`` is fixed)."""
        override = self.overrides.get("init_from")
        return isinstance(override, Fixed) and override.value is not None

    @property
    def moot(self) -> frozenset[str]:
        """Parameters the space does not sample: with ``init_from`` fixed, the architecture's."""
        return frozenset(ARCHITECTURE_PARAMS) if self.from_source else frozenset()

    @property
    def dropped(self) -> list[str]:
        """The dimensions that `moot` drops: those the same space without ``init_from`` searches,
        and the user's overrides of them."""
        if not self.moot:
            return []
        plain = SearchSpace(self.body, self.encoders, {n: o for n, o in self.overrides.items() if n != "init_from"},
                            self.max_epochs)
        return [d.name for d in plain.dimensions if d.name in self.moot
                and (d.kind != "fixed" or d.name in self.overrides)]

    def with_overrides(self, overrides: Mapping[str, Any], estimator_params: Sequence[str]) -> "SearchSpace":
        """A copy narrowed, extended or fixed by ``overrides`` (objects or the dict shorthand);
        ``max_epochs`` caps the fidelity. Names must be estimator parameters."""
        merged = dict(self.overrides)
        max_epochs = self.max_epochs
        for name, value in overrides.items():
            if name not in estimator_params:
                raise InvalidParameterError(
                    f"unknown search-space parameter {name!r}{nearest(name, list(estimator_params))}; "
                    f"searchable: {', '.join(self.names)}; any estimator parameter may be fixed")
            if name == "max_epochs":
                value = value.value if isinstance(value, Fixed) else value
                if isinstance(value, (list, tuple, Choice, Range)):
                    raise InvalidParameterError("max_epochs is the search's fidelity: fix it to one integer, "
                                                f"got max_epochs={value!r}")
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise InvalidParameterError(f"max_epochs must be a positive integer; got max_epochs={value!r}")
                max_epochs = value
                continue
            merged[name] = as_override(name, value)
        space = SearchSpace(self.body, self.encoders, merged, max_epochs)
        space.check()
        return space

    def with_data_fixed(self, values: Mapping[str, Any]) -> "SearchSpace":
        """A copy with ``values`` fixed because of the data (see ``data_fixed``)."""
        space = SearchSpace(self.body, self.encoders, {**self.overrides, **{n: Fixed(v) for n, v in values.items()}},
                            self.max_epochs)
        space.data_fixed = {**self.data_fixed, **values}
        return space

    def check(self) -> None:
        """Walk the space with every override applied, so that a log-scaled range that is not
        positive is refused before the search starts; ``init_from`` may only be fixed."""
        init_from = self.overrides.get("init_from")
        if init_from is not None and not isinstance(init_from, Fixed):
            raise InvalidParameterError(
                f"init_from can only be fixed in a search (every trial starts from the same network); got "
                f"init_from={init_from!r}: search each source in its own study")
        rng = random.Random(0)
        for _ in range(30):
            self.sample(Walk(rng))

    def fixed_values(self) -> dict[str, Any]:
        """The parameters the user fixed."""
        return {name: o.value for name, o in self.overrides.items() if isinstance(o, Fixed)}

    # ------------------------------------------------------------------ reading the space

    @property
    def dimensions(self) -> list[Dimension]:
        """Every parameter the space may ask for, found by walking it (see `Dimension`)."""
        return discover(self.sample, leave_out=("max_epochs", AUTO_LR_SCALE_PARAM))

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dimensions]

    def describe(self) -> dict[str, str]:
        """Each parameter's distribution and, for conditional ones, when it is searched."""
        out = {d.name: d.describe() for d in self.dimensions}
        out["max_epochs"] = f"{self.max_epochs} (fidelity)"
        return out

    def grid(self, points: int = 3) -> dict[str, list[Any]]:
        """Each searched dimension's representative values (for ``sampler="grid"``)."""
        grid: dict[str, list[Any]] = {}
        for d in self.dimensions:
            if d.kind == "categorical":
                grid[d.name] = list(d.choices)
            elif d.kind in ("int", "float"):
                grid[d.name] = d.grid_values(points)
        if _is_auto(self.fixed_values().get("learning_rate")):
            grid[AUTO_LR_SCALE_PARAM] = [0.3, 1.0, 3.0]
        return grid


def _is_auto(value: Any) -> bool:
    return isinstance(value, str) and value == "auto"


def resolve_space(space: Any, estimator_params: Sequence[str], data: str = "table") -> SearchSpace:
    """"default", "small", "classic", "cnn", a dict of overrides of the default space, or a SearchSpace.

    ``data`` says what the search sees: "images" (3-D or 4-D arrays) makes the CNN space the
    default, unless the overrides fix ``arch="sequence"``: then the arrays are N x T x F time
    series and the sequence encoder's dimensions join the default space. Tables: "text" (text
    columns) adds the sequence encoder's dimensions, with the embedding's, and
    "image_columns" (columns of image paths) the conv encoder's; "text+image_columns" both.
    An explicit SearchSpace is used as it is.
    """
    if isinstance(space, SearchSpace):
        return space
    kinds = set(data.split("+"))
    if "images" in kinds and isinstance(space, Mapping) and _value(space.get("arch")) == "sequence":
        kinds = {"series"}
    encoders = [name for name in ENCODERS if name in kinds]
    # The recipe families are for tables of numbers and categories; with text, image-path
    # columns or series, the classic space (their encoders were measured with its training).
    body = "images" if "images" in kinds else "classic" if encoders else "table"
    base = SearchSpace(body, encoders, max_epochs=30 if "images" in kinds else DEFAULT_MAX_EPOCHS)
    if space is None or space == "default":
        return base
    if space == "small":
        return SearchSpace("small", encoders, max_epochs=30)
    if space == "classic":
        return SearchSpace("classic", encoders)
    if space == "cnn":
        return SearchSpace.cnn()
    if isinstance(space, Mapping):
        return base.with_overrides(space, estimator_params)
    raise InvalidParameterError(
        f"space must be 'default', 'small', 'classic', 'cnn', a dict of overrides or a SearchSpace; "
        f"got space={space!r}")


def _value(override: Any) -> Any:
    return override.value if isinstance(override, Fixed) else override


__all__ = ["AUTO_LR_SCALE", "AUTO_LR_SCALE_PARAM", "BODIES", "DEFAULT_MAX_EPOCHS", "ENCODERS", "Choice", "Fixed",
           "Range", "Sampler", "SearchSpace", "as_override", "resolve_space"]
