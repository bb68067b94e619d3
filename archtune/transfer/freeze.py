"""Which parameters train, and at what rate, when a fit starts from a trained network.

- ``freeze``: None (nothing frozen), "body" (everything except the output layers: ``head``,
  and Wide&Deep's ``wide_head`` / ``wide_levels``), or an int k: the first k *layers* from
  the input side. A layer is a module holding a weight matrix or kernel (a parameter of two
  or more dimensions: Linear, convolution, embedding, recurrent cell, the numeric
  embeddings, TabM's ensemble layers) with the modules that run after it up to the next one
  (its normalisation, its learned activation); layers are counted in the order the forward
  pass reaches them (recorded by hooks on one batch), output layers excluded. Parameters of
  the network itself (RealMLP's feature scale) and modules the forward pass runs before
  the first weight count with the first layer.
- Frozen parameters have ``requires_grad`` False and are left out of the optimiser, the
  L1/L2 penalties, decoupled weight decay and max-norm; frozen batch-norm layers stay in
  evaluation mode, so their running statistics do not move either (Keras' rule for a
  frozen BatchNormalization).
- Learning-rate factors: copied parameters train at ``fine_tune_lr_factor`` times the rate,
  new ones (the new head) at 1x ("auto", the default: `auto_lr_factor` of the source's task,
  1 for a supervised network, 0.1 for a self-supervised pretraining); with
  ``layer_lr_decay`` d, layer i of L (below the output
  layers, which are layer L + 1) is further scaled by ``d ** (L + 1 - i)``: discriminative
  fine-tuning (Howard & Ruder 2018, ULMFiT) as layer-wise learning-rate decay is written in
  BEiT (Bao et al. 2022) and ELECTRA (Clark et al. 2020).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from archtune.checks import check_number
from archtune.errors import InvalidParameterError
from archtune.transfer.copy import is_output

BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
PARAMS = ("init_from", "freeze", "freeze_epochs", "fine_tune_lr_factor", "layer_lr_decay")
# fine_tune_lr_factor="auto", measured by bench/transfer_defaults.py and the two-factor runs of
# bench/pretrain_labels.py's arms (bench/README.md, "transfer_defaults.py"). From a supervised
# network the full rate won or tied on 6 of 7 pairs, 0.1 on 1 (below scratch on 3): with a few
# hundred rows a fit is a few dozen steps, and 0.1x leaves the copied layers on the source
# task. From a self-supervised pretraining 0.1 kept what it gave: Fashion-MNIST's rotation
# pretraining with 200 labels, 0.733 at 0.1x against 0.710 at 1x (labels alone 0.712); adult's
# masked features tied (0.832 and 0.831).
SUPERVISED_LR_FACTOR = 1.0
PRETEXT_LR_FACTOR = 0.1


def auto_lr_factor(source_task: str | None) -> float:
    """``fine_tune_lr_factor="auto"`` for a source of this task (`Source.task`): 0.1 for a
    self-supervised pretraining ("pretext:<name>"), 1.0 for a supervised network."""
    return PRETEXT_LR_FACTOR if str(source_task or "").startswith("pretext:") else SUPERVISED_LR_FACTOR


@dataclass(frozen=True)
class FineTuning:
    """The transfer parameters of an estimator, validated (see the estimators' docstring).

    Attributes
    ----------
    freeze : None, "body" or int >= 1
    freeze_epochs : int >= 1 or None
        Length of phase one (frozen); None keeps the frozen parameters frozen throughout
        (feature extraction).
    fine_tune_lr_factor : float > 0 or "auto"
        "auto" stands until the source is known (`for_source`); unresolved, it reads as a
        supervised source's 1.0.
    layer_lr_decay : float in (0, 1], optional
    """

    freeze: Any = None  # the defaults are the estimators' (bench/transfer_defaults.py)
    freeze_epochs: int | None = 10
    fine_tune_lr_factor: float | str = "auto"
    layer_lr_decay: float | None = None

    def __post_init__(self) -> None:
        freeze = self.freeze
        if not (freeze is None or freeze == "body" or (isinstance(freeze, int) and not isinstance(freeze, bool)
                                                       and freeze >= 1)):
            raise InvalidParameterError(f"freeze must be None, 'body' or a number of layers >= 1; "
                                        f"got freeze={freeze!r}")
        if self.freeze_epochs is not None:
            check_number("freeze_epochs", self.freeze_epochs, 1, integer=True)
        if isinstance(self.fine_tune_lr_factor, str):
            if self.fine_tune_lr_factor != "auto":
                raise InvalidParameterError(f"fine_tune_lr_factor must be a number > 0 or 'auto'; "
                                            f"got fine_tune_lr_factor={self.fine_tune_lr_factor!r}")
        else:
            check_number("fine_tune_lr_factor", self.fine_tune_lr_factor, 0.0, low_open=True)
        if self.layer_lr_decay is not None:
            check_number("layer_lr_decay", self.layer_lr_decay, 0.0, 1.0, low_open=True)

    @classmethod
    def from_params(cls, params: Any, source: Any = None) -> "FineTuning":
        """The settings of an estimator's parameters; with the ``source`` (a `Source`) a fit
        starts from, "auto" becomes that source's factor."""
        settings = cls(params["freeze"], params["freeze_epochs"], params["fine_tune_lr_factor"],
                       params["layer_lr_decay"])
        return settings if source is None else settings.for_source(source.task)

    def for_source(self, source_task: str | None) -> "FineTuning":
        """These settings with ``fine_tune_lr_factor="auto"`` resolved for a source of this task."""
        if self.fine_tune_lr_factor != "auto":
            return self
        return dataclasses.replace(self, fine_tune_lr_factor=auto_lr_factor(source_task))

    @property
    def lr_factor(self) -> float:
        """The copied parameters' learning-rate factor ("auto" unresolved: a supervised source's)."""
        factor = self.fine_tune_lr_factor
        return SUPERVISED_LR_FACTOR if factor == "auto" else float(factor)


def forward_layers(module: nn.Module, example: torch.Tensor) -> list[list[str]]:
    """The names of the modules of each layer (see the module docstring), input side first;
    output layers are not included. ``example`` is a batch of the network's input."""
    modules = dict(module.named_modules())
    order: list[str] = []
    names_of = {id(m): name for name, m in modules.items()}
    seen: set[str] = set()

    def record(mod: nn.Module, _inputs: Any) -> None:
        name = names_of[id(mod)]
        if name not in seen:
            seen.add(name)
            order.append(name)

    handles = [m.register_forward_pre_hook(record) for m in modules.values()]
    was_training = module.training
    try:
        module.eval()
        with torch.no_grad():
            module(example)
    finally:
        module.train(was_training)
        for handle in handles:
            handle.remove()
    layers: list[list[str]] = []
    early: list[str] = []  # modules with state before the first weight
    for name in order + [n for n in modules if n not in seen]:  # modules not reached: with the first layer
        mod = modules[name]
        own = list(mod.parameters(recurse=False))
        if is_output(name) or (not own and not list(mod.buffers(recurse=False))):
            continue
        if any(p.ndim >= 2 for p in own) and name in seen:
            layers.append([name])
        elif layers and name in seen:
            layers[-1].append(name)
        else:
            early.append(name)
    if layers:
        layers[0] = early + layers[0]
    elif early:
        layers = [early]
    return layers


def _owned(module: nn.Module, names: list[str]) -> list[str]:
    """Parameter names owned directly by the modules ``names``."""
    modules = dict(module.named_modules())
    return [f"{name}.{p}" if name else p for name in names for p, _ in modules[name].named_parameters(recurse=False)]


@dataclass(frozen=True)
class PhasePlan:
    """One training phase's trainable parameters and learning-rate factors.

    frozen : tuple of str
        Parameter names that do not train.
    factors : dict
        Learning-rate factor of every trainable parameter, by name.
    frozen_modules : tuple of str
        Modules of the frozen layers (their batch norms stay in evaluation mode).
    layers : list of list of str
        The layers, as `forward_layers` found them.
    """

    frozen: tuple[str, ...]
    factors: dict[str, float]
    frozen_modules: tuple[str, ...] = ()
    layers: list = field(default_factory=list)

    def apply(self, module: nn.Module) -> None:
        """Set ``requires_grad``: False for the frozen parameters, True for the others."""
        frozen = set(self.frozen)
        for name, p in module.named_parameters():
            p.requires_grad_(name not in frozen)

    def param_groups(self, module: nn.Module) -> list[dict[str, Any]]:
        """Optimiser parameter groups, one per learning-rate factor (frozen parameters left
        out): ``{"params": [...], "lr_factor": f}``, which the training engine reads."""
        groups: dict[float, list[nn.Parameter]] = {}
        for name, p in module.named_parameters():
            if name in self.factors:
                groups.setdefault(self.factors[name], []).append(p)
        return [{"params": params, "lr_factor": factor} for factor, params in groups.items()]

    def eval_modules(self, module: nn.Module) -> list[nn.Module]:
        """The frozen layers' batch norms: kept in evaluation mode while the rest trains."""
        modules = dict(module.named_modules())
        return [modules[n] for n in self.frozen_modules if isinstance(modules[n], BATCH_NORMS)]


def plan_phase(module: nn.Module, example: torch.Tensor, copied: set[str] | tuple[str, ...], settings: FineTuning,
               frozen: bool) -> PhasePlan:
    """The `PhasePlan` of a phase: with ``frozen`` the layers ``settings.freeze`` names do not
    train; every trainable parameter gets its learning-rate factor (module docstring).

    Raises
    ------
    InvalidParameterError
        ``freeze`` is more layers than the network has below its output layer.
    """
    layers = forward_layers(module, example)
    if frozen and isinstance(settings.freeze, int) and settings.freeze > len(layers):
        raise InvalidParameterError(f"freeze={settings.freeze} is more than the {len(layers)} layer(s) the network "
                                    "has below its output layer; use freeze='body' to freeze them all")
    n_frozen = 0 if not frozen or settings.freeze is None else (
        len(layers) if settings.freeze == "body" else int(settings.freeze))
    frozen_modules = [name for layer in layers[:n_frozen] for name in layer]
    frozen_names = set(_owned(module, frozen_modules))
    depth = {name: len(layers) - i for i, layer in enumerate(layers) for name in _owned(module, layer)}
    copied = set(copied)
    decay = settings.layer_lr_decay
    factors = {}
    for name, _ in module.named_parameters():
        if name in frozen_names:
            continue
        factor = settings.lr_factor if name in copied else 1.0
        if decay is not None:
            factor *= decay ** depth.get(name, 0)  # output layers: depth 0
        factors[name] = factor
    return PhasePlan(tuple(sorted(frozen_names)), factors, tuple(frozen_modules), layers)


__all__ = ["FineTuning", "PARAMS", "PRETEXT_LR_FACTOR", "PhasePlan", "SUPERVISED_LR_FACTOR", "auto_lr_factor",
           "forward_layers", "plan_phase"]
