"""``taskgraph records``: list, show and export (task set, model, score) records."""

from __future__ import annotations

import typer

app = typer.Typer(help="List, show and export the records database.", no_args_is_help=True)
