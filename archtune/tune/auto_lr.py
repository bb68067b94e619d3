"""``learning_rate="auto"`` in a search: each trial's rate is the learning-rate finder's
suggestion for its structure times a searched factor (`AUTO_LR_SCALE_PARAM`, centred on 1).

One finder run per structure, cached: cohort followers share their leader's structure, so a
cohort costs one run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from archtune.tune.data import Split
from archtune.tune.space import AUTO_LR_SCALE_PARAM

# Parameters left out of a structure's key: regularisation and the schedule, which the
# finder's short run hardly sees (so cohort followers share their leader's suggestion).
LR_FINDER_IGNORES = ("learning_rate", "dropout", "weight_decay", "lr_schedule", "warmup_epochs", "max_epochs", "l1",
                     "l2")


class AutoLearningRate:
    """The finder's suggestions, run on ``split``'s training rows with estimators from
    ``make_estimator(params)``, one per structure."""

    def __init__(self, make_estimator: Callable[[dict[str, Any]], Any], split: Split):
        self.make_estimator = make_estimator
        self.split = split
        self.suggestions: dict[tuple, float] = {}

    def centre(self, trial: Any, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` (sampled with `AUTO_LR_SCALE_PARAM`) with the learning rate the finder
        suggests for this structure times the trial's searched factor. The suggestion and the
        rate used are kept in the trial's user attributes."""
        from archtune.doctor.lr_finder import lr_find

        params = dict(params)
        scale = params.pop(AUTO_LR_SCALE_PARAM)
        # Everything that shapes the network and its steps.
        key = tuple(sorted((name, repr(value)) for name, value in params.items() if name not in LR_FINDER_IGNORES))
        if key not in self.suggestions:
            # The finder probes rates on a few unweighted batches: it looks for the rate at
            # which the loss falls fastest, which row weights hardly move.
            estimator = self.make_estimator({**params, "learning_rate": 1e-3})
            self.suggestions[key] = lr_find(estimator, self.split.fit_rows, self.split.y_train).suggestion
        suggestion = self.suggestions[key]
        params["learning_rate"] = suggestion * scale
        trial.set_user_attr("lr_finder_suggestion", suggestion)
        trial.set_user_attr("learning_rate", params["learning_rate"])
        return params


__all__ = ["LR_FINDER_IGNORES", "AutoLearningRate"]
