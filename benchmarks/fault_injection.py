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

Ends with ``faults_injected``, ``faults_not_injected``, ``studies_completed``,
``records_lost`` and ``records_duplicated`` lines (all backends and cluster faults together);
a fault that could not be injected (the study finished first) is a ``BAD`` study, not a lost
record, and the exit status is 1.

The scenarios live in ``benchmarks/faults/``: ``driver.py`` (kill -9 and crash points of a local
study), ``cluster.py`` (Ray worker and driver, PostgreSQL restart and outage), ``storage.py``
(disk full, read-only directory), and ``common.py`` (table, specs, subprocesses, the audit).
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

from faults.cluster import CLUSTER_FAULTS, run_cluster
from faults.common import Outcome, good, write_table
from faults.driver import run_backend, settings_used

from taskgraph.cli.scripts import (
    ScriptParser,
    int_range,
    nonnegative_int,
    positive_float,
    positive_int,
    run_script,
)


def main(argv: list[str] | None = None) -> int:
    parser = ScriptParser(
        description=__doc__,
        epilog="Each backend gets --faults studies, one fault each, and each cluster fault one "
        "study; the totals cover them all.",
    )
    parser.add_argument(
        "--faults", type=positive_int, default=6, help="studies (one fault each) per backend [6]"
    )
    parser.add_argument("--budget", type=int_range(2), default=5, help="trials per study [5]")
    parser.add_argument(
        "--backends",
        default="sqlite,postgres",
        help="comma-separated: sqlite, postgres [sqlite,postgres]",
    )
    parser.add_argument(
        "--seed", type=nonnegative_int, default=0, help="random seed of the fault points [0]"
    )
    parser.add_argument(
        "--cluster",
        default="all",
        help=f"comma-separated cluster faults, 'all' or 'none': {', '.join(CLUSTER_FAULTS)} [all]",
    )
    parser.add_argument(
        "--outage",
        type=positive_float,
        default=5.0,
        help="seconds PostgreSQL is down in pg-restart [5]",
    )
    args = parser.parse_args(argv)
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
                f"{args.budget} trials each, tabular runner, {settings_used(args.faults)}",
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
        missed = sum(not o.injected for o in mine)
        print(
            f"{backend}: {sum(o.injected for o in mine)} faults"
            + (f" ({missed} not injected)" if missed else "")
            + ", "
            f"{sum(o.completed for o in mine)}/{len(mine)} studies exact, "
            f"{sum(o.expected for o in mine)} records expected, "
            f"{sum(o.lost for o in mine)} lost, {sum(o.duplicated for o in mine)} duplicated"
        )
    print(f"seconds: {time.monotonic() - started:.0f}")
    print(f"faults_injected: {injected}")
    print(f"faults_not_injected: {len(outcomes) - injected}")
    print(f"studies_completed: {sum(o.completed for o in outcomes)}")
    print(f"records_lost: {sum(o.lost for o in outcomes)}")
    print(f"records_duplicated: {sum(o.duplicated for o in outcomes)}")
    return 0 if all(good(o) for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(run_script(main))
