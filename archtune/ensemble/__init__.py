"""Ensembles of a search's networks and baselines: greedy selection (`selection`), the
ensemble model (`model`), LightGBM members that save without pickle (`gbm`), bundles
(`bundle`) and the search's choice (`build`)."""

from archtune.ensemble.bundle import load_ensemble, save_ensemble
from archtune.ensemble.model import Ensemble, EnsembleClassifier, EnsembleRegressor, Member, make_ensemble
from archtune.ensemble.selection import select_weights

__all__ = ["Ensemble", "EnsembleClassifier", "EnsembleRegressor", "Member", "load_ensemble", "make_ensemble",
           "save_ensemble", "select_weights"]
