"""A study's liveness lock: every driver holds it shared for its whole life, and ``study
delete`` refuses (exit 1) a study whose lock it cannot take exclusively.

A live driver holds no RUNNING trial between telling one trial and asking the next (its
records, progress, stopping checks and family baselines): the heartbeat check alone let a
delete through there, and the driver died on ``KeyError: 'Record does not exist.'``.  Each
test runs on SQLite (a ``flock`` beside the database) and PostgreSQL (a session-level
advisory lock).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from taskgraph.app.studies.running import build_engine
from taskgraph.app.studies.specs import load_study_spec
from taskgraph.app.studies.stored import delete_study
from taskgraph.cli.app import app
from taskgraph.errors import StorageError
from taskgraph.storage.locks import driver_lock_file, hold_driver_lock, no_driver


@pytest.fixture
def demo(tabular_demo: Path) -> Path:
    return tabular_demo  # tests/conftest.py


def engine_of(demo: Path, url: str, trials: int = 4):
    spec = load_study_spec(
        demo,
        {
            "runner": {"name": "tabular", "table": str(demo.parent / "tab.csv")},
            "budget.trials": trials,
        },
    )
    return build_engine(spec, storage_url=url)


def trial_count(url: str, name: str = "demo") -> int | None:
    storage = optuna.storages.RDBStorage(url, skip_table_creation=True)
    try:
        study_id = storage.get_study_id_from_name(name)
        return len(storage.get_all_trials(study_id, deepcopy=False))
    except KeyError:
        return None
    finally:
        storage.engine.dispose()


def test_delete_refuses_a_study_whose_driver_is_between_trials(storage_url, demo):
    engine = engine_of(demo, storage_url)
    try:
        engine.open()
        engine.run(max_trials=1)  # told and recorded; the next trial not asked: none RUNNING
        assert engine.progress().n_running == 0
        with pytest.raises(StorageError) as refused:
            delete_study("demo", storage=storage_url)
        message = str(refused.value)
        assert "study 'demo'" in message and "is being run by a driver" in message
        assert "\n" not in message
        assert trial_count(storage_url) == 1  # nothing deleted
        engine.run(max_trials=1)  # the driver goes on, its study whole
        assert engine.progress().n_done == 2
    finally:
        engine.close()
    # The driver closed: its lock went with it.
    deleted = delete_study("demo", storage=storage_url)
    assert deleted["optuna_trials"] == 2
    assert trial_count(storage_url) is None


def test_drivers_share_the_lock_and_every_one_holds_the_delete_off(storage_url, demo):
    engine = engine_of(demo, storage_url, trials=2)
    try:
        engine.open()
        engine.run()
    finally:
        engine.close()
    first = hold_driver_lock(storage_url, "demo")
    second = hold_driver_lock(storage_url, "demo")  # shared: it does not wait on the first
    with no_driver(storage_url, "other") as free:
        assert free  # a lock per study name
    first.release()
    with pytest.raises(StorageError, match="is being run by a driver"):
        delete_study("demo", storage=storage_url)
    second.release()
    second.release()  # idempotent
    assert delete_study("demo", storage=storage_url)["optuna_trials"] == 2


HOLDER = """
import sys, time
from taskgraph.storage.locks import hold_driver_lock
hold_driver_lock(sys.argv[1], "demo")
print("held", flush=True)
time.sleep(600)
"""


def test_a_killed_driver_holds_nothing(storage_url, demo):
    engine = engine_of(demo, storage_url, trials=2)
    try:
        engine.open()
        engine.run()
    finally:
        engine.close()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, storage_url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with no_driver(storage_url, "demo") as free:
            assert not free  # another process's hold
        code = CliRunner().invoke(
            app, ["study", "delete", "demo", "--storage", storage_url, "--yes"]
        )
        assert code.exit_code == 1
        assert code.stderr.count("\n") == 1 and code.stderr.startswith("error: study 'demo'")
        assert "is being run by a driver" in code.stderr
        assert trial_count(storage_url) == 2
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
    # The kernel drops a flock as the holder dies; the server ends a dead client's session
    # (and its locks) once it sees the socket closed: waited for, with a bound.
    deadline = time.monotonic() + 15
    while True:
        with no_driver(storage_url, "demo") as free:
            if free or time.monotonic() > deadline:
                break
        time.sleep(0.1)
    assert free
    assert delete_study("demo", storage=storage_url)["optuna_trials"] == 2


def test_the_lock_file_is_per_study_and_beside_the_database(sqlite_url):
    one, two = driver_lock_file(sqlite_url, "a/b"), driver_lock_file(sqlite_url, "a-b")
    assert one is not None and two is not None and one != two
    assert one.parent == Path(sqlite_url.removeprefix("sqlite:///")).parent
    assert one.name.startswith("records.db.driver-") and one.name.endswith(".lock")
    assert driver_lock_file("postgresql://u@h/db", "a") is None  # an advisory lock there
