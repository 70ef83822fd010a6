"""``taskgraph records table``: a study's results table, printed and written to a results folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from taskgraph.cli.options import JsonOption, StorageOption, nonempty_path
from taskgraph.cli.output import emit_json, print_line


def table_command(
    study: Annotated[str, typer.Argument(help="Study whose results table to print.")],
    metrics: Annotated[
        str | None,
        typer.Option(
            "--metrics",
            help="Comma-separated metrics of the target, one column each (default: the "
            "objective metric), e.g. f1_PER,f1_LOC,f1_ORG,f1.",
        ),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(
            "--split",
            help="Split the columns are read from (default: test where the runs have it, else "
            "the objective's split).",
        ),
    ] = None,
    write: Annotated[
        Path | None,
        typer.Option(
            "--write",
            metavar="<path>",
            parser=nonempty_path("a results folder such as docs/results"),
            # Markdown help: a bare <study> or <!-- ... --> would be dropped as HTML.
            help="Results folder (e.g. docs/results): write `STUDY.csv` in the long format of "
            "`taskgraph bench` and the table into the folder's README.md, which must exist and "
            "hold the lines `<!-- results:STUDY -->` and `<!-- /results:STUDY -->`.",
        ),
    ] = None,
    storage: StorageOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print a study's results table: rows = configurations, mean ± 95% t-interval over seeds."""
    from taskgraph.app.results.build import results_table
    from taskgraph.app.results.writing import check_results_folder, write_results

    if write is not None:  # before the table is printed: a folder it cannot go to is the error
        check_results_folder(write, study)
    table = results_table(study, storage=storage, metrics=metrics, split=split)
    if as_json:
        emit_json(table.to_dict())
    else:
        typer.echo(table.to_markdown(), nl=False)
    if write is not None:
        for path in write_results(table, write):
            print_line(f"wrote {path}", err=True)
