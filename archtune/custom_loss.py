"""A loss the user writes: ``loss=callable`` on the estimators.

The callable is called as ``loss(outputs, targets)``, or ``loss(outputs, targets, weight)``
when the fit has sample weights, with the tensors archtune's own losses receive:

- binary classification: ``outputs`` the logits [batch, 1], ``targets`` 0/1 floats [batch, 1];
- multiclass: logits [batch, n_classes] and class codes (int64) [batch], the codes indexing
  ``classes_``;
- multi-label: logits [batch, n_labels] and 0/1 floats [batch, n_labels];
- regression: predictions and targets [batch, n_outputs], both standardised (the training
  target's mean subtracted and divided by its scale; predictions are mapped back after).

It returns a scalar tensor the optimiser minimises. A TabM network's members each get their
own call (their mean is the loss, as the TabM paper trains them). The validation metric
(accuracy, R^2) still ranks epochs and trials, and only a non-finite loss counts as diverged:
the size of a loss archtune did not write says nothing.

A bundle saves the callable as its import path (``module:qualified.name``) and imports it
again on load, so it must be defined at the top level of an importable module; a lambda, a
local function, a function of ``__main__`` or a loss object is refused by name when saving.
skorch and Keras take a callable loss the same way; neither saves it without pickle.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from archtune.errors import BundleError, InvalidParameterError

if TYPE_CHECKING:  # torch is imported where a loss is made, not by the configuration that names it
    import torch


def is_custom(loss: Any) -> bool:
    """Whether ``loss`` is a user's callable rather than one of archtune's names."""
    return callable(loss) and not isinstance(loss, str)


def describe(loss: Any) -> str:
    """A callable's name for messages: its import path when it has one."""
    name = getattr(loss, "__qualname__", None) or type(loss).__name__
    return f"{getattr(loss, '__module__', '?')}.{name}"


def accepts_weight(loss: Callable[..., Any]) -> bool:
    """Whether ``loss`` takes a third positional argument (the rows' weights)."""
    try:
        parameters = list(inspect.signature(loss).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature: assume the plain form
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 3 or any(p.kind == p.VAR_POSITIONAL for p in parameters)


def make_custom_loss(loss: Callable[..., Any]) -> Callable[..., "torch.Tensor"]:
    """archtune's loss form ``(outputs, targets, weight=None) -> scalar`` around a user's
    callable (members of a TabM network [batch, k, outputs] one call each, averaged).

    Raises
    ------
    InvalidParameterError
        Sample weights for a callable without a weight argument, or a result that is not a
        scalar tensor (named with the shape it had).
    """
    import torch

    weighted = accepts_weight(loss)

    def call(outputs: Any, y: Any, weight: Any) -> Any:
        if weight is None:
            value = loss(outputs, y)
        elif weighted:
            value = loss(outputs, y, weight)
        else:
            raise InvalidParameterError(
                f"loss={describe(loss)} takes (outputs, targets) but this fit has sample weights: give the "
                "callable a third argument, the weight of each row [batch], or fit without sample_weight")
        if not isinstance(value, torch.Tensor) or value.dim() != 0:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise InvalidParameterError(f"loss={describe(loss)} must return a scalar tensor; it returned {shape}")
        return value

    def custom(outputs: Any, y: Any, weight: Any = None) -> Any:
        if outputs.dim() == 3:  # TabM's members [batch, k, outputs]: each member's loss, averaged
            return torch.stack([call(outputs[:, i], y, weight) for i in range(outputs.shape[1])]).mean()
        return call(outputs, y, weight)

    return custom


def import_path(loss: Any) -> str:
    """``module:qualified.name`` of a callable that importing gives back.

    Raises
    ------
    InvalidParameterError
        A lambda, a local function, a function of ``__main__``, or an object (such as a
        ``torch.nn`` loss instance) that importing its name would not give back.
    """
    module, name = getattr(loss, "__module__", None), getattr(loss, "__qualname__", None)
    why = None
    if not module or not name or not inspect.isroutine(loss) and not inspect.isclass(loss):
        why = (f"it is a {type(loss).__name__} object, which has no import path; wrap it in a function defined at "
               "the top level of a module")
    elif module == "__main__":
        why = "it is defined in __main__ (a script): move it into a module that the loading process can import"
    elif "<" in name:
        why = "a lambda or a function defined inside another has no import path: define it at a module's top level"
    else:
        try:
            found = resolve(f"{module}:{name}", "the loss")
        except BundleError:
            found = None
        if found is not loss:
            why = f"importing {module}:{name} does not give this callable back"
    if why:
        raise InvalidParameterError(f"loss={describe(loss)} cannot be saved in a bundle: {why}")
    return f"{module}:{name}"


def resolve(path: str, where: str) -> Callable[..., Any]:
    """The callable at ``module:qualified.name``.

    Raises
    ------
    BundleError
        Naming ``where`` and the path, when it cannot be imported.
    """
    module_name, _, name = str(path).partition(":")
    try:
        found: Any = importlib.import_module(module_name)
        for part in name.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise BundleError(f"{where}: the loss {path} cannot be imported ({type(exc).__name__}: {exc}); install or "
                          "put on the path the module that defines it") from None
    if not callable(found):
        raise BundleError(f"{where}: the loss {path} is not callable")
    return found


__all__ = ["accepts_weight", "describe", "import_path", "is_custom", "make_custom_loss", "resolve"]
