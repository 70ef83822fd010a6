"""Turn the project's exceptions into one clear line and a non-zero exit."""

from __future__ import annotations

from typing import IO, Any

import click
import typer
from typer.core import TyperGroup

from taskgraph.errors import TaskgraphError

__all__ = ["TaskgraphGroup", "UserError"]


class UserError(click.ClickException):
    """A :class:`TaskgraphError` on its way out: printed as ``error: message``."""

    def __init__(self, error: TaskgraphError) -> None:
        super().__init__(str(error))
        self.exit_code = error.exit_code

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)


class TaskgraphGroup(TyperGroup):
    """A Typer group whose commands report :class:`TaskgraphError` as one line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TaskgraphError as error:
            # Typer 0.29 (installed here) vendors its own click, whose main loop does not catch the
            # ``click.ClickException`` that UserError derives from: print the line here and
            # leave through typer.Exit, which every Typer version turns into the exit code.
            UserError(error).show()
            raise typer.Exit(code=error.exit_code) from error
