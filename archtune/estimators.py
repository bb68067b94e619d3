"""scikit-learn estimators: `NeuralClassifier` and `NeuralRegressor`.

They only glue data + Config + trainer together: ``fit`` validates the parameters into a
`ModelConfig` and `TrainConfig`, preprocesses the table, builds the network from the model
registry and hands everything to the `Trainer`.
"""

from __future__ import annotations

import warnings
import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted

from archtune.checks import check_choice, check_number
from archtune.config import (
    CLASSIFICATION_LOSSES,
    REGRESSION_LOSSES,
    ModelConfig,
    TrainConfig,
    resolve_batch_size,
    resolve_hidden_sizes,
)
from archtune.data.images import flatten_images, is_image_array
from archtune.data.preprocess import Preprocessor, as_frame, column_differences, infer_column_kinds, list_columns
from archtune.data.target import check_varies, encode_classes, regression_target, target_array
from archtune.errors import DataError, InvalidParameterError, nearest
from archtune.models import InputSpec, build_model
from archtune.train import Callback, ProgressBar, Trainer
from archtune.train.loop import predict_tensor
from archtune.train.losses import constant_prediction_loss, make_loss, make_metric


AUTO_LR_PLACEHOLDER = 1e-3


@dataclass
class Prepared:
    """What `_NeuralBase._prepare` produces: tensors and configs, ready for a trainer."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor | None
    y_val: torch.Tensor | None
    targets_train: np.ndarray
    seed: int
    model_config: ModelConfig
    train_config: TrainConfig
    spec: InputSpec
    device: torch.device


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    check_choice("device", device, ("auto", "cpu", "cuda"))
    if device == "cuda" and not torch.cuda.is_available():
        raise InvalidParameterError("device='cuda' was requested but no CUDA GPU is available; use device='auto'")
    return torch.device(device)


def _seed_from(random_state: Any) -> int:
    if random_state is None:
        return int(np.random.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    return check_number("random_state", random_state, 0, 2**32 - 1, integer=True)


class _NeuralBase(BaseEstimator):
    """Shared parameters and machinery of the neural estimators.

    Parameters
    ----------
    arch : {"mlp", "resnet", "cnn", "sequence", "wide_deep", "layers"}
        Network family; "resnet" is an MLP with skip connections around each hidden layer;
        "cnn" convolutional blocks for images; "sequence" an encoder for token or N x T x F
        series input; "wide_deep" a wide part beside the MLP (see ``inputs``); "layers" a
        declared layer list (see ``layers``).
    hidden_layers, units, shape :
        Depth, widest layer and how widths change with depth ("constant", "funnel" = halving
        per layer, "pyramid" = linear taper toward the output).
    hidden_sizes : tuple of int, optional
        Explicit widths; overrides the three above.
    activation : str
        relu, leaky_relu, prelu, elu, selu, gelu, silu (swish), mish, tanh, sigmoid,
        softplus or linear.
    initializer : str
        "auto" (He for the ReLU family, Glorot for tanh/sigmoid/linear, LeCun for SELU), or
        glorot_uniform, glorot_normal, he_uniform, he_normal, lecun_normal, orthogonal.
    dropout : float
        Dropout rate after each hidden layer (AlphaDropout with SELU), and spatial dropout
        after each conv block.
    conv_blocks, filters, kernel_size, strides, padding, pooling, separable, residual :
        The conv blocks of arch="cnn" and of image-path columns: how many (0 = the pixels go
        straight to the dense layers), filters in the first (doubled per block), kernel size,
        stride and padding ("same" or "valid") of each convolution, pooling after each block
        ("max", "avg" or "none"), depthwise-separable convolutions, residual blocks.
    augment : bool or str
        Training-time image augmentation: True (shift and flip), False, or a comma-separated
        list of shift, flip, rotate, crop.
    norm : {None, "batch", "layer"}
    l1, l2 : float
        Penalties on the weights, added to the loss.
    weight_decay : float
        Decoupled weight decay (AdamW-style), for every optimiser.
    max_norm : float, optional
        Upper bound on each hidden unit's incoming weight norm, enforced after every step.
    gradient_clip : float, optional
        Clip the global gradient norm to this value.
    optimizer : str
        sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw or nadam.
    learning_rate : float or "auto"
        "auto" runs the learning-rate finder (`archtune.lr_find`, range test) on the training
        rows first and trains with its suggestion (kept in ``learning_rate_``).
    momentum : float
        SGD's momentum and the Adam family's beta1.
    batch_size : int, "auto" or "full"
        "auto" aims at ~50 steps per epoch (32 to 512); "full" is full-batch descent.
    max_epochs : int
    lr_schedule : str
        constant, step, exponential, cosine, one_cycle or plateau.
    warmup_epochs : int
        Linear learning-rate warm-up.
    early_stopping : bool
        Stop when the validation loss stops improving, and restore the best epoch's weights.
    patience : int
    min_delta : float
    validation_fraction : float
        Share of the training rows held out for early stopping, unless ``validation_data``
        is passed to ``fit``.
    loss : str
        "auto" (cross-entropy for classification, mse for regression), or mse, mae, huber.
    class_weight : "balanced", dict or None
        Classifier only: weights of the classes in the loss.
    scaling : {"standard", "quantile", None}
        How numeric columns are scaled.
    categorical : {"embedding", "onehot"}
        How categorical columns are encoded.
    random_state : int, optional
    device : {"auto", "cpu", "cuda"}
    verbose : int
        0 silent, 1 a progress bar.

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained network (a `TabularNetwork`, which takes the preprocessed matrix).
    learning_rate_ : float
        The learning rate used (the finder's suggestion when ``learning_rate="auto"``).
    history_ : pandas.DataFrame
        One row per epoch: train_loss, val_loss, val_<metric>, lr, seconds.
    best_epoch_ : int
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame with string column names.
    preprocessor_ : Preprocessor
    """

    _task_losses: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        arch: str = "mlp",
        hidden_layers: int = 2,
        units: int = 256,
        shape: str = "constant",
        hidden_sizes: tuple[int, ...] | None = None,
        activation: str = "relu",
        initializer: str = "auto",
        dropout: float = 0.1,
        norm: str | None = None,
        conv_blocks: int = 2,
        filters: int = 32,
        kernel_size: int = 3,
        strides: int = 1,
        padding: str = "same",
        pooling: str = "max",
        separable: bool = False,
        residual: bool = False,
        augment: bool | str = True,
        inputs: dict | None = None,
        layers: list | None = None,
        sequence: str = "conv",
        embedding_dim: int = 64,
        sequence_units: int = 128,
        bidirectional: bool = False,
        l1: float = 0.0,
        l2: float = 0.0,
        weight_decay: float = 1e-4,
        max_norm: float | None = None,
        gradient_clip: float | None = None,
        optimizer: str = "adamw",
        learning_rate: float | str = 1e-3,
        momentum: float = 0.9,
        batch_size: int | str = "auto",
        max_epochs: int = 100,
        lr_schedule: str = "plateau",
        warmup_epochs: int = 1,
        early_stopping: bool = True,
        patience: int = 10,
        min_delta: float = 0.0,
        validation_fraction: float = 0.1,
        loss: str = "auto",
        class_weight: str | dict | None = None,
        scaling: str | None = "standard",
        categorical: str = "embedding",
        random_state: int | None = None,
        device: str = "auto",
        verbose: int = 0,
    ):
        self.arch = arch
        self.hidden_layers = hidden_layers
        self.units = units
        self.shape = shape
        self.hidden_sizes = hidden_sizes
        self.activation = activation
        self.initializer = initializer
        self.dropout = dropout
        self.norm = norm
        self.conv_blocks = conv_blocks
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.padding = padding
        self.pooling = pooling
        self.separable = separable
        self.residual = residual
        self.augment = augment
        self.inputs = inputs
        self.layers = layers
        self.sequence = sequence
        self.embedding_dim = embedding_dim
        self.sequence_units = sequence_units
        self.bidirectional = bidirectional
        self.l1 = l1
        self.l2 = l2
        self.weight_decay = weight_decay
        self.max_norm = max_norm
        self.gradient_clip = gradient_clip
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.lr_schedule = lr_schedule
        self.warmup_epochs = warmup_epochs
        self.early_stopping = early_stopping
        self.patience = patience
        self.min_delta = min_delta
        self.validation_fraction = validation_fraction
        self.loss = loss
        self.class_weight = class_weight
        self.scaling = scaling
        self.categorical = categorical
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    # ------------------------------------------------------------------ configs

    def model_config(self) -> ModelConfig:
        """The validated `ModelConfig` these parameters describe."""
        sizes = resolve_hidden_sizes(self.hidden_layers, self.units, self.shape, self.hidden_sizes)
        return ModelConfig(arch=self.arch, hidden_sizes=sizes, activation=self.activation,
                           initializer=self.initializer, dropout=self.dropout, norm=self.norm,
                           conv_blocks=self.conv_blocks, filters=self.filters, kernel_size=self.kernel_size,
                           strides=self.strides, padding=self.padding, pooling=self.pooling, separable=self.separable, residual=self.residual,
                           augment=self.augment,
                           image_shape=getattr(self, "image_shape_", ()),
                           series_shape=getattr(self, "series_shape_", ()), layers=self.layers or (),
                           sequence=self.sequence, embedding_dim=self.embedding_dim,
                           sequence_units=self.sequence_units, bidirectional=self.bidirectional)

    def train_config(self, n_train: int, seed: int) -> TrainConfig:
        """The validated `TrainConfig` for ``n_train`` training rows."""
        if isinstance(self.learning_rate, str) and not self._auto_lr:
            raise InvalidParameterError(f"learning_rate must be a positive number or 'auto'; "
                                        f"got learning_rate={self.learning_rate!r}")
        loss = self.loss
        if loss == "auto":
            loss = self._task_losses[0]
        check_choice("loss", loss, ("auto", *self._task_losses))
        return TrainConfig(
            # "auto" is resolved by the learning-rate finder once the data is prepared
            # (_resolve_learning_rate); the placeholder only lets the other values be checked.
            optimizer=self.optimizer, learning_rate=AUTO_LR_PLACEHOLDER if self._auto_lr else self.learning_rate,
            momentum=self.momentum,
            weight_decay=self.weight_decay, l1=self.l1, l2=self.l2, max_norm=self.max_norm,
            gradient_clip=self.gradient_clip, batch_size=resolve_batch_size(self.batch_size, n_train),
            max_epochs=self.max_epochs, lr_schedule=self.lr_schedule, warmup_epochs=self.warmup_epochs,
            early_stopping=self.early_stopping, patience=self.patience, min_delta=self.min_delta,
            loss=loss, seed=seed,
        )

    @property
    def _auto_lr(self) -> bool:
        return isinstance(self.learning_rate, str) and self.learning_rate == "auto"

    def _resolve_learning_rate(self, prepared: "Prepared") -> "Prepared":
        """With ``learning_rate="auto"``, the finder's suggestion for this network on the
        prepared training rows; sets ``learning_rate_`` either way."""
        if not self._auto_lr:
            self.learning_rate_ = float(self.learning_rate)
            return prepared
        from archtune.doctor.lr_finder import find_on_prepared

        self.learning_rate_ = find_on_prepared(self, prepared).suggestion
        return dataclasses.replace(prepared, train_config=dataclasses.replace(prepared.train_config,
                                                                             learning_rate=self.learning_rate_))

    def _validate_params(self) -> ModelConfig:
        model_config = self.model_config()
        self.train_config(1000, 0)  # validates every training parameter before any data work
        check_number("validation_fraction", self.validation_fraction, 0.0, 1.0, high_open=True)
        check_choice("verbose", self.verbose, (0, 1, 2, False, True))
        Preprocessor(self.scaling, self.categorical)
        resolve_device(self.device)
        return model_config

    # ------------------------------------------------------------------ fit

    def fit(self, X: Any, y: Any, validation_data: tuple[Any, Any] | None = None,
            callbacks: list[Callback] | None = None) -> "_NeuralBase":
        """Train a network on (X, y).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Numeric, categorical (string, category, bool) and missing values are accepted.
        y : array-like
            Class labels of any hashable type, or real values (2-D for multi-output regression).
        validation_data : (X_val, y_val), optional
            Used for early stopping instead of a split of (X, y).
        callbacks : list of archtune.train.Callback, optional
            Extra callbacks for the trainer (e.g. to report each epoch to a tuner).
        """
        prepared = self._resolve_learning_rate(self._prepare(X, y, validation_data))
        callbacks = [*(callbacks or []), *([ProgressBar(type(self).__name__)] if self.verbose else [])]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(prepared.seed)  # dropout masks draw from the global generator
            module = self._build_module(prepared)
            trainer = Trainer(
                module, self._make_loss(prepared), prepared.train_config, metric=make_metric(self._task),
                metric_name=self._metric_name, callbacks=callbacks, device=prepared.device,
                divergence_limit=self._divergence_limit(),
            )
            trainer.fit(prepared.X_train, prepared.y_train, prepared.X_val, prepared.y_val)
        return self._finish(prepared, module, trainer.history.records, trainer.best_epoch)

    # The three stages of fit, shared with population training (archtune.population), which
    # prepares once per cohort, trains many modules together and finishes each member.

    def _prepare(self, X: Any, y: Any, validation_data: tuple[Any, Any] | None) -> "Prepared":
        """Validate, split and preprocess; set the data-derived fitted attributes."""
        X = self._images_to_rows(_dict_to_frame(X, "X"), "X", fitting=True)
        model_config = self._validate_params()
        if y is None:
            raise DataError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        frame, named = as_frame(X, "X")
        y_arr = target_array(y, "y")
        if len(frame) != len(y_arr):
            raise DataError(f"X has {len(frame)} rows but y has {len(y_arr)}; they must match row for row")
        if len(frame) < 2:
            raise DataError(f"at least 2 rows are needed to train; got n_samples={len(frame)} (1 sample)")
        if frame.shape[1] == 0:
            raise DataError(f"X has 0 feature(s) (shape=({len(frame)}, 0)) while a minimum of 1 is required.")
        self.n_features_in_ = frame.shape[1]
        if named:
            self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        kinds = infer_column_kinds(frame, "X")  # whole table: errors name the user's row numbers
        targets = self._fit_target(y_arr)
        seed = _seed_from(self.random_state)

        if validation_data is not None:
            X_val_raw, y_val_raw = validation_data
            self.preprocessor_ = None  # _check_frame matches columns by the fitted names only
            frame_val = self._check_frame(X_val_raw, "validation_data X")
            targets_val = self._encode_target(target_array(y_val_raw, "validation_data y"), "validation_data y")
            frame_tr, targets_tr = frame, targets
        else:
            frame_tr, frame_val, targets_tr, targets_val = self._split(frame, targets, seed)

        pre = Preprocessor(self._scaling(), self.categorical).fit(frame_tr, "X", kinds)
        self.preprocessor_ = pre
        model_config = self._with_inputs(model_config, pre)
        X_tr = torch.from_numpy(pre.transform(frame_tr, "X"))
        X_va = torch.from_numpy(pre.transform(frame_val, "X")) if frame_val is not None else None
        self._fit_target_scale(targets_tr)
        y_tr = self._target_tensor(targets_tr)
        y_va = self._target_tensor(targets_val) if targets_val is not None else None
        return Prepared(
            X_train=X_tr, y_train=y_tr, X_val=X_va, y_val=y_va, targets_train=targets_tr, seed=seed,
            model_config=model_config, train_config=self.train_config(len(X_tr), seed),
            spec=InputSpec.auto(pre.n_numeric_out, pre.cardinalities, pre.text_columns,
                                                        pre.image_columns), device=resolve_device(self.device))

    def _build_module(self, prepared: "Prepared") -> torch.nn.Module:
        """The initial network: the same seed gives the same weights, alone or in a cohort."""
        generator = torch.Generator().manual_seed(prepared.seed)
        return build_model(prepared.model_config, prepared.spec, self._n_outputs(), self._task, generator)

    def _make_loss(self, prepared: "Prepared"):
        return make_loss(self._task, prepared.train_config.loss, self._loss_weights(prepared.targets_train),
                         prepared.device)

    def _divergence_limit(self) -> float:
        return 100 * constant_prediction_loss(self._task, self._n_outputs())

    def _finish(self, prepared: "Prepared", module: torch.nn.Module, records: list[dict[str, Any]],
                best_epoch: int) -> "_NeuralBase":
        self.module_ = module.eval()
        self.history_ = pd.DataFrame(records)
        self.best_epoch_ = best_epoch if prepared.train_config.early_stopping else len(self.history_)
        self.input_spec_ = prepared.spec
        self.model_config_ = prepared.model_config
        return self

    def _split(self, frame: pd.DataFrame, targets: np.ndarray, seed: int):
        n = len(frame)
        n_val = int(round(self.validation_fraction * n)) if self.early_stopping else 0
        if n_val < 1 or n - n_val < 1:
            return frame, None, targets, None
        stratify = self._stratify(targets, n_val)
        idx_tr, idx_va = train_test_split(np.arange(n), test_size=n_val, random_state=seed % (2**32),
                                          stratify=stratify)
        return (frame.iloc[idx_tr], frame.iloc[idx_va], targets[idx_tr], targets[idx_va])

    def _stratify(self, targets: np.ndarray, n_val: int) -> np.ndarray | None:
        return None

    # ------------------------------------------------------------------ predict

    def _scaling(self) -> str | None:
        """Token codes feeding an Embedding layer must reach it unscaled, and so must padding
        that a first Masking layer recognises by its value (scaled, 0.0 padding would no
        longer equal mask_value and nothing would be masked)."""
        from archtune.models.layer_list import Embedding, Masking, check_layers

        first = check_layers(self.layers)[:1] if self.arch == "layers" and self.layers else ()
        if first and isinstance(first[0], (Embedding, Masking)):
            return None
        return self.scaling

    def _with_inputs(self, model_config: ModelConfig, pre: Preprocessor) -> ModelConfig:
        """Wide&Deep: ``inputs={"wide": [...], "deep": [...], "cross": [[a, b], ...]}`` as positions
        in the preprocessed matrix. Wide columns must be numeric; categorical columns always
        feed the deep path (through their embeddings); "deep" defaults to every other column."""
        if self.inputs is None:
            return model_config
        if not isinstance(self.inputs, dict) or not set(self.inputs) <= {"wide", "deep", "cross"}:
            raise InvalidParameterError(f"inputs must be a dict with keys 'wide', 'deep' (optional) and 'cross' "
                                        f"(optional); got inputs={self.inputs!r}")
        if self.arch != "wide_deep":
            raise InvalidParameterError(f"inputs={{'wide': ...}} needs arch='wide_deep'; got arch={self.arch!r}")
        columns = pre.columns_
        numeric_at = {name: j for j, name in enumerate(pre.numeric_)}
        indicator_at = {name: len(pre.numeric_) + k for k, name in enumerate(pre.indicators_)}

        def names(key: str) -> list[str]:
            value = self.inputs.get(key, [])  # type: ignore[union-attr]
            value = [value] if isinstance(value, str) else list(value)
            # A name of a dict input (X={"wide": array, ...}) stands for all its columns.
            value = [c for name in value for c in (_group_columns(str(name), columns) or [name])]
            for name in value:
                if str(name) not in columns:
                    raise InvalidParameterError(f"inputs[{key!r}]: no column {name!r}{nearest(str(name), columns)}")
            return [str(v) for v in value]

        wide = names("wide")
        if not wide:
            raise InvalidParameterError("inputs['wide'] is empty: name the columns that go straight to the output")
        for name in wide:
            if name not in numeric_at:
                raise InvalidParameterError(f"inputs['wide']: column {name!r} is categorical; wide columns must be "
                                            "numeric (categorical columns feed the deep path through embeddings)")
        deep = names("deep") if "deep" in self.inputs else [c for c in columns if c not in wide]
        wide_positions = [numeric_at[n] for n in wide] + [indicator_at[n] for n in wide if n in indicator_at]
        n_float = len(pre.numeric_) + len(pre.indicators_)
        deep_positions = ([numeric_at[n] for n in deep if n in numeric_at]
                          + [indicator_at[n] for n in deep if n in indicator_at]
                          + list(range(n_float, pre.n_numeric_out + len(pre.cardinalities)
                                       + sum(n for _, n in pre.text_columns)
                                       + sum(c * h * w for c, h, w in pre.image_columns))))
        if not deep_positions:
            raise InvalidParameterError(
                f"inputs: the deep path has no columns (every column is wide{' or deep is empty' if 'deep' in self.inputs else ''}); "
                "name some in inputs['deep'], or for a linear model on these columns use arch='mlp' with "
                "hidden_layers=0")
        crosses = []
        cross = self.inputs.get("cross", [])
        if not isinstance(cross, (list, tuple)):
            raise InvalidParameterError(f"inputs['cross'] must be a list of pairs of wide columns, like [['a', 'b']]; "
                                        f"got {cross!r}")
        for pair in cross:
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise InvalidParameterError(f"inputs['cross']: each cross is a pair of wide columns, like "
                                            f"[['a', 'b']]; got {pair!r}")
            for name in map(str, pair):
                if name not in columns and _group_columns(name, columns):
                    raise InvalidParameterError(f"inputs['cross']: {name!r} is a group of columns; a cross multiplies "
                                                f"two single columns, like {_group_columns(name, columns)[0]!r}")
                if name not in columns:
                    raise InvalidParameterError(f"inputs['cross']: no column {name!r}{nearest(name, columns)}")
                if name not in wide:
                    raise InvalidParameterError(f"inputs['cross']: {name!r} is not a wide column; crosses multiply "
                                                f"wide columns (add it to inputs['wide'])")
            crosses.append((numeric_at[str(pair[0])], numeric_at[str(pair[1])]))
        return dataclasses.replace(model_config, wide_columns=tuple(wide_positions),
                                   deep_columns=tuple(deep_positions), crosses=tuple(crosses))

    def _images_to_rows(self, X: Any, what: str, fitting: bool) -> Any:
        """Images (N x C x H x W or N x H x W arrays) as rows of pixels, and with
        ``arch="sequence"`` or ``"layers"`` time series (N x T x F) as rows of T*F values; other
        X unchanged.
        Fitting records ``image_shape_`` (C, H, W) or ``series_shape_`` (T, F); later calls
        must match it."""
        if fitting:
            for name in ("image_shape_", "series_shape_"):
                if hasattr(self, name):
                    delattr(self, name)
        if not is_image_array(X):
            return X
        if self.arch in ("sequence", "layers") and X.ndim == 3:
            # Time series, not grey images: kept as they are and scaled per step and feature
            # by the preprocessor like any numeric column.
            rows, shape, name = np.asarray(X, dtype=np.float32).reshape(len(X), -1), tuple(X.shape[1:]), "series"
            if not np.isfinite(rows).all():
                raise DataError(f"{what}: series {int(np.flatnonzero(~np.isfinite(rows).all(axis=1))[0])} has NaN "
                                "or infinite values")
        else:
            (rows, shape), name = flatten_images(X, what), "image"
        if fitting:
            setattr(self, f"{name}_shape_", shape)
        elif getattr(self, f"{name}_shape_", None) not in (None, shape):
            plural = "images" if name == "image" else "series"
            raise DataError(f"{what} holds {plural} of shape {shape}, but {type(self).__name__} was fitted on "
                            f"{plural} of shape {getattr(self, f'{name}_shape_')}")
        return rows

    def _check_frame(self, X: Any, what: str = "X") -> pd.DataFrame:
        """X checked against the columns seen in fit, in the preprocessor's column names."""
        X = self._images_to_rows(_dict_to_frame(X, what), what, fitting=False)
        frame, named = as_frame(X, what)
        fitted_names = getattr(self, "feature_names_in_", None)
        pre = getattr(self, "preprocessor_", None)
        expected = list(pre.columns_) if pre is not None else None
        if fitted_names is not None and named:
            return _match_columns(frame, list(fitted_names), type(self).__name__, what)
        if fitted_names is not None and not named:
            warnings.warn(f"{what} does not have valid feature names, but {type(self).__name__} "
                          "was fitted with feature names", UserWarning, stacklevel=3)
        elif fitted_names is None and named:
            warnings.warn(f"{what} has feature names, but {type(self).__name__} was fitted "
                          "without feature names", UserWarning, stacklevel=3)
        if frame.shape[1] != self.n_features_in_:
            raise DataError(f"{what} has {frame.shape[1]} features, but {type(self).__name__} is "
                            f"expecting {self.n_features_in_} features as input")
        return frame.set_axis(expected, axis=1) if expected is not None else frame

    def _outputs(self, X: Any) -> torch.Tensor:
        check_is_fitted(self, "module_")
        frame = self._check_frame(X)
        matrix = torch.from_numpy(self.preprocessor_.transform(frame, "X"))
        device = next(self.module_.parameters()).device
        return predict_tensor(self.module_, matrix.to(device)).cpu().double()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing values are imputed, with an indicator column
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags

    # Task hooks, set or overridden by the subclasses: _task, _metric_name, _fit_target,
    # _encode_target, _target_tensor, _n_outputs.

    def _fit_target_scale(self, targets: np.ndarray) -> None:
        pass

    def _loss_weights(self, targets: np.ndarray) -> torch.Tensor | None:
        return None


def _dict_to_frame(X: Any, what: str) -> Any:
    """Multiple inputs as a dict of arrays: {"wide": [n, 2], "deep": [n, 30], "price": [n]}
    becomes one table with columns "wide[0]", "wide[1]", "deep[0]", ..., "price"."""
    import scipy.sparse

    # scipy's dok_array is a dict subclass: leave sparse input to the sparse-input error.
    if not isinstance(X, dict) or scipy.sparse.issparse(X):
        return X
    parts = {}
    lengths = set()
    for name, value in X.items():
        array = value.to_numpy() if isinstance(value, (pd.DataFrame, pd.Series)) else np.asarray(value)
        if array.ndim > 2:
            raise DataError(f"{what}[{name!r}] has shape {array.shape}: dict inputs take 1-D or 2-D arrays; put "
                            "images in a column of image paths, or fit arch='cnn' on the image array alone")
        lengths.add(len(array))
        if array.ndim == 1:
            parts[str(name)] = array
        else:
            parts.update({f"{name}[{j}]": array[:, j] for j in range(array.shape[1])})
    if len(lengths) > 1:
        raise DataError(f"{what}: the dict's arrays have different row counts {sorted(lengths)}")
    return pd.DataFrame(parts)


def _group_columns(name: str, columns: list[str]) -> list[str]:
    return [c for c in columns if c.startswith(f"{name}[") and c.endswith("]")]


def _match_columns(frame: pd.DataFrame, fitted: list[str], owner: str, what: str) -> pd.DataFrame:
    """Select the fitted columns by name; missing or reordered columns are errors, extra ones
    are ignored with a warning."""
    given = [str(c) for c in frame.columns]
    missing, hint, extra = column_differences(fitted, given)
    if missing:
        raise DataError(f"{what} is missing {len(missing)} column(s) that {owner} was fitted with: "
                        f"{list_columns(missing)}{hint}")
    if extra:
        warnings.warn(f"{what} has {len(extra)} column(s) not seen in fit, ignored: {list_columns(extra)}",
                      UserWarning, stacklevel=4)
        given = [c for c in given if c in fitted]
    if given != fitted:
        first = next(i for i, (a, b) in enumerate(zip(given, fitted)) if a != b)
        raise DataError(f"{what} has its columns in a different order than in fit: position {first + 1} "
                        f"is {given[first]!r} but {owner} was fitted with {fitted[first]!r} there; "
                        f"reorder with X[model.feature_names_in_]")
    return frame[fitted]


class NeuralClassifier(ClassifierMixin, _NeuralBase):
    __doc__ = ("A feed-forward network for classification, with expert defaults.\n\n"
               "Binary targets get one sigmoid output and binary cross-entropy; more classes get\n"
               "softmax and cross-entropy. Labels may be of any hashable type.\n"
               + _NeuralBase.__doc__.split("\n", 1)[1]
               + "    classes_ : ndarray\n        The class labels.\n")

    _task_losses = CLASSIFICATION_LOSSES
    _metric_name = "accuracy"

    @property
    def _task(self) -> str:  # type: ignore[override]
        return "binary" if len(self.classes_) == 2 else "multiclass"

    def _fit_target(self, y: np.ndarray) -> np.ndarray:
        if y.dtype.kind == "f" and np.isfinite(y).all() and np.any(np.mod(y, 1) != 0):
            raise DataError("Unknown label type: y holds continuous values (e.g. "
                            f"{y[np.flatnonzero(np.mod(y, 1) != 0)[0]]!r}); use NeuralRegressor for a continuous target")
        self.classes_, codes = encode_classes(y, "y")
        self._validate_class_weight()
        return codes

    def _encode_target(self, y: np.ndarray, what: str) -> np.ndarray:
        classes, codes = np.unique(y, return_inverse=True) if len(y) else (np.array([]), np.array([], int))
        unknown = [c for c in classes if c not in set(self.classes_.tolist())]
        if unknown:
            raise DataError(f"{what} has label {unknown[0]!r}, which does not occur in the training labels")
        return np.searchsorted(self.classes_, y).astype("int64")

    def _stratify(self, targets: np.ndarray, n_val: int) -> np.ndarray | None:
        counts = np.bincount(targets)
        if counts.min() >= 2 and n_val >= len(counts) and len(targets) - n_val >= len(counts):
            return targets
        return None

    def _target_tensor(self, targets: np.ndarray) -> torch.Tensor:
        if self._task == "binary":
            return torch.from_numpy(targets.astype("float32")).reshape(-1, 1)
        return torch.from_numpy(targets)

    def _n_outputs(self) -> int:
        return 1 if self._task == "binary" else len(self.classes_)

    def _validate_class_weight(self) -> None:
        cw = self.class_weight
        if cw is None or cw == "balanced":
            return
        if not isinstance(cw, dict):
            raise InvalidParameterError(
                f"class_weight must be None, 'balanced' or a dict {{label: weight}}; got class_weight={cw!r}")
        known = set(self.classes_.tolist())
        for label, weight in cw.items():
            if label not in known:
                raise InvalidParameterError(f"class_weight has label {label!r}, which is not one of the classes "
                                            f"{sorted(known, key=str)}")
            check_number(f"class_weight[{label!r}]", weight, 0.0)

    def _loss_weights(self, targets: np.ndarray) -> torch.Tensor | None:
        cw = self.class_weight
        if cw is None:
            return None
        if cw == "balanced":
            counts = np.bincount(targets, minlength=len(self.classes_)).astype("float64")
            weights = len(targets) / (len(self.classes_) * np.maximum(counts, 1))
        else:
            weights = np.array([float(cw.get(c, 1.0)) for c in self.classes_.tolist()])
        return torch.tensor(weights, dtype=torch.float32)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        logits = self._outputs(X)
        if self._task == "binary":
            p = torch.sigmoid(logits)
            return torch.cat([1 - p, p], dim=1).numpy()
        return torch.softmax(logits, dim=1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class label of each row."""
        logits = self._outputs(X)
        if self._task == "binary":
            return self.classes_[(logits[:, 0] > 0).long().numpy()]
        return self.classes_[logits.argmax(dim=1).numpy()]


class NeuralRegressor(RegressorMixin, _NeuralBase):
    __doc__ = ("A feed-forward network for regression (one or several outputs), with expert\n"
               "defaults. The target is standardised for training and predictions are mapped back.\n"
               + _NeuralBase.__doc__.split("\n", 1)[1])

    _task_losses = REGRESSION_LOSSES
    _task = "regression"
    _metric_name = "r2"

    def _fit_target(self, y: np.ndarray) -> np.ndarray:
        if self.class_weight is not None:
            raise InvalidParameterError(
                f"class_weight applies to classifiers only; got class_weight={self.class_weight!r} on NeuralRegressor")
        self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        self._y_1d = y.ndim == 1
        targets = regression_target(y, "y")
        check_varies(targets, "y")
        return targets

    def _encode_target(self, y: np.ndarray, what: str) -> np.ndarray:
        out = regression_target(y, what)
        if out.shape[1] != self.n_outputs_:
            raise DataError(f"{what} has {out.shape[1]} outputs but y has {self.n_outputs_}")
        return out

    def _fit_target_scale(self, targets: np.ndarray) -> None:
        self.target_mean_ = targets.mean(axis=0)
        scale = targets.std(axis=0)
        self.target_scale_ = np.where(scale > 0, scale, 1.0)

    def _target_tensor(self, targets: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(((targets - self.target_mean_) / self.target_scale_).astype("float32"))

    def _n_outputs(self) -> int:
        return self.n_outputs_

    def predict(self, X: Any) -> np.ndarray:
        """Predicted values, shape (n_samples,) or (n_samples, n_outputs)."""
        out = self._outputs(X).numpy() * self.target_scale_ + self.target_mean_
        return out.ravel() if self._y_1d else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


ESTIMATORS: dict[str, type[_NeuralBase]] = {"NeuralClassifier": NeuralClassifier,
                                            "NeuralRegressor": NeuralRegressor}
