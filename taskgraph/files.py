"""Reading a file once while it is unchanged; replacing one atomically through a temporary file.

A command may ask for one file several times (``study validate`` then ``study run`` read a
tabular runner's table; the spec checks, the search space and each engine read an encoder's
``config.json``).  :func:`read_unchanged` answers the later asks from memory for as long as the
file is the same one: known by its path, resolved path, inode, size and modification time, so
an edited or replaced file is read again.  A file that does not read is not remembered (its
error is raised each time).

:func:`replace_file` writes a file's next version under a hidden name of its own beside it and
renames it over the file: a reader sees the old file or the new one, never half of one, and two
writers of one file, or a user's own ``NAME.tmp`` beside it, never cut each other's file.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "clear_unchanged",
    "read_unchanged",
    "replace_file",
    "temporary_sibling",
]

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


def replace_file(path: Path, write: Callable[[Path], object], *, suffix: str = ".tmp") -> None:
    """Write ``path``'s next version with ``write(temporary)``, then rename it over ``path``.

    The temporary file is a new, hidden, uniquely named sibling (:func:`temporary_sibling`,
    ending in ``suffix``: a writer that picks the format from the name, such as matplotlib's
    ``savefig``, needs ``.png``), with the permissions the file has now, else the umask's.
    When ``write`` or the rename fails, or is interrupted (Ctrl-C), the temporary file is
    removed, ``path`` is as it was and the error propagates.
    """
    fd, name = temporary_sibling(path, suffix=suffix)
    temporary = Path(name)
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        read_only = not mode & stat.S_IWUSR
        try:
            if read_only:  # ``write`` opens the file by name: its owner must be able to
                os.fchmod(fd, mode | stat.S_IWUSR)
        finally:
            os.close(fd)
        write(temporary)
        if read_only:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        # A write cut short (a full disk, Ctrl-C) leaves no partial copy taking the space the
        # next write needs; a failed removal must not hide the write's own error.
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise


def temporary_sibling(path: Path, *, suffix: str = ".tmp") -> tuple[int, str]:
    """Return an open descriptor and the name of a new hidden file beside ``path``, its name
    unique and ending in ``suffix`` (renamed over ``path`` once written).

    The file has ``path``'s permissions where ``path`` exists, else the umask's default (the
    kernel applies it; ``tempfile.mkstemp`` would leave 0600, and reading the umask means
    setting it, which other threads would see).  A folder that takes no new file (read-only,
    or procfs, which answers "No such file or directory") raises an ``OSError`` that says so
    rather than naming ``path``.
    """
    try:
        old_mode: int | None = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        old_mode = None
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        name = os.path.join(path.parent, f".{path.name}.{secrets.token_hex(4)}{suffix}")
        try:
            fd = os.open(name, flags, 0o666)
        except FileExistsError:
            continue
        except OSError as error:
            reason = error.strerror or str(error)
            raise OSError(
                error.errno, f"its folder {str(path.parent)!r} takes no new file ({reason})"
            ) from None
        if old_mode is not None:
            try:
                os.fchmod(fd, old_mode)
            except BaseException:
                os.close(fd)
                with contextlib.suppress(OSError):  # never hides the error above
                    os.unlink(name)
                raise
        return fd, name
    raise FileExistsError(f"no free temporary name beside {str(path)!r}")
