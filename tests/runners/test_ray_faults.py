"""Ray faults (issue 17): a worker killed mid-trial, the driver killed mid-study.

* ``kill -9`` of the Ray worker process training a trial: Tune starts the trial again
  (``recovery.max_retry`` times); a trial whose retries are spent too is recorded failed with
  Ray's reason.  The study finishes its budget; no record lost or counted twice.
* ``kill -9`` of the driver (``taskgraph study run --runner ray``), then ``taskgraph study
  resume``: the interrupted trials are failed and retried, the budget is finished exactly.

Each study is a real ``taskgraph study run`` subprocess (``python -m taskgraph.cli.fakes``:
its Ray workers train with the fake evaluator, 1.5 s per trial) on its own local Ray
(``address="local"``, 2 CPUs) in a temporary directory of its own (``RAY_TMPDIR``); what is
left of that Ray after a kill is found by that directory and stopped by pid.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskgraph.testing import audit_study, descendant_processes, processes_naming, trial_states

pytestmark = pytest.mark.ray

REPO = Path(__file__).resolve().parents[2]
TASKGRAPH = [sys.executable, "-m", "taskgraph.cli.fakes"]


def write_spec(path: Path, name: str, *, budget: int, max_retry: int, concurrent: int) -> Path:
    spec = path / f"{name}.yaml"
    spec.write_text(
        f"name: {name}\ntarget: synth_target\n"
        "candidates: [synth_related, synth_conflict, synth_unrelated]\n"
        "encoder: {name: tiny-bert, max_length: 32}\n"
        f"budget: {{trials: {budget}}}\nsampler: {{name: random, seed: 0}}\n"
        f"recovery: {{heartbeat_interval: 1, grace_period: 3, max_retry: {max_retry}}}\n"
        f"runner: {{name: ray, num_cpus: 2, max_concurrent_trials: {concurrent}, "
        f"resources: {{cpu: 1}}, experiment_dir: {path / 'tune'}}}\n"
    )
    return spec


@pytest.fixture
def ray_dir() -> Iterator[Path]:
    """A short temporary directory for one local Ray (socket paths stay under 108 bytes);
    whatever Ray left running there is stopped by pid at the end."""
    root = Path(tempfile.mkdtemp(prefix="tgrayf", dir="/tmp"))
    try:
        yield root
    finally:
        for pid in processes_naming(str(root)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        subprocess.run(["rm", "-rf", str(root)], check=False)


def env(ray_dir: Path) -> dict[str, str]:
    environment = {
        k: v for k, v in os.environ.items() if k not in ("TASKGRAPH_STORAGE", "RAY_ADDRESS")
    }
    paths = [str(REPO), *filter(None, environment.get("PYTHONPATH", "").split(os.pathsep))]
    environment.update(
        PYTHONPATH=os.pathsep.join(paths),
        RAY_TMPDIR=str(ray_dir),
        RAY_AUTH_MODE="disabled",
        RAY_USAGE_STATS_ENABLED="0",
        RAY_AIR_NEW_OUTPUT="0",
        HF_HUB_OFFLINE="1",
    )
    return environment


def training_worker(driver: subprocess.Popen[str], timeout: float = 240) -> int:
    """Return the pid of a Ray worker below ``driver`` that is training a trial."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert driver.poll() is None, f"the study ended first: {driver.communicate()}"
        for pid, cmd in descendant_processes(driver.pid):
            if cmd.startswith("ray::ImplicitFunc.train"):
                return pid
        time.sleep(0.1)
    raise AssertionError(f"no Ray worker trained a trial within {timeout} s")


def test_a_killed_ray_worker_is_retried_then_recorded_failed_with_the_reason(
    tmp_path: Path, ray_dir: Path
) -> None:
    budget = 4
    url = f"sqlite:///{tmp_path / 'workers.db'}"
    spec = write_spec(tmp_path, "workers", budget=budget, max_retry=1, concurrent=1)
    driver = subprocess.Popen(
        [*TASKGRAPH, "study", "run", str(spec), "--storage", url, "--quiet"],
        cwd=REPO,
        env=env(ray_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Trial 1 (after the baseline) is killed twice: once retried, then recorded failed.
        deadline = time.monotonic() + 240
        while trial_states(url).get(1) != "RUNNING":
            assert driver.poll() is None and time.monotonic() < deadline, driver.communicate()
            time.sleep(0.1)
        for _ in range(2):
            worker = training_worker(driver)
            time.sleep(0.3)  # mid-trial: its first evaluation is 0.5 s in
            assert trial_states(url).get(1) == "RUNNING"
            os.kill(worker, signal.SIGKILL)
            while any(pid == worker for pid, _ in descendant_processes(driver.pid)):
                time.sleep(0.05)
        _, err = driver.communicate(timeout=300)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert driver.returncode == 0, err
    audit = audit_study("workers", url, seeds=1)
    assert (audit.lost, audit.duplicated) == (0, 0), audit
    # One failed trial, not two: the first kill was retried.
    assert audit.states == {"complete": budget - 1, "failed": 1}, audit
    assert trial_states(url)[1] == "FAIL"
    (reason,) = audit.failure_reasons
    assert reason.startswith("Ray trial error: ") and "worker process has died" in reason, reason


def test_a_killed_ray_driver_resumes_with_nothing_lost_or_counted_twice(
    tmp_path: Path, ray_dir: Path
) -> None:
    budget = 5
    url = f"sqlite:///{tmp_path / 'driver.db'}"
    spec = write_spec(tmp_path, "driver", budget=budget, max_retry=3, concurrent=2)
    driver = subprocess.Popen(
        [*TASKGRAPH, "study", "run", str(spec), "--storage", url, "--quiet"],
        cwd=REPO,
        env=env(ray_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while "COMPLETE" not in trial_states(url).values():
            assert driver.poll() is None and time.monotonic() < deadline, driver.communicate()
            time.sleep(0.1)
        training_worker(driver)  # a trial is mid-training
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    left = trial_states(url)
    assert "RUNNING" in left.values() and sum(s != "RUNNING" for s in left.values()) < budget, left

    resumed = subprocess.run(
        [*TASKGRAPH, "study", "resume", "driver", "--storage", url, "--quiet"],
        cwd=REPO,
        env=env(ray_dir),
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    audit = audit_study("driver", url, seeds=1)
    assert (audit.lost, audit.duplicated) == (0, 0), audit
    assert audit.states.get("complete") == budget and audit.counted == budget, audit
    assert audit.states.get("interrupted", 0) >= 1, audit
    assert not audit.states.get("running"), audit


def test_a_database_gone_under_tune_is_raised_as_itself() -> None:
    """Tune may wrap what its searcher raised; the runner re-raises the database's one-line
    error (the command line shows it as such, not a traceback)."""
    from taskgraph.runners.ray.runner import _database_unavailable
    from taskgraph.storage.retry import DatabaseUnavailableError

    gone = DatabaseUnavailableError("database postgresql+psycopg://db/x unreachable for 60 s")
    try:
        try:
            raise gone
        except DatabaseUnavailableError as error:
            raise RuntimeError("Tune: the searcher failed") from error
    except RuntimeError as wrapped:
        assert _database_unavailable(wrapped) is gone
    assert _database_unavailable(RuntimeError("another failure")) is None
