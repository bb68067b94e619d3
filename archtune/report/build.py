"""The report of a run: compute each section's data (report/data.py), draw it
(report/plots.py), lay it out (report/html.py), write one file.

A report never fails the run it describes: a section whose data cannot be computed is left
out, with a note in the page's ``notes`` section and a warning; a chart that cannot be drawn
(matplotlib missing) leaves its section with the tables and a note.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any

from archtune.report import data as rd
from archtune.report import plots
from archtune.report.data_types import HoldoutData
from archtune.report.html import Section, details, image, key_numbers, paragraph, render, side_by_side, table

REPORT_FILE = "report.html"
# The compact leaderboard's rows (the full table is behind a <details>), and the characters of
# a parameter summary or note shown in it.
LEADERBOARD_TOP = 10
SHORT_CELL = 70
# The section ids, in page order (tests and the DESIGN notes name them).
SECTION_IDS = ("verdict", "leaderboard", "learning-curves", "optimization-history", "importances", "lr-finder",
               "doctor", "holdout", "permutation-importance", "network", "settings", "notes")


def build_report(source: Any) -> str:
    """The report page of ``source`` (a run folder, or a fitted estimator) as HTML text.

    Raises
    ------
    DataError
        ``source`` is a path that is not a run folder.
    """
    run = rd.run_of(source)
    sections: list[Section] = []
    notes: list[str] = []
    for sid, make in _BUILDERS:
        try:
            section = make(run, notes)
        except Exception as exc:  # one section's failure must not cost the others, nor the run
            message = f"the {sid} section could not be computed and is left out ({type(exc).__name__}: {exc})"
            notes.append(message)
            warnings.warn(f"report: {message}", RuntimeWarning, stacklevel=2)
            continue
        if section is not None:
            sections.append(section)
    if notes:
        sections.append(Section("notes", "Notes", [table(["note"], [[n] for n in notes])], {"notes": notes}))
    name = run.folder.name if run.folder is not None else type(run.model).__name__
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    where = run.metrics.get("data")
    subtitle = f"{run.metrics.get('task', '')} run" + (f" on {where}" if where else "") + f"; report written {when}"
    return render(f"archtune report: {name}", subtitle, sections)


def write_report(source: Any, out: str | os.PathLike | None = None) -> Path:
    """Write the report of ``source`` to ``out`` (default: RUN/report.html), atomically.

    Raises
    ------
    InvalidParameterError
        ``out`` is None and ``source`` is an estimator (it has no folder).
    DataError
        ``source`` is a path that is not a run folder.
    SaveError
        The file cannot be written (naming it).
    """
    from archtune.errors import InvalidParameterError
    from archtune.files import atomic_write_bytes

    run = rd.run_of(source)
    if out is None:
        if run.folder is None:
            raise InvalidParameterError("write_report: give out= (an estimator has no run folder)")
        out = run.folder / REPORT_FILE
    page = build_report(run)
    atomic_write_bytes(out, page.encode("utf-8"))
    return Path(out)


# --------------------------------------------------------------------------- sections


def _chart(draw: Callable[[Any], Any], data: Any, alt: str, notes: list[str]) -> str:
    """The chart as an embedded PNG, or a note saying why there is none (matplotlib missing:
    noted once for the page)."""
    try:
        fig = draw(data)
    except plots.PlottingUnavailableError as exc:
        message = f"charts are left out: {exc}"
        if message not in notes:
            notes.append(message)
        return paragraph("(chart left out: matplotlib is not installed)", "note")
    return image(plots.png_bytes(fig), alt)


def _verdict(run: rd.Run, notes: list[str]) -> Section:
    """The first screen: the key numbers, the verdict, why a self-stopping search stopped, and
    one chart (a search's leaderboard scores); every metric behind a <details>."""
    m = run.metrics
    holdout = rd.holdout_data(run) if run.evaluation else None
    keys = rd.key_numbers(run, holdout)
    body = [key_numbers(keys)] if keys else []
    words = [paragraph(m["verdict"] if m.get("verdict") else "One network, trained without a search (archtune fit).",
                       "verdict")]
    stopped = _stopped(run)
    if stopped is not None:
        words.append(paragraph(_stopped_text(stopped)))
    board = rd.leaderboard_data(run)
    if board is not None and any(r.get("val_score") is not None for r in board.rows):
        # The verdict's sentence beside the picture of what it compares.
        chart = _chart(plots.draw_leaderboard, board, "validation scores of the leaderboard's first rows", notes)
        body.append(side_by_side("<div>" + "".join(words) + "</div>", chart))
    else:
        body += words
    rows = [[f"validation (early-stopping split) {k.removeprefix('val_')}", v]
            for k, v in (m.get("validation") or {}).items()]
    # "holdout" is the model that predicts; a search whose ensemble predicts also keeps its best
    # network's (runs saved before that kept the network's as "holdout", the ensemble's apart).
    final = (m.get("final") or {}).get("summary")
    rows += [[f"held-out {k}" + (f" ({final}, which predicts)" if final else ""), v]
             for k, v in (m.get("holdout") or {}).items()]
    rows += [[f"held-out {k} (best network alone)", v] for k, v in (m.get("holdout_network") or {}).items()]
    rows += [[f"held-out {k} (ensemble)", v] for k, v in (m.get("holdout_ensemble") or {}).items()]
    more = [table(["metric", "value"], rows)] if rows else []
    if holdout and holdout.interval:
        more.append(paragraph(_interval_text(holdout)))
    if more:
        body.append(details(f"Every metric ({len(rows)})", *more))
    if m.get("network"):
        body.append(paragraph(f"Saved network: {m['network']}.", "note"))
    data = {k: rd.to_json(m.get(k)) for k in ("verdict", "metric", "validation", "holdout", "holdout_network",
                                              "holdout_ensemble", "final")}
    data["key_numbers"] = rd.to_json(keys)
    data["stopped"] = rd.to_json(stopped)
    return Section("verdict", "Verdict", body, data)


def _leaderboard(run: rd.Run, notes: list[str]) -> Section | None:
    """The first rows with short parameter summaries; every row and column behind a <details>."""
    data = rd.leaderboard_data(run)
    if data is None:
        return None
    # A multi-objective search's columns: its latency, and the Pareto front marked "front".
    extra = [c for c in ("latency_ms", "pareto") if data.rows and c in data.rows[0]]
    columns = ["rank", "model", "val_score", "val_low", "val_high", "fit_seconds", "n_params", *extra, "state",
               "params", "note"]
    rows = [[_front_mark(row.get(c)) if c == "pareto" else row.get(c) for c in columns] for row in data.rows]
    title = "Leaderboard" + (f" (validation {data.metric})" if data.metric else "")
    compact = ["rank", "model", "val_score", "95% interval", "fit_seconds", *extra, "state", "params", "note"]
    top = [[row.get("rank"), _cut(row.get("model")), row.get("val_score"), _span(row),
            row.get("fit_seconds"), *(_front_mark(row.get(c)) if c == "pareto" else row.get(c) for c in extra),
            row.get("state"), _cut(row.get("params")), _cut(row.get("note"))]
           for row in _compact_rows(data.rows)]
    shown = "" if len(rows) <= LEADERBOARD_TOP else f"the first {LEADERBOARD_TOP} of {len(rows)} rows; "
    if len(top) > LEADERBOARD_TOP:
        shown += "the best network, which the verdict compares, last; "
    body = [paragraph(f"Best first; {shown}parameters and notes cut to {SHORT_CELL} characters.", "note"),
            table(compact, top), details(f"The full leaderboard ({len(rows)} rows, every column)", table(columns, rows))]
    if "pareto" in extra:
        cost = "latency (ms per 1000 rows)" if "latency_ms" in extra else "parameter count"
        body.append(paragraph(f"Rows marked front are on the Pareto front of the validation score and the {cost}: "
                              "no other completed trial is as good in both and better in one.", "note"))
    return Section("leaderboard", title, body, rd.to_json(data))


def _compact_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The compact leaderboard's rows: the first LEADERBOARD_TOP, and the best network after
    them when it is further down (the verdict compares it with the best gradient boosting)."""
    top = rows[:LEADERBOARD_TOP]
    network = next((r for r in rows if r.get("state") == "COMPLETE"), None)
    return top if network is None or any(r is network for r in top) else [*top, network]


def _cut(text: Any, limit: int = SHORT_CELL) -> str | None:
    """A text cell of the compact leaderboard: cut to ``limit`` characters, "..." marking the cut."""
    if text is None:
        return None
    text = str(text)
    return text if len(text) <= limit else text[:limit] + "..."


def _span(row: dict[str, Any]) -> str | None:
    """A leaderboard row's 95% bootstrap interval as one cell, or None without one."""
    low, high = row.get("val_low"), row.get("val_high")
    return None if low is None or high is None else f"{low:.4g} to {high:.4g}"


def _front_mark(value: Any) -> str:
    """A leaderboard row's ``pareto`` cell: "front" on the front (True, or "True" read from CSV)."""
    return "front" if value is True or value == "True" else ""


def _learning_curves(run: rd.Run, notes: list[str]) -> Section | None:
    data = rd.learning_curves(run)
    if data is None:
        return None
    body = [_chart(plots.draw_learning_curves, data, "learning curves", notes)]
    shown = [c for c in data.series if c in ("train_loss", "val_loss") or c.startswith("val_") or c == "lr"]
    body.append(details(f"The values per epoch ({len(data.epochs)} epochs)",
                        table(["epoch", *shown], [[e, *(data.series[c][i] for c in shown)]
                                                  for i, e in enumerate(data.epochs)])))
    if data.best_epoch:
        body.append(paragraph(f"The saved weights are those of epoch {data.best_epoch}.", "note"))
    return Section("learning-curves", "Learning curves", body, rd.to_json(data))


def _optimization_history(run: rd.Run, notes: list[str]) -> Section | None:
    data = rd.optimization_history(run)
    if data is None:
        if run.study is None and "study" in run.metrics:  # a search whose --storage is not OUT/study.db
            notes.append(f"the search's study is not in the run folder ({rd.STUDY_FILE}): its history, "
                         "importances and trials' findings are left out")
        return None
    counts = {s: sum(t["state"] == s for t in data.trials) for s in ("COMPLETE", "PRUNED", "FAIL")}
    body = [paragraph(f"{len(data.trials)} trials: {counts['COMPLETE']} completed, {counts['PRUNED']} pruned, "
                      f"{counts['FAIL']} failed.")]
    stopped = _stopped(run)
    if stopped is not None:  # budget="auto": why the search stopped itself
        body.append(paragraph(_stopped_text(stopped), "verdict"))
    body += [_chart(plots.draw_optimization_history, data, "optimisation history", notes),
             details(f"Every trial ({len(data.trials)})",
                     table(["trial", "state", "value", "seconds", "best so far", "note"],
                           [[t["number"], t["state"], t["value"], t["seconds"], t["best_so_far"], t["note"]]
                            for t in data.trials]))]
    found = rd.to_json(data)
    if stopped is not None:
        found["stopped"] = rd.to_json(stopped)
    return Section("optimization-history", "Optimisation history", body, found)


def _stopped(run: rd.Run) -> dict[str, Any] | None:
    """The record of why a budget="auto" search stopped (archtune.tune.stopping), or None."""
    from archtune.tune.stopping import STOPPED_ATTR

    record = run.study.user_attrs.get(STOPPED_ATTR) if run.study is not None else None
    return record if isinstance(record, dict) else None


def _stopped_text(record: dict[str, Any]) -> str:
    from archtune.tune.stopping import stop_text

    seconds = record.get("seconds")
    when = "" if seconds is None else f", {float(seconds):.1f} s into the search"
    return f"The search (budget auto) stopped: {record.get('text') or stop_text(record)}{when}."


def _importances(run: rd.Run, notes: list[str]) -> Section | None:
    data = rd.importances_data(run)
    if data is None:
        if run.study is not None:
            notes.append("hyperparameter importances are left out: they need at least 3 completed trials whose "
                         "parameters vary")
        return None
    body = [_chart(plots.draw_param_importances, data, "hyperparameter importances", notes),
            details("The importances as a table",
                    table(["parameter", "importance"], [[k, v] for k, v in data.importances.items()]))]
    return Section("importances", f"Hyperparameter importances ({data.evaluator})", body, rd.to_json(data))


def _lr_finder(run: rd.Run, notes: list[str]) -> Section | None:
    data = rd.lr_finder_data(run)
    if data is None:
        return None
    body = []
    if data.lrs:
        body.append(_chart(plots.draw_lr_finder, data, "learning-rate finder", notes))
        body.append(paragraph(f"Suggested learning rate: {data.suggestion:.3g}."))
    if data.trials:
        body.append(details(f"Each trial's suggestion ({len(data.trials)} trials)",
                            table(["trial", "finder's suggestion", "learning rate trained with"],
                                  [[t["number"], t["suggestion"], t["learning_rate"]] for t in data.trials])))
    return Section("lr-finder", "Learning-rate finder", body, rd.to_json(data))


def _doctor(run: rd.Run, notes: list[str]) -> Section:
    data = rd.doctor_data(run)
    body = []
    if data.findings:
        for f in data.findings:
            body.append(paragraph(f"[{f['severity']}] {f['code']}: {f['message']}", f["severity"]))
            if f["advice"]:
                body.append("<ul>" + "".join(f"<li>{escape(str(tip))}</li>" for tip in f["advice"]) + "</ul>")
            if f["evidence"]:
                body.append(table(["evidence", "value"], [[k, _short(v)] for k, v in f["evidence"].items()]))
    else:
        body.append(paragraph(f"No problems found in the saved network ({len(data.checked)} checks: "
                              f"{', '.join(data.checked)})."))
    flagged = [t for t in data.trials if t["codes"]]
    if data.trials:
        body.append(paragraph(f"{len(flagged)} of {len(data.trials)} diagnosed trials had findings."))
        if flagged:
            body.append(_chart(plots.draw_doctor, data, "findings per trial", notes))
            body.append(details(f"The flagged trials ({len(flagged)})",
                                table(["trial", "worst", "codes"], [[t["number"], t["worst"], ", ".join(t["codes"])]
                                                                   for t in flagged])))
    return Section("doctor", "Doctor's findings", body, rd.to_json(data))


def _holdout(run: rd.Run, notes: list[str]) -> Section | None:
    data = rd.holdout_data(run)
    if data is None:
        notes.append("no held-out rows (--holdout 0): the confusion matrix or residuals and the permutation "
                     "importance are left out")
        return None
    body = [paragraph(f"{data.n_rows} rows kept out of training and search, predicted by the saved network.")]
    if data.interval:
        body.append(paragraph(_interval_text(data)))
    if data.metrics:
        body.append(details(f"The held-out metrics ({len(data.metrics)})",
                            table(["metric", "value"], [[k, v] for k, v in data.metrics.items()])))
    if data.prediction_interval is not None:
        body.append(_chart(plots.draw_prediction_intervals, data, "prediction intervals on held-out rows", notes))
        body.append(paragraph(_prediction_interval_text(data.prediction_interval), "note"))
    if data.confusion is not None:
        body.append(_chart(plots.draw_confusion_matrix, data, "confusion matrix", notes))
        labels = [str(v) for v in data.labels or range(len(data.confusion))]
        body.append(details("The counts as a table", table(["true \\ predicted", *labels],
                                                             [[label, *row] for label, row in zip(labels, data.confusion)])))
    if data.calibration is not None:
        body.append(_chart(plots.draw_calibration, data, "calibration curve", notes))
    if data.points is not None:
        body.append(_chart(plots.draw_residuals, data, "predicted against actual, and residuals", notes))
    return Section("holdout", "Held-out rows", body, rd.to_json(data))


def _permutation(run: rd.Run, notes: list[str]) -> Section | None:
    data = rd.permutation_data(run)
    if data is None:
        return None
    body = [_chart(plots.draw_permutation_importance, data, "permutation importance", notes),
            details(f"The drops as a table ({len(data.features)} features)",
                    table(["feature", f"mean drop in {data.metric}", "std"],
                          [[f, m, s] for f, m, s in zip(data.features, data.mean, data.std)])),
            paragraph(f"{data.n_rows} held-out rows, {data.n_repeats} shuffles per feature, "
                      f"{data.seconds:.1f}s.", "note")]
    return Section("permutation-importance", "Permutation feature importance", body, rd.to_json(data))


def _network(run: rd.Run, notes: list[str]) -> Section:
    data = rd.network_data(run.model)
    body = [paragraph(f"{type(run.model).__name__}: {data.input_width} inputs, {data.total_params:,} parameters."),
            details(f"The {len(data.layers)} modules in forward order",
                    table(["module", "type", "output shape", "parameters"],
                          [[layer["name"], layer["type"],
                            "" if layer["output_shape"] is None else "x".join(map(str, layer["output_shape"])),
                            layer["n_params"]] for layer in data.layers]))]
    return Section("network", "Network", body, rd.to_json(data))


def _settings(run: rd.Run, notes: list[str]) -> Section:
    data = rd.settings_data(run)
    body = [details(f"Package versions ({len(data.versions)})",
                    table(["package", "version"], [[k, v] for k, v in data.versions.items()])),
            details(f"The run's settings ({len(data.run)})",
                    table(["setting", "value"], [[k, _short(v)] for k, v in data.run.items()])),
            details(f"The network's parameters ({len(data.params)})",
                    table(["parameter", "value"], [[k, _short(v)] for k, v in data.params.items()]))]
    return Section("settings", "Settings and versions", body, rd.to_json(data))


def _interval_text(data: HoldoutData) -> str:
    i = data.interval
    return (f"Held-out {i['metric']} {i['value']:.4f}, {i['level']:.0%} bootstrap interval {i['low']:.4f} to "
            f"{i['high']:.4f} ({data.n_rows} rows, {i['n_boot']} resamples).")


def _prediction_interval_text(found: dict[str, Any]) -> str:
    covered, coverage, n = found["covered"], found["coverage"], found["n_rows"]
    # The binomial standard deviation of a share of n rows: how far the empirical coverage
    # strays from the asked one by chance alone.
    chance = math.sqrt(coverage * (1 - coverage) / n)
    return (f"Prediction intervals (predict_interval with coverage={coverage}: split-conformal, calibrated on the "
            f"validation rows) hold the true value of {covered:.1%} of the {n} held-out rows, against "
            f"{coverage:.0%} asked (on {n} rows chance alone moves that share by about {chance:.1%}); their mean "
            f"width is {found['mean_width']:.4g}. The chart draws {len(found['rows']['predicted'])} of the rows, "
            "sorted by prediction.")


def _short(value: Any, limit: int = 200) -> Any:
    """A value for a table cell: scalars as they are, containers as text cut to ``limit``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."


_BUILDERS: list[tuple[str, Callable[[rd.Run, list[str]], Section | None]]] = [
    ("verdict", _verdict), ("leaderboard", _leaderboard), ("learning-curves", _learning_curves),
    ("optimization-history", _optimization_history), ("importances", _importances), ("lr-finder", _lr_finder),
    ("doctor", _doctor), ("holdout", _holdout), ("permutation-importance", _permutation), ("network", _network),
    ("settings", _settings)]

__all__ = ["REPORT_FILE", "SECTION_IDS", "build_report", "write_report"]
