"""Readers for CSV, TSV, gzip and Parquet files, with errors that name the file.

`load_table` accepts a path or a built-in dataset name and returns a DataFrame.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import zlib
from pathlib import Path
from typing import Any, overload

import pandas as pd

from archtune.data.datasets import BUILTIN_DATASETS, load_dataset
from archtune.errors import DataError

PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"


@overload
def load_table(source: str | os.PathLike, target: None = None) -> pd.DataFrame: ...
@overload
def load_table(source: str | os.PathLike, target: str) -> tuple[pd.DataFrame, pd.Series]: ...


def load_table(source: str | os.PathLike, target: str | None = None) -> pd.DataFrame | tuple[pd.DataFrame, pd.Series]:
    """Read a table from a file path, or load a built-in dataset by name.

    With ``target`` (a column name) return ``(X, y)``: the other columns and that column,
    with a did-you-mean error naming the file when the column is not there.
    """
    text = str(source)
    path = Path(text)
    if text in BUILTIN_DATASETS and not path.exists():
        frame = load_dataset(text)
    elif path.is_dir():
        _check_path(path)
        from archtune.data.images import image_folder_table

        frame = image_folder_table(path)
    else:
        frame = read_table(path)
    if target is None:
        return frame
    return split_target(frame, target, source_name(source))


def target_columns(target: str, columns: Any) -> list[str]:
    """The target's column names: ``target`` itself when it is a column, else its comma-
    separated parts when each is one (``--target a,b,c``: several outputs, or the 0/1
    columns of a multi-label target), else ``[target]`` (which the caller reports missing)."""
    if target in columns or "," not in str(target):
        return [target]
    parts = [part.strip() for part in str(target).split(",")]
    return parts if all(part in columns for part in parts) else [target]


def split_target(frame: pd.DataFrame, target: str, source: str) -> tuple[pd.DataFrame, pd.Series]:
    """(features, target column) of ``frame``; errors name the file and suggest a column.
    Several comma-separated columns (`target_columns`) give the target as a DataFrame."""
    from archtune.errors import nearest

    several = target_columns(target, frame.columns)
    if len(several) > 1:
        X = frame.drop(columns=several)
        if X.shape[1] == 0:
            raise DataError(f"{source}: no feature columns besides the target columns {several}")
        return X, frame[several]
    if target not in frame.columns:
        columns = [str(c) for c in frame.columns]
        hint = nearest(target, columns)
        shown = ", ".join(repr(c) for c in columns[:8]) + (" ..." if len(columns) > 8 else "")
        raise DataError(f"{source}: target column {target!r} not found{hint}; columns are {shown}"
                        f"{_one_column_hint(columns)}")
    X = frame.drop(columns=[target])
    if X.shape[1] == 0:
        raise DataError(f"{source}: no feature columns besides the target {target!r}")
    return X, frame[target]


def _one_column_hint(columns: list[str]) -> str:
    """A header read as a single column that contains a separator means the wrong delimiter."""
    if len(columns) != 1:
        return ""
    for sep, word in ((",", "','"), (";", "';'"), ("\t", "a tab"), ("|", "'|'")):
        if sep in columns[0]:
            return f" (the header was read as one column: is the delimiter {word}?)"
    return ""


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
        from archtune.data.images import is_image_folder

        if is_image_folder(path):
            return  # <class>/<image> sub-folders: read as a table of image paths and labels
        raise DataError(f"{path}: is a directory, not a data file (an image folder holds <class>/<image> "
                        "sub-folders)")
    if not os.access(path, os.R_OK):
        raise DataError(f"{path}: permission denied (the file is not readable)")


# Suffixes of files that hold something other than a delimited table: say so plainly rather
# than report whatever the CSV parser makes of them.
UNSUPPORTED_SUFFIXES = (".json", ".jsonl", ".xlsx", ".xls", ".zip", ".pkl", ".pickle", ".npy", ".npz",
                        ".h5", ".hdf5", ".feather", ".pt", ".pth")


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path.name}: cannot be read ({exc.strerror or exc})") from None
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
            raise DataError(f"{path.name}: the gzip stream is corrupt or truncated ({_one_line(exc)})") from None
    return raw


# Bytes that never occur in text: NUL and the C0 controls other than tab, newline, CR (and
# form feed / vertical tab, which some exporters emit).
_CONTROL = bytes(c for c in range(32) if c not in (9, 10, 11, 12, 13)) + b"\x7f"


def _decode(raw: bytes, name: str) -> str:
    if raw.startswith(b"\xef\xbb\xbf"):
        try:
            return raw[3:].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{name}: starts with a UTF-8 byte-order mark but is not valid UTF-8 "
                            f"(byte 0x{raw[3 + exc.start]:02x} at offset {3 + exc.start})") from None
    utf16 = "utf-16" if raw.startswith((b"\xff\xfe", b"\xfe\xff")) else _utf16_without_bom(raw)
    if utf16:
        try:
            return raw.decode(utf16)
        except UnicodeDecodeError as exc:
            raise DataError(f"{name}: looks like UTF-16 but cannot be decoded ({exc.reason})") from None
    head = raw[:4096]
    if b"\x00" in head or sum(head.count(c) for c in _CONTROL) > 0.05 * len(head):
        raise DataError(f"{name}: is a binary file, not a CSV/TSV table")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # Latin-1 decodes any byte sequence: older spreadsheets export it.
        return raw.decode("latin-1")


def _utf16_without_bom(raw: bytes) -> str | None:
    """"utf-16-le"/"utf-16-be" for text saved as UTF-16 without a byte-order mark (every ASCII
    character followed, or preceded, by a zero byte), else None."""
    head = raw[:4096]
    if len(head) < 4 or len(head) % 2:
        return None
    even, odd = head[0::2], head[1::2]
    if odd.count(0) > 0.9 * len(odd) and even.count(0) == 0:
        return "utf-16-le"
    if even.count(0) > 0.9 * len(even) and odd.count(0) == 0:
        return "utf-16-be"
    return None


def _delimiter(path: Path, text: str) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if ".tsv" in suffixes or ".tab" in suffixes:
        return "\t"
    if ".csv" in suffixes:
        first = text.split("\n", 1)[0]
        # A ".csv" exported with semicolons, tabs or pipes is common; trust the header line.
        if first.count(",") == 0:
            counts = {sep: first.count(sep) for sep in ";\t|"}
            best = max(counts, key=counts.get)
            return best if counts[best] > 0 else ","
        return ","
    try:
        return csv.Sniffer().sniff(text[:20000], delimiters=",\t;|").delimiter
    except csv.Error:
        return ","


_COMMA_DECIMAL = re.compile(r"[-+]?\d*,\d+")
_DOT_DECIMAL = re.compile(r"[-+]?\d*\.\d+")


def _decimal(text: str, sep: str) -> str:
    """The decimal mark: "," when a semicolon- or tab-separated file writes ``3,14`` (as Excel
    does in much of Europe). A comma-separated file cannot use decimal commas unquoted."""
    if sep not in (";", "\t"):
        return "."
    comma = dot = 0
    for line in text.split("\n", 201)[1:201]:
        for field in line.split(sep):
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
    suffix = next((s for s in map(str.lower, path.suffixes) if s in UNSUPPORTED_SUFFIXES), None)
    if suffix is not None:
        raise DataError(f"{name}: {suffix} files are not supported; archtune reads CSV, TSV "
                        "(optionally gzip-compressed) and Parquet")
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:  # unreadable despite os.access (root squash, I/O error, ...)
        raise DataError(f"{name}: cannot be read ({exc.strerror or exc})") from None
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
        raise DataError(f"{name}: cannot be parsed as a {'TSV' if sep == chr(9) else 'CSV'} table ({_one_line(exc)})") from None
    if len(frame) == 0:
        raise DataError(f"{name}: has a header but no data rows")
    _check_columns(_header(text, sep), name)
    return frame


def _header(text: str, sep: str) -> list[str]:
    """The first line's field names as written (pandas has already parsed the file; a header
    the csv module cannot split is simply not checked for repeats)."""
    try:
        return next(csv.reader(io.StringIO(text, newline=None), delimiter=sep), [])
    except csv.Error:
        return []


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for a damaged file
        raise DataError(f"{path.name}: not a readable Parquet file ({type(exc).__name__}: {_one_line(exc)})") from None
    if len(frame) == 0:
        raise DataError(f"{path.name}: has a header but no data rows")
    _check_columns([str(c) for c in frame.columns], path.name)
    return frame


def _one_line(exc: Exception) -> str:
    """A library's message on one line (pyarrow's span several)."""
    return " ".join(str(exc).split())


def _check_columns(header: list[str], name: str) -> None:
    """Refuse a repeated column name. The header is checked as written: pandas renames a second
    "a" to "a.1", which would silently mix up columns (and a real "a.1" is not a repeat)."""
    seen: set[str] = set()
    for col in header:
        if col in seen:
            raise DataError(f"{name}: duplicate column name {col!r} in the header")
        seen.add(col)
