"""scikit-learn estimators: `NeuralClassifier` and `NeuralRegressor`.

They only glue data + Config + trainer together, through the one path in
`archtune.fitting`: ``fit`` is prepare -> (learning-rate finder) -> train -> finish. This
module holds the parameters, their documentation and the prediction methods.
"""

from __future__ import annotations

import warnings
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from archtune.config import ModelConfig, TrainConfig
from archtune.data.target import TARGETS
from archtune.data.multilabel import is_multilabel
from archtune.doctor.lr_finder import resolve_learning_rate
from archtune.errors import InvalidParameterError
from archtune.fitting import class_probabilities, finish, input_matrix, prepare, set_fitted, train
from archtune.parameters import add_family_parameters, check_params, seed_from, set_family_parameters
from archtune.pretraining.run import PRETRAIN_EPOCHS
from archtune.pretraining.run import pretrain as pretrain_rows
from archtune.pretraining.semi_supervised import check_labelled, take_rows, unlabeled_rows, with_pretraining
from archtune.train import Callback
from archtune.train.loop import predict_tensor
from archtune.predicting import predicting
from archtune.quantiles import point
from archtune.train.threads import inference_threads


class _NeuralBase(BaseEstimator):
    """Shared parameters and machinery of the neural estimators.

    The defaults are a recipe measured on the benchmark's tables (bench/defaults.py): the
    training of RealMLP-TD (Holzmueller et al. 2024: robust scaling with smooth clipping,
    parametric Mish activations, a feature scale, Adam with beta2 0.95, the coslog schedule,
    dropout and weight decay that fade out in the second half, label smoothing, the best
    validation epoch kept, clamped regression outputs) on a 3 x 256 MLP with piecewise-linear
    numeric embeddings (Gorishniy et al. 2022). ``NeuralClassifier(**archtune.recipes.CLASSIC)``
    trains as the defaults before these recipes did.

    Parameters
    ----------
    arch : {"mlp", "resnet", "tabm", "cnn", "sequence", "wide_deep", "layers"}
        Network family; "resnet" is an MLP with skip connections around each hidden layer;
        "tabm" a BatchEnsemble MLP of ``k`` members (TabM, Gorishniy et al., ICLR 2025);
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
    backbone : {None, "resnet18", "mobilenet_v3_small"}
        A pretrained image architecture as the encoder of arch="cnn" (and of image-path
        columns) instead of the conv blocks, whose parameters are then not read: torchvision's
        ResNet-18 (He et al. 2016; 512 pooled features) or MobileNet-V3-small (Howard et al.
        2019; 576), without their classifier; the dense layers and the output layer follow.
        Grey images are repeated to three channels; the pixels reach it in [0, 1] (uint8
        images / 255; ``scaling`` does not apply to them) and are normalised by ImageNet's
        channel means and standard deviations. The ImageNet weights were trained on 224 x 224
        images; smaller ones work (adaptive pooling) with weaker features.
    backbone_weights : str or path, optional
        A local file of the backbone's torchvision state dict, read once at the start of fit:
        ``.safetensors``, or ``.pth`` / ``.pt`` read with ``torch.load(weights_only=True)``
        (e.g. torchvision's resnet18-f37072fd.pth, mobilenet_v3_small-047dcff4.pth; the
        classifier's entries are ignored). Nothing is downloaded: None trains the backbone
        from random weights, with a warning. A missing file is an `InvalidParameterError`; a
        truncated or corrupt one, another architecture's, or a pickle holding code a
        `BundleError` (nothing in it runs). Saved bundles hold the trained weights and load
        without the file. What was loaded is recorded in ``lineage_``.
    norm : {None, "batch", "layer"}
    parametric_activation : bool
        Each hidden unit's activation becomes ``x + alpha * (f(x) - x)`` with a learned alpha
        that starts at 1 (RealMLP, Holzmueller et al. 2024).
    feature_scale : bool
        A learned scale per input feature, starting at 1, in front of the first layer
        (RealMLP's "front scale").
    numeric_embedding : {None, "periodic", "periodic_lite", "piecewise_linear"}
        Embeddings of the numeric columns (Gorishniy et al. 2022, "On Embeddings for Numerical
        Features in Tabular Deep Learning"): "periodic" is PLR, ``ReLU(Linear([cos, sin](2 pi
        x w)))`` per feature with ``n_frequencies`` frequencies ``w ~ N(0, frequency_init_scale^2)``
        and ``d_embedding`` outputs; "periodic_lite" shares the Linear across features;
        "piecewise_linear" encodes each value over ``n_bins`` bins of the training rows
        (``binning="quantile"``, or "tree": a decision tree's thresholds on the target) and
        maps the encoding to ``d_embedding`` values (the TabM paper's version "B"). For the
        tabular families (mlp, resnet, tabm, wide_deep).
    d_embedding, n_frequencies, frequency_init_scale, n_bins, binning :
        The numeric embedding's sizes (24, 48, 0.01, 48, "quantile" as in the papers' code).
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
    beta2 : float
        The Adam family's second-moment decay (0.999; RealMLP uses 0.95).
    batch_size : int, "auto" or "full"
        "auto" aims at ~50 steps per epoch (32 to 512); "full" is full-batch descent.
    max_epochs : int
    lr_schedule : str
        constant, step, exponential, cosine, one_cycle, plateau, or coslog (RealMLP's
        "coslog4": ``0.5 * (1 - cos(2 pi log2(1 + 15 t)))`` over the fraction t of training).
    warmup_epochs : int
        Linear learning-rate warm-up.
    dropout_schedule, weight_decay_schedule : {"constant", "flat_cos"}
        "flat_cos" keeps the rate for the first half of training, then decays it to 0 along
        a half cosine (RealMLP).
    early_stopping : bool
        Stop when the validation loss stops improving, and restore the best epoch's weights.
    patience : int
    min_delta : float
    validation_fraction : float
        Share of the training rows held out for early stopping, unless ``validation_data``
        is passed to ``fit``.
    loss : str or callable
        "auto" (cross-entropy for classification, mse for regression), or mse, mae, huber,
        or (regressor only) "quantile": quantile regression with the pinball loss (Koenker &
        Bassett 1978), one output per target and level of ``quantiles``, which never cross
        (archtune.quantiles); ``predict`` gives the level nearest the median,
        ``predict_quantiles`` every level, and ``predict_interval`` conformalised quantile
        regression (Romano et al. 2019). Or a callable ``loss(outputs, targets)`` (with a
        third argument, the rows' weights, for ``sample_weight``) returning a scalar torch
        tensor, given the tensors archtune's losses get (archtune.custom_loss: logits and
        class codes, or standardised values); it trains alone rather than in a cohort, and a
        bundle saves it by its import path (a lambda or a local function cannot be saved).
    quantiles : tuple of float, optional
        loss="quantile" only: the levels, strictly increasing in (0, 1); None: (0.1, 0.5, 0.9).
    label_smoothing : float
        Classifier only: the targets mix ``label_smoothing`` of a uniform distribution in
        (Szegedy et al. 2016; RealMLP uses 0.1).
    class_weight : "balanced", dict or None
        Classifier only: weights of the classes in the loss.
    clamp_outputs : bool
        Regressor only: predictions are clipped to the training target's range (RealMLP).
    scaling : {"standard", "robust", "quantile", "maxabs", None}
        How numeric columns are scaled: "standard" (mean and standard deviation), "robust"
        (median and interquartile range, then the smooth clip ``x / sqrt(1 + (x/3)^2)``, as
        RealMLP), "quantile" (to a normal distribution through the training rows' quantiles,
        as the TabM paper), "maxabs" (divided by the largest absolute value, not centred).
        A scipy sparse X is always scaled by "maxabs" (unless None): centring would fill in
        its zeros.
    categorical : {"embedding", "onehot", "auto"}
        How categorical columns are encoded: learned embeddings, one-hot columns, or "auto":
        one-hot for at most 9 levels and embeddings above (RealMLP's rule).
    categorical_features : "from_dtype", "auto" or list of str
        Which columns are categorical: "from_dtype" (strings, booleans and pandas categories),
        "auto" (those, and integer columns with at most 16 distinct values, which are usually
        codes), or a list of column names (those, and string columns).
    init_from : fitted estimator, bundle directory, Source or pretraining result, optional
        Start from a trained network (transfer learning; archtune.transfer): every layer
        whose name and shape fit is copied, the output layer is new unless the task is the
        same classification with the same classes. The source's preprocessor and
        architecture are reused (the architecture parameters here are then ignored); X's
        columns are matched to the source's by name (a missing one is filled as missing, an
        extra one ignored, each with a warning). A fitted estimator given here is unfitted by
        scikit-learn's ``clone``: where the estimator is cloned, give a bundle path or
        ``archtune.transfer.read_source(model)``. Saved as the path, or None for an object
        (``lineage_`` records where the weights came from).
    freeze : None, "body" or int
        With ``init_from``: parameters that do not train in phase one. "body" is everything
        but the output layer; k the first k layers from the input side (a layer: a module
        with a weight matrix or kernel, such as Linear, convolution, embedding or recurrent
        cell, with the normalisation and learned activation after it, in forward order).
        Frozen batch norms keep their running statistics. None (default): nothing is frozen,
        one phase. Measured (bench/transfer_defaults.py, 5 table pairs and 2 image pairs):
        "body" with the copied layers at 0.1x then (the earlier two-phase recipe) lost to
        scratch on letter A-M -> N-Z (0.708 against 0.728), satimage and electricity (by 8
        points); "body" at the full rate (LP-FT) won or tied on 5 pairs of 7 but lost 4.5
        points to scratch on electricity, and beat nothing frozen by a point at most.
    freeze_epochs : int or None
        Phase one's length (with its own early stopping); then phase two unfreezes
        everything and trains up to ``max_epochs`` epochs in all. None: frozen throughout
        (feature extraction). Read only with ``freeze`` set.
    fine_tune_lr_factor : float or "auto"
        Copied parameters train at this multiple of the learning rate, new ones (the new
        head) at 1x. "auto" (default): 1.0 from a supervised network (a fitted estimator, a
        run or bundle of ``archtune fit`` / ``tune``), 0.1 from a self-supervised pretraining
        (``pretrain_epochs``, `pretrain`, a bundle of ``archtune pretrain``). The full rate
        won or tied on 6 of the 7 pairs of bench/transfer_defaults.py (letter +4.4 points
        over scratch, CIFAR-10 +6.1) and lost 2 points to scratch on the seventh
        (electricity's last dates, where every way of fine-tuning lost); 0.1, the default for
        every source until issue 29, was below scratch on letter, satimage and electricity:
        with few rows (260 rows are one step an epoch) a tenth of the rate leaves the copied
        layers where the source task left them. After a pretext task 0.1 stays: at 1x
        Fashion-MNIST's rotation pretraining lost what it gave (0.710 against 0.733 at 0.1x
        with 200 labels; labels alone 0.712), adult's masked features tied (bench/README.md).
        The doctor says when a source did not help (``archtune.diagnose``:
        ``transfer_below_scratch``).
    layer_lr_decay : float in (0, 1], optional
        Layer-wise learning-rate decay (discriminative fine-tuning, Howard & Ruder 2018;
        as in BEiT and ELECTRA): each layer below the output layer trains at the rate of the
        layer above times this. None (default): measured at 0.8 with the full rate, it was
        within a point of the full rate or above it on 4 of the 5 table pairs, but 1.7 points
        below on satimage and 1.5 on Fashion-MNIST (bench/transfer_defaults.py).
    pretrain_epochs : int >= 0
        Self-supervised pretraining (archtune.pretraining) before the supervised fit: with
        ``pretrain_epochs > 0``, ``fit`` first trains the network on a pretext task over all
        rows of X for at most this many epochs (early stopping on a holdout of the rows), then
        fine-tunes it on the labelled rows as ``init_from`` would (``freeze``,
        ``freeze_epochs``, ``fine_tune_lr_factor`` and ``layer_lr_decay`` apply). The rows
        follow scikit-learn's semi-supervised convention (as
        `sklearn.semi_supervised.SelfTrainingClassifier` reads it): a classifier's rows
        labelled with the integer -1 (not ``-1.0``, not the string ``"-1"``) and a
        regressor's rows whose target is NaN are unlabeled: pretrained on, not fine-tuned on
        (their ``sample_weight`` is not used). With 0 (the default) no pretraining runs, -1
        is an ordinary class label and a NaN target an error. ``pretrain(X)`` pretrains on
        rows of its own (20 epochs when this is 0).
    pretext : {"auto", "masked_features", "rotation"}
        The pretraining's pretext task: "masked_features" corrupts a share of each row's
        features by swapping in other rows' values and trains the network to reconstruct
        the clean row and to tell which features were swapped (VIME, Yoon et al. 2020; with
        the swap noise of SCARF, Bahri et al. 2022), for tables with numeric or categorical
        columns; "rotation" shows each image turned by 0, 90, 180 and 270 degrees and trains
        the network to say which (RotNet, Gidaris et al. 2018), for images (arch="cnn" on an
        image array, or a table of one image-path column). "auto": rotation for images,
        masked features otherwise.
    random_state : int, optional
        Seeds everything random in ``fit``: the validation split, the initial weights (with
        ``init_from``: the new layers), the batch order, dropout and image augmentation, the
        learning-rate finder (``learning_rate="auto"``), pretraining (``pretrain_epochs``,
        ``pretrain``) and each fine-tuning phase (``freeze``). The same rows, parameters and
        integer seed give the same network and ``history_`` (but for its ``seconds``
        column, which is measured time), whatever the session drew from NumPy's or torch's
        global generators before. None draws a fresh seed from NumPy's global generator in
        every fit, so each fit trains another network. The seed does not fix the thread
        count: training steps are float sums that torch may split among its threads
        (`archtune.train.threads`: one thread unless the steps are large, at most the idle
        cores, i.e. the load average), so another count can change their last bits and,
        through early stopping, the epoch kept; ``torch.set_num_threads(n)`` fixes it
        (archtune keeps a count the user set). On a GPU, PyTorch's non-deterministic kernels
        add their own differences.
    device : {"auto", "cpu", "cuda"}
    mixed_precision : {None, "bf16"}
        "bf16": each training step's forward pass runs under ``torch.autocast`` in bfloat16
        (matrix products and what follows them), while the weights, their gradients, the
        optimiser's state and the loss stay float32 (automatic mixed precision as in PyTorch's
        AMP recipe; bfloat16 keeps float32's exponent range, so no loss scaling is needed).
        Faster where the hardware has bfloat16 matrix units (recent GPUs, CPUs with AMX);
        elsewhere slower. Validation and prediction run in float32. bench/population.py
        ``--mixed-precision`` measures its speed; tests/test_mixed_precision.py checks that
        its accuracy stays within 0.02 of float32 on a shared table. None (default): float32.
    verbose : int
        0 silent, 1 a progress bar.

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained network (a `TabularNetwork`, which takes the preprocessed matrix).
    learning_rate_ : float
        The learning rate used (the finder's suggestion when ``learning_rate="auto"``).
    history_ : pandas.DataFrame
        One row per epoch: train_loss, val_loss, val_<metric>, lr, seconds; with
        ``init_from`` also ``phase`` ("head" while frozen, then "fine_tune"), the epochs
        numbered on across phases; a fit that pretrains (``pretrain_epochs`` or `pretrain`)
        begins with the pretraining's epochs (``phase`` "pretrain", whose ``train_loss`` and
        ``val_loss`` are the pretext task's loss), and ``best_epoch_`` counts them too.
    best_epoch_ : int
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame with string column names.
    preprocessor_ : Preprocessor
    init_report_ : str
        With ``init_from``: what was copied, in one line ("copied 14 of 16 tensors ...").
    lineage_ : list of dict
        Where the starting weights came from, one record per step, this fit's first: with
        ``init_from`` ``{"step": "init_from", "from": ..., "copied": ..., "total": ...}`` then
        the source's own lineage; with ``backbone_weights`` ``{"step": "backbone", "backbone":
        "resnet18", "from": path, "sha256": ..., "loaded": 120}`` (tensors read from the file);
        empty for random weights. Saved in bundles.
    pretrained_ : Pretrained
        Set by `pretrain` (not by ``fit``): the pretrained network a later ``fit`` starts
        from. Unlike the other fitted attributes ``fit`` keeps it (fit again, and it starts
        from the same pretrained network); scikit-learn's ``clone`` drops it, and bundles do
        not save it (``lineage_`` records it; ``archtune.bundles.pretrained.save_pretrained``
        saves it alone).
    """

    target_kind = "regression"  # or "classification": which target encoder fit uses (data/target.py)

    def __init__(
        self,
        *,
        arch: str = "mlp",
        hidden_layers: int = 3,
        units: int = 256,
        shape: str = "constant",
        hidden_sizes: tuple[int, ...] | None = None,
        activation: str = "mish",
        initializer: str = "auto",
        dropout: float = 0.15,
        norm: str | None = None,
        parametric_activation: bool = True,
        feature_scale: bool = True,
        numeric_embedding: str | None = "piecewise_linear",
        d_embedding: int = 16,
        n_frequencies: int = 48,
        frequency_init_scale: float = 0.01,
        n_bins: int = 48,
        binning: str = "quantile",
        conv_blocks: int = 2,
        filters: int = 32,
        kernel_size: int = 3,
        strides: int = 1,
        padding: str = "same",
        pooling: str = "max",
        separable: bool = False,
        residual: bool = False,
        augment: bool | str = True,
        backbone: str | None = None,
        backbone_weights: str | None = None,
        inputs: dict | None = None,
        sequence: str = "conv",
        embedding_dim: int = 64,
        sequence_units: int = 128,
        bidirectional: bool = False,
        l1: float = 0.0,
        l2: float = 0.0,
        weight_decay: float = 0.1,
        max_norm: float | None = None,
        gradient_clip: float | None = None,
        optimizer: str = "adamw",
        learning_rate: float | str = 2e-3,
        momentum: float = 0.9,
        beta2: float = 0.95,
        batch_size: int | str = 256,
        max_epochs: int = 64,
        lr_schedule: str = "coslog",
        warmup_epochs: int = 1,
        dropout_schedule: str = "flat_cos",
        weight_decay_schedule: str = "flat_cos",
        early_stopping: bool = True,
        patience: int = 64,
        min_delta: float = 0.0,
        validation_fraction: float = 0.1,
        loss: str = "auto",
        quantiles: tuple[float, ...] | None = None,
        label_smoothing: float | str = "auto",
        class_weight: str | dict | None = None,
        clamp_outputs: bool | str = "auto",
        scaling: str | None = "robust",
        categorical: str = "auto",
        categorical_features: str | list | None = "from_dtype",
        init_from: Any = None,
        freeze: str | int | None = None,
        freeze_epochs: int | None = 10,
        fine_tune_lr_factor: float | str = "auto",
        layer_lr_decay: float | None = None,
        pretrain_epochs: int = 0,
        pretext: str = "auto",
        random_state: int | None = None,
        device: str = "auto",
        mixed_precision: str | None = None,
        verbose: int = 0,
        **family_params: Any,  # each family's own parameters (archtune/families): add_family_parameters
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
        self.parametric_activation = parametric_activation
        self.feature_scale = feature_scale
        self.numeric_embedding = numeric_embedding
        self.d_embedding = d_embedding
        self.n_frequencies = n_frequencies
        self.frequency_init_scale = frequency_init_scale
        self.n_bins = n_bins
        self.binning = binning
        self.conv_blocks = conv_blocks
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.padding = padding
        self.pooling = pooling
        self.separable = separable
        self.residual = residual
        self.augment = augment
        self.backbone = backbone
        self.backbone_weights = backbone_weights
        self.inputs = inputs
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
        self.beta2 = beta2
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.lr_schedule = lr_schedule
        self.warmup_epochs = warmup_epochs
        self.dropout_schedule = dropout_schedule
        self.weight_decay_schedule = weight_decay_schedule
        self.early_stopping = early_stopping
        self.patience = patience
        self.min_delta = min_delta
        self.validation_fraction = validation_fraction
        self.loss = loss
        self.quantiles = quantiles
        self.label_smoothing = label_smoothing
        self.class_weight = class_weight
        self.clamp_outputs = clamp_outputs
        self.scaling = scaling
        self.categorical = categorical
        self.categorical_features = categorical_features
        self.init_from = init_from
        self.freeze = freeze
        self.freeze_epochs = freeze_epochs
        self.fine_tune_lr_factor = fine_tune_lr_factor
        self.layer_lr_decay = layer_lr_decay
        self.pretrain_epochs = pretrain_epochs
        self.pretext = pretext
        self.random_state = random_state
        self.device = device
        self.mixed_precision = mixed_precision
        self.verbose = verbose
        set_family_parameters(self, family_params)

    # ------------------------------------------------------------------ configs

    def model_config(self) -> ModelConfig:
        """The validated `ModelConfig` these parameters describe (before the data adds its part)."""
        return ModelConfig.from_params(self.get_params())

    def train_config(self, n_train: int, seed: int) -> TrainConfig:
        """The validated `TrainConfig` for ``n_train`` training rows."""
        return TrainConfig.from_params(self.get_params(), n_train, seed, TARGETS[self.target_kind].losses)

    # ------------------------------------------------------------------ fit

    def fit(self, X: Any, y: Any, sample_weight: Any = None, validation_data: tuple[Any, ...] | None = None,
            callbacks: list[Callback] | None = None) -> "_NeuralBase":
        """Train a network on (X, y).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Numeric, categorical (string, category, bool) and missing values are accepted; also
            a dict of arrays (multiple inputs), images (n_samples, channels, height, width) or,
            with ``arch="sequence"``, series (n_samples, steps, features). A scipy sparse
            matrix (CSR, CSC, COO or any other format, read as CSR) is numeric columns kept
            sparse: scaled by each column's largest absolute value, without a numeric
            embedding, and densified one batch at a time.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels of any hashable type, or real values (2-D for multi-output regression).
            With ``pretrain_epochs > 0``, rows labelled -1 (the integer; classifier) or NaN
            (every output; regressor) are unlabeled: pretrained on, left out of the supervised
            fit (scikit-learn's semi-supervised convention). A classifier's labelled rows must
            hold at least 2 classes, a regressor's be at least 2 (else a `DataError`).
        sample_weight : array-like of shape (n_samples,), default None
            Weight of each row (None: all equal). Each batch's loss is the weighted mean
            ``sum(w_i * l_i) / sum(w_i)`` (times ``class_weight``'s weights where set), so only
            the weights' ratios matter: a weight of 2 counts as the row twice, a weight of 0 as
            the row removed (such rows are dropped before the split and the preprocessing),
            and equal weights give exactly the unweighted fit. The validation rows split off
            for early stopping keep their weights: the validation loss and metric, hence the
            best epoch, are weighted. The learning-rate finder (``learning_rate="auto"``)
            ignores the weights. Non-negative finite numbers, not all zero; otherwise a
            `DataError` naming ``sample_weight`` and the row.
        validation_data : (X_val, y_val) or (X_val, y_val, sample_weight_val), optional
            Used for early stopping instead of a split of (X, y); the third item weights the
            validation rows.
        callbacks : list of archtune.train.Callback, optional
            Extra callbacks for the trainer (e.g. to report each epoch to a tuner); with
            pretraining they see the supervised epochs only (the pretraining's are in ``history_``).

        Returns
        -------
        self

        Raises
        ------
        InvalidParameterError
            A parameter is invalid (named, with the rule and the value).
        DataError
            X or y cannot be used (the column, row or value is named).
        TrainingDivergedError
            The loss became NaN/inf or exploded.
        """
        pretrained = getattr(self, "pretrained_", None)
        if pretrained is not None or self.pretrain_epochs:
            check_params(self)  # pretrain_epochs and init_from are valid before anything is read
            _one_source(self, "fit")
        if self.pretrain_epochs:
            labelled = ~unlabeled_rows(y, self.target_kind)
            check_labelled(X, y, labelled, self.target_kind)  # before the pretraining: errors first
            if pretrained is None:  # pretrain on every row of X, labelled or not
                pretrained = pretrain_rows(X, self, pretext=self.pretext, pretrain_epochs=self.pretrain_epochs)
            elif not labelled.all():
                warnings.warn(f"{int((~labelled).sum())} unlabeled row(s) are left out: fit starts from "
                              "pretrained_ (set by pretrain) and does not pretrain again", UserWarning, stacklevel=2)
            if not labelled.all():
                rows = np.flatnonzero(labelled)
                X, y, sample_weight = take_rows(X, rows), take_rows(y, rows), take_rows(sample_weight, rows)
        source = pretrained.to_source() if pretrained is not None else None
        prepared = resolve_learning_rate(prepare(self, X, y, validation_data, sample_weight=sample_weight,
                                                 source=source))
        result = train(prepared, callbacks or [])
        if pretrained is not None:  # the history shows both stages, epochs numbered on
            result = with_pretraining(result, pretrained.history_)
        return finish(self, prepared, result)

    def pretrain(self, X: Any, callbacks: list[Callback] | None = None) -> "_NeuralBase":
        """Self-supervised pretraining on unlabeled rows; a later ``fit`` starts from it.

        The network these parameters describe is trained on the ``pretext`` task for
        ``pretrain_epochs`` epochs (20 when that is 0) and kept as ``pretrained_``; ``fit``
        then copies it (its pretext head replaced by the task's output layer) and fine-tunes
        it as with ``init_from`` (``freeze``, ``freeze_epochs``, ``fine_tune_lr_factor``).
        Runs `archtune.pretraining.run.pretrain`.

        Parameters
        ----------
        X : array-like, DataFrame, dict of arrays or image array (N x C x H x W)
            Unlabeled rows of the columns ``fit`` will see (scipy sparse matrices are not
            supported).
        callbacks : list of archtune.train.Callback, optional
            Called during the pretraining (its epochs' ``val_loss`` is the pretext loss).

        Returns
        -------
        self

        Raises
        ------
        InvalidParameterError
            A parameter is invalid, or ``init_from`` is set (a fit starts from one network).
        DataError
            X cannot be read.
        """
        check_params(self)
        _one_source(self, "pretrain")
        set_fitted(self, {"pretrained_": pretrain_rows(X, self, pretext=self.pretext,
                                                       pretrain_epochs=self.pretrain_epochs or PRETRAIN_EPOCHS,
                                                       callbacks=callbacks or ())})
        return self

    # ------------------------------------------------------------------ predict

    def _outputs(self, X: Any, n_threads: int | None = None, device: str | None = None) -> torch.Tensor:
        """The network's outputs for X, on ``n_threads`` and ``device`` (archtune.predicting)."""
        check_is_fitted(self, "module_")
        with predicting([self], n_threads, device):
            matrix = input_matrix(self, X, "X")
            where = next(self.module_.parameters()).device
            threads = inference_threads([self.module_], len(matrix)) if where.type == "cpu" else nullcontext()
            with threads:
                return predict_tensor(self.module_, matrix.to(where)).cpu().double()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing values are imputed, with an indicator column
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.input_tags.sparse = True  # scipy sparse X: scaled by max-abs, densified per batch
        return tags


def _one_source(estimator: _NeuralBase, method: str) -> None:
    """A fit starts from one network: ``init_from`` or a pretraining, not both."""
    if estimator.init_from is not None:
        what = ("pretrained_ (set by pretrain)" if hasattr(estimator, "pretrained_") and method == "fit"
                else f"pretrain_epochs={estimator.pretrain_epochs}" if method == "fit" else "pretrain()")
        raise InvalidParameterError(
            f"init_from={estimator.init_from!r:.80} and {what} are two starting networks; a fit starts from one: "
            "set init_from=None to start from the pretraining, or pretrain_epochs=0 (and a fresh estimator, "
            "without pretrained_) to start from init_from")


add_family_parameters(_NeuralBase)


class NeuralClassifier(ClassifierMixin, _NeuralBase):
    __doc__ = ("A feed-forward network for classification, with expert defaults.\n\n"
               "Binary targets get one sigmoid output and binary cross-entropy; more classes get\n"
               "softmax and cross-entropy. Labels may be of any hashable type. A 2-D 0/1 target\n"
               "(n_samples, n_labels) or a list of label sets is multi-label: one sigmoid and\n"
               "binary cross-entropy per label (archtune.data.multilabel).\n"
               + _NeuralBase.__doc__.split("\n", 1)[1].rstrip(" ")
               + "    classes_ : ndarray\n        The class labels.\n")

    target_kind = "classification"

    def predict_proba(self, X: Any, n_threads: int | None = None, device: str | None = None) -> np.ndarray:
        """Class probabilities, array of shape (n_samples, n_classes), columns in the order of
        ``classes_``. ``n_threads`` and ``device`` as in `predict`.

        A multi-label classifier returns each label's probability, shape (n_samples,
        n_labels), as scikit-learn's `MLPClassifier` (not `MultiOutputClassifier`'s list of
        (n_samples, 2) arrays)."""
        logits = self._outputs(X, n_threads, device)
        if is_multilabel(self):
            return torch.sigmoid(logits).numpy()
        return class_probabilities(logits, len(self.classes_) == 2).numpy()

    def predict(self, X: Any, n_threads: int | None = None, device: str | None = None) -> np.ndarray:
        """The most probable class label of each row, array of shape (n_samples,); for a
        multi-label classifier the 0/1 indicator matrix (n_samples, n_labels) of int64, a label
        set where its probability exceeds 0.5.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        n_threads : int, optional
            Threads for this call (torch and the native pools), restored after it; None: the
            threads the work pays for (archtune.predicting).
        device : {"cpu", "cuda", "cuda:N", "auto"}, optional
            Move the network there first (it stays there); None: where its weights are.

        Raises
        ------
        InvalidParameterError
            A bad ``n_threads`` or ``device`` (a CUDA device on a machine without one).
        """
        logits = self._outputs(X, n_threads, device)
        if is_multilabel(self):
            return (logits > 0).long().numpy()
        if len(self.classes_) == 2:
            return self.classes_[(logits[:, 0] > 0).long().numpy()]
        return self.classes_[logits.argmax(dim=1).numpy()]

    def predict_set(self, X: Any, coverage: float = 0.9, n_threads: int | None = None,
                    device: str | None = None) -> np.ndarray:
        """Prediction sets that hold the true class with probability ``coverage``.

        Adaptive prediction sets (archtune.prediction_sets; Romano, Sesia & Candes 2020): the
        classes in decreasing probability until their mass reaches a threshold set on the
        validation rows the fit held out (``validation_fraction`` or ``validation_data``),
        ``conformal_``. Confident rows get one class, ambiguous rows several. The guarantee is
        marginal, over rows exchangeable with the validation rows.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        coverage : float, default 0.9
            In (0, 1).
        n_threads, device :
            As in `predict`.

        Returns
        -------
        ndarray of bool of shape (n_samples, n_classes)
            Whether each class (columns in the order of ``classes_``) is in each row's set;
            never an empty row.

        Raises
        ------
        InvalidParameterError
            A bad coverage, or a fit without validation rows (nothing to calibrate on).
        """
        from archtune.prediction_sets import predict_set

        return predict_set(self, X, coverage, n_threads=n_threads, device=device)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy of ``predict(X)`` against ``y`` of shape (n_samples,); labels held in an
        object array of numbers compare as those numbers. A multi-label classifier scores the
        subset accuracy (every label of a row right) against a 0/1 matrix or label sets, as
        scikit-learn's `ClassifierMixin.score`."""
        from sklearn.metrics import accuracy_score

        from archtune.data.target import plain_labels, target_array

        if is_multilabel(self):
            truth = self.target_encoder_.encode(target_array(y), "y")
            return float(accuracy_score(truth, self.predict(X), sample_weight=sample_weight))
        return float(accuracy_score(plain_labels(target_array(y)), self.predict(X), sample_weight=sample_weight))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True  # a 2-D 0/1 y: one sigmoid per label (archtune.data.multilabel)
        return tags


class NeuralRegressor(RegressorMixin, _NeuralBase):
    __doc__ = ("A feed-forward network for regression (one or several outputs), with expert\n"
               "defaults. The target is standardised for training and predictions are mapped back.\n"
               + _NeuralBase.__doc__.split("\n", 1)[1])

    target_kind = "regression"

    def predict(self, X: Any, n_threads: int | None = None, device: str | None = None) -> np.ndarray:
        """Predicted values of shape (n_samples,) or (n_samples, n_outputs) for X of shape
        (n_samples, n_features). ``n_threads`` (for this call, restored after it) and
        ``device`` (the network moves there and stays) as in `NeuralClassifier.predict`; a bad
        one is an InvalidParameterError."""
        outputs = self._outputs(X, n_threads, device)  # first: it says when the model is unfitted
        quantiles = self.model_config_.quantiles
        if quantiles:  # loss="quantile": the level nearest the median
            outputs = point(outputs, quantiles)
        return self.target_encoder_.decode(outputs.numpy())

    def predict_quantiles(self, X: Any, n_threads: int | None = None, device: str | None = None) -> np.ndarray:
        """The predicted quantiles of a ``loss="quantile"`` regressor, at the levels of
        ``quantiles``; they never cross (archtune.quantiles).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        n_threads, device :
            As in `predict`.

        Returns
        -------
        ndarray of shape (n_samples, n_quantiles), or (n_samples, n_outputs, n_quantiles) for a
        multi-output target; in the target's units, non-decreasing along the last axis.

        Raises
        ------
        InvalidParameterError
            The regressor was not fitted with loss="quantile".
        """
        from archtune.quantiles import decode

        outputs = self._outputs(X, n_threads, device).numpy()
        quantiles = self.model_config_.quantiles
        if not quantiles:
            raise InvalidParameterError(f"predict_quantiles needs a regressor fitted with loss='quantile'; this one "
                                        f"was fitted with loss={self.loss!r}")
        return decode(self.target_encoder_, outputs, len(quantiles))

    def predict_interval(self, X: Any, coverage: float = 0.9, n_threads: int | None = None,
                         device: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Prediction intervals that hold the true value with probability ``coverage``.

        Split-conformal calibration (archtune.conformal; Lei et al. 2018): the absolute errors
        on the validation rows the fit held out (``validation_fraction`` or
        ``validation_data``) set the half-width, ``conformal_``. The guarantee is marginal,
        over rows exchangeable with the validation rows. A ``loss="quantile"`` regressor gets
        conformalised quantile regression instead (Romano et al. 2019): the pair of levels
        nearest (alpha/2, 1 - alpha/2) for alpha = 1 - coverage, each widened (or narrowed) by
        the conformal quantile of max(q_lo - y, y - q_hi) on the validation rows; the
        interval then follows each row's own spread.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        coverage : float, default 0.9
            In (0, 1).
        n_threads, device :
            As in `predict`.

        Returns
        -------
        lower, upper : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Shaped like ``predict(X)``.

        Raises
        ------
        InvalidParameterError
            A bad coverage, or a fit without validation rows (nothing to calibrate on).
        """
        from archtune.conformal import predict_interval

        return predict_interval(self, X, coverage, n_threads=n_threads, device=device)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


ESTIMATORS: dict[str, type[_NeuralBase]] = {"NeuralClassifier": NeuralClassifier,
                                            "NeuralRegressor": NeuralRegressor}

__all__ = ["ESTIMATORS", "NeuralClassifier", "NeuralRegressor", "check_params", "seed_from"]
