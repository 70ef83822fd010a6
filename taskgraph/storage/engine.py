"""SQLAlchemy engines for the two backends, configured for several concurrent writers.

SQLite: WAL journal (readers never block the writer), ``busy_timeout`` (a writer waits for
the lock instead of failing at once), ``foreign_keys=ON``, and write transactions opened with
``BEGIN IMMEDIATE`` so that two writers never deadlock upgrading a shared lock (SQLite answers
such a deadlock with an immediate "database is locked" that no timeout can cure).  This follows
the "Serializable isolation / Savepoints / Transactional DDL" recipe in SQLAlchemy's SQLite
dialect documentation: pysqlite's own implicit BEGIN is switched off and SQLAlchemy emits it.

PostgreSQL: psycopg 3 with a connect timeout and ``pool_pre_ping`` (a worker survives a server
restart between trials).
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, OperationalError

from taskgraph.errors import StorageError
from taskgraph.storage.urls import mask_secrets, mask_url

__all__ = [
    "WRITE",
    "create_storage_engine",
    "describe_error",
    "is_retryable",
    "missing_driver_message",
    "serialize_sqlite_transactions",
]

SQLITE_BUSY_TIMEOUT_MS = 30_000
POSTGRES_CONNECT_TIMEOUT_S = 10
# Execution option that marks a connection as a writer (SQLite: BEGIN IMMEDIATE).
WRITE = "taskgraph_write"


def create_storage_engine(url: URL, *, switch_to_wal: bool = True, **kwargs: Any) -> Engine:
    """Return an engine for ``url`` (already validated by ``parse_storage_url``).

    ``switch_to_wal=False`` (read-only commands): a SQLite file is left in its journal mode.
    Switching to WAL writes the file; an empty file would get a database header, and a
    command that only reads must change nothing.  A file taskgraph created is in WAL already
    (the mode is stored in the file).

    Raises :class:`~taskgraph.errors.StorageError` when the backend's driver is not installed
    (psycopg comes with the ``postgres`` extra).
    """
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, switch_to_wal=switch_to_wal, **kwargs)
    connect_args = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S}
    try:
        return create_engine(url, pool_pre_ping=True, connect_args=connect_args, **kwargs)
    except ImportError as error:
        message = missing_driver_message(error, url)
        if message is None:
            raise
        raise StorageError(message) from None


# The database drivers taskgraph's extras install, by the module SQLAlchemy imports.
_DRIVER_EXTRAS = {"psycopg": ("PostgreSQL", "postgres")}


def missing_driver_message(error: BaseException, url: str | URL | None = None) -> str | None:
    """Return one line naming the extra to install when ``error`` is the import of a database
    driver that is not installed (``url`` masked), else ``None``."""
    if not isinstance(error, ImportError):
        return None
    module = (error.name or "").split(".")[0]
    if module not in _DRIVER_EXTRAS:
        return None
    backend, extra = _DRIVER_EXTRAS[module]
    where = f"database {mask_url(url)}: " if url is not None else ""
    return f"{where}{backend} needs {module}: pip install 'taskgraph[{extra}]'"


def _sqlite_engine(url: URL, *, switch_to_wal: bool, **kwargs: Any) -> Engine:
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (see the "begin" listener).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if switch_to_wal:
                _use_wal(cursor)
            # NORMAL is durable across application crashes in WAL mode (SQLite docs, "WAL").
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(WRITE):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")

    return engine


def serialize_sqlite_transactions(engine: Engine) -> Engine:
    """Make every transaction of a SQLite ``engine`` (e.g. Optuna's) take the write lock first.

    pysqlite starts a transaction only at the first write, so a read-then-write such as
    Optuna's "pop the waiting trial" (read WAITING, set RUNNING) is not atomic across
    processes: two drivers starting together both popped trial 0, and one died with
    ``UpdateFinishedTrialError``.  With ``BEGIN IMMEDIATE`` the read happens under the write
    lock, as the SQLAlchemy SQLite dialect documentation's recipe does it.  Reads wait their
    turn too, which a SQLite study (a few drivers) can afford.  In WAL mode its commits use
    ``synchronous = NORMAL``, as the records' do.  Other backends are unchanged.
    Returns ``engine``; its pooled connections are dropped so that new ones get the settings.
    """
    if engine.dialect.name != "sqlite":
        return engine

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            # As the records' connections: in WAL mode NORMAL is durable across application
            # crashes and spares an fsync per commit (FULL, SQLite's default, cost 3.6 ms a
            # commit here, and Optuna commits a dozen times per trial).  Other journal modes
            # keep FULL.
            mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() == "wal":
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()
    return engine


def _use_wal(cursor: Any) -> None:
    # Switching a file to WAL needs a moment alone with it; several processes opening a new
    # file at once can be told "locked" without the busy handler being consulted: retry.
    for attempt in range(50):
        try:
            mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() in ("wal", "memory"):
                return
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error).lower() or attempt == 49:
                raise
            time.sleep(0.02 * (1 + attempt % 10))


_SQLITE_RETRYABLE = ("database is locked", "database table is locked", "database is busy")
# PostgreSQL SQLSTATEs worth retrying: serialization failure, deadlock detected.
_POSTGRES_RETRYABLE = {"40001", "40P01"}


def is_retryable(error: BaseException) -> bool:
    """Return True when ``error`` is a transient lock conflict worth retrying."""
    if not isinstance(error, DBAPIError):
        return False
    if isinstance(error, OperationalError) and any(
        text in str(error.orig).lower() for text in _SQLITE_RETRYABLE
    ):
        return True
    sqlstate = getattr(error.orig, "sqlstate", None)
    return sqlstate in _POSTGRES_RETRYABLE


# SQLite's words for a file it cannot write, and what usually causes them.  (A write past a
# file-size limit fails with EFBIG, which SQLite reports as a disk I/O error.)
_SQLITE_WRITE_FAILURES = {
    "database or disk is full": "no space left on its filesystem",
    "disk i/o error": "the disk is full, a file-size limit was reached or the disk failed",
    "attempt to write a readonly database": "the file or its directory is read-only",
    "unable to open database file": "the file or its directory is missing or read-only",
    "readonly database": "the file or its directory is read-only",
}


def describe_error(error: BaseException, url: URL | None = None) -> str:
    """Return the first line of a driver error, with every password field masked (and, for
    SQLite's write failures, what usually causes them)."""
    orig = getattr(error, "orig", None)
    message = str(orig if orig is not None else error).strip()
    line = message.splitlines()[0] if message else type(error).__name__
    lowered = line.lower()
    cause = next((why for text, why in _SQLITE_WRITE_FAILURES.items() if text in lowered), None)
    if cause is not None and isinstance(orig, sqlite3.Error):
        line = f"{line} ({cause}?)"
    # Fields, not substrings: replacing the password's text would garble the message.
    return mask_secrets(line, url)
