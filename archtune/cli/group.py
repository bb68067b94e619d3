"""The ``archtune`` command group: archtune's own errors become one line and exit code 2."""

from __future__ import annotations

import warnings
from typing import Any

import click

from archtune.errors import ArchtuneError

EXIT_USAGE = 2


class ArchtuneGroup(click.Group):
    """Turns archtune's own errors into one line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning
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


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """A warning on the command line is one line for the user ("archtune: warning: ..."), not
    Python's file:line and the source line of the library code that raised it."""
    click.echo(f"archtune: warning: {message}", err=True)


@click.group(cls=ArchtuneGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="archtune")
def cli() -> None:
    """archtune: neural networks as off-the-shelf as gradient boosting."""
