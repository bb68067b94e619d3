"""The few error types archtune raises on purpose.

Every message is one line that names what is wrong: the parameter, the rule and the value
(`InvalidParameterError`), or the file, column and row (`DataError`). They subclass
`ValueError` so that scikit-learn's tooling treats them as input errors (`SaveError`, an
`OSError`, is the exception).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ArchtuneError(Exception):
    """Base class of every error archtune raises deliberately."""


class InvalidParameterError(ArchtuneError, ValueError):
    """A parameter has an unknown name or a value outside its allowed range."""


class DataError(ArchtuneError, ValueError):
    """Input data cannot be used: unreadable file, bad value, missing column, ..."""


class TrainingDivergedError(ArchtuneError, RuntimeError):
    """The loss became NaN or infinite during training."""


class DeadNetworkError(ArchtuneError, RuntimeError):
    """The network gives the same output for every row: a whole layer of units is inactive."""


class BundleError(ArchtuneError):
    """A saved model bundle is missing, corrupted, foreign or of an unknown format."""


class SaveError(ArchtuneError, OSError):
    """A file could not be written (disk full, no permission); its previous version is kept."""


def nearest(name: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""`` if none is close."""
    matches = difflib.get_close_matches(str(name), [str(c) for c in choices], n=3, cutoff=0.5)
    if not matches:
        return ""
    # Only the choices about as close as the closest: 'dropuot' means 'dropout', not 'dropout_schedule'.
    ratio = {m: difflib.SequenceMatcher(None, str(name), m).ratio() for m in matches}
    matches = [m for m in matches if ratio[m] >= ratio[matches[0]] - 0.15]
    if len(matches) == 1:
        return f" (did you mean {matches[0]!r}?)"
    return " (did you mean " + " or ".join(repr(m) for m in matches) + "?)"


__all__ = ["ArchtuneError", "BundleError", "DataError", "DeadNetworkError", "InvalidParameterError", "SaveError",
           "TrainingDivergedError"]
