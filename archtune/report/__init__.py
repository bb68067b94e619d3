"""The report of a run: one self-contained HTML file (no JavaScript, nothing fetched) with the
verdict, leaderboard, learning curves, optimisation history, importances, the doctor's
findings, the held-out evaluation, the network and the settings.

    archtune report runs/x               # writes runs/x/report.html
    from archtune.report import write_report
    write_report("runs/x")

Modules: data.py (the numbers: the run, and each section's data computed from it),
data_types.py (those numbers as small dataclasses), evaluation.py (held-out evaluation saved
by a run), plots.py (matplotlib figures of the data), html.py (the page), build.py (all of it
together).
"""

from archtune.report.build import REPORT_FILE, SECTION_IDS, build_report, write_report
from archtune.report.html import section_data, section_ids

__all__ = ["REPORT_FILE", "SECTION_IDS", "build_report", "section_data", "section_ids", "write_report"]
