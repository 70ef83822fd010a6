"""``taskgraph affinity``: fit the task-affinity graph, recommend auxiliaries, group tasks."""

from __future__ import annotations

import typer

app = typer.Typer(help="Fit the task-affinity graph; recommend auxiliary tasks and groupings.", no_args_is_help=True)
