"""The catalogue of malformed inputs: each one refused through the CLI and through Python.

Every case is run twice. Through ``archtune`` (click's CliRunner, in-process: a real
subprocess per case would cost seconds of startup each; tests/test_cli.py checks once that a
subprocess behaves the same): exit code 2, one line ``archtune: error: ...`` on stderr that
names the file / column / row / parameter, no traceback, and not a file left behind. Through
the Python API (``archtune.load_table``, the estimators, ``archtune.load``): the right
``ArchtuneError`` subclass with a one-line message naming the same things. Training is made
to fail the test: every refusal must come before it starts.

Inputs that are messy but readable (other encodings, decimal commas, reordered or extra
columns) are in the second table: they must be read correctly, not refused.
"""

from __future__ import annotations

import gzip
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import archtune
from archtune import AutoNeuralClassifier, BundleError, DataError, NeuralClassifier, NeuralRegressor
from archtune.cli import cli
from archtune.train.loop import Trainer
from tests.conftest import load_shared
from tests.test_cli import assert_one_line_error


# Tiny networks on a busy machine: a second torch thread only spin-waits.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """40 rows of the MAGIC telescope data: 10 numeric features and a 0/1 target."""
    X, y = load_shared("magic.tsv.gz", n=40)
    return X.assign(target=y)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, table) -> Path:
    """A small fitted classifier saved as a bundle, for the predict cases."""
    model = NeuralClassifier(hidden_layers=1, units=8, max_epochs=2, random_state=0)
    model.fit(table.drop(columns="target"), table["target"])
    # metadata as `archtune fit` writes it: predict drops the target column when present
    return archtune.save(model, tmp_path_factory.mktemp("bundle") / "model", metadata={"target": "target"})


@pytest.fixture()
def no_training(monkeypatch):
    """Bad input must be refused before training starts: starting it fails the test."""

    def refuse(self, *args, **kwargs):
        raise AssertionError("training started before the bad input was reported")

    monkeypatch.setattr(Trainer, "fit", refuse)


# =========================================================================== how bad files are made


def _csv(frame: pd.DataFrame, path: Path, **kwargs) -> Path:
    frame.to_csv(path, index=False, **kwargs)
    return path


def _text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _cell(frame: pd.DataFrame, row: int, column: str, value) -> pd.DataFrame:
    """A copy of ``frame`` with one cell set; ``row`` counts data rows from 1, as errors do."""
    out = frame.astype({column: object})
    out.loc[row - 1, column] = value
    return out


def _ragged(t: pd.DataFrame, p: Path) -> Path:
    text = t.to_csv(index=False)
    return _text(p / "ragged.csv", text + ",".join(["1"] * (t.shape[1] + 2)) + "\n")


def _unbalanced_quote(t: pd.DataFrame, p: Path) -> Path:
    lines = t.to_csv(index=False).splitlines()
    lines[5] = '"' + lines[5]  # data row 5: a quote that never closes swallows the rest
    return _text(p / "quotes.csv", "\n".join(lines) + "\n")


def _bad_parquet_footer(t: pd.DataFrame, p: Path) -> Path:
    path = p / "footer.parquet"
    t.to_parquet(path)
    data = path.read_bytes()
    return _bytes(path, data[:-4] + b"PAR0")


def _unreadable(t: pd.DataFrame, p: Path, monkeypatch) -> Path:
    path = _csv(t, p / "secret.csv")
    path.chmod(0)
    if os.geteuid() == 0:  # root reads any file: make the permission check see what a user would
        real = os.access
        monkeypatch.setattr(os, "access", lambda f, mode, **kw: False if Path(f) == path else real(f, mode, **kw))
    return path


def _directory(t: pd.DataFrame, p: Path) -> Path:
    path = p / "folder.csv"
    path.mkdir()
    return path


def _decimal_commas(t: pd.DataFrame, p: Path) -> Path:
    # A comma-separated file cannot hold unquoted decimal commas; quoted ones make text.
    frame = t.assign(FLength=[f"{v:.2f}".replace(".", ",") for v in t["FLength"]])
    return _csv(frame, p / "commas.csv")


# =========================================================================== the catalogue


@dataclass
class Case:
    """One malformed input: how to write it, how to run it, what each interface must say.

    ``command``: "fit", "fit-regression", "tune-cv5" or "predict". ``cli`` fragments are looked
    for in the CLI's line, ``python`` fragments (default: the same) in the Python error."""

    id: str
    make: Callable[..., Path]
    cli: tuple[str, ...]
    python: tuple[str, ...] | None = None
    command: str = "fit"
    error: type = DataError
    target: str = "target"


CASES = [
    Case("empty_file", lambda t, p: _bytes(p / "empty.csv", b""), ("empty.csv: the file is empty",)),
    Case("blank_lines_only", lambda t, p: _text(p / "blank.csv", "\n \n\t\n"), ("blank.csv: the file is empty",)),
    Case("header_only", lambda t, p: _csv(t.head(0), p / "header.csv"), ("header.csv: has a header but no data rows",)),
    Case("ragged_rows", _ragged, ("ragged.csv: cannot be parsed as a CSV table", "Expected 11 fields in line 42, saw 13")),
    Case("wrong_delimiter", lambda t, p: _csv(t, p / "commas.tsv"),
         ("commas.tsv: target column 'target' not found", "read as one column: is the delimiter ','?")),
    Case("unbalanced_quotes", _unbalanced_quote, ("quotes.csv: cannot be parsed as a CSV table", "EOF inside string")),
    Case("bom_but_not_utf8", lambda t, p: _bytes(p / "bom.csv", b"\xef\xbb\xbf" + t.to_csv(index=False).encode()[:300] + b"\xff\xfe"),
         ("bom.csv: starts with a UTF-8 byte-order mark but is not valid UTF-8", "byte 0xff")),
    Case("utf16_undecodable", lambda t, p: _bytes(p / "utf16.csv", t.to_csv(index=False).encode("utf-16") + b"\x00"),
         ("utf16.csv: looks like UTF-16 but cannot be decoded",)),
    Case("truncated_gzip", lambda t, p: _bytes(p / "cut.csv.gz", gzip.compress(t.to_csv(index=False).encode())[:200]),
         ("cut.csv.gz: the gzip stream is corrupt or truncated",)),
    Case("binary_file", lambda t, p: _bytes(p / "image.csv", random.Random(0).randbytes(3000)),
         ("image.csv: is a binary file, not a CSV/TSV table",)),
    Case("parquet_bad_footer_magic", _bad_parquet_footer, ("footer.parquet: not a readable Parquet file",)),
    Case("parquet_bad_header_magic", lambda t, p: _bytes(p / "fake.parquet", b"PAR1" + t.to_csv(index=False).encode()),
         ("fake.parquet: not a readable Parquet file",)),
    Case("unsupported_json", lambda t, p: _text(p / "rows.json", t.to_json(orient="records")),
         ("rows.json: .json files are not supported",)),
    Case("duplicate_column_names", lambda t, p: _csv(t.rename(columns={"FWidth": "FLength"}), p / "dup.csv"),
         ("dup.csv: duplicate column name 'FLength' in the header",)),
    Case("target_missing_suggests", lambda t, p: _csv(t, p / "magic.csv"),
         ("magic.csv: target column 'Target' not found", "(did you mean 'target'?)", "'FLength'"), target="Target"),
    Case("text_in_numeric_column", lambda t, p: _csv(_cell(t, 17, "FLength", "abc"), p / "typo.csv"),
         ("typo.csv: column 'FLength' row 17: 'abc' is not a number",), ("X: column 'FLength' row 17: 'abc' is not a number",)),
    Case("decimal_commas", _decimal_commas,
         ("commas.csv: column 'FLength' row 1:", "is not a number (a comma as decimal mark"),
         ("X: column 'FLength' row 1:", "is not a number (a comma as decimal mark")),
    Case("overflow_1e400", lambda t, p: _csv(_cell(t, 5, "FWidth", "1e400"), p / "huge.csv"),
         ("huge.csv: column 'FWidth' row 5: inf is infinite (too large to represent",),
         ("X: column 'FWidth' row 5: inf is infinite",)),
    Case("inf_in_features", lambda t, p: _csv(_cell(t, 9, "FSize", "-inf"), p / "inf.csv"),
         ("inf.csv: column 'FSize' row 9: -inf is infinite",), ("X: column 'FSize' row 9: -inf is infinite",)),
    Case("too_large_to_scale", lambda t, p: _csv(t.assign(FAlpha=np.where(np.arange(len(t)) % 2, 1e300, -1e300)), p / "scale.csv"),
         ("column 'FAlpha' has values too large to scale (largest magnitude 1e+300)",)),
    Case("nan_in_target", lambda t, p: _csv(_cell(t, 6, "target", np.nan), p / "nan_y.csv"),
         ("nan_y.csv: target column 'target' row 6: the target is missing",), ("y row 6: the target is missing",)),
    Case("inf_in_target", lambda t, p: _csv(_cell(t.astype({"target": float}), 12, "target", np.inf), p / "inf_y.csv"),
         ("inf_y.csv: target column 'target' row 12: the target is infinite",), ("y row 12: the target is infinite",),
         command="fit-regression"),
    Case("one_class", lambda t, p: _csv(t.assign(target="gamma"), p / "one.csv"),
         ("one.csv: target column 'target' has only one class ('gamma')", "at least 2 classes"),
         ("y contains only one class ('gamma')", "at least 2 classes")),
    Case("fewer_rows_than_cv_folds", lambda t, p: _csv(t.head(4).assign(target=[0, 1, 0, 1]), p / "four.csv"),
         ("cv=5 folds need at least 5 rows; got 4",), command="tune-cv5"),
    # One entirely missing column is dropped with a warning (tests/test_data.py); a table with
    # nothing else has nothing to learn from.
    Case("all_missing_columns", lambda t, p: _csv(t[["target"]].assign(FDist=np.nan, FSize=""), p / "holes.csv"),
         ("holes.csv: every column is empty (no values at all, every row is missing): 'FDist', 'FSize'",),
         ("X: every column is empty (no values at all, every row is missing): 'FDist', 'FSize'",)),
    Case("constant_regression_target", lambda t, p: _csv(t.assign(target=3.5), p / "flat.csv"),
         ("flat.csv: target column 'target' is constant (3.5 in all 40 rows)", "needs a target that varies"),
         ("y is constant (3.5 in all 40 rows)",), command="fit-regression"),
    Case("predict_column_renamed", lambda t, p: _csv(t.rename(columns={"FAlpha": "Falpha"}), p / "renamed.csv"),
         ("renamed.csv: missing 1 column(s) the model was trained with: 'FAlpha' (did you mean 'Falpha'?)",),
         ("X is missing 1 column(s) that NeuralClassifier was fitted with: 'FAlpha' (did you mean 'Falpha'?)",),
         command="predict"),
    Case("predict_column_missing", lambda t, p: _csv(t.drop(columns=["FConc", "FM3Long"]), p / "fewer.csv"),
         ("fewer.csv: missing 2 column(s) the model was trained with: 'FConc', 'FM3Long'",),
         ("X is missing 2 column(s)", "'FConc', 'FM3Long'"), command="predict"),
    Case("predict_text_in_numeric_column", lambda t, p: _csv(_cell(t, 3, "FSize", "huge"), p / "new.csv"),
         ("new.csv: column 'FSize' row 3: 'huge' is not a number",), ("X: column 'FSize' row 3: 'huge' is not a number",),
         command="predict"),
    Case("predict_with_a_pickle_as_bundle", lambda t, p: _csv(t, p / "rows.csv"),
         ("model.pkl: is a file, not an archtune model bundle directory", "never loads pickles"),
         command="predict-pickle", error=BundleError),
    Case("path_missing", lambda t, p: p / "nope.csv", ("nope.csv: no such file",)),
    Case("path_is_a_directory", _directory, ("folder.csv: is a directory, not a data file",)),
    Case("path_unreadable", _unreadable, ("secret.csv: permission denied (the file is not readable)",)),
    Case("unknown_builtin_dataset", lambda t, p: Path("irsi"), ("irsi: no such file (did you mean 'iris'?)",)),
]


def _cli_args(case: Case, data: Path, out: Path, bundle: Path) -> list[str]:
    if case.command.startswith("predict"):
        model = out.parent / "model.pkl" if case.command == "predict-pickle" else bundle
        return ["predict", str(model), str(data), "-o", str(out)]
    if case.command == "tune-cv5":
        return ["tune", str(data), "-t", case.target, "--cv", "5", "--trials", "1", "--no-baselines", "-q",
                "-o", str(out)]
    task = ["--task", "regression"] if case.command == "fit-regression" else []
    return ["fit", str(data), "-t", case.target, *task, "-q", "-o", str(out)]


def _python(case: Case, data: Path, out: Path, bundle: Path) -> None:
    """What a Python user would write for the same job."""
    if case.command == "predict-pickle":
        archtune.load(out.parent / "model.pkl").predict(archtune.load_table(data))
    elif case.command == "predict":
        archtune.load(bundle).predict(archtune.load_table(data).drop(columns="target", errors="ignore"))
    elif case.command == "tune-cv5":
        X, y = archtune.load_table(data, target=case.target)
        AutoNeuralClassifier(cv=5, budget=1, baselines=False, random_state=0).fit(X, y)
    else:
        X, y = archtune.load_table(data, target=case.target)
        cls = NeuralRegressor if case.command == "fit-regression" else NeuralClassifier
        cls(max_epochs=1, random_state=0).fit(X, y)


def _listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_malformed_input_is_refused_clearly_by_cli_and_python(case, table, bundle, tmp_path, monkeypatch,
                                                               no_training):
    work = tmp_path / "work"
    work.mkdir()
    maker_args = (table, work, monkeypatch) if case.make is _unreadable else (table, work)
    data = case.make(*maker_args)
    if case.command == "predict-pickle":
        (work / "model.pkl").write_bytes(b"\x80\x04\x95\x00")  # never opened, so any bytes will do
    out = work / ("predictions.csv" if case.command.startswith("predict") else "run")
    before = _listing(work)

    result = CliRunner().invoke(cli, _cli_args(case, data, out, bundle), catch_exceptions=True)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert_one_line_error(result.stderr, result.stdout, *case.cli)
    assert not out.exists() and _listing(work) == before  # nothing left behind, not even a temp file

    with pytest.raises(case.error) as info:
        _python(case, data, out, bundle)
    message = str(info.value)
    assert "\n" not in message
    for fragment in case.python or case.cli:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert _listing(work) == before


def test_the_catalogue_covers_the_issue():
    # Issue 7 asks for at least 25 malformed inputs through both interfaces.
    assert len(CASES) >= 25 and len({c.id for c in CASES}) == len(CASES)


# =========================================================================== messy but readable


def _encoded(encoding: str, prefix: bytes = b""):
    def make(frame: pd.DataFrame, path: Path) -> None:
        path.write_bytes(prefix + frame.to_csv(index=False).encode(encoding))
    return make


def _european(sep: str):
    def make(frame: pd.DataFrame, path: Path) -> None:
        path.write_text(frame.to_csv(index=False, sep=sep, decimal=","))
    return make


READABLE = {  # name: (file name, writer)
    "latin1": ("latin1.csv", _encoded("latin-1")),
    "utf8_bom": ("bom.csv", _encoded("utf-8", b"\xef\xbb\xbf")),
    "utf16_bom": ("utf16.csv", _encoded("utf-16")),
    "utf16le_without_bom": ("utf16le.csv", _encoded("utf-16-le")),
    "semicolons_and_decimal_commas": ("excel.csv", _european(";")),
    "tabs_and_decimal_commas": ("excel.tsv", _european("\t")),
}


@pytest.mark.parametrize("name", sorted(READABLE))
def test_other_encodings_and_decimal_marks_are_read_correctly(name, table, bundle, tmp_path):
    file_name, write = READABLE[name]
    # A text column with accents is what the encodings are about.
    frame = table.assign(site=["Zürich", "Malmö", "Besançon", "Ærø"] * (len(table) // 4))
    path = tmp_path / file_name
    write(frame, path)
    got = archtune.load_table(path)
    pd.testing.assert_frame_equal(got, frame, check_exact=False, rtol=1e-12)
    # And the command line predicts the same as Python does on the original rows.
    result = CliRunner().invoke(cli, ["predict", str(bundle), str(path), "-o", str(tmp_path / "p.csv")])
    assert result.exit_code == 0, result.output
    assert "ignoring 1 column(s) the model was not trained with: 'site'" in result.stderr
    model = archtune.load(bundle)
    expected = model.predict_proba(table.drop(columns="target"))[:, 1]
    np.testing.assert_allclose(pd.read_csv(tmp_path / "p.csv")["proba_1"], expected, rtol=1e-6)


def test_reordered_and_extra_columns_at_predict_time(table, bundle, tmp_path):
    """The CLI selects the model's columns by name (extra ones ignored with a note); Python
    follows scikit-learn: extra columns are ignored with a warning, a different order is an
    error that names the first misplaced column."""
    X = table.drop(columns="target")
    model = archtune.load(bundle)
    shuffled = X[X.columns[::-1]].assign(notes="free text")
    path = _csv(shuffled, tmp_path / "shuffled.csv")
    result = CliRunner().invoke(cli, ["predict", str(bundle), str(path), "-o", str(tmp_path / "p.csv")])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == ("archtune: note: ignoring 1 column(s) the model was not trained "
                                             "with: 'notes'")
    np.testing.assert_allclose(pd.read_csv(tmp_path / "p.csv")["proba_1"], model.predict_proba(X)[:, 1], rtol=1e-6)

    with pytest.warns(UserWarning, match="1 column\\(s\\) not seen in fit, ignored: 'notes'"):
        np.testing.assert_array_equal(model.predict_proba(X.assign(notes="x")), model.predict_proba(X))
    with pytest.raises(DataError, match="different order than in fit: position 1 is 'FDist' but NeuralClassifier "
                                        "was fitted with 'FLength'"):
        model.predict(X[X.columns[::-1]])


def test_a_catalogue_case_through_the_real_entry_point(table, tmp_path):
    """One case in a real subprocess (the others run in-process): before issue 7 this file's
    UnicodeDecodeError escaped as a traceback."""
    import subprocess
    import sys

    data = next(c for c in CASES if c.id == "bom_but_not_utf8").make(table, tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "archtune", "fit", str(data), "-t", "target", "-o", str(tmp_path / "run")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2
    assert_one_line_error(proc.stderr, proc.stdout, "bom.csv: starts with a UTF-8 byte-order mark but is not valid UTF-8")
    assert not (tmp_path / "run").exists()
