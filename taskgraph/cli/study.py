"""``taskgraph study``: validate, run, submit, resume and inspect studies."""

from __future__ import annotations

import typer

app = typer.Typer(help="Validate, run, submit, resume and inspect studies.", no_args_is_help=True)
