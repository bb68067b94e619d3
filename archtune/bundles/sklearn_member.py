"""Scikit-learn baseline members of an ensemble bundle (archtune.bundles.ensemble), in skops' format (no pickle).

skops.io (the scikit-learn developers' persistence format,
https://skops.readthedocs.io/en/stable/persistence.html) stores a fitted pipeline as JSON
plus NumPy arrays in a zip file, and rebuilds it from that description without unpickling:
loading only creates the types the file names, and refuses any it has not been told to
trust. Here the trusted ones are the types and functions of scikit-learn, NumPy and SciPy,
and `archtune.tune.baselines.date_matrix` (the date columns' FunctionTransformer); a file
naming anything else is refused with its name, and ``trusted=True`` is never passed.
"""

from __future__ import annotations

from typing import Any

from archtune.errors import BundleError

# Top-level packages whose types and functions a baseline's file may name, and the archtune
# functions it may name (a function is only called on the table, at predict time).
TRUSTED_PACKAGES = ("sklearn", "numpy", "scipy")
TRUSTED_NAMES = ("archtune.tune.baselines.date_matrix",)


def _untrusted(names: list[str]) -> list[str]:
    return [name for name in names if name.split(".", 1)[0] not in TRUSTED_PACKAGES and name not in TRUSTED_NAMES]


def baseline_to_bytes(model: Any) -> tuple[bytes, dict[str, str]]:
    """A fitted baseline's pipeline in skops' format, and its columns' kinds.

    Parameters
    ----------
    model : archtune.tune.baselines.FittedBaseline

    Returns
    -------
    data : bytes
        The pipeline, as ``skops.io.dumps`` writes it.
    kinds : dict
        Column -> kind, how the baseline types the table before its pipeline (JSON).

    Raises
    ------
    BundleError
        The pipeline holds a type or function `baseline_from_bytes` would refuse (it would not
        load again), naming it.
    """
    import skops.io

    data = skops.io.dumps(model.model)
    foreign = _untrusted(skops.io.get_untrusted_types(data=data))
    if foreign:
        raise BundleError(f"its pipeline holds {', '.join(foreign)}, which archtune bundles do not load (only "
                          "scikit-learn, NumPy and SciPy types)")
    return data, {str(k): str(v) for k, v in model.kinds.items()}


def baseline_from_bytes(data: bytes, kinds: dict[str, str], where: str) -> Any:
    """The `FittedBaseline` that `baseline_to_bytes` wrote.

    Parameters
    ----------
    data : bytes
        The skops file's content.
    kinds : dict
        Column -> kind, as `baseline_to_bytes` returned.
    where : str
        The file, for messages.

    Raises
    ------
    BundleError
        Naming ``where``: the file names a type or function outside the trusted ones, or is
        not a valid skops file.
    """
    import skops.io

    from archtune.tune.baselines import FittedBaseline

    try:
        names = skops.io.get_untrusted_types(data=data)
    except Exception as exc:  # a zip or JSON error: skops raises the library's own types
        raise BundleError(f"{where}: not a valid skops file ({type(exc).__name__}: {exc})") from None
    foreign = _untrusted(names)
    if foreign:
        raise BundleError(f"{where}: refusing a scikit-learn member that names untrusted type(s) "
                          f"{', '.join(foreign)} (only scikit-learn, NumPy and SciPy types load)")
    try:
        model = skops.io.loads(data, trusted=names)
    except Exception as exc:
        raise BundleError(f"{where}: not a valid skops file ({type(exc).__name__}: {exc})") from None
    return FittedBaseline(model, {str(k): str(v) for k, v in kinds.items()})


__all__ = ["baseline_from_bytes", "baseline_to_bytes"]
