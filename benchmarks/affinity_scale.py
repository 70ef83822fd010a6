"""How ``affinity top`` and ``affinity graph`` scale with the number of score records.

Builds a synthetic records table in memory (no database): ``--tasks`` tasks, runs of task sets
of one to four tasks drawn as a search draws them (``db_scale.py``'s sizes), three seeds, every
task also trained alone, each run a record per task of its set, until ``N`` records.  For each
``N`` of ``--sizes`` it fits ``--method`` (the gains computed once) and times, per call:

* ``rank``: :func:`~taskgraph.affinity.recommend.rank_auxiliaries` of one target as ``affinity
  top`` calls it (sets without evidence left out; a beam search beyond 8192 candidate sets),
  and ``rank_scanned``: the same ranking with every scored set's evidence counted by a scan of
  every gain, as it was before the index (timed once; the same top sets and runs, checked);
* ``graph``: :func:`~taskgraph.affinity.graph.affinity_graph` (an edge per source and target);
* ``evidence``: ``n_evidence`` of the first ``--sets`` candidate sets, indexed (the estimator's)
  and by a scan of every gain (what each set cost before the index), and their ratio.

Then the ratio of each time between sizes, measured in the same run: with the index the time
of ``rank`` and ``graph`` grows with the candidate sets and edges, not with the records.

    .venv/bin/python benchmarks/affinity_scale.py --quick     # 2000 and 8000 records (< 1 min)
    .venv/bin/python benchmarks/affinity_scale.py             # 5000, 20000 and 50000 records
    .venv/bin/python benchmarks/affinity_scale.py --sizes 1000,4000 --method pairwise
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from taskgraph.cli.scripts import ScriptParser, positive_int, run_script

if TYPE_CHECKING:
    from taskgraph.affinity.estimators.base import AffinityEstimator
    from taskgraph.affinity.records import ScoreRecord

SIZE_WEIGHTS = {1: 0.15, 2: 0.45, 3: 0.25, 4: 0.15}  # as db_scale.py draws task sets
SEEDS = 3
METHODS = ("hoa", "pairwise", "setfn")


def synthetic_records(n: int, tasks: Sequence[str], seed: int = 0) -> list[ScoreRecord]:
    """Return ``n`` score records (about: whole runs) of random task sets of ``tasks``."""
    from taskgraph.affinity.records import ScoreRecord

    rng = random.Random(seed)
    level = {t: rng.uniform(0.4, 0.8) for t in tasks}
    effect = {(t, s): rng.gauss(0.0, 0.03) for t in tasks for s in tasks if s != t}
    records: list[ScoreRecord] = []
    run = 0

    def add(task_set: frozenset[str], seed_: int) -> None:
        nonlocal run
        run += 1
        for task in sorted(task_set):
            others = [effect[(task, s)] for s in task_set if s != task]
            value = level[task] + (sum(others) / len(others) if others else 0.0)
            records.append(
                ScoreRecord(task=task, task_set=task_set, value=value + rng.gauss(0.0, 0.01),
                            metric="acc", seed=seed_, run_id=run)
            )  # fmt: skip

    for task in tasks:  # every task's single-task baseline
        for seed_ in range(SEEDS):
            add(frozenset({task}), seed_)
    sizes, weights = list(SIZE_WEIGHTS), list(SIZE_WEIGHTS.values())
    while len(records) < n:
        size = min(rng.choices(sizes, weights=weights)[0], len(tasks))
        add(frozenset(rng.sample(list(tasks), size)), rng.randrange(SEEDS))
    return records


def per_call(function: Callable[[], object], repeats: int) -> float:
    """Return the median seconds of ``repeats`` calls of ``function``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def scan_evidence(estimator: AffinityEstimator, target: str, task_set: frozenset[str]) -> int:
    """Return ``n_evidence`` as a scan of every gain (the estimators' count before the index)."""
    from taskgraph.affinity.estimators.pairwise import _PairBased
    from taskgraph.affinity.gain_queries import evidence_runs

    gains = estimator.table.gains
    auxiliaries = task_set - {target}
    if isinstance(estimator, _PairBased):
        return evidence_runs(
            g for g in gains
            if g.target == target and len(g.auxiliaries) == 1 and g.auxiliaries <= auxiliaries
        )  # fmt: skip
    return evidence_runs(g for g in gains if g.target == target and g.auxiliaries & auxiliaries)


def rank_scanned(estimator: AffinityEstimator, target: str, *, evidence_only: bool) -> list[int]:
    """Rank as :func:`rank_auxiliaries` did before the index: every set it scores, the beam's
    included, has its evidence counted by a scan of every gain; return the top 5 sets' runs."""
    import math

    import numpy as np

    from taskgraph.affinity import recommend

    pool = sorted(set(estimator.tasks) - {target})

    def score(batch: Sequence[frozenset[str]]) -> tuple[np.ndarray, list[int]]:
        means, _ = estimator.predict_many(target, batch)
        return means, [scan_evidence(estimator, target, s) for s in batch]

    total = sum(math.comb(len(pool), size) for size in range(1, len(pool) + 1))
    if total <= recommend.EXHAUSTIVE_LIMIT:
        sets = list(recommend._enumerate(pool, len(pool)))
    else:
        sets = recommend._beam(pool, len(pool), lambda batch: score(batch)[0])
    means, evidence = score(sets)
    kept = [i for i in range(len(sets)) if not evidence_only or evidence[i] > 0]
    order = sorted(kept, key=lambda i: (-means[i], len(sets[i]), sorted(sets[i])))[:5]
    return [evidence[i] for i in order]


def measure(n: int, args: argparse.Namespace) -> dict[str, float]:
    """Return the figures of one size: fit, rank, graph and evidence seconds."""
    from taskgraph.affinity import recommend
    from taskgraph.affinity.estimators.base import make_estimator
    from taskgraph.affinity.gains import compute_gains
    from taskgraph.affinity.graph import affinity_graph

    tasks = [f"task{i:02d}" for i in range(args.tasks)]
    records = synthetic_records(n, tasks)
    start = time.perf_counter()
    table = compute_gains(records)
    estimator = make_estimator(args.method).fit_gains(table)
    fit = time.perf_counter() - start
    target = tasks[0]
    evidence_only = args.method in ("hoa", "pairwise")  # as `affinity top` ranks them
    found, _ = recommend.rank_auxiliaries(estimator, target, 5, evidence_only=evidence_only)
    rank = per_call(
        lambda: recommend.rank_auxiliaries(estimator, target, 5, evidence_only=evidence_only),
        args.repeats,
    )
    graph = per_call(lambda: affinity_graph(estimator), args.repeats)
    assert rank_scanned(estimator, target, evidence_only=evidence_only) == [
        r.evidence_runs for r in found
    ], "the ranking with scanned evidence differs"
    scanned_rank = per_call(lambda: rank_scanned(estimator, target, evidence_only=evidence_only), 1)
    pool = [t for t in tasks if t != target]
    sets = list(recommend._enumerate(pool, 3))[: args.sets]
    assert all(
        estimator.n_evidence(target, s) == scan_evidence(estimator, target, s) for s in sets
    ), "the indexed evidence differs from the scan"
    indexed = per_call(lambda: [estimator.n_evidence(target, s) for s in sets], args.repeats)
    scanned = per_call(lambda: [scan_evidence(estimator, target, s) for s in sets], 1)
    figures = {
        "records": float(len(records)),
        "gains": float(len(table.gains)),
        "fit_s": fit,
        "rank_s_per_call": rank,
        "rank_scanned_s_per_call": scanned_rank,
        "graph_s_per_call": graph,
        "evidence_indexed_s_per_set": indexed / len(sets),
        "evidence_scan_s_per_set": scanned / len(sets),
    }
    print(
        f"records={len(records)} gains={len(table.gains)} tasks={args.tasks} "
        f"method={args.method} top={'+'.join(found[0].auxiliaries) if found else '-'}",
        flush=True,
    )
    for key, value in figures.items():
        if key.endswith("_s") or "_s_" in key:
            print(f"  {key}: {value:.6f}", flush=True)
    print(f"  rank_scanned_over_indexed: {scanned_rank / max(rank, 1e-12):.1f}", flush=True)
    print(
        "  evidence_scan_over_indexed: "
        f"{figures['evidence_scan_s_per_set'] / max(figures['evidence_indexed_s_per_set'], 1e-12):.1f}",
        flush=True,
    )
    return figures


def parse_sizes(text: str) -> list[int]:
    """An argparse ``type``: comma-separated record counts, each >= 100, at least one."""
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None
    if not sizes or min(sizes) < 100:
        raise argparse.ArgumentTypeError(f"needs record counts >= 100, got {text!r}")
    return sorted(set(sizes))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ScriptParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2000 and 8000 records")
    parser.add_argument(
        "--sizes", type=parse_sizes, help="record counts (default 5000,20000,50000)"
    )
    parser.add_argument("--tasks", type=positive_int, default=20, help="tasks (default 20)")
    parser.add_argument("--method", choices=METHODS, default="hoa", help="estimator (hoa)")
    parser.add_argument(
        "--repeats", type=positive_int, default=3, help="calls timed per figure (3)"
    )
    parser.add_argument(
        "--sets", type=positive_int, default=300, help="sets whose evidence is timed (300)"
    )
    args = parser.parse_args(argv)
    if args.tasks < max(SIZE_WEIGHTS):
        parser.error(f"--tasks {args.tasks}: needs at least {max(SIZE_WEIGHTS)} tasks")
    if args.sizes is None:
        args.sizes = [2000, 8000] if args.quick else [5000, 20000, 50000]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = [measure(n, args) for n in args.sizes]
    first = results[0]
    for later in results[1:]:
        scale = later["records"] / first["records"]
        parts = "  ".join(
            f"{key.removesuffix('_s_per_call')}={later[key] / first[key]:.2f}x"
            for key in ("rank_s_per_call", "rank_scanned_s_per_call", "graph_s_per_call")
        )
        print(
            f"ratio {int(later['records'])} vs {int(first['records'])} records "
            f"({scale:.1f}x the records, {later['gains'] / first['gains']:.2f}x the gains): {parts}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))
