"""The ``taskgraph`` Typer application: assembles the command groups.

The library does the work; commands parse options, call it, and print.  Every
:class:`~taskgraph.errors.TaskgraphError` raised inside a command becomes one line on stderr
(``error: ...``) and a non-zero exit, through :class:`TaskgraphGroup`.
"""

from __future__ import annotations

import typer

from taskgraph.cli import affinity, bench, dashboard, db, records, study, tasks
from taskgraph.cli.errors import TaskgraphGroup

__all__ = ["app", "main"]

app = typer.Typer(
    cls=TaskgraphGroup,
    name="taskgraph",
    help="Find out which tasks help which: search task combinations, sharing architectures "
    "and data weights; keep every record; fit a task-affinity graph.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(tasks.app, name="tasks")
app.add_typer(study.app, name="study")
app.add_typer(records.app, name="records")
app.add_typer(affinity.app, name="affinity")
app.add_typer(db.app, name="db")
app.command("dashboard")(dashboard.dashboard)
app.command("bench")(bench.bench)


def main() -> None:
    """Run the command line (the ``taskgraph`` console script)."""
    app()


if __name__ == "__main__":
    main()
