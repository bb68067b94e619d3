"""Named recipes: complete sets of estimator parameters, measured in bench/defaults.py.

``CLASSIC`` is what `NeuralClassifier` / `NeuralRegressor` did before the published levers
(issue 12): ``NeuralClassifier(**CLASSIC)`` trains as the old defaults did.

    from archtune import NeuralClassifier
    from archtune.recipes import CLASSIC
    NeuralClassifier(**CLASSIC).fit(X, y)
"""

from __future__ import annotations

CLASSIC: dict = {
    "arch": "mlp", "hidden_layers": 2, "units": 256, "shape": "constant", "activation": "relu", "dropout": 0.1,
    "norm": None, "parametric_activation": False, "feature_scale": False, "numeric_embedding": None,
    "optimizer": "adamw", "learning_rate": 1e-3, "momentum": 0.9, "beta2": 0.999, "weight_decay": 1e-4,
    "batch_size": "auto", "max_epochs": 100, "lr_schedule": "plateau", "warmup_epochs": 1,
    "dropout_schedule": "constant", "weight_decay_schedule": "constant", "early_stopping": True, "patience": 10,
    "label_smoothing": 0.0, "scaling": "standard", "categorical": "embedding", "categorical_features": "from_dtype",
    "clamp_outputs": False,
}

# The first trials of a default search (enqueued in this order, each a change from the
# estimators' defaults): the default recipe itself (piecewise-linear embeddings), the same with
# periodic embeddings as RealMLP sizes them (16 frequencies of scale 0.1, 8 outputs), and
# TabM (8 members) with piecewise-linear embeddings. bench/defaults.py measured each alone.
FIRST_TRIALS: list[dict] = [
    {},
    {"numeric_embedding": "periodic", "n_frequencies": 16, "d_embedding": 8, "frequency_init_scale": 0.1},
    {"arch": "tabm", "hidden_layers": 2, "units": 256},
]

# Numeric embeddings give every numeric column d_embedding inputs: on a table wider than this,
# the first layer alone would hold columns x d_embedding x units weights (a 5000-column table:
# 20M, and an epoch of 300 rows took 3.9 s instead of 0.1 s). There the default recipe and the
# default search use the columns as they are (numeric_embedding=None).
EMBEDDING_MAX_COLUMNS = 512


def wide(n_numeric: int) -> bool:
    """Whether a table with ``n_numeric`` numeric columns is too wide for numeric embeddings
    by default (`EMBEDDING_MAX_COLUMNS`)."""
    return n_numeric > EMBEDDING_MAX_COLUMNS


__all__ = ["CLASSIC", "EMBEDDING_MAX_COLUMNS", "FIRST_TRIALS", "wide"]
