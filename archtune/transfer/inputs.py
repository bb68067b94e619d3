"""A new table read through a trained network's preprocessor: columns matched by name.

A fit that starts from a `Source` does not refit the preprocessor: the new X must mean what
the source's X meant. Named columns are matched by name: a column the source read that X
lacks is filled as missing (the preprocessor's median and missing indicator, or its missing
category), with a warning; a column the source did not read is ignored, with a warning.
Unnamed arrays must have the source's column count, images its image shape, series its
series shape.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import Any

from archtune.data.inputs import FittedInputs
from archtune.data.frames import list_columns
from archtune.errors import DataError


@dataclass(frozen=True)
class MatchedInputs:
    """X matched to a source: the table to transform, the preprocessor to transform it with
    (the source's; a copy whose ``columns_`` are X's and ``filled_`` the absent ones when
    columns were matched by name), and what the new fit's X must look like later."""

    frame: Any
    preprocessor: Any
    inputs: FittedInputs


_KIND = {"image": "images", "series": "series", None: "a table"}


def match_inputs(source: Any, frame: Any, named: bool, kind: str | None, shape: tuple[int, ...], owner: str,
                 sparse: bool = False, what: str = "X") -> MatchedInputs:
    """Match X (as `prepare` read it: ``frame``, whether its columns are ``named``, its
    ``kind`` "image"/"series"/None and ``shape``) to ``source``'s inputs.

    Raises
    ------
    DataError
        Another kind of input than the source's (images, series, a table), images or series
        of another shape, an unnamed table with another column count, or a named table that
        lacks a column of images, or shares no column with the source.
    """
    src: FittedInputs = source.inputs
    pre = source.preprocessor
    source_kind = "image" if src.image_shape else "series" if src.series_shape else None
    if kind != source_kind:
        raise DataError(f"{what} is {_KIND[kind]}, but init_from's network ({source.origin}) was trained on "
                        f"{_KIND[source_kind]}; start from a network trained on the same kind of input")
    if kind is not None:
        fitted = tuple(src.image_shape if kind == "image" else src.series_shape)
        if tuple(shape) != fitted:
            raise DataError(f"{what} holds {_KIND[kind]} of shape {tuple(shape)}, but init_from's network was "
                            f"trained on {_KIND[kind]} of shape {fitted}")
    if bool(getattr(pre, "sparse_", False)) != sparse:
        raise DataError(f"{what} is {'a sparse' if sparse else 'a dense'} matrix, but init_from's network was "
                        f"trained on {'sparse' if pre.sparse_ else 'dense'} input")
    if not (named and src.feature_names is not None and kind is None and not sparse):
        if frame.shape[1] != src.n_features:
            raise DataError(f"{what} has {frame.shape[1]} columns, but init_from's network was trained on "
                            f"{src.n_features}; give a DataFrame with named columns to match them by name")
        inputs = FittedInputs(owner, src.arch, src.n_features, None, tuple(src.image_shape), tuple(src.series_shape),
                              tuple(pre.columns_))
        return MatchedInputs(frame if sparse else frame.set_axis(list(pre.columns_), axis=1), pre, inputs)
    given = [str(c) for c in frame.columns]
    known = set(pre.columns_)
    kept = [c for c in given if c in known]
    extra = [c for c in given if c not in known]
    dropped = set(pre.dropped_)
    missing = [c for c in pre.columns_ if c not in set(given) and c not in dropped]
    if not kept:
        raise DataError(f"{what} shares no column with init_from's network ({source.origin}), which reads "
                        f"{list_columns(list(pre.columns_))}")
    unfillable = [c for c in missing if c in set(pre.image_)]
    if unfillable:
        raise DataError(f"{what} lacks the image column(s) {list_columns(unfillable)} that init_from's network reads; "
                        "images cannot be filled as missing")
    if extra:
        warnings.warn(f"{what} has {len(extra)} column(s) that init_from's network did not read, ignored: "
                      f"{list_columns(extra)}", UserWarning, stacklevel=4)
    if missing:
        warnings.warn(f"{what} lacks {len(missing)} column(s) that init_from's network reads, filled as missing "
                      f"(the training median with its missing indicator, or the missing category): "
                      f"{list_columns(missing)}", UserWarning, stacklevel=4)
    reused = copy.deepcopy(pre)
    reused.columns_ = kept  # what X holds, in X's order (a column the source dropped is read and ignored)
    reused.filled_ = list(missing)
    frame = frame.set_axis(given, axis=1)[kept]
    return MatchedInputs(frame, reused, FittedInputs(owner, src.arch, len(kept), tuple(kept), columns=tuple(kept)))


__all__ = ["MatchedInputs", "match_inputs"]
