"""The search's portfolio of gradient-boosting configurations, tried in order.

A portfolio is a short list of configurations chosen offline so that, taken in order, each
adds the most to the best of those before it over many tables (greedy portfolio selection:
Feurer et al., "Auto-sklearn 2.0", 2022; AutoGluon's zero-shot portfolios from TabRepo,
Salinas and Erickson 2024). archtune's is built by ``bench/build_portfolio.py`` from a
configuration x table score matrix on shared tables that the search-quality benchmark does not
use, and is stored as data beside this module (``portfolio.json``). The search fits the
configurations in order, each with early stopping on rows held out of its training rows, as
far as the baselines' share of the budget reaches.

Families: "lightgbm" (always installed) and "catboost" (the ``archtune[catboost]`` extra; its
configurations are left out, with the reason on the leaderboard, without it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archtune.errors import ArchtuneError

PORTFOLIO_FILE = Path(__file__).with_name("portfolio.json")
FORMAT = "archtune-portfolio"
FAMILIES = ("lightgbm", "catboost")


@dataclass(frozen=True)
class GBDTConfig:
    """One configuration: its leaderboard ``name``, the ``family`` and the model's own
    parameters (LightGBM's scikit-learn parameters, or CatBoost's)."""

    name: str
    family: str
    params: dict[str, Any]

    def model(self, task: str, kinds: dict[str, str] | None, seed: int) -> Any:
        """An unfitted table model of this configuration for ``task`` ("classification" or
        "regression"). Raises ImportError naming the extra for CatBoost without it."""
        classify = task != "regression"
        if self.family == "catboost":
            from archtune.ensemble.catboost_member import (CatBoostTableClassifier, CatBoostTableRegressor,
                                                           require_catboost)

            require_catboost()
            cls = CatBoostTableClassifier if classify else CatBoostTableRegressor
        else:
            from archtune.ensemble.gbm import LightGBMTableClassifier, LightGBMTableRegressor

            cls = LightGBMTableClassifier if classify else LightGBMTableRegressor
        return cls(kinds=kinds, random_state=seed, params=dict(self.params))


def load_portfolio(path: str | Path = PORTFOLIO_FILE) -> list[GBDTConfig]:
    """The configurations of the portfolio file, in the order the search tries them.

    Raises
    ------
    ArchtuneError
        Naming the file and the entry: not a portfolio, an unknown family, a repeated name, or
        parameters that are not a JSON object.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ArchtuneError(f"{path}: cannot read the portfolio ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("configs"), list):
        raise ArchtuneError(f"{path}: not an archtune portfolio (format {FORMAT!r} with a list of configs)")
    configs, seen = [], set()
    for i, entry in enumerate(data["configs"]):
        where = f"{path}: configs[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("params"), dict):
            raise ArchtuneError(f"{where}: must be an object with name, family and params (an object)")
        name, family = entry.get("name"), entry.get("family")
        if family not in FAMILIES:
            raise ArchtuneError(f"{where}: family must be one of {', '.join(FAMILIES)}; got {family!r}")
        if not isinstance(name, str) or not name or name in seen:
            raise ArchtuneError(f"{where}: name must be a new non-empty string; got {name!r}")
        seen.add(name)
        configs.append(GBDTConfig(name, family, dict(entry["params"])))
    return configs


__all__ = ["FAMILIES", "GBDTConfig", "PORTFOLIO_FILE", "load_portfolio"]
