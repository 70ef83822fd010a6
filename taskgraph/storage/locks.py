"""The setup lock: one process at a time creates schemas and seeds a study.

Several drivers started together on a brand-new database race at two places the records
schema's own migration lock does not cover: Optuna creates its tables without a lock (two
drivers die with ``table studies already exists`` or ``UNIQUE constraint failed:
alembic_version.version_num``), and each driver that finds no baseline trial enqueues one.
:func:`setup_lock` serialises those short sections across processes:

* SQLite: an exclusive ``flock`` on a lock file next to the database (``NAME.db.lock``,
  :func:`taskgraph.locking.file_lock`: left in place, released by the kernel when its holder
  dies, ``kill -9`` included).
* PostgreSQL: a session-level advisory lock on a connection of its own, released on unlock or
  when the connection drops (the holder died).
* An in-memory SQLite database lives in one process: nothing to lock across processes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

from sqlalchemy import Connection, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from taskgraph.errors import StorageError
from taskgraph.locking import file_lock
from taskgraph.storage.engine import create_storage_engine, describe_error
from taskgraph.storage.retry import with_connection_retry
from taskgraph.storage.urls import mask_url, parse_storage_url, sqlite_path

__all__ = ["lock_file", "setup_lock"]

# Arbitrary constant key of the PostgreSQL advisory lock; not the migration lock's key (a
# driver holding this one upgrades the schema on another connection, under that one).
_SETUP_LOCK_KEY = 0x7467_7365_7475_70  # "tgsetup"
# flock is per open file description and a PostgreSQL advisory lock per connection: a second
# setup_lock in the same process would wait on the first forever.  Threads take turns on this
# lock, and a thread already holding the setup lock of a database takes it again for free.
_PROCESS_LOCK = threading.RLock()
_held: set[str] = set()


def lock_file(url: str | URL) -> Path | None:
    """Return the lock file of a SQLite database (``None``: PostgreSQL or in-memory)."""
    parsed = parse_storage_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() != "sqlite":
        return None
    path = sqlite_path(parsed)
    return None if path is None else path.with_name(path.name + ".lock")


@contextmanager
def setup_lock(url: str | URL) -> Iterator[None]:
    """Hold the database's setup lock for the ``with`` block (blocks until it is free).

    Reentrant within a process.  Keep the block short: every driver opening the study waits.
    """
    parsed = parse_storage_url(url) if isinstance(url, str) else url
    key = parsed.render_as_string(hide_password=False)
    with _PROCESS_LOCK:
        if key in _held:
            yield
            return
        lock = (
            _file_lock(parsed) if parsed.get_backend_name() == "sqlite" else _advisory_lock(parsed)
        )
        with lock:
            _held.add(key)
            try:
                yield
            finally:
                _held.discard(key)


@contextmanager
def _file_lock(url: URL) -> Iterator[None]:
    path = lock_file(url)
    if path is None:
        yield
        return
    with ExitStack() as held:
        try:
            held.enter_context(file_lock(path))
        except OSError as error:
            raise StorageError(
                f"cannot create the lock file {str(path)!r} of {mask_url(url)}: "
                f"{error.strerror or error}"
            ) from None
        yield


@contextmanager
def _advisory_lock(url: URL) -> Iterator[None]:
    engine = create_storage_engine(url, poolclass=NullPool)

    def lock() -> Connection:
        connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _SETUP_LOCK_KEY})
        except BaseException:
            connection.close()
            raise
        return connection

    try:
        try:
            # A server restarting refuses connections for a moment: wait for it (bounded).
            connection = with_connection_retry(lock, url=url, what="setup lock")
        except SQLAlchemyError as error:
            raise StorageError(
                f"cannot lock {mask_url(url)} for setup: {describe_error(error, url)}"
            ) from None
        try:
            yield
        finally:
            # A failure means the connection is gone, and the lock with it.
            with suppress(SQLAlchemyError):
                connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": _SETUP_LOCK_KEY}
                )
            connection.close()
    finally:
        engine.dispose()
