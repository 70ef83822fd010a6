"""Writing a results table to a results folder: ``<study>.csv`` and the README's marked section."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from taskgraph.affinity.longtable import write_long_csv
from taskgraph.errors import ConfigError, DataNotFoundError, TaskgraphError, option_name
from taskgraph.files import temporary_sibling

if TYPE_CHECKING:
    from taskgraph.app.results.table import ResultsTable

__all__ = [
    "ResultsWriteError",
    "check_results_folder",
    "replace_section",
    "section_markers",
    "write_results",
]


class ResultsWriteError(TaskgraphError):
    """A results file could not be written (a directory in its place, a read-only folder)."""


def section_markers(study: str) -> tuple[str, str]:
    """Return the two comment lines that enclose ``study``'s table in a Markdown file."""
    return f"<!-- results:{study} -->", f"<!-- /results:{study} -->"


def replace_section(text: str, study: str, body: str) -> str:
    """Return ``text`` with the part between ``study``'s markers replaced by ``body``.

    The markers may be on one line (``<!-- results:S --><!-- /results:S -->``); the result has
    them on lines of their own.  Raises :class:`ConfigError` when the markers are missing or
    out of order.
    """
    begin, end = section_markers(study)
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        raise ConfigError(
            f"no section for study {study!r}: add the lines {begin!r} and {end!r} where its "
            "table goes"
        )
    return pattern.sub(lambda _: f"{begin}\n{body.rstrip()}\n{end}", text, count=1)


def check_results_folder(directory: str | os.PathLike[str], study: str) -> Path:
    """Return the ``README.md`` of results folder ``directory`` once it holds ``study``'s
    marked section; raise :class:`DataNotFoundError` / :class:`ConfigError` saying what to add
    (:class:`ResultsWriteError` when something other than a file is where the CSV goes)."""
    folder = Path(directory)
    begin, end = section_markers(study)
    if not folder.is_dir():
        raise DataNotFoundError(
            f"{option_name('directory', folder, flag='--write')}: not a directory (a results "
            "folder such as docs/results)"
        )
    readme = folder / "README.md"
    if not readme.is_file():
        raise DataNotFoundError(
            f"{option_name('directory', folder, flag='--write')}: no README.md there; the "
            "results page is a README.md with the "
            f"lines {begin!r} and {end!r} where the table goes"
        )
    replace_section(readme.read_text(encoding="utf-8"), study, "")  # the markers are there
    table = folder / f"{study}.csv"
    if table.exists() and not table.is_file():
        raise ResultsWriteError(f"cannot write {table}: it exists and is not a regular file")
    return readme


def _uses_crlf(path: Path) -> bool:
    """Return whether the first line of ``path`` ends in CRLF (a file written on Windows)."""
    with path.open("rb") as handle:
        return handle.readline().endswith(b"\r\n")


def write_results(table: ResultsTable, directory: str | os.PathLike[str]) -> list[Path]:
    """Write ``<study>.csv`` (long format) and the table into ``README.md``'s marked section.

    Returns the paths written.  The README is checked before anything is written, so a
    missing section writes nothing; the README keeps its line endings (CRLF stays CRLF).  The
    pair is all or nothing as far as the filesystem allows: both files are written to hidden
    temporary siblings of their own first (:func:`~taskgraph.files.temporary_sibling`, with
    the permissions of the file they replace); the previous CSV, if any, is copied aside
    before the new one is renamed over it, and put back (or the new CSV removed, where there
    was none) if the README's rename then fails.  A failure raises :class:`ResultsWriteError`
    naming the file; no temporary file or copy is left behind, except a copy that could not
    be put back, which the error names.
    """
    folder = Path(directory)
    readme = check_results_folder(folder, table.study)
    updated = replace_section(readme.read_text(encoding="utf-8"), table.study, table.to_markdown())
    if _uses_crlf(readme):  # read_text made every line end in "\n"
        updated = updated.replace("\n", "\r\n")
    long_rows = table.long_rows()
    csv = folder / f"{table.study}.csv"
    targets = ([csv] if long_rows else []) + [readme]
    staged: list[Path] = []  # temporary files created so far, in the order of ``targets``
    backup: Path | None = None  # the previous CSV while the new one is in place
    replaced: list[Path] = []  # targets renamed into place so far
    current = targets[0]
    try:
        for path in targets:
            current = path
            fd, name = temporary_sibling(path)
            staged.append(Path(name))
            with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
                if path == readme:
                    handle.write(updated)
                else:
                    write_long_csv(long_rows, handle)
        for tmp, path in zip(staged, targets, strict=True):
            current = path
            if path == csv and csv.is_file():
                backup = _copy_aside(csv)
            tmp.replace(path)
            replaced.append(path)
    except BaseException as error:  # an interrupt between the renames is undone as well
        note = ""
        if csv in replaced and not _undo_csv(csv, backup):
            if backup is None:
                note = f"; {csv} is the new table and could not be removed"
            else:
                note = f"; {csv} is the new table, the previous one is in {backup}"
                backup = None  # the only copy of the previous table: kept
        if not isinstance(error, OSError):
            raise
        raise ResultsWriteError(
            f"cannot write {current}: {error.strerror or error}{note}"
        ) from None
    finally:
        for tmp in staged:
            tmp.unlink(missing_ok=True)
        if backup is not None:
            backup.unlink(missing_ok=True)
    return targets


def _copy_aside(path: Path) -> Path:
    """Return a copy of ``path`` beside it (a hidden, unique name), to put back on failure."""
    import shutil
    import tempfile

    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".bak")
    os.close(handle)
    copy = Path(name)
    try:
        shutil.copy2(path, copy)
    except BaseException:  # an interrupt too: no partial copy is left behind
        copy.unlink(missing_ok=True)
        raise
    return copy


def _undo_csv(csv: Path, backup: Path | None) -> bool:
    """Return whether ``csv`` is back as it was: ``backup`` renamed over it, or, where there
    was no CSV before, the new one removed."""
    try:
        if backup is None:
            csv.unlink(missing_ok=True)
        else:
            backup.replace(csv)
    except OSError:
        return False
    return True
