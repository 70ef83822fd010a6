"""Riding out a database server that goes away: bounded retry of lost connections.

A PostgreSQL server that is restarted (a failover, a maintenance restart, a crash) refuses
connections for a few seconds and breaks the ones it had.  Every database call of a study
(taskgraph's record writes through :func:`taskgraph.storage.session.run_write`, its record
reads through :func:`taskgraph.storage.reading.retried_read`, Optuna's through
:class:`taskgraph.storage.optuna_rdb.RetryingRDBStorage`) is retried then, whole, with
exponential backoff and jitter, for at most ``TASKGRAPH_DB_RETRY_S`` seconds (default 60;
``0`` turns the retry off).  Each retry is logged.  Past the bound the call raises
:class:`DatabaseUnavailableError`: one line naming the database (password masked) and the
command that continues the study.

Only a lost or refused connection is retried: a SQLite error (disk full, read-only file), a
constraint violation or a syntax error would fail the same way again and is raised at once.
"""

from __future__ import annotations

import logging
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from taskgraph.errors import ConfigError, StorageError
from taskgraph.storage.urls import mask_secrets, mask_url

__all__ = [
    "DB_RETRY_ENV",
    "DEFAULT_RETRY_S",
    "DatabaseUnavailableError",
    "is_connection_error",
    "retry_window_s",
    "with_connection_retry",
]

_log = logging.getLogger(__name__)

T = TypeVar("T")

DB_RETRY_ENV = "TASKGRAPH_DB_RETRY_S"
DEFAULT_RETRY_S = 60.0
FIRST_DELAY_S = 0.25
MAX_DELAY_S = 5.0

# A call retried inside another (Optuna's get_all_trials calls _get_trials) is retried once,
# by the outermost: nested retries would multiply the bound.
_active = threading.local()

# Databases (their URL, as the caller names it) a call gave up on: later calls try once,
# without waiting out the bound again (a study shutting down after the error makes several),
# until one succeeds.
_given_up: dict[URL | str, float] = {}  # -> time.monotonic() the outage was first seen

# PostgreSQL SQLSTATEs of a connection that is gone or refused: class 08 (connection
# exception), 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now (starting
# up or shutting down).
_CONNECTION_SQLSTATES = ("57P01", "57P02", "57P03")


class DatabaseUnavailableError(StorageError):
    """The database server stayed unreachable for longer than the retry bound.

    ``reason`` says which database and why; the message ends with the command that continues
    ``study`` (``NAME`` until the application layer, which knows the study, names it) on
    ``url``, the database's URL with the password masked (the command then says so).
    """

    def __init__(self, reason: str, *, study: str | None = None, url: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.study = study
        self.url = url

    def __str__(self) -> str:
        from taskgraph.storage.urls import resume_command

        notes = f"retry bound: {DB_RETRY_ENV}"
        if self.url is not None and ":***@" in self.url:
            notes = f"password masked; {notes}"
        return (
            f"{self.reason}; nothing was half-written: start the database, then continue with "
            f"`{resume_command(self.study, self.url)}` ({notes})"
        )

    def for_study(self, study: str) -> DatabaseUnavailableError:
        """Return this error naming ``study`` in its resume command."""
        named = DatabaseUnavailableError(self.reason, study=study, url=self.url)
        named.__cause__ = self.__cause__
        return named


def retry_window_s() -> float:
    """Return how long a lost connection is retried (``TASKGRAPH_DB_RETRY_S``, seconds)."""
    raw = os.environ.get(DB_RETRY_ENV, "").strip()
    if not raw:
        return DEFAULT_RETRY_S
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value >= 0 or value == float("inf"):
        raise ConfigError(f"`{DB_RETRY_ENV}` must be a number of seconds >= 0, but got {raw!r}")
    return value


def is_connection_error(error: BaseException) -> bool:
    """Return True when ``error`` (or what caused it) is a lost or refused server connection."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DBAPIError):
            if current.connection_invalidated:
                return True
            if _is_driver_connection_error(current.orig):
                return True
        elif _is_driver_connection_error(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _is_driver_connection_error(error: object) -> bool:
    # psycopg is looked up, not imported: it is installed and loaded only for PostgreSQL URLs.
    psycopg = sys.modules.get("psycopg")
    if psycopg is None or not isinstance(error, psycopg.OperationalError):
        return False
    sqlstate = getattr(error, "sqlstate", None)
    # No SQLSTATE: the client library's own failure (connection refused, server closed the
    # connection unexpectedly, consuming input failed), never a statement's error.
    if sqlstate is None:
        return True
    return str(sqlstate).startswith("08") or sqlstate in _CONNECTION_SQLSTATES


def with_connection_retry(
    call: Callable[[], T], *, url: URL | str, what: str, window_s: float | None = None
) -> T:
    """Return ``call()``, retried while the database connection is lost, for a bounded time.

    ``call`` must be safe to run again after a lost connection (one transaction, idempotent
    or rolled back).  ``what`` names the operation in the log; ``window_s`` defaults to
    :func:`retry_window_s`.  Once a call gave up on a database, later calls on it try once
    until one succeeds: a study stopping after the error does not wait out the bound again.
    Raises :class:`DatabaseUnavailableError` once the bound is spent, and any other error at
    once.
    """
    if getattr(_active, "depth", 0):
        return call()
    window = retry_window_s() if window_s is None else window_s
    started = time.monotonic()
    if url in _given_up:
        window = 0.0
        started = _given_up[url]
    attempt = 0
    while True:
        try:
            _active.depth = 1
            try:
                result = call()
            finally:
                _active.depth = 0
            if _given_up:
                _given_up.pop(url, None)
            return result
        except Exception as error:
            if not is_connection_error(error):
                raise
            attempt += 1
            waited = time.monotonic() - started
            if waited >= window:
                _given_up.setdefault(url, started)
                raise DatabaseUnavailableError(
                    unavailable_message(url, error, waited), url=_masked(url)
                ) from error
            delay = min(MAX_DELAY_S, FIRST_DELAY_S * 2 ** (attempt - 1)) * (0.5 + random.random())
            # The last attempt is made at the bound, not before it.
            delay = min(delay, window - waited)
            _log.warning(
                "%s: database %s unreachable (%s); retry %d in %.1f s (giving up after %g s, %s)",
                what,
                _masked(url),
                _first_line(error),
                attempt,
                delay,
                window,
                DB_RETRY_ENV,
            )
            time.sleep(delay)


def unavailable_message(url: URL | str, error: BaseException, waited: float) -> str:
    """Return which database stayed unreachable, for how long, and the driver's last word."""
    return f"database {_masked(url)} unreachable for {waited:.0f} s ({_first_line(error)})"


def _masked(url: URL | str) -> str:
    return mask_url(url)


def _first_line(error: BaseException) -> str:
    # The driver's own words: Optuna wraps SQLAlchemy's error, which wraps psycopg's.
    driver: BaseException = error
    current: BaseException | None = error
    while current is not None:
        if isinstance(current, DBAPIError) and current.orig is not None:
            driver = current.orig
            break
        driver = current
        current = current.__cause__
    text = str(driver).strip()
    line = text.splitlines()[0] if text else type(driver).__name__
    return mask_secrets(line)
