"""``study delete`` right after its driver was killed, and of a name that is no study.

A killed driver holds nothing (:mod:`taskgraph.storage.locks`): once ``study delete`` has the
study's liveness lock, the trial the dead driver left RUNNING, its heartbeat still fresh, does
not hold the delete up.  A name that is no study is refused before any lock file is made.
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

from taskgraph.app.studies.stored import delete_study
from taskgraph.cli.app import app
from taskgraph.storage.locks import driver_lock_file, lock_file
from taskgraph.testing import TRIAL_SECONDS_ENV, optuna_trial_counts

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def run_demo(demo: Path, url: str, *args: str) -> None:
    code, _, err = invoke(
        "study", "run", str(demo), "--runner", "tabular", "--set", "runner.table=tab.csv",
        "--storage", url, "-q", *args,
    )  # fmt: skip
    assert code == 0, err


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed")
def test_a_dead_drivers_trial_with_a_fresh_heartbeat_does_not_hold_the_delete(
    tabular_demo: Path,
) -> None:
    url = f"sqlite:///{tabular_demo.parent / 'd.db'}"
    run_demo(tabular_demo, url, "--trials", "2")
    run_demo(tabular_demo, url, "--trials", "1", "--set", "name=other")
    # What a driver killed mid-trial leaves: a RUNNING trial that beat a moment ago, and no
    # one holding the study's liveness lock.
    storage = optuna.storages.RDBStorage(url, heartbeat_interval=10, grace_period=30)
    trial = optuna.load_study(study_name="demo", storage=storage).ask()
    storage.record_heartbeat(trial._trial_id)
    storage.engine.dispose()

    code, out, err = invoke("study", "delete", "demo", "--storage", url, "--yes")

    assert code == 0, err
    assert "deleted study 'demo'" in out and "3 Optuna trial(s)" in out
    assert optuna_trial_counts(url) == {"other": 1}


def test_delete_right_after_a_kill_9_of_the_driver_goes_through(tabular_demo: Path) -> None:
    db = tabular_demo.parent / "d.db"
    url = f"sqlite:///{db}"
    env = {**os.environ, TRIAL_SECONDS_ENV: "60"}  # the first trial runs until it is killed
    driver = subprocess.Popen(
        [
            sys.executable, "-m", "taskgraph.cli.fakes", "study", "run", str(tabular_demo),
            "--runner", "tabular", "--set", "runner.table=tab.csv", "--storage", url,
            "--trials", "2", "-q",
        ],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert driver.poll() is None, "the driver ended before its first trial ran"
            assert time.monotonic() < deadline, "no trial ran within 60 s"
            if db.exists() and _beating(url):
                break
            time.sleep(0.1)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)

    deleted = delete_study("demo", storage=url)  # at once: the heartbeat is seconds old

    assert deleted["name"] == "demo" and deleted["optuna_trials"] == 1
    assert optuna_trial_counts(url) == {}


def _beating(url: str) -> bool:
    """Whether study demo has a RUNNING trial with a heartbeat recorded (read-only)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            row = connection.execute(
                text(
                    "SELECT count(*) FROM trials JOIN studies USING (study_id) "
                    "JOIN trial_heartbeats USING (trial_id) "
                    "WHERE studies.study_name = 'demo' AND trials.state = 'RUNNING'"
                )
            ).scalar()
        return bool(row)
    except Exception:  # the driver has not made the tables yet
        return False
    finally:
        engine.dispose()


def test_deleting_no_study_leaves_no_lock_file(tabular_demo: Path) -> None:
    folder = tabular_demo.parent
    url = f"sqlite:///{folder / 'd.db'}"
    code, _, err = invoke("db", "upgrade", "--storage", url)
    assert code == 0, err
    before = sorted(p.name for p in folder.iterdir())

    code, _, err = invoke("study", "delete", "nosuch", "--storage", url, "--yes")

    assert code == 2
    assert err.strip() == f"error: no study 'nosuch' in {url}; known studies: (none)"
    assert sorted(p.name for p in folder.iterdir()) == before
    assert not lock_file(url).exists()  # type: ignore[union-attr]
    assert not driver_lock_file(url, "nosuch").exists()  # type: ignore[union-attr]


def test_deleting_no_study_beside_one_leaves_no_lock_file_for_that_name(tabular_demo: Path) -> None:
    url = f"sqlite:///{tabular_demo.parent / 'd.db'}"
    run_demo(tabular_demo, url, "--trials", "1")
    nosuch = driver_lock_file(url, "nosuch")
    assert nosuch is not None and not nosuch.exists()

    code, _, err = invoke("study", "delete", "nosuch", "--storage", url, "--yes")

    assert code == 2
    assert err.strip() == f"error: no study 'nosuch' in {url}; known studies: demo"
    assert not nosuch.exists()
    assert optuna_trial_counts(url) == {"demo": 1}
