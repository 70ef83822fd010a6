"""Turn the project's exceptions into one clear line and a non-zero exit."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from taskgraph.errors import TaskgraphError

__all__ = ["TaskgraphGroup"]


class TaskgraphGroup(TyperGroup):
    """A Typer group whose commands report :class:`TaskgraphError` as ``error: message``."""

    # ``ctx`` is typed loosely: recent Typer releases vendor their own click, older ones use
    # click itself, and this class must work with both.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except TaskgraphError as error:
            # Printed here and left through typer.Exit rather than a click.ClickException,
            # which a vendored click's main loop would not recognise.
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(code=error.exit_code) from error
        except Exception as error:
            if type(error).__module__.split(".")[0] in ("typer", "click"):
                # --help, usage errors, typer.Exit: the command line's own (typer vendors
                # click), nothing to translate and no reason to import the storage layer.
                raise
            # Optuna's storage reports a read-only file, a failed commit or tables at another
            # schema version with its own exceptions: the database's state, not a bug.
            from taskgraph.storage.failures import storage_failure_message

            message = storage_failure_message(error)
            if message is None:
                raise
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(code=1) from error
