"""`Evidence`: what a diagnosis measured, the one input of every detector.

Its own module so that the detectors (which read it) and diagnose (which fills it) both
import it and neither imports the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from archtune.doctor.probes import TrainingRecord


@dataclass
class Evidence:
    """Everything the detectors may look at; fields are None when not measured."""

    task: str
    history: pd.DataFrame
    constant_loss: float  # loss of the best constant prediction (the prior / the mean)
    record: TrainingRecord | None = None  # instrumented run only
    grad_rms: list[list[float]] | None = None  # [batch or step][layer]
    layers: list[str] = field(default_factory=list)
    initial_units: list = field(default_factory=list)  # UnitStats before training
    final_units: list = field(default_factory=list)  # UnitStats of the final network
    initial_duplicates: list = field(default_factory=list)
    final_duplicates: list = field(default_factory=list)
    diverged: str | None = None  # the divergence message, if training diverged
    params: dict[str, Any] = field(default_factory=dict)
    # A fit from init_from: its validation score and a scratch fit's on the same split
    # (`transfer_reference`); None when not measured.
    transfer: dict[str, Any] | None = None
    # The instrumented network started from a source with a new output layer, which starts at
    # zero (archtune.transfer.copy): the body's first gradients are zero whatever its depth.
    zero_head: bool = False
