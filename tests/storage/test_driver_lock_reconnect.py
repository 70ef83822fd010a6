"""A driver keeps its PostgreSQL liveness lock when the lock's connection drops.

The lock (a session-level advisory lock, :func:`taskgraph.storage.locks.hold_driver_lock`)
goes with its connection: a server restart, an idle or proxy timeout, ``pg_terminate_backend``.
The driver's heartbeat thread (:class:`~taskgraph.search.heartbeat.Heartbeat`, as the local
loop and the Ray driver start it) and the check before each new trial find the connection
gone and take the lock again, so ``study delete`` is refused again within one beat; a delete
that got in first makes the driver stop with one ``StudyVanishedError`` line.  SQLite's
``flock`` cannot drop: keeping it does nothing.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy

from taskgraph.app.studies.running import build_engine
from taskgraph.app.studies.specs import load_study_spec
from taskgraph.app.studies.stored import delete_study
from taskgraph.errors import StorageError
from taskgraph.search.engine import StudyEngine, StudyVanishedError
from taskgraph.search.heartbeat import Heartbeat
from taskgraph.storage.locks import hold_driver_lock, no_driver
from taskgraph.storage.testing import PostgresServer

BEAT_S = 0.5


@pytest.fixture
def demo(tabular_demo: Path) -> Path:
    return tabular_demo  # tests/conftest.py


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> str:
    import uuid

    return postgres_server.create_database(f"t_{uuid.uuid4().hex[:16]}")


def engine_of(demo: Path, url: str, trials: int = 4) -> StudyEngine:
    spec = load_study_spec(
        demo,
        {
            "runner": {"name": "tabular", "table": str(demo.parent / "tab.csv")},
            "budget.trials": trials,
        },
    )
    return build_engine(spec, storage_url=url)


def share_holders(url: str) -> list[int]:
    """Return the backends holding a shared advisory lock in ``url``'s database (a driver's)."""
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sqlalchemy.text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND mode = 'ShareLock' "
                    "AND granted AND database = (SELECT oid FROM pg_database "
                    "WHERE datname = current_database())"
                )
            )
            return sorted(row[0] for row in rows)
    finally:
        engine.dispose()


def terminate(url: str, pids: list[int]) -> None:
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            for pid in pids:
                assert connection.execute(
                    sqlalchemy.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}
                ).scalar()
    finally:
        engine.dispose()
    deadline = time.monotonic() + 10
    while set(share_holders(url)) & set(pids):  # the server ends the session
        assert time.monotonic() < deadline, "pg_terminate_backend did not end the session"
        time.sleep(0.05)


def wait_for_holder(url: str, *, not_in: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        holders = share_holders(url)
        if holders and not set(holders) & set(not_in):
            return holders
        if time.monotonic() > deadline:
            return holders
        time.sleep(0.05)


@pytest.mark.postgres
def test_a_terminated_lock_connection_is_taken_again_within_a_beat(pg_url, demo):
    engine = engine_of(demo, pg_url)
    try:
        engine.open()
        engine.run(max_trials=1)
        (old,) = share_holders(pg_url)
        # The heartbeat as the local loop and the Ray driver run it, on the engine's storage.
        with Heartbeat(storage=engine.storage, interval=BEAT_S):
            terminate(pg_url, [old])
            # Within one beat (and some slack for a loaded machine) the lock is held again.
            holders = wait_for_holder(pg_url, not_in=[old], timeout=BEAT_S + 5)
            assert len(holders) == 1 and holders != [old], holders
            with pytest.raises(StorageError, match="is being run by a driver") as refused:
                delete_study("demo", storage=pg_url)
            assert "\n" not in str(refused.value)
        engine.run(max_trials=1)  # the driver goes on, its study whole
        assert engine.progress().n_done == 2
    finally:
        engine.close()
    assert share_holders(pg_url) == []  # the driver closed: its connection with it
    assert delete_study("demo", storage=pg_url)["optuna_trials"] == 2


@pytest.mark.postgres
def test_a_delete_holding_the_lock_makes_the_driver_stop_as_vanished(pg_url, demo):
    engine = engine_of(demo, pg_url)
    try:
        engine.open()
        engine.run(max_trials=1)
        with Heartbeat(storage=engine.storage, interval=BEAT_S):
            terminate(pg_url, share_holders(pg_url))
            # A `study delete` got in before the next beat: it holds the lock exclusively.
            with no_driver(pg_url, "demo") as free:
                assert free
                time.sleep(3 * BEAT_S)  # beats that find the lock held by the delete
                assert share_holders(pg_url) == []  # the driver did not take it shared
        # Before the next trial is asked, the driver stops with its one error line.
        with pytest.raises(StudyVanishedError) as vanished:
            engine.run(max_trials=1)
        message = str(vanished.value)
        assert "study 'demo'" in message and "was deleted while this driver ran it" in message
        assert "liveness lock was down with its PostgreSQL connection" in message
        assert "\n" not in message
        assert engine.progress().n_done == 1  # no trial asked
        with pytest.raises(StudyVanishedError):
            engine.keep_driver_lock()  # lost for good
    finally:
        engine.close()


@pytest.mark.postgres
def test_a_delete_that_went_through_is_found_when_the_lock_is_taken_again(pg_url, demo):
    engine = engine_of(demo, pg_url)
    try:
        engine.open()
        engine.run(max_trials=1)
        terminate(pg_url, share_holders(pg_url))
        # The window before the next beat: the driver holds nothing, the delete goes through.
        assert delete_study("demo", storage=pg_url)["optuna_trials"] == 1
        with pytest.raises(StudyVanishedError, match="liveness lock was down"):
            engine.keep_driver_lock()  # taken again, on a study that is gone
        assert engine.vanished_error() is not None
    finally:
        engine.close()
    assert share_holders(pg_url) == []


@pytest.mark.postgres
def test_the_lock_itself_reports_a_delete_holding_it(pg_url):
    from taskgraph.storage.locks import DriverLockLostError

    lock = hold_driver_lock(pg_url, "demo")
    try:
        assert lock.keep() is False  # held: nothing to do
        (pid,) = share_holders(pg_url)
        terminate(pg_url, [pid])
        with no_driver(pg_url, "demo") as free:
            assert free
            with pytest.raises(DriverLockLostError, match="study 'demo'") as lost:
                lock.keep()
            assert "`study delete` took it" in str(lost.value)
        with pytest.raises(DriverLockLostError):
            lock.keep()  # every call after, though the delete is done
    finally:
        lock.release()
    lock.release()  # idempotent
    assert lock.keep() is False  # released: nothing to keep


def test_a_sqlite_lock_cannot_drop(tmp_path):
    url = f"sqlite:///{tmp_path / 'records.db'}"
    lock = hold_driver_lock(url, "demo")
    try:
        assert lock.keep() is False
        with no_driver(url, "demo") as free:
            assert not free
    finally:
        lock.release()


# -- a server restart ---------------------------------------------------------------------


@pytest.mark.postgres
def test_the_lock_is_taken_again_after_a_server_restart(own_postgres: PostgresServer):
    url = own_postgres.create_database("restart_lock")
    lock = hold_driver_lock(url, "demo")
    try:
        assert len(share_holders(url)) == 1
        own_postgres.halt()
        try:
            started = time.monotonic()
            assert lock.keep() is False  # the server is away: tried again at the next call
            assert time.monotonic() - started < 10  # the connect does not hang the heartbeat
        finally:
            own_postgres.restart()
        deadline = time.monotonic() + 30
        while not lock.keep():  # the server accepts connections again
            assert time.monotonic() < deadline, "the lock was not taken again"
            time.sleep(0.2)
        assert len(share_holders(url)) == 1
        with no_driver(url, "demo") as free:
            assert not free  # `study delete` is refused again
        assert lock.keep() is False  # held
    finally:
        if own_postgres.halted:
            own_postgres.restart()
        lock.release()
    assert share_holders(url) == []
