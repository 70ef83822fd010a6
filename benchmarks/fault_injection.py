"""Fault injection: kill `taskgraph study run` at random points, `study resume`, count every record.

For each backend (SQLite, and PostgreSQL on a throwaway server started here and stopped at the
end), N studies each get one fault at a random point:

* ``kill -9``: the driver (a real ``taskgraph study run`` subprocess) is sent SIGKILL after a
  random number of its trials finished plus a random delay;
* a simulated crash (:mod:`taskgraph.search.crashpoints`): the driver ends itself with
  ``os._exit`` the k-th time it reaches a random point of a trial's sequence (after ``ask``,
  before training, between storing the runs and telling, between telling and the records,
  between two records, inside a record's transaction).

Studies alternate ``seeds: 1`` and ``seeds: 2`` and ``recovery.max_retry`` 3 and 0.  Trials are
answered by the ``tabular`` runner from a synthetic table (milliseconds per trial, so the
faults land in the engine's own sequence, not in training).  After the fault,
``taskgraph study resume`` finishes the study; then every (trial, seed) that should exist is
counted: one record per seed of every trial that counts against the budget.  A record is lost
when it is missing, or when a killed trial's runs were stored on it and no retry recorded them;
duplicated when a (trial, seed) has two records or a record belongs to no counted trial.

Then the cluster faults (``--cluster``, one study each; ``python -m taskgraph.cli.fakes``
runs the CLI with the fake evaluator in the Ray workers and ``TASKGRAPH_TEST_TRIAL_S`` per
tabular trial):

* ``ray-worker``: ``kill -9`` of the Ray worker process training a trial (``max_retry`` 1):
  Tune starts the trial again, the study finishes its budget with every trial complete;
* ``ray-worker-spent``: the same with ``max_retry`` 0: the trial is recorded failed with Ray's
  reason and the study still finishes its budget;
* ``ray-driver``: ``kill -9`` of the Ray driver with a trial training (2 at a time, 2 seeds),
  then ``taskgraph study resume``;
* ``pg-restart``: PostgreSQL stopped (fast shutdown) under a Ray study for ``--outage``
  seconds and started again: the study rides it out (``TASKGRAPH_DB_RETRY_S`` 60);
* ``pg-outage``: PostgreSQL stopped under a Ray study for longer than
  ``TASKGRAPH_DB_RETRY_S`` (5): one ``error:`` line and exit 1, then the server is started and
  ``study resume`` finishes;
* ``disk-full``: the SQLite file on a small tmpfs filled up mid-study (a file-size limit,
  ``RLIMIT_FSIZE``, where no tmpfs can be mounted): one ``error:`` line, ``taskgraph db
  check`` passes, and ``study resume`` finishes once space is freed;
* ``readonly-dir``: the SQLite file's directory read-only (a tmpfs remounted read-only, or
  ``chmod 555`` for a non-root user): one ``error:`` line, then as above.

Ends with ``faults_injected``, ``studies_completed``, ``records_lost`` and
``records_duplicated`` lines (all backends and cluster faults together).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy

from taskgraph.search.crashpoints import CRASH_EXIT, POINTS
from taskgraph.testing import trial_states

REPO = Path(__file__).resolve().parents[1]
TASKGRAPH = [sys.executable, "-m", "taskgraph.cli.app"]
FAKES = [sys.executable, "-m", "taskgraph.cli.fakes"]
CLUSTER_FAULTS = (
    "ray-worker",
    "ray-worker-spent",
    "ray-driver",
    "pg-restart",
    "pg-outage",
    "disk-full",
    "readonly-dir",
)
CANDIDATES = {"b": 0.10, "c": -0.05, "d": 0.02, "e": -0.20}


@dataclass(kw_only=True)
class Outcome:
    """One study's fault and what the resume left."""

    backend: str
    fault: str
    seeds: int
    max_retry: int
    injected: bool
    completed: bool
    expected: int
    lost: int
    duplicated: int
    detail: str = ""


def write_table(path: Path) -> None:
    """Write target `a`'s score for every subset of the candidates (additive effects)."""
    lines = ["target,task_set,split,value,higher_is_better"]
    for size in range(len(CANDIDATES) + 1):
        for subset in itertools.combinations(sorted(CANDIDATES), size):
            score = 0.5 + sum(CANDIDATES[t] for t in subset)
            key = "+".join(["a", *subset])
            lines.append(f"a,{key},val,{score:.4f},1")
            lines.append(f"a,{key},test,{score - 0.01:.4f},1")
    path.write_text("\n".join(lines) + "\n")


def write_spec(
    path: Path, *, name: str, table: Path, budget: int, seeds: int, max_retry: int, seed: int
) -> None:
    path.write_text(
        f"name: {name}\ntarget: a\ncandidates: [{', '.join(sorted(CANDIDATES))}]\n"
        "objective: {metric: score, split: dev, direction: maximize}\n"
        f"sampler: {{name: random, seed: {seed}}}\npruner: none\nseeds: {seeds}\n"
        f"budget: {{trials: {budget}}}\n"
        f"recovery: {{heartbeat_interval: 1, grace_period: 2, max_retry: {max_retry}}}\n"
        f"runner: {{name: tabular, table: {table}, split: val}}\n"
    )


def env() -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k != "TASKGRAPH_STORAGE"}
    # The subprocesses import this checkout's taskgraph, as the benchmark does.
    paths = [str(REPO), *filter(None, environment.get("PYTHONPATH", "").split(os.pathsep))]
    environment["PYTHONPATH"] = os.pathsep.join(paths)
    return environment


def finished_trials(engine: sqlalchemy.Engine) -> int:
    """Return how many trials are finished (-1 while Optuna's tables do not exist yet)."""
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    sqlalchemy.text(
                        "SELECT COUNT(*) FROM trials WHERE state IN ('COMPLETE','PRUNED','FAIL')"
                    )
                ).scalar_one()
            )
    except sqlalchemy.exc.SQLAlchemyError:
        return -1


def kill_9(spec: Path, url: str, rng: random.Random, budget: int) -> tuple[bool, str]:
    """Run the study and SIGKILL it after a random number of finished trials and a delay."""
    after = rng.randrange(0, budget)
    delay = rng.uniform(0.0, 0.2)
    process = subprocess.Popen(
        [*TASKGRAPH, "study", "run", str(spec), "--storage", url, "--quiet"],
        cwd=REPO,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        deadline = time.monotonic() + 300
        while process.poll() is None and time.monotonic() < deadline:
            if finished_trials(engine) >= after:
                time.sleep(delay)
                break
            time.sleep(0.02)
        if process.poll() is not None:
            return False, f"finished before the kill (after {after} trials)"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        return True, f"kill -9 after {after} trials + {delay:.2f} s"
    finally:
        engine.dispose()
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def crash(
    spec: Path, url: str, rng: random.Random, budget: int, seeds: int, point: str
) -> tuple[bool, str, str]:
    """Run the study crashing (os._exit) at ``point``, reached a random number of times."""
    reaches = budget * seeds if point in ("record_written", "in_record") else budget
    hit = rng.randint(1, reaches)
    crashing = [sys.executable, "-m", "taskgraph.cli.crashpoints", point, str(hit)]
    done = subprocess.run(
        [*crashing, "study", "run", str(spec), "--storage", url, "--quiet"],
        cwd=REPO,
        env=env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != CRASH_EXIT:
        return False, point, f"exited {done.returncode}: {done.stderr.strip()[-300:]}"
    return True, point, f"os._exit at {point} #{hit}"


def check(name: str, url: str, *, budget: int, seeds: int) -> tuple[bool, int, int, int, str]:
    """Return (exact, expected, lost, duplicated, detail) for the resumed study."""
    import optuna

    from taskgraph.search.progress import RESULTS_ATTR, retried_numbers, trial_state
    from taskgraph.search.space import BASELINE_ROLE, ROLE_ATTR
    from taskgraph.storage import open_repository

    trials = optuna.load_study(study_name=name, storage=url).get_trials()
    retried = retried_numbers(trials)
    states = {t.number: trial_state(t, retried=retried) for t in trials}
    counted = [t for t in trials if states[t.number] in ("complete", "pruned", "failed")]
    # The table answers every configuration and nothing is pruned: every counted trial is
    # complete and has one run per seed.
    expected = {(t.number, seed) for t in counted for seed in range(seeds)}
    # Runs stored on a killed trial (it trained, was not told) are recorded by its retry;
    # without a retry they are lost as surely as a missing record.
    discarded = sum(
        len(t.user_attrs.get(RESULTS_ATTR) or ())
        for t in trials
        if states[t.number] == "interrupted" and t.number not in retried
    )
    with open_repository(url) as repo:
        keys = Counter((r.trial_number, r.seed) for r in repo.runs(study=name))
    lost = len(expected - set(keys)) + discarded
    duplicated = sum(n - 1 for n in keys.values()) + len(set(keys) - expected)
    state_counts = Counter(states.values())
    baseline = any(
        t.user_attrs.get(ROLE_ATTR) == BASELINE_ROLE and states[t.number] == "complete"
        for t in trials
    )
    exact = (
        len(counted) == budget
        and state_counts["complete"] == budget
        and not state_counts["running"]
        and not state_counts["waiting"]
        and baseline
    )
    detail = f"after resume {dict(state_counts)}" + ("" if baseline else ", no baseline")
    return exact, len(expected), lost, duplicated, detail


def left_behind(url: str) -> str:
    """Describe what the fault left: trials by Optuna state and records written."""
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sqlalchemy.text("SELECT state, COUNT(*) FROM trials GROUP BY state ORDER BY state")
            ).all()
            records = connection.execute(sqlalchemy.text("SELECT COUNT(*) FROM tg_runs")).scalar()
    except sqlalchemy.exc.SQLAlchemyError:
        return "left no tables"
    finally:
        engine.dispose()
    states = ", ".join(f"{state.lower()} {count}" for state, count in rows)
    return f"left {states or 'no trial'}; {records} records"


def study_exists(name: str, url: str) -> bool:
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            found = connection.execute(
                sqlalchemy.text("SELECT COUNT(*) FROM studies WHERE study_name = :name"),
                {"name": name},
            ).scalar_one()
            return bool(found)
    except sqlalchemy.exc.SQLAlchemyError:
        return False
    finally:
        engine.dispose()


def one_study(
    *,
    backend: str,
    index: int,
    url: str,
    work: Path,
    table: Path,
    budget: int,
    rng: random.Random,
    crash_index: int,
) -> Outcome:
    seeds = 1 + (index // 2) % 2
    max_retry = 3 if (index // 4) % 2 == 0 else 0
    fault = "kill -9" if index % 2 == 0 else "crash"
    name = f"fi{index}"
    spec = work / f"{backend}-{name}.yaml"
    write_spec(
        spec, name=name, table=table, budget=budget, seeds=seeds, max_retry=max_retry, seed=index
    )
    if fault == "kill -9":
        injected, detail = kill_9(spec, url, rng, budget)
    else:
        # The crash studies take the points in turn (every point is hit once in six).
        point = POINTS[(crash_index + index // 2) % len(POINTS)]
        injected, point, detail = crash(spec, url, rng, budget, seeds, point)
        fault = f"crash:{point}"
    detail = f"{detail}, {left_behind(url)}"
    # A driver killed before it created the study leaves nothing to resume: run it again.
    again = ["study", "resume", name] if study_exists(name, url) else ["study", "run", str(spec)]
    resumed = subprocess.run(
        [*TASKGRAPH, *again, "--storage", url, "--quiet"],
        cwd=REPO,
        env=env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if resumed.returncode != 0:
        return Outcome(
            backend=backend,
            fault=fault,
            seeds=seeds,
            max_retry=max_retry,
            injected=injected,
            completed=False,
            expected=budget * seeds,
            lost=0,
            duplicated=0,
            detail=f"{detail}; resume exited {resumed.returncode}: {resumed.stderr[-300:]}",
        )
    exact, expected, lost, duplicated, states = check(name, url, budget=budget, seeds=seeds)
    return Outcome(
        backend=backend,
        fault=fault,
        seeds=seeds,
        max_retry=max_retry,
        injected=injected,
        completed=exact,
        expected=expected,
        lost=lost,
        duplicated=duplicated,
        detail=f"{detail}; {states}",
    )


def run_backend(
    backend: str,
    *,
    faults: int,
    budget: int,
    work: Path,
    table: Path,
    rng: random.Random,
    crash_offset: int,
) -> list[Outcome]:
    server: Any = None
    if backend == "postgres":
        from taskgraph.storage.testing import start_postgres

        server = start_postgres()
    outcomes: list[Outcome] = []
    try:
        for index in range(faults):
            if server is not None:
                url = str(server.create_database(f"fi_{index}"))
            else:
                url = f"sqlite:///{work / f'fi_{index}.db'}"
            outcome = one_study(
                backend=backend,
                index=index,
                url=url,
                work=work,
                table=table,
                budget=budget,
                rng=rng,
                crash_index=crash_offset,
            )
            outcomes.append(outcome)
            mark = (
                "ok " if outcome.completed and not (outcome.lost or outcome.duplicated) else "BAD"
            )
            print(
                f"  {mark} {backend:8s} study {index:2d} seeds={outcome.seeds} "
                f"max_retry={outcome.max_retry} {outcome.fault:22s} "
                f"injected={outcome.injected!s:5s} lost={outcome.lost} "
                f"duplicated={outcome.duplicated}  {outcome.detail}",
                flush=True,
            )
    finally:
        if server is not None:
            server.stop()
    return outcomes


# -- cluster faults ----------------------------------------------------------------------------


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


def cluster_env(ray_dir: Path | None = None, **extra: str) -> dict[str, str]:
    environment = env()
    environment.update(
        RAY_AUTH_MODE="disabled",
        RAY_USAGE_STATS_ENABLED="0",
        RAY_AIR_NEW_OUTPUT="0",
        HF_HUB_OFFLINE="1",
        **extra,
    )
    environment.pop("RAY_ADDRESS", None)
    if ray_dir is not None:
        environment["RAY_TMPDIR"] = str(ray_dir)  # this study's own local Ray
    return environment


def complete_trials(url: str) -> int:
    return sum(state == "COMPLETE" for state in trial_states(url).values())


def wait_until(
    condition: Any, process: subprocess.Popen[str], what: str, timeout: float = 300
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            _, stderr = process.communicate()
            tail = (stderr or "").strip()[-400:]
            raise RuntimeError(f"the study ended (exit {process.returncode}) before {what}: {tail}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {what} within {timeout:.0f} s")
        time.sleep(0.1)


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


def start(argv: list[str], environment: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        argv,
        cwd=REPO,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 600) -> str:
    """Wait for ``process``; return its stderr (killed if it outlives ``timeout``)."""
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
    return stderr or ""


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def judge(
    fault: str,
    name: str,
    url: str,
    *,
    budget: int,
    seeds: int,
    max_retry: int,
    detail: str,
    failed: int = 0,
    ok: bool = True,
) -> Outcome:
    """Audit the study: exact when ``ok``, its budget counted, ``failed`` of them failed (with a
    reason), the rest complete, nothing running; lost and duplicated records counted."""
    from taskgraph.testing import audit_study

    audit = audit_study(name, url, seeds=seeds)
    reasons = [r for r in audit.failure_reasons if r]
    exact = (
        ok
        and audit.counted == budget
        and audit.states.get("complete", 0) == budget - failed
        and audit.states.get("failed", 0) == failed
        and len(reasons) == failed
        and not audit.states.get("running")
        and not audit.states.get("waiting")
    )
    if reasons:
        detail += f"; failed with reason {reasons[0][:90]!r}"
    return Outcome(
        backend="cluster",
        fault=fault,
        seeds=seeds,
        max_retry=max_retry,
        injected=True,
        completed=exact,
        expected=audit.expected,
        lost=audit.lost,
        duplicated=audit.duplicated,
        detail=f"{detail}; after {audit.states}",
    )


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
    resumed = subprocess.run(
        [*FAKES, "study", "resume", name, "--storage", url, "--quiet"],
        cwd=REPO,
        env=cluster_env((work / "ray").resolve()),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
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
    lines = error_lines(stderr)
    clear = driver.returncode == 1 and len(lines) == 1 and "Traceback" not in stderr
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


def taskgraph_run(args: list[str], environment: dict[str, str], **kwargs: Any) -> Any:
    return subprocess.run(
        [*FAKES, *args],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        **kwargs,
    )


def disk_full(work: Path, table: Path, *, budget: int) -> Outcome:
    """The SQLite file's filesystem full mid-study; ``db check``; resume once space is freed."""
    from taskgraph.testing import limit_file_size, small_filesystem

    name = "disk_full"
    spec = work / f"{name}.yaml"
    write_spec(spec, name=name, table=table, budget=budget, seeds=1, max_retry=3, seed=0)
    environment = cluster_env()
    with small_filesystem(work / "fs-full", size_kb=16384) as mounted:
        db = work / "fs-full" / f"{name}.db"
        url = f"sqlite:///{db}"
        taskgraph_run(
            ["study", "run", str(spec), "--storage", url, "--quiet", "--trials", "2"], environment
        )
        filler = db.with_name("filler")
        limit: int | None = None
        if mounted:
            stats = os.statvfs(db.parent)
            with filler.open("wb") as out:
                out.write(b"\0" * max(0, stats.f_bavail * stats.f_frsize - 256 * 1024))
            how = "a 16 MiB tmpfs filled to 256 KiB free"
        else:
            limit = max(p.stat().st_size for p in db.parent.glob(f"{name}.db*")) + 256 * 1024
            how = f"RLIMIT_FSIZE {limit} bytes"
        full = taskgraph_run(
            ["study", "resume", name, "--storage", url, "--quiet", "--trials", str(budget)],
            environment,
            preexec_fn=None if limit is None else (lambda: limit_file_size(limit)),
        )
        at = complete_trials(url)
        filler.unlink(missing_ok=True)
        check = taskgraph_run(["db", "check", "--storage", url], environment)
        resumed = taskgraph_run(["study", "resume", name, "--storage", url, "--quiet"], environment)
        lines = error_lines(full.stderr)
        clear = full.returncode == 1 and len(lines) == 1 and "Traceback" not in full.stderr
        detail = (
            f"{how}: exit {full.returncode} after trial {at}, {len(lines)} error line(s) "
            f"{lines[0][-150:] if lines else full.stderr[-200:]!r}; db check exited "
            f"{check.returncode}; resume exited {resumed.returncode}"
        )
        return judge(
            "disk-full",
            name,
            url,
            budget=budget,
            seeds=1,
            max_retry=3,
            detail=detail,
            ok=clear and check.returncode == 0 and resumed.returncode == 0 and 2 < at < budget,
        )


def readonly_dir(work: Path, table: Path, *, budget: int) -> Outcome:
    """The SQLite file's directory read-only: one error line; ``db check``; resume after."""
    from taskgraph.testing import small_filesystem

    name = "readonly_dir"
    spec = work / f"{name}.yaml"
    write_spec(spec, name=name, table=table, budget=budget, seeds=1, max_retry=3, seed=0)
    environment = cluster_env()
    directory = work / "fs-ro"
    with small_filesystem(directory, size_kb=16384) as mounted:
        url = f"sqlite:///{directory / f'{name}.db'}"
        taskgraph_run(
            ["study", "run", str(spec), "--storage", url, "--quiet", "--trials", "2"], environment
        )
        if mounted:
            subprocess.run(["mount", "-o", "remount,ro", str(directory)], check=True)
            how = "tmpfs remounted read-only"
        elif os.geteuid() != 0:
            directory.chmod(0o555)
            how = "chmod 555"
        else:
            return Outcome(
                backend="cluster",
                fault="readonly-dir",
                seeds=1,
                max_retry=3,
                injected=False,
                completed=False,
                expected=0,
                lost=0,
                duplicated=0,
                detail="root without a mountable tmpfs: skipped",
            )
        try:
            refused = taskgraph_run(
                ["study", "resume", name, "--storage", url, "--quiet"], environment
            )
        finally:
            if mounted:
                subprocess.run(["mount", "-o", "remount,rw", str(directory)], check=True)
            else:
                directory.chmod(0o755)
        check = taskgraph_run(["db", "check", "--storage", url], environment)
        resumed = taskgraph_run(
            ["study", "resume", name, "--storage", url, "--quiet", "--trials", str(budget)],
            environment,
        )
        lines = error_lines(refused.stderr)
        clear = refused.returncode == 1 and len(lines) == 1 and "Traceback" not in refused.stderr
        detail = (
            f"{how}: exit {refused.returncode}, {len(lines)} error line(s) "
            f"{lines[0][-120:] if lines else refused.stderr[-200:]!r}; db check exited "
            f"{check.returncode}; resume exited {resumed.returncode}"
        )
        return judge(
            "readonly-dir",
            name,
            url,
            budget=budget,
            seeds=1,
            max_retry=3,
            detail=detail,
            ok=clear and check.returncode == 0 and resumed.returncode == 0,
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
            except RuntimeError as error:  # the fault could not be injected: reported, not hidden
                outcome = Outcome(
                    backend="cluster",
                    fault=fault,
                    seeds=1,
                    max_retry=0,
                    injected=False,
                    completed=False,
                    expected=0,
                    lost=0,
                    duplicated=0,
                    detail=str(error),
                )
            finally:
                stop_leftovers(ray_dir)
                shutil.rmtree(ray_dir, ignore_errors=True)
            outcomes.append(outcome)
            mark = (
                "ok " if outcome.completed and not (outcome.lost or outcome.duplicated) else "BAD"
            )
            print(
                f"  {mark} cluster  {fault:16s} seeds={outcome.seeds} max_retry={outcome.max_retry} "
                f"lost={outcome.lost} duplicated={outcome.duplicated} "
                f"{time.monotonic() - began:.0f} s  {outcome.detail}",
                flush=True,
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="Each backend gets --faults studies, one fault each, and each cluster fault one "
        "study; the totals cover them all.",
    )
    parser.add_argument(
        "--faults", type=int, default=6, help="studies (one fault each) per backend [6]"
    )
    parser.add_argument("--budget", type=int, default=5, help="trials per study [5]")
    parser.add_argument(
        "--backends",
        default="sqlite,postgres",
        help="comma-separated: sqlite, postgres [sqlite,postgres]",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of the fault points [0]")
    parser.add_argument(
        "--cluster",
        default="all",
        help=f"comma-separated cluster faults, 'all' or 'none': {', '.join(CLUSTER_FAULTS)} [all]",
    )
    parser.add_argument(
        "--outage", type=float, default=5.0, help="seconds PostgreSQL is down in pg-restart [5]"
    )
    args = parser.parse_args(argv)
    if args.faults < 1 or args.budget < 2:
        parser.error("--faults must be >= 1 and --budget >= 2")
    backends = [b.strip() for b in args.backends.split(",") if b.strip() not in ("", "none")]
    unknown = sorted(set(backends) - {"sqlite", "postgres"})
    if unknown:
        parser.error(f"unknown backend(s) {unknown}; choose from sqlite, postgres")
    chosen = args.cluster.strip()
    cluster = (
        list(CLUSTER_FAULTS)
        if chosen == "all"
        else [f.strip() for f in chosen.split(",") if f.strip() not in ("", "none")]
    )
    unknown = sorted(set(cluster) - set(CLUSTER_FAULTS))
    if unknown:
        parser.error(f"unknown cluster fault(s) {unknown}; choose from {', '.join(CLUSTER_FAULTS)}")
    rng = random.Random(args.seed)
    started = time.monotonic()
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="taskgraph-fi-") as tmp:
        work = Path(tmp)
        table = work / "table.csv"
        write_table(table)
        if backends:
            print(
                f"fault injection: {args.faults} studies per backend ({', '.join(backends)}), "
                f"{args.budget} trials each, tabular runner, seeds 1 and 2, max_retry 3 and 0",
                flush=True,
            )
        for backend in backends:
            outcomes += run_backend(
                backend,
                faults=args.faults,
                budget=args.budget,
                work=work,
                table=table,
                rng=rng,
                crash_offset=len(outcomes) // 2,
            )
        if cluster:
            print(
                f"cluster faults: {', '.join(cluster)}; {args.budget} trials each "
                f"(disk-full {4 * args.budget}), fake evaluator in Ray workers, 1.5 s per trial",
                flush=True,
            )
            outcomes += run_cluster(
                cluster, work=work, table=table, budget=args.budget, rng=rng, outage=args.outage
            )
    injected = sum(o.injected for o in outcomes)
    for backend in [*backends, *(["cluster"] if cluster else [])]:
        mine = [o for o in outcomes if o.backend == backend]
        print(
            f"{backend}: {sum(o.injected for o in mine)} faults, "
            f"{sum(o.completed for o in mine)}/{len(mine)} studies exact, "
            f"{sum(o.expected for o in mine)} records expected, "
            f"{sum(o.lost for o in mine)} lost, {sum(o.duplicated for o in mine)} duplicated"
        )
    print(f"seconds: {time.monotonic() - started:.0f}")
    print(f"faults_injected: {injected}")
    print(f"studies_completed: {sum(o.completed for o in outcomes)}")
    print(f"records_lost: {sum(o.lost for o in outcomes)}")
    print(f"records_duplicated: {sum(o.duplicated for o in outcomes)}")
    bad = any(not o.completed or o.lost or o.duplicated for o in outcomes)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
