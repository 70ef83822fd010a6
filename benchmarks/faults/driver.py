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
from collections import Counter
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
    done = run(
        [*crashing, "study", "run", str(spec), "--storage", url, "--quiet"], env(), timeout=300
    )
    if done.returncode != CRASH_EXIT:
        return False, point, f"exited {done.returncode}: {done.stderr.strip()[-300:]}"
    return True, point, f"os._exit at {point} #{hit}"


def check(name: str, url: str, *, budget: int, seeds: int) -> tuple[bool, int, int, int, str]:
    """Return (exact, expected, lost, duplicated, detail) for the resumed study."""
    import optuna

    from taskgraph.search.progress import retried_numbers, trial_results, trial_state
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
        len(trial_results(t) or ())
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
    resumed = run([*TASKGRAPH, *again, "--storage", url, "--quiet"], env())
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
