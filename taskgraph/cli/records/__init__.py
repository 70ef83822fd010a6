"""``taskgraph records``: list, show and export (task set, model, score) records.

One module per command (or per few that belong together): :mod:`.listing` (``list`` and
``studies``), :mod:`.show`, :mod:`.export` (with ``--format long``) and :mod:`.table`; the run
filters ``list`` and ``export`` share are in :mod:`._common`.  This module builds the group and
registers the commands in the order ``taskgraph records --help`` lists them.
"""

from __future__ import annotations

import typer

from taskgraph.cli.records import export, listing, show, table

__all__ = ["app"]

app = typer.Typer(
    rich_markup_mode="markdown",
    add_completion=False,
    help="List, show, tabulate and export the records database, and list its studies.",
    no_args_is_help=True,
)

app.command("list")(listing.list_command)
app.command("show")(show.show_command)
app.command("studies")(listing.studies_command)
app.command("export")(export.export_command)
app.command("table")(table.table_command)
