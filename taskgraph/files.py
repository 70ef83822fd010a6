"""Reading a file once while it is unchanged; a temporary file to write one atomically.

A command may ask for one file several times (``study validate`` then ``study run`` read a
tabular runner's table; the spec checks, the search space and each engine read an encoder's
``config.json``).  :func:`read_unchanged` answers the later asks from memory for as long as the
file is the same one: known by its path, resolved path, inode, size and modification time, so
an edited or replaced file is read again.  A file that does not read is not remembered (its
error is raised each time).
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["clear_unchanged", "read_unchanged", "temporary_sibling"]

T = TypeVar("T")


def read_unchanged(path: str | os.PathLike[str], reader: Callable[[Path], T]) -> T:
    """Return ``reader(Path(path))``, from memory while the file is unchanged.

    ``reader`` must be a module-level function (it is part of the cache key).  What it returns
    is shared by every later ask: callers must not change it (or must copy it).  A file that
    cannot be looked at is passed to ``reader`` uncached, so the reader's own error is raised.
    """
    file = Path(path)
    try:
        status = file.stat()
        resolved = str(file.resolve())
    except OSError:
        return reader(file)
    key = (os.fspath(path), resolved, status.st_ino, status.st_size, status.st_mtime_ns)
    return _read(reader, *key)


def clear_unchanged() -> None:
    """Forget every file read so far."""
    _read.cache_clear()


@functools.lru_cache(maxsize=32)
def _read(reader: Callable[[Path], Any], path: str, *_status: object) -> Any:
    # The status fields only tell versions of the file apart; ``path`` is read as given, so
    # the reader's messages name the file as its caller did.
    return reader(Path(path))


def temporary_sibling(path: Path) -> tuple[int, str]:
    """Return ``tempfile.mkstemp`` of a hidden temporary file beside ``path`` (renamed over it
    once written).  A folder that takes no new file (read-only, or procfs, which answers "No
    such file or directory") raises an ``OSError`` that says so rather than naming ``path``."""
    try:
        return tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        reason = error.strerror or str(error)
        raise OSError(
            error.errno, f"its folder {str(path.parent)!r} takes no new file ({reason})"
        ) from None
