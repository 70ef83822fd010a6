"""The repository's read connection: what every query of the records database shares.

:class:`RepositoryReader` is the base of the repository's query mixins
(:mod:`~taskgraph.storage.run_queries`, :mod:`~taskgraph.storage.record_reads`,
:mod:`~taskgraph.storage.screen_reads`, :mod:`~taskgraph.storage.run_export`): the state
:class:`~taskgraph.storage.repository.Repository` sets up (its engine, session factory and the
caches of names that never change), the masked URL, :meth:`~RepositoryReader._reading` (a
connection whose driver errors become one masked :class:`~taskgraph.errors.StorageError`) and
:meth:`~RepositoryReader._lookups` (task set keys and study names by id, cached).  Each query
is decorated with :func:`retried_read`: run again, whole, while the server's connection is
lost, for the bound of :mod:`taskgraph.storage.retry` (as the writes are by
:func:`~taskgraph.storage.session.run_write`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import SQLAlchemyError

from taskgraph.errors import StorageError
from taskgraph.storage.engine import describe_error
from taskgraph.storage.retry import with_connection_retry
from taskgraph.storage.schema import (
    StudyRow,
    TaskSetRow,
)
from taskgraph.storage.session import SessionFactory
from taskgraph.storage.urls import mask_url

__all__ = ["RepositoryReader", "retried_read"]

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound="RepositoryReader")


def retried_read(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Return ``method`` (a read of the records database) run whole, again, while the server's
    connection is lost, for a bounded time (:func:`~taskgraph.storage.retry.with_connection_retry`,
    logged as ``records <method>``); past the bound it raises
    :class:`~taskgraph.storage.retry.DatabaseUnavailableError`.  A read changes nothing, so
    running it again is safe."""

    @functools.wraps(method)
    def call(self: S, *args: P.args, **kwargs: P.kwargs) -> R:
        return with_connection_retry(
            lambda: method(self, *args, **kwargs),
            url=self.engine.url,
            what=f"records {method.__name__}",
        )

    return call


class RepositoryReader:
    """The state and the read connection of :class:`~taskgraph.storage.repository.Repository`
    (set up by its constructor), shared by its query mixins."""

    engine: Engine
    _factory: SessionFactory
    _task_set_keys: dict[int, str]
    _study_names: dict[int, str]

    @property
    def url(self) -> str:
        """Return the database URL with the password masked."""
        return mask_url(self.engine.url)

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """Yield a connection for reads; driver errors become a masked StorageError.

        On PostgreSQL it runs in autocommit: no BEGIN and ROLLBACK round trips around
        queries whose rows (immutable once written) need no snapshot spanning statements.
        """
        dbapi_error = self.engine.dialect.loaded_dbapi.Error
        try:
            with self.engine.connect() as connection:
                if self.engine.dialect.name == "postgresql":
                    connection = connection.execution_options(isolation_level="AUTOCOMMIT")
                yield connection
        except (SQLAlchemyError, dbapi_error) as error:
            raise StorageError(
                f"reading {self.url} failed: {describe_error(error, self.engine.url)}"
            ) from error

    def _lookups(
        self, connection: Connection, task_set_ids: set[int], study_ids: set[int]
    ) -> tuple[dict[int, str], dict[int, str]]:
        """Return (task set id -> key, study id -> name), caching what never changes."""
        missing = [i for i in task_set_ids if i not in self._task_set_keys]
        if missing:
            query = select(TaskSetRow.id, TaskSetRow.key)
            if len(missing) <= 100:  # else one pass over the (small) table is cheaper
                query = query.where(TaskSetRow.id.in_(missing))
            self._task_set_keys.update({int(i): key for i, key in connection.execute(query)})
        if study_ids - self._study_names.keys():
            found = connection.execute(select(StudyRow.id, StudyRow.name))
            self._study_names.update({int(i): name for i, name in found})
        return self._task_set_keys, self._study_names
