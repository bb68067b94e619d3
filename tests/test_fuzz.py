"""Fuzzing the readers and the preprocessor: any input loads into a valid table, or fails
with DataError; never any other exception, never a non-finite network input.

Bounded (150 examples per test, no deadline) so that it runs in CI in seconds; hypothesis
keeps failing examples in its database and replays them first.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.pandas import column, data_frames, range_indexes

from archtune.data.kinds import infer_column_kinds
from archtune.data.preprocess import Preprocessor
from archtune.data.readers import read_table
from archtune.errors import DataError

# ARCHTUNE_FUZZ_EXAMPLES=5000 for a deeper run by hand.
SETTINGS = settings(max_examples=int(os.environ.get("ARCHTUNE_FUZZ_EXAMPLES", 150)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

# Text that looks like a table more often than random bytes do: separators, quotes, digits,
# signs, exponents, decimal marks, words that pandas reads as missing or infinite, accents.
CELLS = st.one_of(
    st.from_regex(r"-?[0-9]{1,4}([.,][0-9]{1,3})?(e[+-]?[0-9]{1,3})?", fullmatch=True),
    st.sampled_from(["", "NA", "nan", "inf", "-inf", "1e400", "true", "False", "abc", "Zürich", '"', '""', " "]),
    st.text(alphabet="ab,;\t\"' .\r-é", max_size=6),
)
LINES = st.lists(st.lists(CELLS, min_size=1, max_size=5), min_size=0, max_size=8)
SEPARATORS = st.sampled_from([",", ";", "\t", "|"])
ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16", "utf-16-le"])
SUFFIXES = st.sampled_from([".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".parquet", ".json", ""])


@st.composite
def table_like_bytes(draw) -> bytes:
    sep = draw(SEPARATORS)
    text = "\n".join(sep.join(row) for row in draw(LINES))
    try:
        raw = text.encode(draw(ENCODINGS))
    except UnicodeEncodeError:
        raw = text.encode("utf-8")
    if draw(st.booleans()):
        raw = gzip.compress(raw)
        if draw(st.booleans()):
            raw = raw[: draw(st.integers(0, len(raw)))]  # truncated
    return raw


@st.composite
def parquet_bytes(draw) -> bytes:
    """A real Parquet file, whole or cut short or with bytes overwritten."""
    frame = draw(data_frames([column("a", dtype=float), column("b", elements=st.text(max_size=3))],
                             index=range_indexes(min_size=0, max_size=5)))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "f.parquet"
        frame.to_parquet(path)
        raw = path.read_bytes()
    cut = draw(st.integers(0, len(raw)))
    junk = draw(st.binary(max_size=8))
    return draw(st.sampled_from([raw, raw[:cut], raw[:cut] + junk + raw[cut + len(junk):]]))


ANY_BYTES = st.one_of(st.binary(max_size=600), table_like_bytes(), parquet_bytes())


def check_table(frame: pd.DataFrame) -> None:
    """What every reader promises of a table it returns."""
    assert isinstance(frame, pd.DataFrame)
    assert len(frame) >= 1 and frame.shape[1] >= 1
    assert not frame.columns.duplicated().any()


def check_network_input(frame: pd.DataFrame) -> None:
    """Column kinds, fit and transform succeed with a finite float32 matrix, or raise DataError;
    and the fitted state survives JSON."""
    try:
        kinds = infer_column_kinds(frame, "f")
        pre = Preprocessor().fit(frame, "f", kinds)
        out = pre.transform(frame, "f")
    except DataError as exc:
        assert "\n" not in str(exc)
        return
    assert out.dtype == np.float32 and out.shape[0] == len(frame)
    assert np.isfinite(out).all()
    again = Preprocessor.from_state(json.loads(json.dumps(pre.to_state(), allow_nan=False)))
    np.testing.assert_array_equal(again.transform(frame, "f"), out)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@SETTINGS
@given(raw=ANY_BYTES, suffix=SUFFIXES)
def test_any_bytes_read_as_a_table_or_raise_data_error(folder, raw, suffix):
    path = folder / f"input{suffix}"
    path.write_bytes(raw)
    try:
        frame = read_table(path)
    except DataError as exc:
        assert "\n" not in str(exc) and path.name in str(exc)
        return
    check_table(frame)
    check_network_input(frame)


# Values that break naive code: missing, infinite, huge, tiny, text among numbers, booleans.
NASTY_FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                         st.sampled_from([1e300, -1e300, 3e38, 1e-320, 0.0]))
OBJECTS = st.one_of(st.none(), st.text(max_size=4), st.integers(-5, 5), NASTY_FLOATS, st.booleans(),
                    st.sampled_from(["1,5", "2.5", "inf", "nan", "", " 7 "]))


@SETTINGS
@given(frame=data_frames(
    [column("f", elements=NASTY_FLOATS, dtype=float), column("i", dtype=int, elements=st.integers(-10**6, 10**6)),
     column("o", elements=OBJECTS, dtype=object), column("b", dtype=bool), column("s", elements=st.text(max_size=3))],
    index=range_indexes(min_size=1, max_size=12)))
def test_preprocessor_gives_finite_inputs_or_data_error(frame):
    check_network_input(frame)


@SETTINGS
@given(frame=data_frames([column("x", elements=OBJECTS, dtype=object)], index=range_indexes(min_size=1, max_size=12)),
       shuffle=st.randoms(use_true_random=False))
def test_preprocessor_on_one_messy_column_with_any_index(frame, shuffle):
    # Errors name rows by index label when the index is not 0..n-1.
    order = list(range(len(frame)))
    shuffle.shuffle(order)
    check_network_input(frame.iloc[order])
