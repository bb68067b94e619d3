"""The last phase of a search: from its trials to the one model it returns.

`finalise` picks the best trial (or, with several objectives, the one the ``prefer`` rule
picks on the Pareto front), trains the bag that replaces the refit (``bagging``) or refits the
best configuration (archtune.tune.refit), then selects an ensemble of the kept networks, the
bag and the baselines on the validation rows (archtune.ensemble.build). The result names one
final model, the model `predict` uses and `archtune.save` writes: the ensemble when it holds up
(or the best single model when that is a baseline or the bag), else the bag, else the best
network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from archtune.tune.config import SearchConfig
from archtune.tune.data import SearchData, Split
from archtune.tune.leaderboard import ensemble_record, network_name
from archtune.tune.opening import OpenedStudy
from archtune.tune.refit import AUTO_REFIT_SHARE, BestNetwork, Refit, best_network, best_so_far
from archtune.tune.trial_loop import estimator_factory
from archtune.tune.trial_records import trial_config
from archtune.tune.tuner import Search


@dataclass
class Finalised:
    """What a search returns.

    best : BestNetwork
        The best network (``best_estimator_``), its trial, configuration and score.
    final_model : estimator
        What predicts: an `EnsembleClassifier`/`EnsembleRegressor` (a selected ensemble, a
        baseline or the bag alone, or the bag's members), or the best network itself.
    choice : archtune.ensemble.build.EnsembleChoice or None
    library : archtune.ensemble.build.EnsembleLibrary or None
        The ensemble's candidates with their validation predictions.
    bag : archtune.ensemble.bagging.Bag or None
    """

    best: BestNetwork
    final_model: Any
    choice: Any = None
    library: Any = None
    bag: Any = None


def _calibrate(final: Any, library: Any, task: str) -> None:
    """The selected ensemble's intervals (regression) or prediction sets (classes), calibrated
    on the validation rows before its members train on them, with the library's predictions
    (a bag's are out-of-fold). Multi-label searches build no ensemble, so a classifier's
    library targets are one class code per row."""
    from archtune.conformal import calibrate
    from archtune.ensemble.selection import combine
    from archtune.prediction_sets import calibrate_sets

    known = {m.name: p for m, p in zip(library.members, library.predictions)}
    if not all(m.name in known for m in final.members):
        return
    combined = combine([known[m.name] for m in final.members], final.weights)
    source = "the search's validation rows"
    if task == "regression":
        final.conformal_ = calibrate(library.y_val, combined, source)
    else:
        final.conformal_ = calibrate_sets(library.targets, combined, source)


def finalise(config: SearchConfig, data: SearchData, opened: OpenedStudy, search: Search,
             baselines: list[Any], splits: list[Split], started: float) -> Finalised:
    """The best network, the bag and the ensemble of a search whose trials have run."""
    study = opened.study
    best, score, epochs = best_so_far(study, search, config.budget)
    if config.several and epochs is None:  # the prefer rule picks a trial of the Pareto front
        best = _preferred(study, config.prefer_rule)
        score = float(best.values[0])
    deadline = None if config.seconds is None else started + config.seconds
    make_estimator = estimator_factory(config, opened.transfer)
    bagged = None
    if config.bagging and epochs is None:
        from archtune.ensemble.bagging import bag

        # The bag replaces the refit: K members of the best configuration on K folds of all rows.
        bagged = bag(make_estimator, trial_config(best), data.X, data.y, int(config.bagging), config.task.name,
                     config.scorer(), config.seed, data.network_kinds, deadline,
                     list(data.frame.columns) if data.images is None else None, sample_weight=data.weights)
    refit = Refit(make_estimator, data.X, data.y, data.network_kinds, deadline, config.budget, data.weights)
    planned = config.refit is True or (config.refit == "auto" and search.refit_planned())
    network = best_network(best, score, epochs, search, refit, refit_asked=planned, bag=bagged)
    if config.refit == "auto" and not planned and bagged is None:
        saved = dict(study.user_attrs.get("saved_network") or {})
        saved["why"] = (f"not refitted: refit=\"auto\" refits when that takes at most "
                        f"{AUTO_REFIT_SHARE:.0%} of the budget, and this refit would take about "
                        f"{search.refit_estimate():.0f} s")
        saved["text"] = f"{saved.get('text') or 'the best trial network'} ({saved['why']})"
        study.set_user_attr("saved_network", saved)
    bag_name = f"bag of {config.bagging} (network #{network.trial.number})"
    if bagged is not None:
        study.set_user_attr("bag", {"name": bag_name, "oof_score": bagged.oof_score,
                                    "params": network.params.get("arch", "mlp")})
    choice = library = None
    if config.ensembling and data.images is None:
        library = ensemble_library(config, data, search, baselines, splits[0], (bag_name, bagged))
        choice = library.choose() if library is not None else None
        if library is not None and len(splits) == 1:  # the leaderboard's intervals (one hold-out split)
            study.set_user_attr("intervals", {name: list(bounds) for name, bounds in library.intervals().items()})
        if choice is not None and choice.final is not None:
            _calibrate(choice.final, library, config.task.name)
            # Refit policy (measured in bench/search_quality.py): the selected weights are kept,
            # and the members are trained on all rows where that is cheap or already done:
            # LightGBM again (seconds), the best trial's network replaced by its refit.
            from archtune.ensemble.build import refit_members

            refitted = {network.trial.number: network.estimator} if network.refitted else {}
            choice.final = refit_members(choice.final, data.X, data.y, refitted, data.weights, deadline)
        if choice is not None:
            study.set_user_attr("ensemble", ensemble_record(choice))
    if opened.transfer is not None:
        _name_init_from(opened.transfer, network, search)
    final = (choice.final if choice is not None and choice.final is not None
             else bagged.ensemble if bagged is not None else network.estimator)
    return Finalised(network, final, choice, library, bagged)


def ensemble_library(config: SearchConfig, data: SearchData, search: Search, baselines: list[Any], split: Split,
                     bagged: tuple[str, Any]) -> Any:
    """The ensemble's candidates: the bag (with its out-of-fold predictions of the validation
    rows), the networks this process kept (best first) and the baselines it fitted, with their
    predictions on the first split's validation rows; None without any."""
    from archtune.ensemble.build import EnsembleLibrary
    from archtune.ensemble.model import Member

    members = [Member(network_name(number, estimator.model_config_.arch), estimator, "network", value, number)
               for number, value, estimator in search.kept]
    given = {}
    name, bag = bagged
    frame = data.frame
    if bag is not None and frame.index.is_unique:
        members.insert(0, Member(name, bag.ensemble, "bag", bag.oof_score))
        given[name] = bag.oof[frame.index.get_indexer(split.X_val.index)]
    fitted = sorted((b for b in baselines if b.model is not None and b.error is None), key=lambda b: -b.score)
    members += [Member(b.name, b.model, getattr(b.model, "member_kind", "baseline"), b.score) for b in fitted]
    if not members:
        return None
    classes = np.unique(data.y) if config.task.is_classification else None
    return EnsembleLibrary(config.task.name, members, split.X_val, split.y_val, config.scorer(), classes,
                           list(frame.columns), config.seed, given, sample_weight=split.w_val)


def _preferred(study: optuna.Study, prefer: Any) -> Any:
    """The completed trial the prefer rule picks on the Pareto front of (score, cost)."""
    from archtune.tune.pareto import choose

    complete = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                if t.values and len(t.values) == 2]
    return complete[choose([t.values[0] for t in complete], [t.values[1] for t in complete], prefer)]


def _name_init_from(transfer: Any, network: BestNetwork, search: Search) -> None:
    """The networks a search returns name init_from as the user gave it (a path: saved with
    the bundle), as a fit of their own would; they were trained from the same Source."""
    network.params["init_from"] = transfer.given
    for estimator in {id(e): e for e in [network.estimator, *(e for _, _, e in search.kept)]}.values():
        if hasattr(estimator, "set_params") and "init_from" in estimator.get_params():
            estimator.set_params(init_from=transfer.given)


__all__ = ["Finalised", "ensemble_library", "finalise"]
