"""``taskgraph db``: schema migrations of the records database."""

from __future__ import annotations

import typer

app = typer.Typer(help="Upgrade and check the records database schema.", no_args_is_help=True)
