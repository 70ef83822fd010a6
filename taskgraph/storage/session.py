"""Sessions: one context manager that commits, rolls back and re-raises as StorageError.

Writes go through :func:`run_write`, which retries a whole transaction when the backend
reports a transient lock conflict (SQLite "database is locked" after the busy timeout,
PostgreSQL serialization failure or deadlock), with exponential backoff and jitter, and while
the server's connection is lost, for a bounded time (:mod:`taskgraph.storage.retry`).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from taskgraph.errors import StorageError
from taskgraph.storage.engine import WRITE, describe_error, is_retryable
from taskgraph.storage.retry import with_connection_retry
from taskgraph.storage.urls import mask_url

__all__ = ["SessionFactory", "run_write"]

_log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_ATTEMPTS = 8
BASE_DELAY_S = 0.05


class SessionFactory:
    """Opens read and write sessions on one engine."""

    def __init__(self, *, engine: Engine) -> None:
        self.engine = engine
        self._read = sessionmaker(bind=engine, expire_on_commit=False)
        self._write = sessionmaker(
            bind=engine.execution_options(**{WRITE: True}), expire_on_commit=False
        )

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """Yield a session; commit on success, roll back and raise StorageError on failure."""
        session = (self._write if write else self._read)()
        try:
            yield session
            session.commit()
        except SQLAlchemyError as error:
            session.rollback()
            raise _StorageFailure(
                f"records database {mask_url(self.engine.url)}: {describe_error(error, self.engine.url)}",
                retryable=is_retryable(error),
            ) from error
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


class _StorageFailure(StorageError):
    """A StorageError that remembers whether retrying the transaction may succeed."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def run_write(factory: SessionFactory, work: Callable[[Session], T]) -> T:
    """Return ``work(session)`` run in one write transaction, retried on lock conflicts and,
    for a bounded time, while the database server is unreachable (``work`` is idempotent:
    a write whose answer was lost with the connection changes nothing when run again)."""
    return with_connection_retry(
        lambda: _write_once(factory, work), url=factory.engine.url, what="records write"
    )


def _write_once(factory: SessionFactory, work: Callable[[Session], T]) -> T:
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            with factory.session(write=True) as session:
                return work(session)
        except _StorageFailure as error:
            if not error.retryable or attempt == MAX_ATTEMPTS:
                raise
            delay = BASE_DELAY_S * 2 ** (attempt - 1) * (0.5 + random.random())
            _log.warning("transient lock conflict (attempt %d), retrying: %s", attempt, error)
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
