"""Cluster faults: a Ray worker or driver killed, PostgreSQL restarted or down past the bound.

Each scenario runs one study of the synthetic tasks whose Ray workers train with the fake
evaluator (``python -m taskgraph.cli.fakes``), injects its fault and audits the records.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import (
    FAKES,
    Outcome,
    cluster_env,
    complete_trials,
    finish,
    judge,
    left_behind,
    one_error_line,
    report,
    start,
    taskgraph_run,
    trial_states,
    wait_until,
)
from .storage import disk_full, readonly_dir

CLUSTER_FAULTS = (
    "ray-worker",
    "ray-worker-spent",
    "ray-driver",
    "pg-restart",
    "pg-outage",
    "disk-full",
    "readonly-dir",
)


def write_ray_spec(
    path: Path, *, name: str, budget: int, seeds: int, max_retry: int, concurrent: int
) -> None:
    """A study of the synthetic tasks whose Ray workers train with the fake evaluator."""
    path.write_text(
        f"name: {name}\ntarget: synth_target\n"
        "candidates: [synth_related, synth_conflict, synth_unrelated]\n"
        "encoder: {name: tiny-bert, max_length: 32}\n"
        f"budget: {{trials: {budget}}}\nsampler: {{name: random, seed: 0}}\nseeds: {seeds}\n"
        f"recovery: {{heartbeat_interval: 1, grace_period: 3, max_retry: {max_retry}}}\n"
        f"runner: {{name: ray, num_cpus: 2, max_concurrent_trials: {concurrent}, "
        f"resources: {{cpu: 1}}, experiment_dir: {path.parent / 'tune'}}}\n"
    )


def training_worker(driver: subprocess.Popen[str]) -> int:
    """Return the pid of a Ray worker (below ``driver``) training a trial."""
    from taskgraph.testing import descendant_processes

    found: list[int] = []

    def training() -> bool:
        found[:] = [
            pid
            for pid, cmd in descendant_processes(driver.pid)
            if cmd.startswith("ray::ImplicitFunc.train")
        ]
        return bool(found)

    wait_until(training, driver, "a Ray worker training a trial")
    return found[0]


def ray_worker_kill(work: Path, *, budget: int, max_retry: int) -> Outcome:
    """``kill -9`` of the worker training trial 1 (the baseline is trial 0)."""
    fault = "ray-worker" if max_retry else "ray-worker-spent"
    name = fault.replace("-", "_")
    spec, url = work / f"{name}.yaml", f"sqlite:///{work / f'{name}.db'}"
    write_ray_spec(spec, name=name, budget=budget, seeds=1, max_retry=max_retry, concurrent=1)
    started = time.monotonic()
    driver = start(
        [*FAKES, "study", "run", str(spec), "--storage", url, "--quiet"],
        cluster_env((work / "ray").resolve()),
    )
    try:
        wait_until(lambda: trial_states(url).get(1) == "RUNNING", driver, "trial 1")
        worker = training_worker(driver)
        time.sleep(0.3)  # its first evaluation is 0.5 s in
        os.kill(worker, signal.SIGKILL)
    finally:
        finish(driver)
    detail = f"kill -9 of worker {worker} training trial 1; run exited {driver.returncode}"
    detail += f" after {time.monotonic() - started:.0f} s"
    return judge(
        fault,
        name,
        url,
        budget=budget,
        seeds=1,
        max_retry=max_retry,
        detail=detail,
        failed=0 if max_retry else 1,
        ok=driver.returncode == 0,
    )


def ray_driver_kill(work: Path, *, budget: int, rng: random.Random) -> Outcome:
    """``kill -9`` of the Ray driver while a trial trains, then ``study resume``."""
    name, seeds = "ray_driver", 2
    spec, url = work / f"{name}.yaml", f"sqlite:///{work / f'{name}.db'}"
    write_ray_spec(spec, name=name, budget=budget, seeds=seeds, max_retry=3, concurrent=2)
    after = rng.randint(1, max(1, budget - 2))
    driver = start(
        [*FAKES, "study", "run", str(spec), "--storage", url, "--quiet"],
        cluster_env((work / "ray").resolve()),
    )
    try:
        wait_until(lambda: complete_trials(url) >= after, driver, f"{after} complete trials")
        training_worker(driver)
        os.kill(driver.pid, signal.SIGKILL)
    finally:
        finish(driver)
    detail = f"kill -9 of the driver after {after} trials, a trial training, {left_behind(url)}"
    started = time.monotonic()
    resumed = taskgraph_run(
        ["study", "resume", name, "--storage", url, "--quiet"],
        cluster_env((work / "ray").resolve()),
        timeout=900,
    )
    detail += f"; resume exited {resumed.returncode} after {time.monotonic() - started:.0f} s"
    return judge(
        "ray-driver",
        name,
        url,
        budget=budget,
        seeds=seeds,
        max_retry=3,
        detail=detail,
        ok=resumed.returncode == 0,
    )


def pg_restart(work: Path, server: Any, *, budget: int, outage: float) -> Outcome:
    """PostgreSQL stopped for ``outage`` seconds under a running Ray study, then started."""
    name = "pg_restart"
    url = str(server.create_database(name))
    spec = work / f"{name}.yaml"
    write_ray_spec(spec, name=name, budget=budget, seeds=1, max_retry=3, concurrent=2)
    started = time.monotonic()
    driver = start(
        [*FAKES, "study", "run", str(spec), "--storage", url, "--quiet"],
        cluster_env((work / "ray").resolve(), TASKGRAPH_DB_RETRY_S="60"),
    )
    try:
        wait_until(lambda: complete_trials(url) >= 2, driver, "2 complete trials")
        server.halt()
        down = time.monotonic()
        time.sleep(outage)
        alive = driver.poll() is None
        server.restart()
        down = time.monotonic() - down
    finally:
        if getattr(server, "halted", False):
            server.restart()
        stderr = finish(driver)
    retries = sum("unreachable" in line and "retry" in line for line in stderr.splitlines())
    detail = (
        f"PostgreSQL down {down:.1f} s mid-study ({retries} retries logged, driver "
        f"{'waited' if alive else 'DIED'}); run exited {driver.returncode} after "
        f"{time.monotonic() - started:.0f} s"
    )
    if driver.returncode != 0:
        detail += f": {stderr.strip()[-300:]}"
    return judge(
        "pg-restart",
        name,
        url,
        budget=budget,
        seeds=1,
        max_retry=3,
        detail=detail,
        ok=alive and driver.returncode == 0,
    )


def pg_outage(work: Path, server: Any, *, budget: int, bound: float = 5) -> Outcome:
    """PostgreSQL down past ``TASKGRAPH_DB_RETRY_S`` under a Ray study: one error line, then
    ``study resume``."""
    name = "pg_outage"
    url = str(server.create_database(name))
    spec = work / f"{name}.yaml"
    write_ray_spec(spec, name=name, budget=budget, seeds=1, max_retry=3, concurrent=2)
    environment = cluster_env((work / "ray").resolve(), TASKGRAPH_DB_RETRY_S=f"{bound:g}")
    driver = start([*FAKES, "study", "run", str(spec), "--storage", url, "--quiet"], environment)
    try:
        wait_until(lambda: complete_trials(url) >= 2, driver, "2 complete trials")
        server.halt()
        down = time.monotonic()
        stderr = finish(driver, timeout=bound + 120)
        gave_up = time.monotonic() - down
    finally:
        if driver.poll() is None:
            driver.kill()
        server.restart()
    clear, lines = one_error_line(driver.returncode, stderr)
    clear = clear and f"taskgraph study resume {name}" in lines[0]
    detail = (
        f"PostgreSQL down past the {bound:g} s bound: exit {driver.returncode} after "
        f"{gave_up:.1f} s, {len(lines)} error line(s): {lines[0][:160] if lines else stderr[-200:]!r}"
    )
    resumed = taskgraph_run(["study", "resume", name, "--storage", url, "--quiet"], environment)
    detail += f"; resume exited {resumed.returncode}"
    return judge(
        "pg-outage",
        name,
        url,
        budget=budget,
        seeds=1,
        max_retry=3,
        detail=detail,
        ok=clear and resumed.returncode == 0,
    )


def run_cluster(
    faults: list[str], *, work: Path, table: Path, budget: int, rng: random.Random, outage: float
) -> list[Outcome]:
    server: Any = None
    if any(f.startswith("pg-") for f in faults):
        from taskgraph.storage.testing import start_postgres

        server = start_postgres()
    outcomes: list[Outcome] = []
    try:
        for fault in faults:
            directory = work / fault
            directory.mkdir()
            # Ray's socket paths must stay under 108 bytes: its own short directory in /tmp.
            ray_dir = Path(tempfile.mkdtemp(prefix="tgfi", dir="/tmp"))
            (directory / "ray").symlink_to(ray_dir)
            began = time.monotonic()
            try:
                if fault in ("ray-worker", "ray-worker-spent"):
                    outcome = ray_worker_kill(
                        directory, budget=budget, max_retry=1 if fault == "ray-worker" else 0
                    )
                elif fault == "ray-driver":
                    outcome = ray_driver_kill(directory, budget=budget, rng=rng)
                elif fault == "pg-restart":
                    outcome = pg_restart(directory, server, budget=budget, outage=outage)
                elif fault == "pg-outage":
                    outcome = pg_outage(directory, server, budget=budget)
                elif fault == "disk-full":
                    outcome = disk_full(directory, table, budget=4 * budget)
                else:
                    outcome = readonly_dir(directory, table, budget=budget)
            except RuntimeError as error:  # the fault could not be injected
                outcome = Outcome.not_injected(fault, str(error), max_retry=0)
            finally:
                stop_leftovers(ray_dir)
                shutil.rmtree(ray_dir, ignore_errors=True)
            outcomes.append(outcome)
            report(
                outcome,
                f"cluster  {fault:16s}",
                f"seeds={outcome.seeds} max_retry={outcome.max_retry} lost={outcome.lost} "
                f"duplicated={outcome.duplicated} {time.monotonic() - began:.0f} s  "
                f"{outcome.detail}",
            )
    finally:
        if server is not None:
            server.stop()
    return outcomes


def stop_leftovers(ray_dir: Path) -> None:
    """Stop by pid whatever a killed driver's Ray left running in ``ray_dir``."""
    from taskgraph.testing import processes_naming

    for pid in processes_naming(str(ray_dir)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
