"""The training doctor: a learning-rate finder, and `diagnose` with its detectors."""

from archtune.doctor.diagnose import diagnose
from archtune.doctor.findings import CODES, Diagnosis, Finding
from archtune.doctor.lr_finder import LRFinderResult, lr_find

__all__ = ["CODES", "Diagnosis", "Finding", "LRFinderResult", "diagnose", "lr_find"]
