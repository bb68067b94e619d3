"""The first phase of a search: open its study.

`open_study` creates the Optuna study (or opens the stored one a resumed search continues),
checks that a stored study was run on the same data, task and objectives, settles the space
(the default fitted to the data's columns; a stored study keeps the space it was run with),
reads a fixed ``init_from`` once and reseeds the sampler of a continued study.
`enqueue_recipes` puts the recipes first in a new one (called by the trials' phase).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from archtune.errors import DataError, InvalidParameterError
from archtune.recipes import wide as is_wide
from archtune.tune.config import SearchConfig
from archtune.tune.data import SearchData
from archtune.tune.objectives import directions
from archtune.tune.space import SearchSpace, resolve_space
from archtune.tune.study import make_pruner, make_sampler, make_storage


@dataclass
class OpenedStudy:
    """The study a search runs, and what was settled while opening it.

    study : optuna.Study
    storage : Optuna storage (None in memory)
    space : SearchSpace
        What the trials sample: the default fitted to the data, or the stored study's.
    transfer : archtune.tune.transfer.SearchSource or None
        A fixed ``init_from``, read once, shared by every trial, the refit and the ensemble.
    """

    study: optuna.Study
    storage: Any
    space: SearchSpace
    transfer: Any = None


def open_study(config: SearchConfig, data: SearchData) -> OpenedStudy:
    """Create or continue the study of ``config`` on ``data``.

    Raises
    ------
    DataError
        A stored study was run on other data (columns, rows, weights or task).
    InvalidParameterError
        A stored study was run with other objectives or another space (named).
    """
    from archtune.tune.transfer import search_source, warn_dropped

    storage = make_storage(config.storage)
    space = space_for_data(config, data)
    pruner = _pruner(config, space)
    study = optuna.create_study(
        storage=storage, study_name=config.study_label,
        **({"directions": directions(config.objectives)} if config.several else {"direction": "maximize"}),
        sampler=make_sampler(config.sampler_name, config.seed, space.grid()), pruner=pruner, load_if_exists=True)
    _check_study_matches(study, data, config)
    _check_objectives_match(study, config)
    space = _space_of_study(study, space, config)
    transfer = search_source(space)
    if transfer is not None:
        warn_dropped(space, transfer)
        study.set_user_attr("init_from", transfer.record())
    if study.trials:
        # A continued or resumed study: a sampler seeded as the first run's would draw the
        # first run's configurations again. Seeded by the trials already there, it draws new
        # ones, and the same continuation draws the same ones.
        study.sampler = make_sampler(config.sampler_name, continued_seed(config.seed, len(study.trials)), space.grid())
        study.pruner = _pruner(config, space)
    return OpenedStudy(study, storage, space, transfer)


def _pruner(config: SearchConfig, space: SearchSpace) -> Any:
    # Several objectives: Optuna prunes none, so the pruner runs on the score's shadow
    # (archtune.tune.objectives.TrialObjectives).
    return optuna.pruners.NopPruner() if config.several else make_pruner(config.pruner, space.max_epochs)


def space_for_data(config: SearchConfig, data: SearchData) -> SearchSpace:
    """The default space fitted to the data: the CNN space for images, the sequence encoder's
    dimensions added for text columns, the conv encoder's for image-path columns; no numeric
    embeddings on a table too wide for them. An explicit SearchSpace or preset is kept."""
    requested, space = config.space_request, config.space
    if isinstance(requested, SearchSpace) or requested in ("small", "cnn", "classic"):
        return space
    if data.images is None and is_wide(sum(kind == "numeric" for kind in data.kinds.values())) and not (
            isinstance(requested, Mapping) and "numeric_embedding" in requested):
        # Too many columns for numeric embeddings (archtune.recipes.wide): the columns as they are.
        space = space.with_data_fixed({"numeric_embedding": None})
    if data.images is not None:
        what = "images"
    else:
        present = set(data.kinds.values())
        what = "+".join(name for name, kind in (("text", "text"), ("image_columns", "image")) if kind in present)
        what = what or "table"
    if what == "table":
        return space
    fitted = resolve_space(requested, sorted(config.task.neural_class().get_params()), what)
    return fitted.with_data_fixed(space.data_fixed) if space.data_fixed else fitted


def continued_seed(seed: int, n_trials: int) -> int:
    """The sampler's seed for a study that already holds ``n_trials`` trials."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{n_trials}".encode()).digest()[:4], "little")


def _check_study_matches(study: optuna.Study, data: SearchData, config: SearchConfig) -> None:
    """A stored study continues only on the same data (and the same weights): a different
    table would make its trials incomparable."""
    weights = data.weights
    # Unweighted studies keep the fingerprint they had before weights existed.
    weighted = "" if weights is None else "|w" + hashlib.sha256(np.ascontiguousarray(weights).tobytes()).hexdigest()
    fingerprint = hashlib.sha256(
        (",".join(map(str, data.frame.columns)) + f"|{len(data.frame)}|{config.task.auto_name}{weighted}").encode()
    ).hexdigest()[:16]
    stored = study.user_attrs.get("data_fingerprint")
    if stored is None:
        study.set_user_attr("data_fingerprint", fingerprint)
        study.set_user_attr("task", config.task.name)
    elif stored != fingerprint:
        raise DataError(f"study {study.study_name!r} in {config.storage} was run on different data "
                        f"(columns, row count, sample weights or task differ); use another study_name or storage")


def _check_objectives_match(study: optuna.Study, config: SearchConfig) -> None:
    """A stored study continues only with the objectives it was run with."""
    objectives = config.objectives
    stored = study.user_attrs.get("objectives")
    if stored is None and study.trials:
        stored = ["score"] if len(study.directions) == 1 else None
    if stored is None:
        study.set_user_attr("objectives", list(objectives))
    elif tuple(stored) != objectives or len(study.directions) != len(objectives):
        raise InvalidParameterError(f"study {study.study_name!r} in {config.storage} was run with objectives="
                                    f"{tuple(stored)!r}, not {objectives!r}; give the same objectives to continue it, "
                                    "or use another study_name or --out")


def _space_of_study(study: optuna.Study, space: SearchSpace, config: SearchConfig) -> SearchSpace:
    """The space to search: a new study stores ``space``; a stored study continues with the
    space it was run with. Given no space (the default, or no --space/--set flags), the stored
    one is reused; given a different one on purpose, the error names what changed, since
    trials of two spaces cannot be compared (and Optuna refuses changed choices)."""
    from archtune.tune.stored_space import space_differences, space_from_record, space_record
    from archtune.tune.transfer import stored_object_error

    record = space_record(space)
    stored = study.user_attrs.get("space")
    if stored is None:
        study.set_user_attr("space", record)
        return space
    if stored == record:
        return space
    where = f"study {study.study_name!r} in {config.storage}"
    source = stored.get("overrides", {}).get("init_from", {})
    if "object" in source and not space.from_source:
        raise stored_object_error(source, where)
    if config.requested_default_space():
        return space_from_record(stored, where)
    changes = "; ".join(space_differences(stored, record))
    raise InvalidParameterError(
        f"{where} was searched over another space ({changes}); to continue it, give the same space or none (the "
        "stored one is then reused); to search this space, use another study_name or --out")


def enqueue_recipes(study: optuna.Study, space: SearchSpace, config: SearchConfig) -> None:
    """The first trials of a new study over the default space are the strong recipes
    (archtune.recipes.FIRST_TRIALS): even a tiny budget returns a good network. A parameter the
    user set is the user's. (Enqueued just before the trials run, so that a search stopped
    during its baselines leaves no waiting trial behind.)"""
    from archtune.recipes import FIRST_TRIALS

    if study.trials or space.body != "table" or set(space.overrides) - set(space.data_fixed):
        return
    searched = {d.name: d for d in space.dimensions if d.kind != "fixed"}
    neural = config.task.neural_class().get_params()
    seen: list[dict[str, Any]] = []
    for recipe in FIRST_TRIALS:
        values = {**neural, **recipe}
        fixed = {name: values[name] for name in searched if name in values and name not in space.overrides
                 and _allowed(searched[name], values[name])}
        if fixed in seen:  # a recipe the fixed values make equal to an earlier one (no embeddings)
            continue
        seen.append(fixed)
        study.enqueue_trial(fixed, user_attrs={"recipe": True})


def _allowed(dimension: Any, value: Any) -> bool:
    if dimension.kind == "categorical":
        return value in dimension.choices
    return isinstance(value, (int, float)) and dimension.low <= value <= dimension.high


__all__ = ["OpenedStudy", "continued_seed", "enqueue_recipes", "open_study", "space_for_data"]
