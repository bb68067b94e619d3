"""Readers for CSV, TSV, gzip and Parquet files, with errors that name the file.

`load_table` accepts a path or a built-in dataset name and returns a DataFrame.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
from pathlib import Path

import pandas as pd

from archtune.data.datasets import BUILTIN_DATASETS, load_dataset
from archtune.errors import DataError

PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"


def load_table(source: str | os.PathLike) -> pd.DataFrame:
    """Read a table from a file path, or load a built-in dataset by name."""
    text = str(source)
    path = Path(text)
    if text in BUILTIN_DATASETS and not path.exists():
        return load_dataset(text)
    return read_table(path)


def check_source(source: str | os.PathLike) -> None:
    """Raise DataError at once if ``source`` is neither a readable file nor a built-in name."""
    if str(source) in BUILTIN_DATASETS and not Path(str(source)).exists():
        return
    _check_path(Path(source))


def source_name(source: str | os.PathLike) -> str:
    """How errors refer to a data source: the file's name, or the built-in name."""
    return Path(str(source)).name


def _check_path(path: Path) -> None:
    if not path.exists():
        hint = ""
        if "/" not in str(path) and "." not in path.name:
            from archtune.errors import nearest

            hint = nearest(path.name, BUILTIN_DATASETS) or (
                f" (nor a built-in dataset: {', '.join(sorted(BUILTIN_DATASETS))})"
            )
        raise DataError(f"{path}: no such file{hint}")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not a data file")
    if not os.access(path, os.R_OK):
        raise DataError(f"{path}: permission denied (the file is not readable)")


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise DataError(f"{path.name}: the gzip stream is corrupt or truncated ({exc})") from None
    return raw


def _decode(raw: bytes, name: str) -> str:
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", errors="strict")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise DataError(f"{name}: looks like UTF-16 but cannot be decoded ({exc.reason})") from None
    if b"\x00" in raw[:4096]:
        raise DataError(f"{name}: is a binary file, not a CSV/TSV table")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # Latin-1 decodes any byte sequence: older spreadsheets export it.
        return raw.decode("latin-1")


def _delimiter(path: Path, text: str) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if ".tsv" in suffixes or ".tab" in suffixes:
        return "\t"
    if ".csv" in suffixes:
        first = text.split("\n", 1)[0]
        # A ".csv" exported with semicolons or tabs is common; trust the header line.
        if first.count(",") == 0 and (first.count(";") > 0 or first.count("\t") > 0):
            return ";" if first.count(";") >= first.count("\t") else "\t"
        return ","
    try:
        return csv.Sniffer().sniff(text[:20000], delimiters=",\t;|").delimiter
    except csv.Error:
        return ","


_COMMA_DECIMAL = re.compile(r"[-+]?\d*,\d+")
_DOT_DECIMAL = re.compile(r"[-+]?\d*\.\d+")


def _decimal(text: str, sep: str) -> str:
    """The decimal mark: "," when a semicolon-separated file writes ``3,14`` (as Excel does in Europe)."""
    if sep != ";":
        return "."
    comma = dot = 0
    for line in text.split("\n", 201)[1:201]:
        for field in line.split(";"):
            field = field.strip().strip('"')
            if _COMMA_DECIMAL.fullmatch(field):
                comma += 1
            elif _DOT_DECIMAL.fullmatch(field):
                dot += 1
    return "," if comma > dot else "."


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read CSV, TSV (optionally gzip-compressed) or Parquet into a DataFrame."""
    path = Path(path)
    _check_path(path)
    name = path.name
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head == PARQUET_MAGIC or path.suffix.lower() in (".parquet", ".pq"):
        return _read_parquet(path)
    raw = _read_bytes(path)
    if not raw.strip():
        raise DataError(f"{name}: the file is empty")
    text = _decode(raw, name)
    sep = _delimiter(path, text)
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, decimal=_decimal(text, sep), low_memory=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{name}: the file is empty") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{name}: cannot be parsed as a {'TSV' if sep == chr(9) else 'CSV'} table ({str(exc).strip()})") from None
    if len(frame) == 0:
        raise DataError(f"{name}: has a header but no data rows")
    _check_columns(frame, name)
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for a damaged file
        raise DataError(f"{path.name}: not a readable Parquet file ({type(exc).__name__}: {exc})") from None
    if len(frame) == 0:
        raise DataError(f"{path.name}: has a header but no data rows")
    _check_columns(frame, path.name)
    return frame


def _check_columns(frame: pd.DataFrame, name: str) -> None:
    seen: set[str] = set()
    for col in frame.columns:
        base = str(col)
        # pandas renames a repeated header "a" to "a.1"; that is almost always a mistake.
        if "." in base and base.rsplit(".", 1)[1].isdigit() and base.rsplit(".", 1)[0] in seen:
            raise DataError(f"{name}: duplicate column name {base.rsplit('.', 1)[0]!r} in the header")
        seen.add(base)
