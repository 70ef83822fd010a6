"""Options shared by the command groups: one definition, one help text each."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

__all__ = [
    "CsvOption",
    "DataOption",
    "JsonOption",
    "SpecArgument",
    "StorageOption",
    "nonempty_path",
]


def nonempty_path(expected: str) -> Callable[[str], Path]:
    """Return a parser of a path argument or option that refuses an empty value.

    Typer reads ``""`` as ``Path("")``, which is the working directory: `study validate ""`
    said ``.: is a directory`` and `--data ""` read the working directory.  The refusal is
    a usage error, so the CLI prints it as one line naming the parameter.
    """

    def parse(value: str) -> Path:
        if not str(value).strip():
            raise typer.BadParameter(f"the path is empty: give {expected}")
        return Path(value)

    return parse


SpecArgument = Annotated[
    Path,
    typer.Argument(
        help="Study spec (YAML).",
        parser=nonempty_path("the study's YAML file"),
        show_default=False,
    ),
]

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
        metavar="<path>",
        parser=nonempty_path("the data directory"),
        help="Data directory (default: the spec's data_dir where there is a spec, then "
        "$TASKGRAPH_DATA, then ../shared/data).",
        show_default=False,
    ),
]
