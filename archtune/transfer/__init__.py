"""Reuse what a trained network learned: start a fit from it (``init_from``), freeze and
fine-tune (see source.py for what a network can be started from)."""

from archtune.transfer.copy import CopyReport, copy_matching
from archtune.transfer.freeze import FineTuning, PhasePlan, forward_layers, plan_phase
from archtune.transfer.reading import read_source
from archtune.transfer.source import Source

__all__ = ["CopyReport", "FineTuning", "PhasePlan", "Source", "copy_matching", "forward_layers", "plan_phase",
           "read_source"]
