"""The run report: one self-contained HTML page whose embedded numbers are the run's own, from
a real search and a real fit on shared tables; the plotting functions; and a report that never
fails its run. (Opening the page in a browser is tested elsewhere.)"""

from __future__ import annotations

import html
import re
import sys
import warnings

import numpy as np
import optuna
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.metrics import confusion_matrix

import archtune
from archtune.cli import cli
from archtune.report import SECTION_IDS, build_report, section_data, section_ids, write_report
from archtune.report import data as rd
from archtune.report.html import Section, render
from archtune.tune.history import param_importances
from tests.conftest import load_shared

SEARCH_SECTIONS = ["verdict", "leaderboard", "learning-curves", "optimization-history", "importances", "doctor",
                   "holdout", "permutation-importance", "network", "settings"]


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _table(tmp_path_factory, name: str, n: int):
    X, y = load_shared(name, n=n)
    path = tmp_path_factory.mktemp("data") / f"{name.split('.')[0]}.csv"
    X.assign(target=y).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def search_run(tmp_path_factory):
    """A real small search on 1500 rows of MAGIC with 300 held-out rows (no pruning, so that
    enough trials complete for importances)."""
    data = _table(tmp_path_factory, "magic.tsv.gz", 1500)
    out = tmp_path_factory.mktemp("runs") / "search"
    result = _invoke("tune", data, "--target", "target", "--trials", 4, "--set", "max_epochs=6", "--holdout", 0.2,
                     "--pruner", "none", "-q", "--out", out)
    assert result.exit_code == 0, result.output
    return data, out, result.output


@pytest.fixture(scope="module")
def fit_run(tmp_path_factory):
    """A plain fit (no search) of a regressor on 1500 rows of house_16H, 20% held out."""
    data = _table(tmp_path_factory, "574_house_16H.tsv.gz", 1500)
    out = tmp_path_factory.mktemp("runs") / "fit"
    result = _invoke("fit", data, "--target", "target", "--set", "max_epochs=5", "-q", "--out", out)
    assert result.exit_code == 0, result.output
    return data, out, result.output


def _page(run):
    text = (run / "report.html").read_text()
    return text, section_data(text)


def test_a_search_writes_a_report_with_every_section_it_has(search_run):
    _, out, output = search_run
    assert f"report: {out / 'report.html'}" in output
    page, data = _page(out)
    ids = section_ids(page)
    assert [s for s in SECTION_IDS if s in ids] == ids  # in the documented order
    assert set(SEARCH_SECTIONS) <= set(ids)
    assert set(SEARCH_SECTIONS) <= set(data)  # every chart's data is embedded


def test_the_pages_numbers_are_the_runs(search_run):
    _, out, _ = search_run
    _, data = _page(out)
    model = archtune.load(out, best_network=True)  # the curves are the best network's
    curves = data["learning-curves"]
    history = model.history_
    assert curves["epochs"] == history["epoch"].tolist() and curves["best_epoch"] == model.best_epoch_
    for column in history.columns.drop("epoch"):
        assert curves["series"][column] == pytest.approx(history[column].tolist(), nan_ok=True)
    shares = data["importances"]["importances"]
    assert len(shares) >= 2 and sum(shares.values()) == pytest.approx(1.0) and min(shares.values()) >= 0
    board = pd.read_csv(out / "leaderboard.csv")
    rows = data["leaderboard"]["rows"]
    assert [r["rank"] for r in rows] == board["rank"].tolist()
    for column in ("model", "state", "note", "params"):
        assert [r[column] for r in rows] == board[column].fillna("").astype(str).replace("", None).tolist()
    assert [r["val_score"] for r in rows] == pytest.approx(board["val_score"].tolist(), nan_ok=True)
    history_rows = data["optimization-history"]["trials"]
    study = optuna.load_study(study_name="archtune", storage=f"sqlite:///{out / 'study.db'}")
    finished = [t for t in study.trials if t.state.is_finished()]
    assert [t["number"] for t in history_rows] == [t.number for t in finished]
    assert [t["value"] for t in history_rows] == [t.value for t in finished]
    assert data["verdict"]["verdict"] == archtune.load(out).bundle_metadata_["verdict"]


def test_the_confusion_matrix_counts_what_the_run_predicts_on_the_held_out_rows(search_run):
    data_path, out, _ = search_run
    _, data = _page(out)
    holdout = data["holdout"]
    assert holdout["n_rows"] == 300 and np.sum(holdout["confusion"]) == 300
    evaluation = rd.load_run(out).evaluation
    table = pd.read_csv(data_path)
    rows = table.loc[evaluation["index"]]
    assert rows["target"].tolist() == evaluation["y_true"]
    model = archtune.load(out)
    predicted = model.predict(rows.drop(columns="target"))
    expected = confusion_matrix(rows["target"], predicted, labels=model.classes_)
    assert holdout["confusion"] == expected.tolist()
    assert holdout["labels"] == model.classes_.tolist()
    interval = holdout["interval"]  # the held-out accuracy the run printed, with its bootstrap interval
    assert interval["value"] == pytest.approx(holdout["metrics"]["accuracy"])
    assert interval["value"] == pytest.approx(np.mean(rows["target"].to_numpy() == predicted))
    assert interval["low"] < interval["value"] < interval["high"] and interval["n_boot"] == 1000
    # The calibration curve's bins hold every held-out row.
    assert sum(holdout["calibration"]["counts"]) == 300
    perm = data["permutation-importance"]
    assert sorted(perm["features"]) == sorted(map(str, model.feature_names_in_))
    assert perm["mean"] == sorted(perm["mean"], reverse=True)
    # The rows it used were cut by the time one prediction took (never below 200): a rule, not a timing.
    assert 200 <= perm["n_rows"] <= 300


def test_the_page_is_self_contained_with_no_scripts_to_run(search_run):
    page, _ = _page(search_run[1])
    assert "<script src" not in page and "<link" not in page.lower()
    assert "http://" not in page and "https://" not in page
    scripts = re.findall(r"<script[^>]*>", page)
    assert scripts and all(s.startswith('<script type="application/json" id="data-') for s in scripts)
    images = re.findall(r'<img [^>]*src="([^"]{0,30})', page)
    assert len(images) >= 5 and all(src.startswith("data:image/png;base64,") for src in images)
    assert len(page.encode()) < 1_000_000


def test_the_network_section_lists_layers_whose_parameters_add_up(search_run):
    _, data = _page(search_run[1])
    network = data["network"]
    model = archtune.load(search_run[1], best_network=True)
    total = sum(p.numel() for p in model.module_.parameters())
    assert network["total_params"] == total == sum(layer["n_params"] for layer in network["layers"])
    assert network["input_width"] == model.input_spec_.width
    head = next(layer for layer in network["layers"] if layer["name"] == "head")
    assert head["output_shape"] == [model.module_.head.out_features]
    versions = data["settings"]["versions"]
    assert versions["archtune"] == archtune.__version__ and {"python", "torch", "optuna", "scikit-learn"} <= set(versions)
    assert data["settings"]["run"]["settings"]["holdout"] == 0.2


def test_a_plain_fit_writes_a_report_with_residuals(fit_run):
    _, out, output = fit_run
    assert f"report: {out / 'report.html'}" in output
    page, data = _page(out)
    ids = section_ids(page)
    assert {"verdict", "learning-curves", "doctor", "holdout", "permutation-importance", "network", "settings"} <= set(ids)
    assert "leaderboard" not in ids and "optimization-history" not in ids and "importances" not in ids
    points = data["holdout"]["points"]
    assert data["holdout"]["n_rows"] == 300 and len(points["actual"]) == 300
    assert np.allclose(np.subtract(points["actual"], points["predicted"]), points["residual"])
    assert data["holdout"]["interval"]["value"] == pytest.approx(data["holdout"]["metrics"]["r2"])
    model = archtune.load(out)
    evaluation = rd.load_run(out).evaluation
    rows = pd.read_csv(fit_run[0]).loc[evaluation["index"]]
    assert np.allclose(model.predict(rows.drop(columns="target")), evaluation["y_pred"], atol=1e-5)
    assert data["learning-curves"]["series"]["train_loss"] == pytest.approx(model.history_["train_loss"].tolist())


def test_a_fit_without_held_out_rows_or_report_and_a_report_written_later(fit_run, tmp_path):
    out = tmp_path / "run"
    result = _invoke("fit", fit_run[0], "--target", "target", "--set", "max_epochs=2", "--holdout", 0, "--no-report",
                     "-q", "--out", out)
    assert result.exit_code == 0, result.output
    assert not (out / "report.html").exists() and not (out / "evaluation.json").exists()
    target = tmp_path / "elsewhere.html"
    result = _invoke("report", out, "-o", target)
    assert result.exit_code == 0 and f"report: {target}" in result.output
    page, data = _page_of(target)
    assert "holdout" not in section_ids(page) and "permutation-importance" not in section_ids(page)
    assert any("no held-out rows" in note for note in data["notes"]["notes"])


def _page_of(path):
    text = path.read_text()
    return text, section_data(text)


def test_a_search_with_a_failed_trial_gives_a_valid_report(magic_small, tmp_path):
    X, y = magic_small
    data = tmp_path / "magic.csv"
    X.iloc[:800].assign(target=y.iloc[:800]).to_csv(data, index=False)
    out = tmp_path / "run"
    out.mkdir()
    # A Nesterov step of 1e6 overflows at once (as in test_search's diverging test), enqueued first.
    study = optuna.create_study(storage=f"sqlite:///{out / 'study.db'}", study_name="archtune", direction="maximize")
    study.enqueue_trial({"learning_rate": 1e6, "optimizer": "nesterov", "arch": "mlp", "hidden_layers": 2,
                         "units": 64, "numeric_embedding": None})
    result = _invoke("tune", data, "--target", "target", "--trials", 2, "--set", "max_epochs=3", "--space",
                     "optimizer=adamw,nesterov", "--no-baselines", "--no-ensemble", "--no-population", "--resume",
                     "-q", "--out", out)
    assert result.exit_code == 0, result.output
    page, data = _page(out)
    assert {"verdict", "leaderboard", "optimization-history", "network"} <= set(section_ids(page))
    trials = data["optimization-history"]["trials"]
    failed = [t for t in trials if t["state"] == "FAIL"]
    assert failed and failed[0]["number"] == 0 and failed[0]["note"].startswith("diverged")
    assert failed[0]["value"] is None and any(t["state"] == "COMPLETE" for t in trials)
    assert "FAIL" in [r["state"] for r in data["leaderboard"]["rows"]]


def test_report_on_a_folder_that_is_not_a_run_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(cli, ["report", str(tmp_path)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("archtune: error: ") and "an empty folder" in lines[0]
    assert "`archtune report` takes a run folder" in lines[0]
    missing = CliRunner().invoke(cli, ["report", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no such model bundle or run folder" in missing.output


def test_plotting_functions_return_figures_from_a_run_or_an_estimator(search_run):
    from matplotlib.figure import Figure

    data_path, out, _ = search_run
    for plot in (archtune.plot_learning_curves, archtune.plot_optimization_history, archtune.plot_param_importances,
                 archtune.plot_confusion_matrix, archtune.plot_calibration, archtune.plot_permutation_importance):
        assert isinstance(plot(out), Figure), plot.__name__
    model = archtune.load(out)
    table = pd.read_csv(data_path).iloc[:200]
    X, y = table.drop(columns="target"), table["target"]
    fig = archtune.plot_confusion_matrix(model, X, y)
    assert isinstance(fig, Figure)
    with pytest.raises(ValueError, match="a search's study"):
        archtune.plot_optimization_history(model)
    with pytest.raises(ValueError, match="no calibration|no predicted-vs-actual"):
        archtune.plot_residuals(out)  # a classifier has no residuals


def test_plot_lr_finder_draws_the_finders_result():
    from matplotlib.figure import Figure

    from archtune.doctor.lr_finder import LRFinderResult

    result = LRFinderResult("range", lrs=[1e-5, 1e-4, 1e-3, 1e-2], losses=[1.0, 0.9, 0.5, 3.0],
                            smoothed=[1.0, 0.95, 0.7, 1.5], steepest=1e-3, largest_stable=1e-3, suggestion=3e-4)
    data = rd.lr_finder_from_result(result)
    assert data.lrs == result.lrs and data.suggestion == 3e-4
    assert isinstance(archtune.plot_lr_finder(result), Figure)


def test_without_matplotlib_plots_name_the_extra_and_the_report_still_has_its_numbers(search_run, monkeypatch):
    out = search_run[1]
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"archtune\[plot\]"):
        archtune.plot_learning_curves(out)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing chart is a note in the page, not a warning per section
        page = build_report(out)
    assert "<img" not in page and "learning-curves" in section_ids(page)
    assert any("archtune[plot]" in note for note in section_data(page)["notes"]["notes"])


def test_a_section_that_fails_is_left_out_with_a_note_and_a_warning(search_run, monkeypatch, tmp_path):
    def broken(model):
        raise RuntimeError("no shapes today")

    monkeypatch.setattr(rd, "network_data", broken)
    with pytest.warns(RuntimeWarning, match="network section could not be computed"):
        path = write_report(search_run[1], tmp_path / "r.html")
    page = path.read_text()
    assert "network" not in section_ids(page) and "settings" in section_ids(page)
    assert any("no shapes today" in note for note in section_data(page)["notes"]["notes"])


def test_embedded_json_cannot_close_its_block_and_reads_back():
    tricky = {"note": "</script><script>alert(1)</script> & <b>", "values": [1.5, None]}
    page = render("t", "s", [Section("a-b", "A", [], tricky), Section("c", "C")])
    assert section_ids(page) == ["a-b", "c"] and section_data(page) == {"a-b": tricky}
    assert page.count("</script>") == 1
    with pytest.raises(ValueError, match="repeat"):
        render("t", "s", [Section("a", "A"), Section("a", "B")])


def test_importances_need_three_completed_trials_with_varying_parameters():
    def objective(trial):
        return trial.suggest_float("x", 0, 1) + (trial.suggest_categorical("y", ["a", "b"]) == "b")

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    # Fixed trials, so that both parameters vary whatever the sampler draws.
    points = [(0.1, "a"), (0.5, "a"), (0.9, "b"), (0.2, "b"), (0.7, "a"), (0.4, "b"), (0.3, "a"), (0.8, "b")]
    for x, y in points[:2]:
        study.enqueue_trial({"x": x, "y": y})
    study.optimize(objective, n_trials=2)
    assert param_importances(study) is None  # two completed trials: too few
    for x, y in points[2:]:
        study.enqueue_trial({"x": x, "y": y})
    study.optimize(objective, n_trials=6)
    found = param_importances(study)
    assert found is not None and sum(found["importances"].values()) == pytest.approx(1.0)
    assert set(found["importances"]) == {"x", "y"} and min(found["importances"].values()) >= 0
    constant = optuna.create_study(direction="maximize")
    for _ in range(3):
        constant.enqueue_trial({"x": 0.5, "y": "a"})
    constant.optimize(objective, n_trials=3)
    assert param_importances(constant) is None  # nothing varies


def test_the_lr_finder_section_shows_a_saved_curve_and_the_trials_suggestions(search_run):
    run = rd.load_run(search_run[1])
    assert rd.lr_finder_data(run) is None  # the search did not run the finder
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    trial.set_user_attr("lr_finder_suggestion", 0.003)
    trial.set_user_attr("learning_rate", 0.006)
    study.tell(trial, 0.8)
    run.study = study
    run.lr_finder = {"method": "range", "lrs": [1e-4, 1e-3, 1e-2], "losses": [0.7, 0.5, 2.0],
                     "smoothed": [0.7, 0.6, 1.0], "suggestion": 1e-3}
    page = build_report(run)
    assert "lr-finder" in section_ids(page)
    found = section_data(page)["lr-finder"]
    assert found["trials"] == [{"number": 0, "suggestion": 0.003, "learning_rate": 0.006}]
    assert found["lrs"] == [1e-4, 1e-3, 1e-2] and found["suggestion"] == 1e-3


def test_a_report_of_an_estimator_fitted_in_python(house_small, tmp_path):
    X, y = house_small
    model = archtune.NeuralRegressor(max_epochs=3, verbose=0, random_state=0).fit(X.iloc[:600].to_numpy(),
                                                                                  y.iloc[:600].to_numpy())
    with pytest.raises(archtune.InvalidParameterError, match="give out="):
        write_report(model)
    page = write_report(model, tmp_path / "model.html").read_text()
    assert {"verdict", "learning-curves", "doctor", "network", "settings"} <= set(section_ids(page))
    data = section_data(page)
    assert data["learning-curves"]["epochs"] == model.history_["epoch"].tolist()
    assert data["network"]["total_params"] == sum(p.numel() for p in model.module_.parameters())
    rows = rd.evaluate_rows(rd.run_of(model), X.iloc[600:800].to_numpy(), y.iloc[600:800].to_numpy(),
                            permutation=False)
    assert np.allclose(rows["y_pred"], model.predict(X.iloc[600:800].to_numpy()), atol=1e-5)
    with pytest.raises(TypeError, match="fitted archtune estimator"):
        rd.run_of(archtune.NeuralRegressor())


# --------------------------------------------------------------------------- in a real browser


@pytest.mark.parametrize("run", ["search_run", "fit_run"])
def test_the_report_opens_in_headless_chromium_clean_drawn_and_whole(run, request, tmp_path):
    """The page a user opens: loaded by headless Chromium with no console error and no request
    beyond the file itself, a screenshot that is not blank, and every section the run has in
    the DOM the browser built (not only in the file's text)."""
    from tests.browser import open_page, require_chromium

    require_chromium()
    _, out, _ = request.getfixturevalue(run)
    page, _ = _page(out)
    result = open_page(out / "report.html", tmp_path)
    assert result.console_errors == []
    assert result.requests == []
    assert result.not_blank, result.ink_share
    in_browser = section_ids(result.dom)
    assert in_browser == section_ids(page) and len(in_browser) >= 5
    # Every chart is an image the browser decoded from the page itself (data: URIs).
    assert result.dom.count('src="data:image/png;base64,') >= 3


def test_a_fit_with_the_learning_rate_finder_shows_its_curve(tmp_path):
    """learning_rate="auto": the finder's curve and suggestion are kept on the estimator
    (lr_finder_), saved with the run (lr_finder.json) and drawn in the report; a later fit at a
    fixed rate removes them."""
    out = tmp_path / "run"
    result = _invoke("fit", "breast_cancer", "--set", "learning_rate=auto", "--set", "max_epochs=3", "--set",
                     "units=16", "-q", "--out", out)
    assert result.exit_code == 0, result.output
    model = archtune.load(out)
    page, data = _page(out)
    assert "lr-finder" in section_ids(page)
    curve = data["lr-finder"]
    assert curve["suggestion"] == pytest.approx(model.learning_rate_)  # the rate the fit trained with
    assert len(curve["lrs"]) == len(curve["losses"]) > 10
    again = _invoke("fit", "breast_cancer", "--set", "learning_rate=0.001", "--set", "max_epochs=2", "--set",
                    "units=16", "-q", "--out", out)
    assert again.exit_code == 0, again.output
    assert not (out / "lr_finder.json").exists() and "lr-finder" not in section_ids((out / "report.html").read_text())


# --------------------------------------------------------------------------- read first as pictures


def _outside_details(section: str) -> str:
    """A section's HTML without its <details> blocks (what a reader sees before opening any)."""
    return re.sub(r"<details>.*?</details>", "", section, flags=re.S)


def _section(page: str, sid: str) -> str:
    start = page.index(f'<section id="{sid}"')
    return page[start:page.index("</section>", start)]


def test_the_verdict_opens_with_the_key_numbers_and_the_leaderboards_chart(search_run):
    page, data = _page(search_run[1])
    metrics = archtune.load(search_run[1]).bundle_metadata_
    keys = data["verdict"]["key_numbers"]
    held = next(k for k in keys if k["label"] == "held-out accuracy")  # the search's metric, of what predicts
    assert held["value"] == pytest.approx(data["verdict"]["holdout"]["accuracy"])
    interval = data["holdout"]["interval"]
    assert held["detail"] == f"95% interval {interval['low']:.4g} to {interval['high']:.4g} (300 rows)"
    search = next(k for k in keys if k["label"] == "search")
    assert search["value"] == f"{len(data['optimization-history']['trials'])} trials"
    verdict = _section(page, "verdict")
    # Seen before anything is opened: the numbers, the verdict's sentence and one chart; the
    # table of every metric waits behind a <details>.
    seen = _outside_details(verdict)
    assert f"{held['value']:.4g}" in seen and html.escape(metrics["verdict"]) in seen
    assert seen.count("<img") == 1 and "<table" not in seen
    assert "<details><summary>Every metric" in verdict and "<table" in verdict


def test_the_leaderboard_is_compact_with_the_full_table_behind_details(search_run):
    from archtune.report.build import LEADERBOARD_TOP, SHORT_CELL

    page, data = _page(search_run[1])
    rows = data["leaderboard"]["rows"]
    assert len(rows) > LEADERBOARD_TOP  # the search and its baselines: enough rows to cut
    board = _section(page, "leaderboard")
    compact = _outside_details(board)
    # The first rows, then the best network when it is further down (the verdict compares it).
    network = next(r for r in rows if r["state"] == "COMPLETE")
    expected = [r["rank"] for r in rows[:LEADERBOARD_TOP]]
    expected += [network["rank"]] if network["rank"] not in expected else []
    assert compact.count("<table") == 1 and compact.count("<tr>") == 1 + len(expected)
    shown = re.findall(r"<tr><td[^>]*>([\d,]+)</td><td>([^<]*)</td>", compact)
    assert [int(rank) for rank, _ in shown] == expected
    cells = re.findall(r"<td>([^<]*)</td>", compact)
    assert max(len(html.unescape(c)) for c in cells) <= SHORT_CELL + 3  # "..." marks a cut
    full = re.search(r"<details><summary>The full leaderboard \((\d+) rows, every column\)</summary>(.*?)</details>",
                     board, re.S)
    assert full and int(full.group(1)) == len(rows) and full.group(2).count("<tr>") == 1 + len(rows)
    longest = max((r["params"] or "" for r in rows), key=len)
    assert len(longest) > SHORT_CELL and html.escape(longest) in full.group(2)  # uncut behind the summary


def test_every_charts_table_is_collapsed(search_run, fit_run):
    for run in (search_run, fit_run):
        page, _ = _page(run[1])
        for sid in ("learning-curves", "optimization-history", "importances", "holdout", "permutation-importance",
                    "network", "settings"):
            if f'<section id="{sid}"' not in page:
                continue
            section = _section(page, sid)
            assert "<table" not in _outside_details(section), sid
            assert "<details><summary>" in section and "<table" in section, sid


def test_a_regressors_report_draws_its_prediction_intervals_on_held_out_rows(fit_run):
    """The interval chart's numbers are the saved regressor's own predict_interval(X, 0.9) on the
    held-out rows: the empirical coverage over all of them, and the drawn rows sorted by
    prediction."""
    data_path, out, _ = fit_run
    page, data = _page(out)
    found = data["holdout"]["prediction_interval"]
    evaluation = rd.load_run(out).evaluation
    rows = pd.read_csv(data_path).loc[evaluation["index"]]
    model = archtune.load(out)
    lower, upper = model.predict_interval(rows.drop(columns="target"), coverage=0.9)
    truth = rows["target"].to_numpy()
    assert found["coverage"] == 0.9 and found["n_rows"] == 300
    assert found["covered"] == pytest.approx(np.mean((truth >= lower) & (truth <= upper)))
    assert found["mean_width"] == pytest.approx(np.mean(upper - lower), rel=1e-5)
    drawn = found["rows"]
    assert len(drawn["predicted"]) == 150 and drawn["predicted"] == sorted(drawn["predicted"])
    assert np.all(np.array(drawn["lower"]) <= np.array(drawn["predicted"]))
    assert np.all(np.array(drawn["predicted"]) <= np.array(drawn["upper"]))
    # Each drawn row is a held-out row with its own interval (rows matched by their true value).
    for actual, low in zip(drawn["actual"][:20], drawn["lower"][:20]):
        assert np.any(np.isclose(truth, actual) & np.isclose(lower, low, rtol=1e-5))
    holdout = _section(page, "holdout")
    assert 'alt="prediction intervals on held-out rows"' in holdout
    assert f"hold the true value of {found['covered']:.1%} of the 300 held-out rows" in holdout


def test_a_classifiers_report_has_no_interval_chart(search_run):
    page, data = _page(search_run[1])
    assert data["holdout"]["prediction_interval"] is None
    assert "prediction intervals on held-out rows" not in page


def test_why_a_self_stopping_search_stopped_is_said_at_the_top(search_run):
    from archtune.tune.stopping import STOPPED_ATTR, stop_text

    run = rd.load_run(search_run[1])
    study = optuna.create_study(direction="maximize")  # a copy in memory: the run's study.db is shared
    for trial in run.study.trials:
        study.add_trial(trial)
    record = {"reason": "rule", "trials": 23, "noise": 0.004, "expected_gain": 0.001, "seconds": 61.5}
    study.set_user_attr(STOPPED_ATTR, record)
    run.study = study
    page = build_report(run)
    sentence = f"The search (budget auto) stopped: {stop_text(record)}, 61.5 s into the search."
    assert html.escape(sentence) in _outside_details(_section(page, "verdict"))
    assert html.escape(sentence) in _section(page, "optimization-history")
    assert section_data(page)["verdict"]["stopped"] == record
    assert _page(search_run[1])[1]["verdict"]["stopped"] is None  # a search given a number of trials


def test_the_first_screen_shows_the_verdict_the_held_out_score_and_a_chart(search_run, tmp_path):
    """What a reader sees first, in Chromium at 1300 x 900: the verdict's sentence, the held-out
    score and a chart wholly inside the first 900 pixels, the chart drawn at a readable size
    (at least 500 pixels wide, not shrunk below its own width), and the long tables closed."""
    from tests.browser import open_page, require_chromium

    require_chromium()
    out = search_run[1]
    _, data = _page(out)
    box = "(e => (r => [r.top, r.bottom, r.width])(e.getBoundingClientRect()))"
    result = open_page(out / "report.html", tmp_path, width=1300, height=900, measure={
        "verdict": f"{box}(document.querySelector('#verdict p.verdict'))",
        "verdict_text": "document.querySelector('#verdict p.verdict').textContent",
        "score": f"{box}(document.querySelector('#verdict .key .value'))",
        "score_label": "document.querySelector('#verdict .key .label').textContent",
        "score_text": "document.querySelector('#verdict .key .value').textContent",
        "chart": f"{box}(document.querySelector('#verdict img'))",
        "chart_pixels": "(i => [i.complete, i.naturalWidth, i.width])(document.querySelector('#verdict img'))",
        "full_board_seen": "document.querySelector('#leaderboard details table').checkVisibility()",
        "metrics_seen": "document.querySelector('#verdict details table').checkVisibility()",
        "scroll": "[scrollX, scrollY]"})
    m = result.measured
    assert result.console_errors == [] and result.requests == [] and m["scroll"] == [0, 0]
    assert m["verdict_text"] == data["verdict"]["verdict"]
    assert m["score_label"] == "held-out accuracy"
    assert m["score_text"] == f"{data['verdict']['holdout']['accuracy']:.4g}"
    for name in ("verdict", "score", "chart"):
        top, bottom, _ = m[name]
        assert 0 <= top < bottom <= 900, (name, m[name])
    complete, natural, shown = m["chart_pixels"]
    assert complete and natural >= 500 and shown == natural and m["chart"][2] >= 500
    assert m["full_board_seen"] is False and m["metrics_seen"] is False
    # The screenshot really shows the chart where the browser put it (not a blank box).
    from PIL import Image

    from tests.browser import ink_share

    top, bottom, _ = m["chart"]
    with Image.open(result.screenshot) as shot:
        assert shot.size == (1300, 900)
        crop = tmp_path / "chart.png"
        shot.crop((0, int(top), 1300, int(bottom))).save(crop)
    assert ink_share(crop) > 0.02
