"""The training doctor: a learning-rate finder (diagnostics to follow, issue 5)."""

from archtune.doctor.lr_finder import LRFinderResult, lr_find

__all__ = ["LRFinderResult", "lr_find"]
