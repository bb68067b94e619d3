"""The ``archtune`` command: fit, predict, info, tune, leaderboard, lr-find and diagnose.

Every deliberate error is printed as one line, ``archtune: error: ...``, with exit code 2.
Commands import PyTorch only when they need it, so that argument mistakes are reported at once.
"""

from __future__ import annotations

from typing import Any

import click

from archtune.cli.common import parse_settings, parse_value
from archtune.errors import ArchtuneError

EXIT_USAGE = 2


class ArchtuneGroup(click.Group):
    """Turns archtune's own errors into one line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ArchtuneError as exc:
            click.echo(f"archtune: error: {exc}", err=True)
            ctx.exit(EXIT_USAGE)
        except BrokenPipeError:
            # The reader went away (`archtune info run | head`): stop quietly, as Unix tools do,
            # and keep the interpreter from complaining about the closed stdout at exit.
            import os
            import sys

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(0)
        except OSError as exc:  # disk full, permission denied while writing results
            click.echo(f"archtune: error: {exc.filename or ''}: {exc.strerror or exc}", err=True)
            ctx.exit(EXIT_USAGE)


@click.group(cls=ArchtuneGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="archtune")
def cli() -> None:
    """archtune: neural networks as off-the-shelf as gradient boosting."""


from archtune.cli import doctor as _doctor  # noqa: E402,F401  (registers lr-find, diagnose)
from archtune.cli import search as _search  # noqa: E402,F401  (registers tune, leaderboard)
from archtune.cli import train as _train  # noqa: E402,F401  (registers fit, predict, info)


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="archtune")


__all__ = ["cli", "main", "parse_settings", "parse_value"]
