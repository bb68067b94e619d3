"""The Pareto front of a multi-objective search, and the rule that picks one network from it.

A point dominates another when it is at least as good in every objective and strictly better
in one (Deb et al. 2002, the NSGA-II paper, section II); the front is the set of points that no
other point dominates. `prefer` rules pick one trial of the front: the best score, or the
cheapest network whose score is within a tolerance of the best (the "knee" users of
size/latency constraints ask for).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from archtune.errors import InvalidParameterError

DIRECTIONS = ("maximize", "minimize")
PREFER_FORMS = ('"score"', '"smallest within T"  (T a number >= 0, e.g. "smallest within 0.005")')
_WITHIN = re.compile(r"smallest\s+within\s+([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)")


def pareto_front(points: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Which points no other point dominates.

    Parameters
    ----------
    points : array of shape (n_points, n_objectives)
        Objective values; a row holding NaN is never on the front and dominates nothing.
    directions : sequence of {"maximize", "minimize"}, one per objective

    Returns
    -------
    ndarray of bool, shape (n_points,)
        True for the points on the front. Equal points do not dominate each other: all of
        them are on the front or none is.

    Raises
    ------
    InvalidParameterError
        A direction is not "maximize" or "minimize", or their number differs from the columns'.

    Two objectives are swept in O(n log n) (sorted on the first, the running best of the
    second); more are compared pairwise, O(n^2 k).
    """
    values = np.asarray(points, dtype=float)
    if values.ndim != 2 or values.shape[1] != len(directions):
        raise InvalidParameterError(f"points must have shape (n_points, {len(directions)}) for "
                                    f"{len(directions)} directions; got shape {values.shape}")
    bad = [d for d in directions if d not in DIRECTIONS]
    if bad:
        raise InvalidParameterError(f"directions must be 'maximize' or 'minimize'; got {bad[0]!r}")
    # Everything as costs to minimise.
    costs = values * np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    valid = ~np.isnan(costs).any(axis=1)
    front = np.zeros(len(costs), dtype=bool)
    index = np.flatnonzero(valid)
    if index.size == 0:
        return front
    if costs.shape[1] == 2:
        front[index[_front_2d(costs[index])]] = True
        return front
    sub = costs[index]
    no_worse = (sub[:, None, :] <= sub[None, :, :]).all(axis=2)  # [i, j]: i is nowhere worse than j
    better = (sub[:, None, :] < sub[None, :, :]).any(axis=2)
    dominated = (no_worse & better).any(axis=0)
    front[index[~dominated]] = True
    return front


def _front_2d(costs: np.ndarray) -> np.ndarray:
    """Front of two costs to minimise: among points of equal first cost only those of least
    second cost can be on it, and they are when that cost is below every point with a strictly
    smaller first cost."""
    order = np.lexsort((costs[:, 1], costs[:, 0]))
    on = np.zeros(len(costs), dtype=bool)
    best_before = math.inf  # least second cost among points of strictly smaller first cost
    start = 0
    while start < len(order):
        stop = start
        first = costs[order[start], 0]
        while stop < len(order) and costs[order[stop], 0] == first:
            stop += 1
        group = order[start:stop]
        least = costs[group[0], 1]  # sorted: the group's least second cost
        if least < best_before:
            on[group[costs[group, 1] == least]] = True
            best_before = least
        start = stop
    return on


@dataclass(frozen=True)
class Prefer:
    """A parsed ``prefer`` rule: ``kind`` "score" (the best score) or "smallest" (the least
    cost on the front among scores within ``tolerance`` of the best)."""

    kind: str
    tolerance: float = 0.0

    def __str__(self) -> str:
        return "score" if self.kind == "score" else f"smallest within {self.tolerance:g}"


def parse_prefer(rule: str) -> Prefer:
    """Read a ``prefer`` rule.

    Parameters
    ----------
    rule : str
        "score", or "smallest within T" with T a non-negative number in the score's units.

    Raises
    ------
    InvalidParameterError
        Any other text, listing the accepted forms.
    """
    if isinstance(rule, str):
        text = " ".join(rule.strip().lower().split())
        if text == "score":
            return Prefer("score")
        match = _WITHIN.fullmatch(text)
        if match:
            tolerance = float(match.group(1))
            if math.isfinite(tolerance):
                return Prefer("smallest", tolerance)
    raise InvalidParameterError(f"prefer must be one of {' or '.join(PREFER_FORMS)}; got prefer={rule!r}")


def choose(scores: Sequence[float], costs: Sequence[float], prefer: Prefer) -> int:
    """The position of the preferred point among (score, cost) pairs: score maximised, cost
    minimised.

    Parameters
    ----------
    scores, costs : sequences of float, same length n >= 1
        NaN entries are never chosen.
    prefer : Prefer

    Returns
    -------
    int
        "score": the best score (the least cost on ties, then the first). "smallest within
        T": the least cost among the front's points whose score is at least best - T (the
        best score on ties of cost, then the first). The best-score point qualifies, so a
        choice always exists.

    Raises
    ------
    InvalidParameterError
        No point has both values.
    """
    s = np.asarray(scores, dtype=float)
    c = np.asarray(costs, dtype=float)
    usable = ~(np.isnan(s) | np.isnan(c))
    if not usable.any():
        raise InvalidParameterError("no trial has both a score and a cost to choose from")
    front = pareto_front(np.column_stack([s, c]), ("maximize", "minimize"))
    best = s[usable].max()
    tolerance = prefer.tolerance if prefer.kind == "smallest" else 0.0
    eligible = np.flatnonzero(front & (s >= best - tolerance))
    # Among the eligible: least cost first, then best score, then the earliest point.
    return int(min(eligible, key=lambda i: (c[i], -s[i], i)))


def front_column(frame: pd.DataFrame, cost: str) -> pd.Series:
    """A leaderboard's ``pareto`` column: True for the completed trials on the front of
    (``val_score`` maximised, ``cost`` minimised) among completed trials, False for the other
    trials, None for rows that are not trials (baselines, ensembles: not searched, so not on
    the search's front)."""
    trials = frame["state"].isin(["COMPLETE", "PRUNED", "FAIL"])
    complete = (frame["state"] == "COMPLETE").to_numpy()
    points = frame[["val_score", cost]].to_numpy(dtype=float)
    on = np.zeros(len(frame), dtype=bool)
    if complete.any():
        on[np.flatnonzero(complete)] = pareto_front(points[complete], ("maximize", "minimize"))
    column = pd.Series(on, index=frame.index, dtype=object)
    column[~trials.to_numpy()] = None
    return column


__all__ = ["DIRECTIONS", "PREFER_FORMS", "Prefer", "choose", "front_column", "pareto_front", "parse_prefer"]
