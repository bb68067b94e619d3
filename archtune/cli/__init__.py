"""The ``archtune`` command: fit, predict, info, tune, leaderboard, report, lr-find, diagnose, pretrain,
prune, distill and export.

Every deliberate error is printed as one line, ``archtune: error: ...``, with exit code 2.
Commands import PyTorch only when they need it, so that argument mistakes are reported at once.
"""

from __future__ import annotations

from archtune.cli import doctor as _doctor  # noqa: F401  (registers lr-find, diagnose)
from archtune.cli import export as _export  # noqa: F401  (registers export)
from archtune.cli import report as _report  # noqa: F401  (registers report)
from archtune.cli import leaderboard as _leaderboard  # noqa: F401  (registers leaderboard)
from archtune.cli import search as _search  # noqa: F401  (registers tune)
from archtune.cli import distill as _distill  # noqa: F401  (registers distill)
from archtune.cli import pretrain as _pretrain  # noqa: F401  (registers pretrain)
from archtune.cli import prune as _prune  # noqa: F401  (registers prune)
from archtune.cli import train as _train  # noqa: F401  (registers fit, predict, info)
from archtune.cli import worker as _worker  # noqa: F401  (registers worker)
from archtune.cli.common import parse_settings, parse_value
from archtune.cli.group import EXIT_USAGE, cli


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="archtune")


__all__ = ["EXIT_USAGE", "cli", "main", "parse_settings", "parse_value"]
