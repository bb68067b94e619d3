"""Successive halving over training rows: configurations are tried on a subsample of the
training rows first, and the best share of them is promoted to all rows.

A search on a large table spends most of each trial's time passing over rows that do not change
which configuration wins: the ranking of configurations on a few thousand rows predicts their
ranking on all of them well enough to discard the poor ones (Jamieson & Talwalkar 2016,
"Non-stochastic best arm identification and hyperparameter optimization"; Li et al. 2020, ASHA,
"A system for massively parallel hyperparameter tuning", whose asynchronous promotion rule this
follows; scikit-learn's ``HalvingRandomSearchCV`` with ``resource="n_samples"`` names the rows of
the first stage ``min_resources``). Epochs are the other resource, and the study's own pruner
(Hyperband) halves over them within each stage.

Two stages: every sampled configuration (the recipes too) trains on ``rows`` training rows,
the same seeded rows for all of them (stratified by class), and is scored on all validation rows,
so that every trial's value is comparable; each time ``HALVING_FACTOR`` more first-stage
configurations have finished, the best completed one not yet promoted is enqueued again with the
same parameters and the user attribute ``promoted_from``, and trains on all training rows. So
after n finished first-stage trials exactly ``n // HALVING_FACTOR`` are promoted (fewer only
while fewer than that have completed). A promoted trial does not report to the pruner: its
curve on all rows would make every first-stage curve look poor.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import optuna

from archtune.errors import InvalidParameterError
from archtune.tune.data import Split

# One first-stage configuration in this many is promoted to all rows.
HALVING_FACTOR = 4
# min_resources="auto": an eighth of the training rows, and never fewer than this many; stages
# start only where the first stage holds at most a quarter of the rows (16,384 training rows
# and more). Measured at 60 s budgets (bench/search_quality.py, 2026-12-06): on magic, adult
# and house subsampled to 12,000-13,000 training rows, a first stage of a third of the rows
# gave 2 trials and shipped 0.002-0.016 less than all rows did; on fried's 26,000 it gave 5x
# the configurations. A number given by the user needs only to be at most half of the rows.
AUTO_DIVISOR = 8
AUTO_MAX_SHARE = 4
MIN_AUTO_ROWS = 4096
PROMOTED = "promoted_from"  # the user attribute of a promoted trial: the first-stage trial's number
TRAIN_ROWS = "train_rows"  # the user attribute every trial of a staged search gets


def check_min_resources(value: Any) -> None:
    """``min_resources`` is "auto", None or a number of rows >= 2.

    Raises
    ------
    InvalidParameterError
    """
    if value is None or value == "auto":
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 2:
        raise InvalidParameterError(f"min_resources must be 'auto', None or a number of training rows >= 2 "
                                    f"(the rows of the first stage of successive halving); got "
                                    f"min_resources={value!r}")


def first_stage_rows(min_resources: Any, n_train: int) -> int | None:
    """The rows every configuration first trains on, or None when all trials train on all
    ``n_train`` training rows (``min_resources=None``; "auto" above a quarter of them, a
    number above half of them)."""
    if min_resources is None:
        return None
    if min_resources == "auto":
        rows = max(MIN_AUTO_ROWS, n_train // AUTO_DIVISOR)
        return rows if AUTO_MAX_SHARE * rows <= n_train else None
    rows = int(min_resources)
    return rows if 2 * rows <= n_train else None


def subsample(split: Split, rows: int, seed: int, codes: np.ndarray | None = None) -> Split:
    """``split`` with ``rows`` of its training rows (seeded; stratified by ``codes``, the
    training rows' class codes, when every class keeps a row) and all of its validation rows."""
    from sklearn.model_selection import train_test_split

    n = len(split.y_train)
    positions = np.arange(n)
    try:
        kept, _ = train_test_split(positions, train_size=rows, random_state=seed % 2**32, stratify=codes)
    except ValueError:  # a class too rare to stratify
        kept, _ = train_test_split(positions, train_size=rows, random_state=seed % 2**32)
    kept = np.sort(kept)
    images = None if split.images_train is None else split.images_train[kept]
    return dataclasses.replace(split, train=split.train.take(kept), y_train=split.y_train[kept],
                               images_train=images)


class RowStages:
    """The two stages of a search's trials (module docstring).

    Parameters
    ----------
    splits : list of Split
        The search's splits (all training rows).
    rows : int
        Training rows of the first stage.
    seed : int
    classification : bool
        Whether to stratify the first stage's rows by class.
    factor : int
        One first-stage configuration in ``factor`` is promoted.
    """

    def __init__(self, splits: list[Split], rows: int, seed: int, classification: bool,
                 factor: int = HALVING_FACTOR):
        self.rows = int(rows)
        self.factor = int(factor)
        self.full = splits
        self.first = [subsample(s, self.rows, seed, _codes(s.y_train) if classification else None)
                      for s in splits]

    @staticmethod
    def is_promoted(trial: optuna.trial.BaseTrial) -> bool:
        return trial.user_attrs.get(PROMOTED) is not None

    def splits_for(self, trial: optuna.trial.BaseTrial) -> list[Split]:
        return self.full if self.is_promoted(trial) else self.first

    def rows_for(self, trial: optuna.trial.BaseTrial) -> int:
        return len(self.splits_for(trial)[0].y_train)

    def promote(self, study: optuna.Study) -> list[int]:
        """Enqueue the promotions now due (`due`); returns the first-stage trial numbers
        promoted. Called under the loop's ask lock, just before a leader is asked, so that the
        next ask takes them."""
        trials = study.get_trials(deepcopy=False)
        numbers = self.due(trials)
        by_number = {t.number: t for t in trials}
        for number in numbers:
            study.enqueue_trial(dict(by_number[number].params), user_attrs={PROMOTED: number})
        return numbers

    def due(self, trials: list[optuna.trial.FrozenTrial]) -> list[int]:
        """The first-stage trials to promote now, best first: while fewer than
        ``finished // factor`` are promoted (``finished``: first-stage trials complete or
        pruned), the best completed one not yet promoted."""
        state = optuna.trial.TrialState
        promoted = {t.user_attrs[PROMOTED] for t in trials if self.is_promoted(t)}
        first = [t for t in trials if not self.is_promoted(t)]
        finished = sum(t.state in (state.COMPLETE, state.PRUNED) for t in first)
        candidates = sorted((t for t in first if t.state == state.COMPLETE and t.number not in promoted
                             and t.value is not None), key=lambda t: (-t.value, t.number))
        return [t.number for t in candidates[:max(0, finished // self.factor - len(promoted))]]


def _codes(y: Any) -> np.ndarray | None:
    """Class codes of a 1-D target, or None (several outputs are not stratified)."""
    y = np.asarray(y)
    return np.unique(y, return_inverse=True)[1] if y.ndim == 1 else None


def row_stages(min_resources: Any, splits: list[Split], seed: int, classification: bool) -> RowStages | None:
    """The search's `RowStages`, or None when every trial trains on all rows."""
    rows = first_stage_rows(min_resources, min(len(s.y_train) for s in splits))
    return None if rows is None else RowStages(splits, rows, seed, classification)


__all__ = ["HALVING_FACTOR", "MIN_AUTO_ROWS", "PROMOTED", "RowStages", "TRAIN_ROWS", "check_min_resources",
           "first_stage_rows", "row_stages", "subsample"]
