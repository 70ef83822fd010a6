"""PostgreSQL-only paths of :mod:`taskgraph.storage.migrate` that a mutation audit left alive.

The migration lock (``pg_advisory_xact_lock`` in ``_locked``): an opener that finds a brand-new
database empty while another opener's schema is being created waits for that schema, then
finds it at head; it never runs the migrations a second time (PostgreSQL then refuses the
second ``CREATE TABLE``: ``duplicate key … pg_type_typname_nsp_index``).  The lock goes with
the transaction, so a migration on one engine never waits for another engine's pooled
connection; and its key is not the setup lock's, so a migration never waits for the setup lock
of its own process.  And only a database name the server does not have is the user's
(``NotFoundError``, exit 2); a role it does not have is a refused login, as a wrong password is.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy
from alembic import command

from taskgraph.errors import NotFoundError, StorageError
from taskgraph.storage import VERSION_TABLE, head_revision, migrate, open_repository
from taskgraph.storage.locks import setup_lock
from taskgraph.storage.repository import open_engine
from taskgraph.storage.testing import PostgresServer

pytestmark = pytest.mark.postgres

# Bounds of the waits below; the clean code needs well under a second for each.
WAIT_S = 15.0


def new_database(server: PostgresServer) -> tuple[str, str]:
    """Return the name and URL of a new, empty database on ``server``."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    return name, server.create_database(name)


def in_thread(work: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Return a started thread running ``work`` and the dict its result or error lands in."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = work()
        except BaseException as error:  # handed to the test, which asserts on it
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def lock_waiters(url: str, database: str) -> int:
    """Return how many backends of ``database`` wait for a lock (advisory, row or transaction)."""
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    sqlalchemy.text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = :name AND wait_event_type = 'Lock'"
                    ),
                    {"name": database},
                ).scalar_one()
            )
    finally:
        engine.dispose()


def revision_after_opening(url: str) -> str | None:
    """Return the schema revision of ``url``'s database once a repository has opened it."""
    with open_repository(url) as repository, repository.engine.connect() as connection:
        return migrate.schema_state(connection).current


def version_rows(url: str) -> int:
    """Return the number of rows of taskgraph's version table in ``url``'s database."""
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            return int(
                connection.exec_driver_sql(f"SELECT count(*) FROM {VERSION_TABLE}").scalar_one()
            )
    finally:
        engine.dispose()


def test_an_opener_racing_a_migration_waits_for_it_and_finds_the_schema_at_head(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The race made certain: the first migration stops after creating every table, before its
    # commit, until the second opener is seen waiting on a lock; only then does it commit.
    # Without the migration lock the second opener, which found the database empty, waits on
    # the first one's uncommitted CREATE TABLE and then fails with a duplicate key.
    name, url = new_database(postgres_server)
    created, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def upgrade_then_hold(config: Any, revision: str) -> None:
        command.upgrade(config, revision)
        calls.append(revision)
        if len(calls) == 1:  # the first migration only
            created.set()
            release.wait(timeout=WAIT_S)

    monkeypatch.setattr(migrate, "command", SimpleNamespace(upgrade=upgrade_then_hold))
    # Kept open until both are done: a lock that outlived the transaction would stay with
    # this engine's pooled connection and keep the second opener waiting.
    first_engine = open_engine(url)
    second: tuple[threading.Thread, dict[str, Any]] | None = None
    try:
        first, first_outcome = in_thread(lambda: migrate.upgrade(first_engine))
        assert created.wait(timeout=WAIT_S), first_outcome
        second = in_thread(lambda: revision_after_opening(url))
        deadline = time.monotonic() + WAIT_S
        while lock_waiters(url, name) == 0 and second[0].is_alive():
            assert time.monotonic() < deadline, "the second opener never waited on a lock"
            time.sleep(0.02)
        assert second[0].is_alive(), second[1]  # it waited, it did not go ahead
        release.set()
        first.join(timeout=WAIT_S)
        assert first_outcome == {"result": (None, head_revision())}
        second[0].join(timeout=WAIT_S)
        assert not second[0].is_alive(), "the second opener still waits after the commit"
        assert second[1] == {"result": head_revision()}
    finally:
        release.set()
        first_engine.dispose()
        if second is not None:
            second[0].join(timeout=WAIT_S)
    assert version_rows(url) == 1


def test_a_migration_under_the_setup_lock_of_its_own_process_does_not_wait_for_it(
    postgres_server: PostgresServer,
) -> None:
    # The setup lock is a session-level advisory lock on a connection of its own; a migration
    # lock with the same key would wait for it forever, the waiter being its own holder.
    _, url = new_database(postgres_server)
    with setup_lock(url):
        thread, outcome = in_thread(lambda: revision_after_opening(url))
        thread.join(timeout=WAIT_S)
        waited = thread.is_alive()
    thread.join(timeout=WAIT_S)  # released with the setup lock, if it waited
    assert not waited, "the migration waited for the setup lock held by its own process"
    assert outcome == {"result": head_revision()}


def test_a_role_the_server_does_not_have_is_a_refused_login_not_a_missing_database(
    postgres_server: PostgresServer,
) -> None:
    # FATAL: role "…" does not exist reads much like a missing database; it is not one.
    url = sqlalchemy.engine.make_url(postgres_server.url)
    stranger = url.set(username="taskgraph_no_such_role").render_as_string(hide_password=False)
    with pytest.raises(StorageError, match='role "taskgraph_no_such_role" does not exist') as error:
        open_repository(stranger)
    assert not isinstance(error.value, NotFoundError)
    assert error.value.exit_code == 1
