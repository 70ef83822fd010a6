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

Ends with ``faults_injected``, ``studies_completed``, ``records_lost`` and
``records_duplicated`` lines (all backends together).
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
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

REPO = Path(__file__).resolve().parents[1]
TASKGRAPH = [sys.executable, "-m", "taskgraph.cli.app"]
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="Each backend gets --faults studies, one fault each; the totals cover both.",
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
    args = parser.parse_args(argv)
    if args.faults < 1 or args.budget < 2:
        parser.error("--faults must be >= 1 and --budget >= 2")
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(backends) - {"sqlite", "postgres"})
    if unknown:
        parser.error(f"unknown backend(s) {unknown}; choose from sqlite, postgres")
    rng = random.Random(args.seed)
    started = time.monotonic()
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="taskgraph-fi-") as tmp:
        work = Path(tmp)
        table = work / "table.csv"
        write_table(table)
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
    injected = sum(o.injected for o in outcomes)
    for backend in backends:
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
