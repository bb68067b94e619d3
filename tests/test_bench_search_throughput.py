"""bench/search_throughput.py on tiny budgets: its records agree with the studies they were read
from, the worker imports the checkout it is given, and the quick path prints and writes one
row per checkout. No timing is asserted (speed belongs to the bench's figures)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests.conftest import shared_path

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    shared_path("magic.tsv.gz")  # skips without ../shared/datasets
    spec = importlib.util.spec_from_file_location("search_throughput", ROOT / "bench" / "search_throughput.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def linked_checkout(tmp_path):
    """A 'checkout' whose archtune is this one through a symlink: the imported package's path
    says which checkout the worker put first on sys.path."""
    (tmp_path / "archtune").symlink_to(ROOT / "archtune", target_is_directory=True)
    return tmp_path


def _finished_from_dataframe(study) -> tuple[int, int, int]:
    """(complete, pruned, failed) counted a second way: Optuna's trials DataFrame."""
    states = study.trials_dataframe(attrs=("number", "state"))["state"].value_counts()
    return tuple(int(states.get(s, 0)) for s in ("COMPLETE", "PRUNED", "FAIL"))


def test_record_agrees_with_the_study(bench):
    model, record = bench.search("magic", population=True, budget=3, rows=1000)
    complete, pruned, failed = _finished_from_dataframe(model.study_)
    assert (record["complete"], record["pruned"], record["failed"]) == (complete, pruned, failed)
    assert record["finished"] == complete + pruned >= 1
    # The rate times the minutes it is per gives back the trials the study holds.
    assert record["trials_per_minute"] * record["minutes"] == pytest.approx(complete + pruned)
    assert record["minutes"] * 60 == pytest.approx(record["seconds"])
    # The search span covers every trial's own span.
    longest = max((t.datetime_complete - t.datetime_start).total_seconds() for t in model.study_.trials
                  if t.datetime_complete is not None)
    assert record["seconds"] >= longest
    epochs = sum(len(t.intermediate_values) for t in model.study_.trials if t.state.name == "PRUNED") + \
        sum(int(t.user_attrs["epochs_run"]) for t in model.study_.trials if t.state.name == "COMPLETE")
    assert record["epochs"] == epochs
    assert record["epochs_per_minute"] * record["minutes"] == pytest.approx(epochs)
    assert record["rows"] == [800, 10]  # 80% of the 1000-row subsample, magic's 10 features
    assert record["population"] is True and 0.0 <= record["stacked_share"] <= 1.0
    assert Path(record["archtune"]) == ROOT / "archtune"


def test_worker_imports_the_given_checkout(bench, linked_checkout):
    record = bench.run_search(linked_checkout, "magic", population=False, budget=2, rows=1000)
    assert record["archtune"] == str(linked_checkout / "archtune")
    assert record["population"] is False
    assert record["largest_cohort"] == 1 and record["stacked_share"] == 0.0  # one trial at a time
    assert record["trials_per_minute"] * record["minutes"] == pytest.approx(record["finished"])


def test_checkout_without_archtune_is_refused(bench, tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench.main(["--quick", "--checkout", str(tmp_path)])
    assert "--checkout" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_path_before_and_after(bench, linked_checkout, tmp_path, capsys):
    out = tmp_path / "throughput.json"
    results = bench.main(["--quick", "--budget", "2", "--rows", "1000", "--checkout", str(linked_checkout),
                          "--json", str(out)])
    assert [(r["table"], r["checkout"]) for r in results] == [("magic", "after"), ("magic", "before")]
    for row in results:
        runs = row["runs"]
        assert set(runs) == {"cohorts", "one at a time"}
        assert runs["cohorts"]["population"] is True and runs["one at a time"]["population"] is False
        assert row["ratio"] == pytest.approx(runs["cohorts"]["trials_per_minute"]
                                             / runs["one at a time"]["trials_per_minute"])
        for record in runs.values():
            assert record["trials_per_minute"] * record["minutes"] == pytest.approx(record["finished"])
    assert results[1]["runs"]["cohorts"]["archtune"] == str(linked_checkout / "archtune")
    printed = capsys.readouterr().out
    assert printed.count("| magic |") == 3  # one line per checkout, one of after / before
    saved = json.loads(out.read_text())
    assert saved["results"] == json.loads(json.dumps(results))
    assert set(saved["checkouts"]) == {"after", "before"}
