"""An estimator's parameters, checked before any data is read.

`check_params` validates every parameter of a NeuralClassifier / NeuralRegressor (building
its ModelConfig and TrainConfig), `seed_from` turns ``random_state`` into an integer seed,
`recipe_params` gives the parameters a family's recipe sets (archtune.recipes), and
`warn_unused` names a parameter the chosen family does not read. `add_family_parameters`
gives the estimators each family's own parameters as declared in archtune/families.
"""

from __future__ import annotations

import inspect
import textwrap
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from archtune.checks import check_choice, check_number
from archtune.config import PARAM_GROUPS, ModelConfig, TrainConfig
from archtune.data.preprocess import Preprocessor
from archtune.data.target import TARGETS
from archtune.errors import InvalidParameterError, nearest
from archtune.families import FAMILIES, family_params
from archtune.models import get_family
from archtune.models.backbone_weights import check_weights_file
from archtune.pretraining.tasks import PRETEXTS
from archtune.transfer.freeze import FineTuning


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    check_choice("device", device, ("auto", "cpu", "cuda"))
    if device == "cuda" and not torch.cuda.is_available():
        raise InvalidParameterError("device='cuda' was requested but no CUDA GPU is available; use device='auto'")
    return torch.device(device)


def seed_from(random_state: Any) -> int:
    """An integer seed from ``random_state`` (None draws one; a RandomState gives its next)."""
    if random_state is None:
        return int(np.random.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    return check_number("random_state", random_state, 0, 2**32 - 1, integer=True)


def check_params(estimator: Any) -> ModelConfig:
    """Validate every parameter of an archtune estimator before any data is read; return the
    `ModelConfig` it describes. Raises `InvalidParameterError` naming the parameter."""
    params = estimator.get_params()
    model_config = ModelConfig.from_params(params)
    TrainConfig.from_params(params, 1000, 0, TARGETS[estimator.target_kind].losses)
    check_number("validation_fraction", params["validation_fraction"], 0.0, 1.0, high_open=True)
    check_choice("verbose", params["verbose"], (0, 1, 2, False, True))
    Preprocessor(params["scaling"], params["categorical"])
    features = params["categorical_features"]
    if not (features is None or (isinstance(features, str) and features in ("from_dtype", "auto"))
            or (isinstance(features, (list, tuple)) and all(isinstance(c, str) for c in features))):
        raise InvalidParameterError(f"categorical_features must be 'from_dtype', 'auto' or a list of column names; "
                                    f"got categorical_features={features!r}")
    check_choice("clamp_outputs", params["clamp_outputs"], (True, False, "auto"))
    FineTuning.from_params(params)
    check_number("pretrain_epochs", params["pretrain_epochs"], 0, integer=True)
    check_choice("pretext", params["pretext"], PRETEXTS)
    resolve_device(params["device"])
    check_weights_file(model_config.conv)  # a pretrained backbone's file: there before any data is read
    return model_config


def recipe_params(estimator: Any, tabular: bool, wide: bool = False) -> dict[str, Any]:
    """The parameters a fit uses: the estimator's own, except that where the default recipe
    does not apply (a non-tabular family, or a table with text or image columns, which the
    recipe was not measured on), parameters left at their defaults take the classic values
    (archtune.recipes.CLASSIC) those families were measured with (bench/vision.py, text.py);
    and on a ``wide`` table (archtune.recipes.wide) numeric embeddings left at their default
    are off."""
    from archtune.recipes import CLASSIC

    params = estimator.get_params()
    defaults = type(estimator)().get_params()
    if wide and not differs_from_default(params["numeric_embedding"], defaults["numeric_embedding"]):
        params["numeric_embedding"] = None
    if tabular:
        return params
    return {name: CLASSIC[name] if name in CLASSIC and name != "arch" and not differs_from_default(value, defaults[name])
            else value for name, value in params.items()}


def unused_params(estimator: Any, arch: str, data_groups: Sequence[str] = ()) -> list[str]:
    """The parameters set away from their defaults that neither the family nor the data's
    columns read (``data_groups``: "conv" for image-path columns, "sequence" for text)."""
    used = set(get_family(arch).uses) | set(data_groups)
    params, defaults = estimator.get_params(), type(estimator)().get_params()
    # A part switched off (None, False) where it is not used anyway is no mistake worth a word.
    return [name for group, names in PARAM_GROUPS.items() if group not in used and group not in ("inputs", "transfer")
            for name in names if differs_from_default(params[name], defaults[name]) and params[name] not in (None, False)]


def differs_from_default(value: Any, default: Any) -> bool:
    try:
        return bool(value != default)
    except Exception:  # arrays and other values without a plain truth value
        return True


# Why a shared group's parameters may go unread; a family's own say it in its declaration.
_WHERE_USED = {"dense": "arch='layers' declares its own layers",
               "numeric_embedding": "they apply to the tabular families " + ", ".join(
                   name for name, spec in FAMILIES.items() if "numeric_embedding" in spec.uses),
               "conv": "they apply to arch='cnn' and to columns of image paths",
               "sequence": "they apply to arch='sequence' and to text columns",
               **{name: spec.where_used for name, spec in FAMILIES.items() if spec.params}}


# Where the families' parameters go in the estimators' parameter documentation.
_FAMILY_DOCS_BEFORE = "    l1, l2 : float\n"


def add_family_parameters(cls: type) -> type:
    """Give the estimator class ``cls`` each family's own parameters (archtune/families) as
    keyword arguments with their declared defaults: its ``__init__`` signature, which
    scikit-learn's ``get_params``/``clone`` read, and its docstring's Parameters section.
    The ``__init__`` takes them as ``**family_params`` and stores them with
    `set_family_parameters`."""
    init = cls.__init__
    signature = inspect.signature(init)
    own = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    declared = [inspect.Parameter(p.name, inspect.Parameter.KEYWORD_ONLY, default=p.default) for p in family_params()]
    init.__signature__ = signature.replace(parameters=own + declared)
    docs = "".join(f"    {p.name} : " + textwrap.indent(p.doc, "        ")[8:] + "\n" for p in family_params())
    if cls.__doc__ and _FAMILY_DOCS_BEFORE in cls.__doc__:
        cls.__doc__ = cls.__doc__.replace(_FAMILY_DOCS_BEFORE, docs + _FAMILY_DOCS_BEFORE, 1)
    return cls


def set_family_parameters(estimator: Any, given: Mapping[str, Any]) -> None:
    """Store the family parameters ``given`` to ``__init__`` on ``estimator``, the declared
    default for the others; an unknown name is a TypeError, as for any keyword argument."""
    names = [p.name for p in family_params()]
    for name in given:
        if name not in names:
            raise TypeError(f"{type(estimator).__name__}.__init__() got an unexpected keyword argument "
                            f"{name!r}{nearest(name, sorted(inspect.signature(type(estimator)).parameters))}")
    for param in family_params():
        setattr(estimator, param.name, given.get(param.name, param.default))


def warn_unused(estimator: Any, arch: str, data_groups: Sequence[str]) -> None:
    names = unused_params(estimator, arch, data_groups)
    if not names:
        return
    params = estimator.get_params()
    groups = sorted({group for group, members in PARAM_GROUPS.items() for name in names if name in members})
    warnings.warn(f"{', '.join(f'{n}={params[n]!r}' for n in names)} {'is' if len(names) == 1 else 'are'} "
                  f"ignored: arch={arch!r} does not read {'it' if len(names) == 1 else 'them'} "
                  f"({'; '.join(_WHERE_USED[g] for g in groups)})", UserWarning, stacklevel=4)
