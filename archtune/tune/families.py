"""How each family samples itself from a trial (define-by-run, the Optuna idiom).

A sampling function asks a `Sampler` (archtune.tune.sampler) for the parameters it needs, in
plain Python: conditions are ``if`` statements. SELU goes without batch/layer norm (it
normalises itself); momentum is searched only for the SGD optimisers; warm-up only where the
schedule has none of its own; the learning-rate range follows the optimiser family.

A body (``@register_body``) chooses the network's family and size for a kind of data: tables,
images, or the small preset. Encoders (``@register_encoder``) add the dimensions of the parts
that read text columns, time series and columns of image paths.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from archtune.families import family_spec

if TYPE_CHECKING:
    from archtune.tune.sampler import Sampler

SamplingFunction = Callable[["Sampler"], None]
BODIES: dict[str, SamplingFunction] = {}
ENCODERS: dict[str, SamplingFunction] = {}


def register_body(name: str) -> Callable[[SamplingFunction], SamplingFunction]:
    """Register a body's sampling function under the kind of data it is for."""
    def decorate(function: SamplingFunction) -> SamplingFunction:
        BODIES[name] = function
        return function

    return decorate


def register_encoder(name: str) -> Callable[[SamplingFunction], SamplingFunction]:
    """Register an encoder's sampling function under the kind of column it reads."""
    def decorate(function: SamplingFunction) -> SamplingFunction:
        ENCODERS[name] = function
        return function

    return decorate


def _adaptive(optimizer: str) -> bool:
    return optimizer in ("adam", "adamw", "nadam", "rmsprop", "adagrad")


def sample_training(s: "Sampler", optimizers: Sequence[str] = ("adamw", "adam", "nesterov", "rmsprop"),
                    batch_sizes: Sequence[int] = (32, 64, 128, 256, 512, 1024),
                    schedules: Sequence[str] = ("constant", "cosine", "one_cycle"),
                    weight_decay: tuple[float, float] = (1e-6, 1e-1),
                    adaptive_rates: tuple[float, float] = (1e-5, 1e-2),
                    sgd_rates: tuple[float, float] = (1e-4, 1e-1)) -> None:
    """The optimiser, its rate, the batch size, the schedule and weight decay."""
    s.float("weight_decay", *weight_decay, log=True)
    optimizer = s.choice("optimizer", optimizers)
    if optimizer in ("momentum", "nesterov"):
        s.float("momentum", 0.8, 0.99)
    else:
        s.fixed("momentum", 0.9)
    # Adaptive optimisers want smaller rates than SGD.
    s.float("learning_rate", *(adaptive_rates if _adaptive(optimizer) else sgd_rates), log=True)
    s.choice("batch_size", batch_sizes)
    schedule = s.choice("lr_schedule", schedules)
    if "one_cycle" in schedules:
        if schedule != "one_cycle":
            s.int("warmup_epochs", 0, 5)
        else:
            s.fixed("warmup_epochs", 0)  # one_cycle warms up by itself


def sample_dense(s: "Sampler", activations: Sequence[str] = ("relu", "leaky_relu", "elu", "selu", "gelu", "silu")) -> None:
    """Depth, width, shape, activation (with its matching initialiser), norm and dropout of
    the MLP and ResNet families."""
    s.int("hidden_layers", 1, 8)
    s.int("units", 16, 1024, log=True)
    s.choice("shape", ("constant", "funnel", "pyramid"))
    activation = s.choice("activation", activations)
    s.fixed("initializer", "auto")
    if activation != "selu":
        s.choice("norm", (None, "batch", "layer"))
    else:
        s.fixed("norm", None)  # SELU normalises itself (and gets AlphaDropout)
    s.float("dropout", 0.0, 0.5)


@register_body("table")
def sample_table(s: "Sampler") -> None:
    """Tables: the families of the published recipes, around archtune's default recipe
    (archtune.recipes): a plain MLP or ResNet, with or without numeric embeddings (periodic
    or piecewise-linear, Gorishniy et al. 2022), and TabM (BatchEnsemble, Gorishniy et al.
    2025). The ranges follow the TabM paper's tuning spaces, narrowed so that a few-minute
    search on a 2-core CPU finishes enough trials; the recipe's other parts (robust scaling,
    parametric activations, the feature scale, label smoothing, the regularisation schedules)
    stay at the estimator's defaults."""
    arch = s.choice("arch", ("mlp", "resnet", "tabm"))
    embedding = s.choice("numeric_embedding", (None, "periodic", "piecewise_linear"))
    if embedding == "periodic":
        s.float("frequency_init_scale", 0.01, 1.0, log=True)
        s.int("n_frequencies", 8, 64, log=True)
        s.int("d_embedding", 4, 32, log=True)
    elif embedding == "piecewise_linear":
        s.int("n_bins", 8, 96, log=True)
        s.int("d_embedding", 4, 32, log=True)
    if arch == "tabm":
        s.int("hidden_layers", 1, 3)
        s.int("units", 64, 256, log=True)
    else:
        s.int("hidden_layers", 1, 4)
        s.int("units", 64, 512, log=True)
    own = family_spec(arch).sample  # the family's own parameters (TabM's k), as it declares
    if own is not None:
        own(s)
    s.float("dropout", 0.0, 0.5)
    s.float("weight_decay", 1e-5, 0.3, log=True)
    s.float("learning_rate", 3e-4, 1e-2, log=True)
    s.choice("lr_schedule", ("coslog", "cosine", "constant"))


@register_body("classic")
def sample_classic(s: "Sampler") -> None:
    """The wide space of archtune before the recipes: an MLP or ResNet of 1-8 layers of 16-1024
    units, any activation, norm and optimiser (space="classic")."""
    from archtune.recipes import CLASSIC

    s.choice("arch", ("mlp", "resnet"))
    sample_dense(s)
    sample_training(s)
    for name, value in CLASSIC.items():  # what the classic space did not search: the classic defaults
        if name not in s.params and name != "max_epochs":
            s.fixed(name, value)


@register_body("small")
def sample_small(s: "Sampler") -> None:
    """A small MLP space for quick searches."""
    s.fixed("arch", "mlp")
    s.int("hidden_layers", 1, 3)
    s.int("units", 32, 256, log=True)
    s.choice("activation", ("relu", "gelu"))
    s.float("dropout", 0.0, 0.3)
    s.float("weight_decay", 1e-6, 1e-2, log=True)
    s.fixed("optimizer", "adamw")
    s.float("learning_rate", 1e-4, 1e-2, log=True)
    s.choice("batch_size", (64, 128, 256, 512))
    s.choice("lr_schedule", ("constant", "cosine"))


@register_body("images")
def sample_cnn(s: "Sampler") -> None:
    """Images: the convolutional family's depth, filters, kernel, separable or not, pooling and
    dropout; a small dense head. conv_blocks=0 is the dense family on the pixels (an MLP), so
    the search weighs both families."""
    s.fixed("arch", "cnn")
    blocks = s.int("conv_blocks", 0, 3)
    if blocks > 0:
        s.choice("filters", (16, 32, 64))
        s.choice("kernel_size", (3, 5))
        s.choice("separable", (False, True))
        s.choice("residual", (False, True))
        s.choice("pooling", ("max", "avg"))
        s.int("hidden_layers", 0, 2)
    else:
        # An MLP on pixels needs at least one hidden layer to be more than a linear model.
        s.int("hidden_layers", 1, 3)
    s.choice("units", (64, 128, 256))
    s.choice("activation", ("relu", "gelu"))
    s.float("dropout", 0.0, 0.5)
    sample_training(s, optimizers=("adamw", "nesterov"), batch_sizes=(64, 128, 256), schedules=("constant", "cosine"),
                    weight_decay=(1e-6, 1e-2), adaptive_rates=(1e-4, 1e-2), sgd_rates=(1e-3, 1e-1))


# The factor's range: from nearly frozen copied layers (the body moves at 1% of the head's rate)
# to none (everything at the same rate, as training from the source's weights alone).
FINE_TUNE_LR_FACTORS = (0.01, 1.0)


def sample_fine_tuning(s: "Sampler") -> None:
    """A search whose trials start from one trained network (``init_from`` fixed): whether the
    body is frozen for the first epochs (the head trained alone, then everything fine-tuned)
    and the rate of the copied layers relative to the new ones, log-scaled (Keras'
    transfer-learning guide; Howard & Ruder 2018). Freezing a number of layers depends on the
    source's depth: a user's override (``freeze=["body", 2, None]``) searches it."""
    s.choice("freeze", (None, "body"))
    s.float("fine_tune_lr_factor", *FINE_TUNE_LR_FACTORS, log=True)


@register_encoder("text")
def sample_text_encoder(s: "Sampler") -> None:
    """Text columns: the sequence encoder and its embedding."""
    kind = s.choice("sequence", ("conv", "lstm", "gru"))
    s.choice("embedding_dim", (32, 64, 128))
    s.choice("sequence_units", (64, 128, 256))
    if kind != "conv":
        s.choice("bidirectional", (False, True))
    else:
        s.fixed("bidirectional", False)


@register_encoder("series")
def sample_series_encoder(s: "Sampler") -> None:
    """Time series (N x T x F arrays, arch="sequence"): the encoder without an embedding."""
    kind = s.choice("sequence", ("conv", "lstm", "gru"))
    s.choice("sequence_units", (64, 128, 256))
    if kind != "conv":
        s.choice("bidirectional", (False, True))
    else:
        s.fixed("bidirectional", False)


@register_encoder("image_columns")
def sample_image_encoder(s: "Sampler") -> None:
    """Columns of image paths in a table: their conv encoders."""
    s.int("conv_blocks", 1, 3)
    s.choice("filters", (16, 32, 64))
    s.choice("kernel_size", (3, 5))
    s.choice("separable", (False, True))
    s.choice("residual", (False, True))
    s.choice("pooling", ("max", "avg"))


__all__ = ["BODIES", "ENCODERS", "FINE_TUNE_LR_FACTORS", "register_body", "register_encoder", "sample_dense",
           "sample_fine_tuning", "sample_training"]
