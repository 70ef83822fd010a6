"""One cross-process lock: an exclusive ``flock`` on a lock file, for the ``with`` block.

The setup lock of a SQLite database (:mod:`taskgraph.storage.locks`) and the task cache's
writers (:mod:`taskgraph.tasks.cache`) both hold one.  The lock file stays in place: deleting
a file another process may be waiting on would let a third one lock a new file.  The kernel
releases the lock when its holder dies, ``kill -9`` included.  ``flock`` locks an open file
description, so two opens in one process exclude each other too (threads that each take the
lock wait in turn; a second take in the same thread waits forever: callers that nest keep
their own count).  POSIX only, like the rest of taskgraph's locking.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["file_lock"]


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
