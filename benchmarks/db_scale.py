"""Records database at scale: batched insert rate and the hot query's latency, SQLite and PostgreSQL.

    python benchmarks/db_scale.py --records 1000000 [--backends sqlite,postgres] [--tasks 33]

For each backend it creates a fresh database at schema head (through the migrations), loads
``--records`` score records (each run scores every task of its task set on dev and test; task
sets of 1-4 tasks drawn from ``--tasks`` names, mostly pairs and triples), then measures:

* the batched insert rate (SQLAlchemy Core ``insert()`` with lists of dicts, ``--batch`` rows
  per executemany; runs and their scores), beside the per-trial path
  ``Repository.add_run_result`` (one transaction per run) measured on ``--trial-writes`` runs;
* the latency of the hot query, ``Repository.records_containing(T, split="dev",
  metric="f1")`` = every record of T from every task set containing T, grouped by task set,
  as ScoreRecord objects, for targets cycling through the task names (p50/p95 over
  ``--queries`` calls after a warm-up), beside the same call with the query's index
  ``ix_tg_scores_hot`` dropped;
* the same with ``include_auxiliaries=True`` (every task's records in those runs, through the
  task-set membership index);
* ``Repository.export`` as JSON and CSV of the runs whose target is the first task, per run
  and as a ratio to ``Repository.runs`` reading the same runs (wall and this process's CPU):
  what an export costs beyond reading its runs.

PostgreSQL is started by the script itself (``taskgraph.storage.testing.start_postgres`` with
fsync on) on 127.0.0.1 and stopped at the end.  Headline figures are printed as ``name: value``
lines.  Timings depend on the machine and on whatever else runs on it.
"""

from __future__ import annotations

import argparse
import io
import itertools
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine, func, insert, select, text

from taskgraph.cli.scripts import ScriptParser, positive_int, run_script
from taskgraph.storage import Repository, open_repository
from taskgraph.storage.schema import (
    ModelConfigRow,
    RunRow,
    ScoreRow,
    StudyRow,
    TaskSetMemberRow,
    TaskSetRow,
)
from taskgraph.storage.testing import start_postgres
from taskgraph.storage.writes import task_family
from taskgraph.trial import Cost, TrialConfig, TrialResult, TrialStatus

console = Console(stderr=True)
SIZE_WEIGHTS = {1: 0.15, 2: 0.45, 3: 0.25, 4: 0.15}
SPLITS = ("dev", "test")
SEEDS = 3
HOT = "task, split, metric, status, task_set_id, run_id, seed, study_id, value, family"


def task_names(n: int) -> list[str]:
    """Return ``n`` task names."""
    return [f"task{i:02d}" for i in range(n)]


def draw_task_set(rng: random.Random, tasks: list[str]) -> tuple[str, ...]:
    """Return a random task set (sorted) with the size distribution of a search."""
    size = rng.choices(list(SIZE_WEIGHTS), weights=list(SIZE_WEIGHTS.values()))[0]
    return tuple(sorted(rng.sample(tasks, size)))


class Loader:
    """Bulk-loads synthetic runs and score records with SQLAlchemy Core insert()."""

    def __init__(self, *, engine: Engine, tasks: list[str], seed: int) -> None:
        self.engine = engine
        self.tasks = tasks
        self.rng = random.Random(seed)
        self.task_set_ids: dict[tuple[str, ...], int] = {}
        self.configs = [TrialConfig(target=tasks[0], learning_rate=lr) for lr in (2e-5, 5e-5)]
        self.config_ids: list[int] = []
        self.next_run_id = 1
        self._families: dict[tuple[int, tuple[str, ...]], dict[str, str]] = {}

    def prepare(self) -> None:
        """Insert the study, the model configurations and every task set of size <= 4 used."""
        with self.engine.begin() as connection:
            connection.execute(
                insert(StudyRow.__table__),
                [
                    {
                        "name": "scale",
                        "direction": "maximize",
                        "target": None,
                        "spec": None,
                        "created_at": _now(),
                    }
                ],
            )
            for config in self.configs:
                connection.execute(
                    insert(ModelConfigRow.__table__),
                    [
                        {
                            "hash": config.model_config_hash(),
                            "encoder": config.encoder,
                            "sharing": config.sharing,
                            "config": config.model_config(),
                        }
                    ],
                )
            self.config_ids = list(
                connection.execute(select(ModelConfigRow.id).order_by(ModelConfigRow.id)).scalars()
            )
            self.study_id = connection.execute(select(StudyRow.id)).scalar_one()

    def _task_set_id(self, connection: Any, task_set: tuple[str, ...]) -> int:
        known = self.task_set_ids.get(task_set)
        if known is not None:
            return known
        new_id = len(self.task_set_ids) + 1
        connection.execute(
            insert(TaskSetRow.__table__),
            [{"id": new_id, "key": "+".join(task_set), "size": len(task_set)}],
        )
        connection.execute(
            insert(TaskSetMemberRow.__table__),
            [{"task_set_id": new_id, "task": t} for t in task_set],
        )
        self.task_set_ids[task_set] = new_id
        return new_id

    def load(self, records: int, batch: int, progress: Progress) -> tuple[int, int, float]:
        """Insert runs until ``records`` score records exist; return (runs, records, seconds).

        Only the inserts and commits are timed, not the generation of the synthetic rows.
        """
        task = progress.add_task("insert", total=records)
        written = runs = 0
        elapsed = 0.0
        while written < records:
            run_rows: list[dict[str, Any]] = []
            score_rows: list[dict[str, Any]] = []
            with self.engine.begin() as connection:  # new task sets (rare after the start)
                while len(score_rows) < batch and written + len(score_rows) < records:
                    run_rows.append(self._run(connection, score_rows))
            start = time.perf_counter()
            with self.engine.begin() as connection:
                connection.execute(insert(RunRow.__table__), run_rows)
                connection.execute(insert(ScoreRow.__table__), score_rows)
            elapsed += time.perf_counter() - start
            runs += len(run_rows)
            written += len(score_rows)
            progress.update(task, completed=written)
        if self.engine.dialect.name == "postgresql":  # explicit ids: move the sequences on
            with self.engine.begin() as connection:
                for table in ("tg_runs", "tg_task_sets"):
                    connection.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT max(id) FROM {table}))"
                        )
                    )
        progress.remove_task(task)
        return runs, written, elapsed

    def _run(self, connection: Any, score_rows: list[dict[str, Any]]) -> dict[str, Any]:
        task_set = draw_task_set(self.rng, self.tasks)
        target = self.rng.choice(task_set)
        index = self.rng.randrange(len(self.configs))
        config = TrialConfig(
            target=target,
            auxiliaries=tuple(t for t in task_set if t != target),
            learning_rate=self.configs[index].learning_rate,
            seed=self.rng.randrange(SEEDS),
        )
        run_id = self.next_run_id
        self.next_run_id += 1
        failed = self.rng.random() < 0.05
        task_set_id = self._task_set_id(connection, task_set)
        families = self._families.get((index, task_set))
        if families is None:
            families = self._families[(index, task_set)] = {
                t: task_family(config, t) for t in task_set
            }
        for task in task_set:
            family = families[task]
            base = 0.5 + 0.3 * self.rng.random()
            for split in SPLITS:
                score_rows.append(
                    {
                        "run_id": run_id,
                        "task": task,
                        "split": split,
                        "metric": "f1",
                        "value": None if failed else base + 0.01 * self.rng.random(),
                        "family": family,
                        "study_id": self.study_id,
                        "task_set_id": task_set_id,
                        "seed": config.seed,
                        "status": "failed" if failed else "complete",
                    }
                )
        return {
            "id": run_id,
            "study_id": self.study_id,
            "trial_number": run_id,
            "seed": config.seed,
            "target": target,
            "task_set_id": task_set_id,
            "model_config_id": self.config_ids[index],
            "family": config.family_key(),
            "transfer_mode": "joint",
            "status": "failed" if failed else "complete",
            "failure_reason": "CUDA out of memory" if failed else None,
            "objective": None,
            "cost_seconds": 60.0,
            "cost_examples": 10_000,
            "cost_tokens": 1_280_000,
            "device": "cuda:0",
            "started_at": None,
            "finished_at": None,
            "created_at": _now(),
            "code_version": "bench",
            "host": "bench",
            "config": config.to_dict(),
            "task_fingerprints": None,
            "intermediate": None,
        }


def _now() -> datetime:
    return datetime.now(timezone.utc)


def per_trial_rate(url: str, tasks: list[str], n: int) -> float:
    """Return score records per second written through add_run_result (one transaction per run)."""
    rng = random.Random(1)
    records = 0
    with open_repository(url) as repo:
        start = time.perf_counter()
        for number in range(n):
            task_set = draw_task_set(rng, tasks)
            config = TrialConfig(target=task_set[0], auxiliaries=task_set[1:])
            scores = {t: {s: {"f1": rng.random()} for s in SPLITS} for t in task_set}
            result = TrialResult(status=TrialStatus.COMPLETE, scores=scores, cost=Cost(seconds=1.0))
            repo.add_run_result(
                study="per-trial", trial_number=number, config=config, result=result
            )
            records += len(task_set) * len(SPLITS)
        return records / (time.perf_counter() - start)


def latencies(
    repo: Repository, tasks: list[str], n: int, **kwargs: Any
) -> tuple[list[float], list[float], float]:
    """Return (wall ms, this process's CPU ms, mean records returned) of ``n`` hot queries."""
    targets = itertools.cycle(random.Random(2).sample(tasks, len(tasks)))
    for _ in range(3):  # warm-up: caches, connection pool, compiled statement
        repo.records_containing(next(targets), split="dev", metric="f1", **kwargs)
    times, cpu, sizes = [], [], []
    for _ in range(n):
        target = next(targets)
        start, start_cpu = time.perf_counter(), time.process_time()
        grouped = repo.records_containing(target, split="dev", metric="f1", **kwargs)
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
        sizes.append(sum(len(v) for v in grouped.values()))
    return times, cpu, statistics.fmean(sizes)


def export_costs(repo: Repository, target: str) -> dict[str, float]:
    """Return the JSON and CSV export's ms per run of ``target``'s runs, and their ratio (wall
    and CPU) to reading the same runs with ``Repository.runs``, the baseline."""
    out: dict[str, float] = {}

    def timed(call: Any) -> tuple[float, float]:
        start, start_cpu = time.perf_counter(), time.process_time()
        call()
        return time.perf_counter() - start, time.process_time() - start_cpu

    runs = len(repo.runs(target=target))  # warm-up, and the count
    out["export_runs"] = runs
    read, read_cpu = timed(lambda: repo.runs(target=target))
    out["read_ms_per_run"] = 1000 * read / max(runs, 1)
    for name in ("json", "csv"):
        wall, cpu = timed(lambda name=name: repo.export(io.StringIO(), format=name, target=target))
        out[f"export_{name}_ms_per_run"] = 1000 * wall / max(runs, 1)
        out[f"export_{name}_over_read"] = wall / read
        out[f"export_{name}_over_read_cpu"] = cpu / read_cpu
    return out


def p(values: list[float], q: float) -> float:
    """Return the ``q``-quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


@contextmanager
def backend(name: str, workdir: Path) -> Iterator[str]:
    """Yield a fresh database URL on ``name``; start (and stop) PostgreSQL when needed."""
    if name == "sqlite":
        yield f"sqlite:///{workdir / 'scale.db'}"
        return
    server = start_postgres(durable=True)
    try:
        yield server.url
    finally:
        server.stop()


TABLES = (
    "tg_scores, tg_runs, tg_task_set_members, tg_task_sets, tg_model_configs, tg_studies, tg_tasks"
)


def bench_backend(name: str, args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    """Return the figures of one backend."""
    tasks = task_names(args.tasks)
    out: dict[str, float] = {}
    with backend(name, workdir) as url:
        per_trial_url = f"sqlite:///{workdir / 'per_trial.db'}" if name == "sqlite" else url
        out["per_trial_insert_per_s"] = per_trial_rate(per_trial_url, tasks, args.trial_writes)
        with open_repository(url) as repo:
            if name == "postgres":  # the per-trial runs went to this database: start clean
                with repo.engine.begin() as connection:
                    connection.execute(text(f"TRUNCATE {TABLES} CASCADE"))
            loader = Loader(engine=repo.engine, tasks=tasks, seed=0)
            loader.prepare()
            columns = (TextColumn(f"{name}: loading"), BarColumn(), MofNCompleteColumn())
            with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
                runs, records, seconds = loader.load(args.records, args.batch, progress)
            out["runs"], out["records"] = runs, records
            out["insert_per_s"] = records / seconds
            # Planner statistics (and, on PostgreSQL, the visibility map that index-only
            # scans need), as a running server's autovacuum would have them.
            statement = "VACUUM ANALYZE" if name == "postgres" else "ANALYZE"
            with repo.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text(statement))
                count = conn.execute(select(func.count()).select_from(ScoreRow)).scalar_one()
            assert count == records, (count, records)
            times, cpu, size = latencies(repo, tasks, args.queries)
            out["rows_per_query"], out["p50_ms"], out["p95_ms"] = (
                size,
                p(times, 0.5),
                p(times, 0.95),
            )
            out["client_cpu_p95_ms"] = p(cpu, 0.95)
            times, _, size = latencies(repo, tasks, args.queries, include_auxiliaries=True)
            out["all_tasks_rows_per_query"] = size
            out["all_tasks_p50_ms"], out["all_tasks_p95_ms"] = p(times, 0.5), p(times, 0.95)
            out.update(export_costs(repo, tasks[0]))
            with repo.engine.begin() as connection:
                connection.execute(text("DROP INDEX ix_tg_scores_hot"))
            times, _, _ = latencies(repo, tasks, args.baseline_queries)
            out["noindex_p50_ms"], out["noindex_p95_ms"] = p(times, 0.5), p(times, 0.95)
            with repo.engine.begin() as connection:
                connection.execute(text(f"CREATE INDEX ix_tg_scores_hot ON tg_scores ({HOT})"))
    out["insert_speedup_vs_per_trial"] = out["insert_per_s"] / out["per_trial_insert_per_s"]
    out["p95_speedup_vs_noindex"] = out["noindex_p95_ms"] / out["p95_ms"]
    return out


FIGURES = (
    ("runs", "{:.0f}"),
    ("records", "{:.0f}"),
    ("insert_per_s", "{:.0f}"),
    ("per_trial_insert_per_s", "{:.0f}"),
    ("insert_speedup_vs_per_trial", "{:.1f}"),
    ("rows_per_query", "{:.0f}"),
    ("p50_ms", "{:.1f}"),
    ("p95_ms", "{:.1f}"),
    ("client_cpu_p95_ms", "{:.1f}"),
    ("noindex_p50_ms", "{:.1f}"),
    ("noindex_p95_ms", "{:.1f}"),
    ("p95_speedup_vs_noindex", "{:.1f}"),
    ("all_tasks_rows_per_query", "{:.0f}"),
    ("all_tasks_p50_ms", "{:.1f}"),
    ("all_tasks_p95_ms", "{:.1f}"),
    ("export_runs", "{:.0f}"),
    ("read_ms_per_run", "{:.3f}"),
    ("export_json_ms_per_run", "{:.3f}"),
    ("export_json_over_read", "{:.2f}"),
    ("export_json_over_read_cpu", "{:.2f}"),
    ("export_csv_ms_per_run", "{:.3f}"),
    ("export_csv_over_read", "{:.2f}"),
    ("export_csv_over_read_cpu", "{:.2f}"),
)


def main() -> None:
    """Run the benchmark and print ``name: value`` lines."""
    parser = ScriptParser(description=__doc__)
    add = parser.add_argument
    add("--records", type=positive_int, default=1_000_000, help="score records to load per backend")
    add("--backends", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    add(
        "--tasks",
        type=positive_int,
        default=33,
        help=f"distinct tasks (the data pool has 33; at least {max(SIZE_WEIGHTS)})",
    )
    add("--batch", type=positive_int, default=10_000, help="score records per executemany batch")
    add("--queries", type=positive_int, default=100, help="hot queries timed per variant")
    add("--baseline-queries", type=positive_int, default=10, help="queries timed without the index")
    add(
        "--trial-writes", type=positive_int, default=300, help="runs written through add_run_result"
    )
    args = parser.parse_args()
    if args.tasks < max(SIZE_WEIGHTS):  # draw_task_set samples sets of up to that many tasks
        parser.error(
            f"--tasks {args.tasks}: needs at least {max(SIZE_WEIGHTS)} tasks "
            f"(the task sets drawn have up to {max(SIZE_WEIGHTS)})"
        )
    # A SIGTERM (timeout, kill) unwinds like Ctrl-C, so the PostgreSQL we started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - {"sqlite", "postgres"}
    if unknown:
        parser.error(f"--backends: unknown {sorted(unknown)}; expected sqlite and/or postgres")
    if not backends:
        parser.error(f"--backends {args.backends!r} names none; expected sqlite and/or postgres")
    print(f"cpu_cores: {os.cpu_count()}")
    print(f"load_average_1m_start: {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="taskgraph-dbscale-") as tmp:
        for name in backends:
            figures = bench_backend(name, args, Path(tmp))
            for key, fmt in FIGURES:
                print(f"{name}_{key}: {fmt.format(figures[key])}")
            print(f"{name}_p95_goal_50ms_met: {figures['p95_ms'] <= 50.0}")
            print(f"load_average_1m_after_{name}: {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    raise SystemExit(run_script(main))
