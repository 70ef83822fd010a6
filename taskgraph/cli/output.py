"""Shared output for commands: a rich table by default, ``--json`` or ``--csv`` for scripts."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["emit_json", "emit_rows", "stderr_console", "stdout_console"]

stdout_console = Console()
stderr_console = Console(stderr=True)


def emit_json(value: Any) -> None:
    """Print ``value`` as indented JSON on stdout (for ``--json``)."""
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def emit_rows(
    rows: Sequence[Mapping[str, Any]],
    *,
    columns: Sequence[str],
    as_json: bool = False,
    as_csv: bool = False,
    title: str | None = None,
) -> None:
    """Print ``rows`` as JSON (all keys), CSV (``columns``) or a rich table (``columns``)."""
    if as_json:
        emit_json(list(rows))
        return
    if as_csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: _csv_cell(row.get(c)) for c in columns})
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    stdout_console.print(table)


def _csv_cell(value: Any) -> str:
    # Scripts read the CSV: floats keep every digit (repr round-trips), unlike the table.
    if isinstance(value, float):
        return repr(value)
    return _cell(value)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        # Scores and gains in one column line up with a fixed four decimals (1.0000 beside
        # 0.9539, not 1 beside 0.9539); tiny and huge values keep four significant digits.
        if value == 0 or 1e-3 <= abs(value) < 1e6:
            return f"{value:.4f}"
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "+".join(str(v) for v in value)
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True)
    return str(value)
