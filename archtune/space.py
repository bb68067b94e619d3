"""Search spaces for `AutoNeuralClassifier` / `AutoNeuralRegressor` (``space=``).

    from archtune.space import Choice, Range, Fixed, SearchSpace
    space = {"activation": Choice("relu", "gelu"), "units": Range(32, 256), "batch_size": Fixed(256)}
    # or simply {"activation": ["relu", "gelu"], "units": (32, 256), "batch_size": 256}

``SearchSpace.default()``, ``.small()``, ``.classic()`` and ``.cnn()`` are the presets; a
dict of overrides narrows or extends the default one. The sampling itself lives in
archtune.tune.space.
"""

from __future__ import annotations

from archtune.tune.space import Choice, Fixed, Range, SearchSpace

__all__ = ["Choice", "Fixed", "Range", "SearchSpace"]
