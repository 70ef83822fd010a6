"""Driver faults on a local study (SQLite or PostgreSQL): ``kill -9`` or a simulated crash.

Each study gets one fault at a random point: SIGKILL of the ``taskgraph study run`` process after
a random number of finished trials, or ``os._exit`` at a point of a trial's sequence
(:mod:`taskgraph.search.crashpoints`); ``study resume`` then finishes it and :func:`check`
counts every (trial, seed) record.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy

from taskgraph.search.crashpoints import CRASH_EXIT, POINTS

from .common import REPO, TASKGRAPH, Outcome, env, left_behind, report, run, write_spec


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
            return False, f"fault not injected: finished before the kill (after {after} trials)"
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
    spec: Path,
    database: Callable[[str], str],
    rng: random.Random,
    budget: int,
    seeds: int,
    point: str,
) -> tuple[bool, str, str, str]:
    """Run the study crashing (os._exit) at ``point``, reached a random number of times.

    Return (injected, point, detail, url of the study's database).  A trial that repeats a
    configuration the study already trained is answered from the earlier trial's runs
    (docs/search.md), so it never reaches ``training`` nor writes a record: a random ``hit``
    can exceed the times a point is reached and the study finish without its fault.  Then the
    study runs again in a fresh database with a smaller ``hit``; the sampler is seeded, so a
    run reaches the point the same number of times up to its crash, and ``hit`` 1 always
    crashes (the baseline trains and is recorded first).
    """
    reaches = budget * seeds if point in ("record_written", "in_record") else budget
    hit = rng.randint(1, reaches)
    missed: list[int] = []
    attempt = 0
    while True:
        url = database("" if not attempt else f"_{attempt}")
        crashing = [sys.executable, "-m", "taskgraph.cli.crashpoints", point, str(hit)]
        done = run(
            [*crashing, "study", "run", str(spec), "--storage", url, "--quiet"], env(), timeout=300
        )
        again = f" (not reached at #{', #'.join(map(str, missed))})" if missed else ""
        if done.returncode == CRASH_EXIT:
            return True, point, f"os._exit at {point} #{hit}{again}", url
        if done.returncode != 0 or hit == 1:
            detail = f"fault not injected: exited {done.returncode}{again}"
            return False, point, f"{detail}: {done.stderr.strip()[-300:]}", url
        missed.append(hit)
        hit = rng.randint(1, hit - 1)
        attempt += 1


def check(name: str, url: str, *, budget: int, seeds: int) -> tuple[bool, int, int, int, str]:
    """Return (exact, expected, lost, duplicated, detail) for the resumed study.

    The records are audited by :func:`taskgraph.testing.audit_study`: one per seed of every
    counted trial, except that a trial repeating a configuration the study already trained
    has its record in the earlier trial's run.
    """
    import optuna

    from taskgraph.search.progress import retried_numbers, trial_state
    from taskgraph.search.space import BASELINE_ROLE, ROLE_ATTR
    from taskgraph.testing import audit_study

    audit = audit_study(name, url, seeds=seeds)
    trials = optuna.load_study(study_name=name, storage=url).get_trials()
    retried = retried_numbers(trials)
    baseline = any(
        t.user_attrs.get(ROLE_ATTR) == BASELINE_ROLE
        and trial_state(t, retried=retried) == "complete"
        for t in trials
    )
    # The table answers every configuration and nothing is pruned: every counted trial is
    # complete.
    exact = (
        audit.counted == budget
        and audit.states.get("complete", 0) == budget
        and not audit.states.get("running")
        and not audit.states.get("waiting")
        and baseline
    )
    detail = f"after resume {audit.states}" + ("" if baseline else ", no baseline")
    return exact, audit.expected, audit.lost, audit.duplicated, detail


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


def study_settings(index: int) -> tuple[int, int]:
    """Return study ``index``'s ``(seeds, max_retry)``: seeds 1 1 2 2 ..., max_retry 3 (four
    studies), then 0 (four), and so on."""
    return 1 + (index // 2) % 2, 3 if (index // 4) % 2 == 0 else 0


def settings_used(faults: int) -> str:
    """Say which seeds and max_retry values studies ``0 .. faults - 1`` use, e.g. ``seeds 1,
    max_retry 3`` for two studies, ``seeds 1 and 2, max_retry 3 and 0`` from five on."""
    settings = [study_settings(index) for index in range(faults)]
    seeds = sorted({s for s, _ in settings})
    retries = sorted({r for _, r in settings}, reverse=True)
    return f"seeds {' and '.join(map(str, seeds))}, max_retry {' and '.join(map(str, retries))}"


def one_study(
    *,
    backend: str,
    index: int,
    database: Callable[[str], str],
    work: Path,
    table: Path,
    budget: int,
    rng: random.Random,
    crash_index: int,
) -> Outcome:
    seeds, max_retry = study_settings(index)
    fault = "kill -9" if index % 2 == 0 else "crash"
    name = f"fi{index}"
    spec = work / f"{backend}-{name}.yaml"
    write_spec(
        spec, name=name, table=table, budget=budget, seeds=seeds, max_retry=max_retry, seed=index
    )
    if fault == "kill -9":
        url = database("")
        injected, detail = kill_9(spec, url, rng, budget)
    else:
        # The crash studies take the points in turn (every point is hit once in six).
        point = POINTS[(crash_index + index // 2) % len(POINTS)]
        injected, point, detail, url = crash(spec, database, rng, budget, seeds, point)
        fault = f"crash:{point}"
    detail = f"{detail}, {left_behind(url)}"
    # A driver killed before it created the study leaves nothing to resume: run it again.
    again = ["study", "resume", name] if study_exists(name, url) else ["study", "run", str(spec)]
    resumed = run([*TASKGRAPH, *again, "--storage", url, "--quiet"], env())
    if resumed.returncode == 2 and "`taskgraph study run SPEC`" in resumed.stderr:
        # Killed after Optuna's row and before the spec: resume refuses the study and says
        # that `study run` with its spec takes it over.
        detail += ", study created without its spec: study run again"
        resumed = run([*TASKGRAPH, "study", "run", str(spec), "--storage", url, "--quiet"], env())
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

            def database(suffix: str, index: int = index) -> str:
                """A fresh database for study ``index`` (``suffix`` tells a rerun's apart)."""
                if server is not None:
                    return str(server.create_database(f"fi_{index}{suffix}"))
                return f"sqlite:///{work / f'fi_{index}{suffix}.db'}"

            outcome = one_study(
                backend=backend,
                index=index,
                database=database,
                work=work,
                table=table,
                budget=budget,
                rng=rng,
                crash_index=crash_offset,
            )
            outcomes.append(outcome)
            report(
                outcome,
                f"{backend:8s} study {index:2d}",
                f"seeds={outcome.seeds} max_retry={outcome.max_retry} {outcome.fault:22s} "
                f"injected={outcome.injected!s:5s} lost={outcome.lost} "
                f"duplicated={outcome.duplicated}  {outcome.detail}",
            )
    finally:
        if server is not None:
            server.stop()
    return outcomes
