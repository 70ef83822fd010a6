"""Cross-process locks: an exclusive ``flock`` on a lock file, for the ``with`` block, and a
descriptor holding a shared or exclusive ``flock`` for as long as its holder keeps it open.

The setup lock of a SQLite database (:mod:`taskgraph.storage.locks`) and the task cache's
writers (:mod:`taskgraph.tasks.cache`) both hold one.  The lock file stays in place: deleting
a file another process may be waiting on would let a third one lock a new file.  The kernel
releases the lock when its holder dies, ``kill -9`` included.  ``flock`` locks an open file
description, so two opens in one process exclude each other too (threads that each take the
lock wait in turn; a second take in the same thread waits forever: callers that nest keep
their own count).  POSIX only, like the rest of taskgraph's locking.

:func:`lock_descriptor` is the held form: a study driver's liveness lock
(:func:`taskgraph.storage.locks.hold_driver_lock`) is shared by every driver of the study for
its whole life, and ``study delete`` try-takes it exclusively.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["file_lock", "lock_descriptor"]


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) until the block ends.

    Blocks until the lock is free.  Creating or locking the file raises ``OSError``.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def lock_descriptor(path: Path, *, shared: bool = False, wait: bool = True) -> int | None:
    """Return an open descriptor of ``path`` (created if missing) holding a ``flock`` on it.

    ``shared``: a shared lock (``LOCK_SH``; many holders), else an exclusive one.  ``wait``:
    block until the lock is granted; without it, ``None`` when another holder is in the way.
    The caller closes the descriptor (:func:`os.close`) to release it; the kernel releases it
    when the process dies.  Creating or locking the file raises ``OSError``.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    operation = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    try:
        fcntl.flock(fd, operation if wait else operation | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd
