"""``taskgraph tasks``: the task catalog."""

from __future__ import annotations

import typer

app = typer.Typer(help="List and inspect the task catalog.", no_args_is_help=True)
