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

A study's *liveness lock* (:func:`hold_driver_lock`, :func:`no_driver`) says whether a driver
is running it: every driver (``study run``/``resume``, local or Ray) holds it shared from
opening the study until it closes, and ``study delete`` try-takes it exclusively, refusing the
study when it cannot.  SQLite: a ``flock`` on ``NAME.db.driver-<hash of the study
name>.lock`` beside the database; PostgreSQL: a session-level advisory lock keyed by the study
name, on a connection of its own held for the driver's life.  Both go when the holder dies
(``kill -9`` included), so a dead driver never holds up a delete.  A PostgreSQL lock also goes
with its connection (a server restart, an idle or proxy timeout, ``pg_terminate_backend``):
the driver calls :meth:`DriverLock.keep` at every heartbeat and before each new trial, which
finds the connection gone, connects again (a short connect timeout; a server still away is
tried again at the next call) and takes the lock again; a ``study delete`` holding it then
is the study being deleted (:class:`DriverLockLostError`).  Between the connection dropping
and the driver's next call (at most about one heartbeat interval) a delete can go through.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from taskgraph.errors import StorageError
from taskgraph.locking import file_lock, lock_descriptor
from taskgraph.storage.engine import create_storage_engine, describe_error
from taskgraph.storage.retry import with_connection_retry
from taskgraph.storage.urls import mask_url, parse_storage_url, sqlite_path

__all__ = [
    "DriverLock",
    "DriverLockLostError",
    "driver_lock_file",
    "hold_driver_lock",
    "lock_file",
    "no_driver",
    "setup_lock",
]

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


# -- a study's liveness lock -------------------------------------------------------------------


def _driver_digest(study: str) -> bytes:
    return hashlib.blake2b(study.encode("utf-8"), digest_size=8, person=b"tg-driver").digest()


def driver_lock_file(url: str | URL, study: str) -> Path | None:
    """Return the liveness lock file of ``study`` in a SQLite database (``None``: PostgreSQL
    or in-memory): ``NAME.db.driver-<hash>.lock`` beside it, one per study name."""
    path = lock_file(url)
    if path is None:
        return None
    database = path.name.removesuffix(".lock")
    return path.with_name(f"{database}.driver-{_driver_digest(study).hex()}.lock")


#: seconds :meth:`DriverLock.keep` waits to connect again (libpq's least is 2): the driver's
#: heartbeat thread calls it, and a server still away is tried again at the next beat.
DRIVER_LOCK_RECONNECT_TIMEOUT_S = 3


class DriverLockLostError(StorageError):
    """A driver's PostgreSQL liveness lock dropped with its connection, and a ``study delete``
    held the study's lock when the driver took it again: the study is being deleted."""


def _driver_key(study: str) -> int:
    # The advisory lock's bigint key: 64 bits of the name's hash (not the setup lock's key).
    return int.from_bytes(_driver_digest(study), "big", signed=True)


class DriverLock:
    """A driver's hold on its study's liveness lock (shared with the study's other drivers);
    :meth:`keep` takes a PostgreSQL lock again after its connection dropped, :meth:`release`
    lets it go (idempotent).  Thread-safe: the heartbeat thread keeps it."""

    def __init__(
        self,
        *,
        fd: int | None = None,
        connection: Connection | None = None,
        engine: Any = None,
        key: int = 0,
        what: str = "",
    ) -> None:
        self._fd = fd
        self._connection = connection
        self._engine = engine
        self._key = key
        self._what = what  # "study 'NAME' in URL" (password masked), for the error
        self._guard = threading.Lock()
        self._lost: DriverLockLostError | None = None

    def keep(self) -> bool:
        """Check that a PostgreSQL lock's connection is alive (one ``SELECT 1``); when it is
        gone, connect again and take the lock shared again.

        Returns whether the lock was taken again just now (the caller checks that its study
        is still there: a delete may have gone through while the lock was down), ``False``
        when it was held, when the server cannot be reached yet (the next call tries again;
        the connect waits :data:`DRIVER_LOCK_RECONNECT_TIMEOUT_S` at most) and for a lock that
        cannot drop (SQLite's ``flock``) or was released.  Raises
        :class:`DriverLockLostError` (then at every call until :meth:`release`) when a ``study
        delete`` holds the lock: the study is being deleted under the driver.
        """
        with self._guard:
            if self._engine is None:
                return False
            if self._lost is not None:
                raise self._lost
            if self._connection is not None:
                try:
                    self._connection.execute(text("SELECT 1"))
                    return False
                except SQLAlchemyError:
                    # The session is gone, and its advisory lock with it.
                    with suppress(SQLAlchemyError):
                        self._connection.close()
                    self._connection = None
            try:
                connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            except SQLAlchemyError:
                return False  # the server is still away
            try:
                taken = connection.execute(
                    text("SELECT pg_try_advisory_lock_shared(:key)"), {"key": self._key}
                ).scalar()
            except SQLAlchemyError:
                with suppress(SQLAlchemyError):
                    connection.close()
                return False
            if not taken:
                connection.close()
                self._lost = DriverLockLostError(
                    f"the liveness lock of {self._what} dropped with its PostgreSQL "
                    "connection, and a `study delete` took it before this driver took it again"
                )
                raise self._lost
            self._connection = connection
            return True

    def release(self) -> None:
        """Release the lock (closing its descriptor, or unlocking and closing its connection)."""
        with self._guard:
            fd, self._fd = self._fd, None
            if fd is not None:
                os.close(fd)
            connection, self._connection = self._connection, None
            if connection is not None:
                # Closing the session releases its advisory locks: no unlock needed, nor one
                # that could fail on a connection already gone.
                with suppress(SQLAlchemyError):
                    connection.close()
            engine, self._engine = self._engine, None
            if engine is not None:
                engine.dispose()


def _driver_descriptor(
    path: Path, url: URL, *, shared: bool = False, wait: bool = True
) -> int | None:
    """Return :func:`~taskgraph.locking.lock_descriptor` of the liveness lock file ``path``
    (``None``: not waiting, and held); a file that cannot be created is a StorageError."""
    try:
        return lock_descriptor(path, shared=shared, wait=wait)
    except OSError as error:
        raise StorageError(
            f"cannot create the lock file {str(path)!r} of {mask_url(url)}: "
            f"{error.strerror or error}"
        ) from None


def hold_driver_lock(url: str | URL, study: str) -> DriverLock:
    """Take ``study``'s liveness lock shared (waiting while a ``study delete`` holds it) and
    return the hold; the driver keeps it until it closes.  Raises :class:`StorageError`."""
    parsed = parse_storage_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() == "sqlite":
        path = driver_lock_file(parsed, study)
        if path is None:
            return DriverLock()
        return DriverLock(fd=_driver_descriptor(path, parsed, shared=True))
    engine = create_storage_engine(parsed, poolclass=NullPool)
    # TCP keepalives: the connection sits idle for the driver's life, and a firewall or NAT
    # that drops idle connections would take the lock with it.
    params: dict[str, Any] = {"keepalives": 1, "keepalives_idle": 60, "keepalives_interval": 10}
    _connect_params(engine, params)
    key = _driver_key(study)
    try:
        connection = _advisory_connection(
            engine, parsed, "SELECT pg_advisory_lock_shared(:key)", key
        )
    except BaseException:
        engine.dispose()
        raise
    # Connections made again by DriverLock.keep (on the heartbeat thread) wait a short time.
    params["connect_timeout"] = DRIVER_LOCK_RECONNECT_TIMEOUT_S
    return DriverLock(
        connection=connection,
        engine=engine,
        key=key,
        what=f"study {study!r} in {mask_url(parsed)}",
    )


def _connect_params(engine: Any, params: dict[str, Any]) -> None:
    """Have every connection of ``engine`` connect with libpq's ``params`` (read at each
    connect: a change applies to later connections)."""

    @event.listens_for(engine, "do_connect")
    def connect(dialect: Any, record: Any, args: Any, kwargs: dict[str, Any]) -> None:
        kwargs.update(params)


@contextmanager
def no_driver(url: str | URL, study: str) -> Iterator[bool]:
    """Try to take ``study``'s liveness lock exclusively, without waiting, for the block.

    Yields ``True`` when it was taken (no driver runs the study; none can start one until the
    block ends: a new driver waits), ``False`` when a driver holds it.
    """
    parsed = parse_storage_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() == "sqlite":
        path = driver_lock_file(parsed, study)
        if path is None:
            yield True
            return
        fd = _driver_descriptor(path, parsed, wait=False)
        try:
            yield fd is not None
        finally:
            if fd is not None:
                os.close(fd)
        return
    engine = create_storage_engine(parsed, poolclass=NullPool)
    try:
        key = _driver_key(study)
        connection = _advisory_connection(engine, parsed, "SELECT pg_try_advisory_lock(:key)", key)
        try:
            taken = bool(connection.info["taskgraph_locked"])
            yield taken
        finally:
            connection.close()  # the session's end releases its lock
    finally:
        engine.dispose()


def _advisory_connection(engine: Any, url: URL, statement: str, key: int) -> Connection:
    """Return an autocommit connection of ``engine`` that ran ``statement`` with ``key``
    (its result in ``connection.info["taskgraph_locked"]``); retried while the server starts."""

    def lock() -> Connection:
        connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            result = connection.execute(text(statement), {"key": key}).scalar()
        except BaseException:
            connection.close()
            raise
        connection.info["taskgraph_locked"] = result is None or bool(result)
        return connection

    try:
        return with_connection_retry(lock, url=url, what="liveness lock")
    except SQLAlchemyError as error:
        raise StorageError(
            f"cannot take the liveness lock of a study in {mask_url(url)}: "
            f"{describe_error(error, url)}"
        ) from None
