"""Options shared by the command groups: one definition, one help text each."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["CsvOption", "DataOption", "JsonOption", "StorageOption"]

StorageOption = Annotated[
    str | None,
    typer.Option(
        "--storage",
        metavar="URL",
        help="Records database URL (sqlite:///file.db or postgresql+psycopg://user:pw@host/db). "
        "Default: $TASKGRAPH_STORAGE, then the spec's `storage` (commands that read a spec), "
        "then sqlite:///taskgraph.db.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (every field).")]
CsvOption = Annotated[bool, typer.Option("--csv", help="Print CSV (the table's columns).")]
DataOption = Annotated[
    Path | None,
    typer.Option(
        "--data",
        help="Data directory (default: the spec's data_dir where there is a spec, then "
        "$TASKGRAPH_DATA, then ../shared/data).",
        show_default=False,
    ),
]
