"""Shared output for commands: a rich table by default, ``--json`` or ``--csv`` for scripts.

Files named by ``-o``/``--output`` go through :func:`resolve_output` and :func:`write_output`:

* ``-o -`` is standard output;
* a new path, or an existing *regular file*, is written atomically: a temporary file in the
  same directory, renamed over the destination (a failed write leaves the old file whole);
* a symbolic link is followed: its target is written (atomically, when it is a regular file or
  does not exist yet) and the link itself stays a link;
* anything else that exists (a directory, a FIFO, a device such as ``/dev/full``, a socket)
  is refused with one ``error:`` line, never replaced by a regular file;
* so is a SQLite database file (a records database: its first 16 bytes are
  ``SQLite format 3\\0``), its ``-wal``, ``-shm`` or ``-journal`` companion, and the SQLite
  file of the storage the command reads (even while it is still empty): ``-o taskgraph.db``
  never wipes the records.
"""

from __future__ import annotations

import csv
import json
import os
import stat
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from taskgraph.errors import ConfigError, StorageError, TaskgraphError
from taskgraph.files import replace_file
from taskgraph.vocabulary import json_safe

__all__ = [
    "OutputError",
    "emit_json",
    "emit_rows",
    "output_errors",
    "print_line",
    "print_table",
    "resolve_output",
    "stderr_console",
    "stdout_console",
    "write_output",
]

# Neither reads markup or emoji codes: the text printed holds task names, paths and stored
# failure reasons, where "x[/]y" would be a closing tag (a MarkupError traceback), "[bold]z"
# would print as "z" and "file.tsv:100:" as an emoji.  What is meant as styled is a rich Text.
stdout_console = Console(markup=False, emoji=False)
stderr_console = Console(stderr=True, markup=False, emoji=False)


def emit_json(value: Any) -> None:
    """Print ``value`` as indented JSON on stdout (for ``--json``).

    NaN and infinities (an undefined correlation, an unmeasured value) are written as ``null``:
    JSON has no such numbers, and strict parsers (``jq``, ``json.loads`` in strict mode)
    reject Python's ``NaN``.
    """
    text = json.dumps(json_safe(value), indent=2, ensure_ascii=False, default=str, allow_nan=False)
    sys.stdout.write(text + "\n")


def emit_rows(
    rows: Sequence[Mapping[str, Any]],
    *,
    columns: Sequence[str],
    as_json: bool = False,
    as_csv: bool = False,
    title: str | None = None,
) -> None:
    """Print ``rows`` as JSON (all keys), CSV (``columns``) or a rich table (``columns``)."""
    if as_json and as_csv:
        raise ConfigError("`--json` and `--csv` exclude each other: choose one")
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
        # Folded, never cut with "…": a narrow terminal keeps every value.
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    print_table(table)


def print_line(text: str, *, err: bool = False) -> None:
    """Print ``text`` literally on stdout (stderr with ``err``): never wrapped, no markup.

    A URL or a path is one token a script may read back: in a pipe rich would break it at 80
    columns, and would read ``[b]`` in a file name as a style.
    """
    console = stderr_console if err else stdout_console
    console.print(text, markup=False, emoji=False, highlight=False, soft_wrap=True)


def print_table(table: Table) -> None:
    """Print ``table`` on standard output: a terminal's width, else as wide as it needs with
    its title on one line above it."""
    if stdout_console.is_terminal:
        stdout_console.print(table)
        return
    # A pipe or a log has no width: the table takes what it needs, not rich's 80 columns, and
    # its title is one line above it (rich wraps a title to the table's width, which broke a
    # long path or sentence across lines for whoever greps it).
    console = Console(file=sys.stdout, width=_UNBOUNDED, markup=False, emoji=False)
    title, table.title = table.title, None
    try:
        if title:
            console.print(title, soft_wrap=True)
        console.print(table)
    finally:
        table.title = title


#: the width a table may take when standard output is not a terminal
_UNBOUNDED = 1000


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


class OutputError(TaskgraphError):
    """An output file could not be written (permission, disk full, ...): the message names it."""


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def resolve_output(
    value: str | os.PathLike[str],
    *,
    option: str = "--output",
    stdout_ok: bool = True,
    storage: str | None = None,
) -> Path | None:
    """Return the regular file an ``-o`` value names (``None``: ``-``, standard output).

    A symbolic link resolves to its target.  Raises :class:`ConfigError` for ``-`` when
    ``stdout_ok`` is false, a missing directory, an existing target that is not a regular
    file (directory, FIFO, device, socket), a SQLite database file or its ``-wal``/``-shm``/
    ``-journal`` companion, and the SQLite file (or companion) of ``storage``, the storage URL
    the command reads: those are never replaced.
    """
    text = os.fspath(value)
    if text == "-":
        if stdout_ok:
            return None
        raise ConfigError(f"`{option} -` (standard output) is not possible here: give a file")
    if not text.strip():
        raise ConfigError(f"`{option}` is empty: give a file path, or '-' for standard output")
    try:
        # Follow symlinks: the link's target is what gets written, the link stays a link.
        target = Path(text).expanduser().resolve()
    except (OSError, RuntimeError) as error:  # a symlink loop
        raise ConfigError(f"`{option}` {text!r} cannot be resolved: {error}") from None
    parent = target.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise ConfigError(f"`{option}` {text!r}: {str(parent)!r} {what}")
    _refuse_database(target, text, option=option, storage=storage)
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        return target
    except OSError as error:
        raise OutputError(f"cannot write `{option}` {text!r}: {error.strerror or error}") from None
    if not stat.S_ISREG(mode):
        shown = f"{text} -> {target}" if Path(text).expanduser().is_symlink() else text
        raise ConfigError(
            f"`{option}` is {_kind(mode)}, not a file: {shown} (taskgraph writes only regular "
            f"files: give another path, or '-' for standard output)"
        )
    return target


def _refuse_database(target: Path, text: str, *, option: str, storage: str | None) -> None:
    """Raise :class:`ConfigError` when writing ``target`` would destroy a SQLite database."""
    # (Imported here: `taskgraph tasks ...` loads this module and must not load the storage
    # package, which imports Alembic.)
    from taskgraph.storage.export import database_words, sqlite_database_of
    from taskgraph.storage.urls import mask_url

    hint = "give another path, or '-' for standard output"
    database = sqlite_database_of(target)
    if database is not None:
        raise ConfigError(f"`{option}` {text!r}: {database_words(target, database)} ({hint})")
    in_use = _storage_file(storage)
    if in_use is None:
        return
    companions = {in_use.with_name(in_use.name + s) for s in ("-wal", "-shm", "-journal")}
    if target == in_use or target in companions:
        raise ConfigError(
            f"`{option}` {text!r} is the records database this command reads "
            f"({mask_url(storage or '')}): writing over it would destroy its records ({hint})"
        )


def _storage_file(storage: str | None) -> Path | None:
    """Return the SQLite file of the storage URL ``storage`` (``None``: none, or not a file)."""
    from taskgraph.storage.urls import parse_storage_url, sqlite_path

    if storage is None:
        return None
    try:
        url = parse_storage_url(storage, check_directory=False)
    except StorageError:
        return None  # the command reports a bad URL where it opens the database
    return sqlite_path(url) if url.get_backend_name() == "sqlite" else None


@contextmanager
def output_errors(path: str | os.PathLike[str], *, option: str = "--output") -> Iterator[None]:
    """Turn an ``OSError`` while writing ``path`` into one :class:`OutputError` line."""
    try:
        yield
    except OSError as error:
        reason = error.strerror or str(error)
        raise OutputError(f"cannot write `{option}` {os.fspath(path)!r}: {reason}") from None


def write_output(target: Path | None, payload: str | bytes, *, option: str = "--output") -> None:
    """Write ``payload`` to ``target`` (from :func:`resolve_output`; ``None``: stdout).

    A file is written to a temporary sibling and renamed into place, so an interrupted or
    failed write leaves the destination as it was.
    """
    from taskgraph.storage.export import database_words, sqlite_database_of

    data = payload.encode("utf-8") if isinstance(payload, str) else payload
    if target is not None and (database := sqlite_database_of(target)) is not None:
        # Checked again where it is written: the file may have become one since.
        raise ConfigError(f"`{option}` {str(target)!r}: {database_words(target, database)}")
    if target is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    with output_errors(target, option=option):
        replace_file(target, lambda temporary: temporary.write_bytes(data))
