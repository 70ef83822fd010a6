"""The ``taskgraph`` Typer application: assembles the command groups.

The library does the work; commands parse options, call it, and print.  Every
:class:`~taskgraph.errors.TaskgraphError` raised inside a command becomes one line on stderr
(``error: ...``) and a non-zero exit, through :class:`TaskgraphGroup`.

Command groups are imported when they are first used (click's lazy-group pattern):
``taskgraph tasks list`` does not pay for importing SciPy, Alembic and Optuna, which the
affinity, db and study groups need (about a second per call).  Plug-ins (the
``taskgraph.plugins`` entry points, ``TASKGRAPH_PLUGINS``) are not loaded here either: a registry
loads them when a lookup misses (:func:`taskgraph.registry.load_plugins`), so a command that
names only built-in runners, samplers or estimators imports none.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

import typer

from taskgraph.cli.errors import TaskgraphGroup

__all__ = ["COMMANDS", "app", "main"]

#: command name -> "module:attribute" of its Typer app (a group) or function (one command)
COMMANDS: dict[str, str] = {
    "tasks": "taskgraph.cli.tasks:app",
    "study": "taskgraph.cli.study:app",
    "records": "taskgraph.cli.records:app",
    "affinity": "taskgraph.cli.affinity:app",
    "db": "taskgraph.cli.db:app",
    "dashboard": "taskgraph.cli.dashboard:dashboard",
    "bench": "taskgraph.cli.bench:bench",
}


class LazyGroup(TaskgraphGroup):
    """The top-level group: lists every command of :data:`COMMANDS`, imports one when used."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, attribute = COMMANDS[cmd_name].split(":")
            target = getattr(importlib.import_module(module), attribute)
            if not isinstance(target, typer.Typer):
                single = typer.Typer(rich_markup_mode="markdown", add_completion=False)
                single.command(cmd_name)(target)
                target = single
            command = typer.main.get_command(target)
            command.name = cmd_name
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    rich_markup_mode="markdown",
    cls=LazyGroup,
    name="taskgraph",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _installed_version() -> str:
    """Return the installed distribution's version (a source tree not installed: the package's)."""
    try:
        return version("taskgraph")
    except PackageNotFoundError:
        from taskgraph import __version__

        return __version__


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"taskgraph {_installed_version()}")
        raise typer.Exit()


@app.callback()
def _taskgraph(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print taskgraph's version and exit.",
        ),
    ] = False,
) -> None:
    """Find out which tasks help which: search task combinations, sharing architectures and
    data weights; keep every record; fit a task-affinity graph."""


def main() -> None:
    """Run the command line (the ``taskgraph`` console script)."""
    app()


if __name__ == "__main__":
    main()
