"""Graph-sampler variants against the default and the bandit on a published table, per target.

Issue 16, item 2: on MIMIC-27's single-auxiliary search the default graph sampler is only as
fast as its start-up order.  The ``sourcerank`` variant starts with the baseline and the
popular-source prior's top 3 sources, then fits ``sourcerank`` (collaborative filtering over
the other targets' pair gains, with the target's observed entries) and samples from it, refitted
every trial (``sampler.options: {estimator: sourcerank, n_startup_trials: 4}``, the other
targets' single and pair rows as ``prior_records``, as a study with earlier studies in the
domain would have).  Each run prints one JSON line (``--out`` appends them to a file, so a
stopped run can be continued with other seeds); the end prints the median trials to the best
set per variant with a 90 % bootstrap interval (targets, then runs), and the paired
difference from the default (per target, the mean over common seeds, ± its standard error over
targets).

    .venv/bin/python benchmarks/search_variants.py --table mimic27 --seeds 100,101,102

``--places`` prints where the start-up orders (the popular-source prior; the same with the
target's own task family, its name up to the first ``_``, first or last) put each target's best
single source, on validation and test.

``graph_bma`` is the graph sampler with ``setfn``'s ``pooling="bma"`` (the estimator's default
since 2026-12-06; the sampler's own default is ``mean``).

Seeds from 100 are selection seeds (``benchmarks/affinity_bench.py`` reports seeds from 0).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from taskgraph.affinity.converters import convert
from taskgraph.affinity.longtable import LongTable
from taskgraph.affinity.records import ScoreRecord
from taskgraph.cli.scripts import ScriptParser, nonnegative_int, run_script
from taskgraph.search.benchmarking import (
    SEARCH_TRIAL_CAPS,
    SearchRun,
    best_single,
    median_interval,
    paired_trials,
    popular_order,
    run_search,
    runs_by_target,
    search_candidates,
    search_max_size,
)
from taskgraph.search.graph_sampler import popular_source_scores

VARIANTS = ("sourcerank", "graph", "graph_bma", "bandit")


def run_variant(
    table: LongTable,
    target: str,
    variant: str,
    *,
    seed: int,
    cap: int,
    records: Sequence[ScoreRecord],
) -> int:
    """Return the trials ``variant`` takes to propose ``target``'s best set (``cap`` if never).

    ``records`` are the table's validation records (``table.to_records(split="val")``).
    """
    options: dict[str, Any] = {}
    prior = None
    if variant in ("graph", "graph_bma", "sourcerank"):
        candidates = search_candidates(table, target)
        startup = popular_source_scores(candidates, target=target, prior_records=records)
        options["startup_scores"] = startup
    if variant == "graph_bma":  # setfn's own default pooling (the sampler keeps mean)
        options["estimator_options"] = {"pooling": "bma"}
    if variant == "sourcerank":
        options.update(estimator="sourcerank", n_startup_trials=4)
        prior = [r for r in records if r.task != target and len(r.task_set) <= 2]
    run = run_search(
        table, target, "graph" if variant in ("sourcerank", "graph_bma") else variant, seed=seed,
        max_trials=cap, max_size=search_max_size(table, target), prior_records=prior,
        sampler_options=options,
    )  # fmt: skip
    return run.trials


def family(task: str) -> str:
    """Return a task's family: its name up to the first ``_`` (MIMIC: icd, mort, dnr, cmo, ...)."""
    return task.split("_")[0]


def best_source_places(table: LongTable, split: str) -> dict[str, list[int]]:
    """Return, per start-up order, the place (1 = first) of each target's best single source.

    The orders: the popular-source prior of the other targets' ``split`` rows (what ``graph``
    starts with); the same with the target's own family first; and with it last.  A search
    of single auxiliaries takes 1 + the place trials when its start-up is that order.
    """
    records = table.to_records(split=split)
    out: dict[str, list[int]] = {"popular": [], "family_first": [], "family_last": []}
    for target in table.targets:
        popular, prior = popular_order(table, target, records, split=split)
        best = best_single(table, target, split=split)
        mine = family(target)
        orders = {
            "popular": popular,
            "family_first": sorted(popular, key=lambda t: (family(t) != mine, -prior.get(t, 0.0))),
            "family_last": sorted(popular, key=lambda t: (family(t) == mine, -prior.get(t, 0.0))),
        }  # fmt: skip
        for name, order in orders.items():
            out[name].append(order.index(best) + 1)
    return out


def summarize(lines: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Return per variant the runs, the median trials and its 90 % interval, and the paired difference from ``graph``.

    The interval resamples targets, then runs; the paired difference is per target (the mean
    over the seeds both ran), with its standard error over targets
    (:func:`~taskgraph.search.benchmarking.paired_trials`).
    """
    rng = np.random.default_rng(0)
    runs = [SearchRun(r["variant"], r["target"], int(r["seed"]), int(r["trials"]), 0, True)
            for r in lines]  # fmt: skip
    out: dict[str, Any] = {}
    for variant in dict.fromkeys(r.sampler for r in runs):
        per_target = [list(t.values()) for t in runs_by_target(runs, variant).values()]
        paired = paired_trials(runs, variant, "graph") if variant != "graph" else None
        out[variant] = {
            "runs": sum(len(t) for t in per_target),
            "median_trials": float(statistics.median(v for t in per_target for v in t)),
            "interval_90": list(median_interval(per_target, rng=rng)),
            "vs_graph": paired,
        }
    return out


def seed_list(text: str) -> list[int]:
    """An argparse ``type``: comma-separated sampler seeds, each an integer >= 0."""
    return [nonnegative_int(part.strip()) for part in text.split(",")]


def read_lines(path: Path, parser: argparse.ArgumentParser) -> list[dict[str, Any]]:
    """Return the JSON lines of ``--summary-of``; an unreadable file or line is a usage error."""
    try:
        text = path.read_text()
    except OSError as error:
        parser.error(f"--summary-of: cannot read {path}: {error.strerror or error}")
    stored = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            parser.error(f"--summary-of: {path}, line {number}: not JSON ({error.msg})")
        if not isinstance(row, dict):
            parser.error(f"--summary-of: {path}, line {number}: expected a JSON object")
        stored.append(row)
    return stored


def main(argv: Sequence[str] | None = None) -> None:
    parser = ScriptParser(description=__doc__)
    parser.add_argument("--table", default="mimic27", choices=sorted(SEARCH_TRIAL_CAPS))
    parser.add_argument("--seeds", type=seed_list, default=[100],
                        help="comma-separated sampler seeds (integers >= 0)")  # fmt: skip
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated, of {VARIANTS} and the other SAMPLERS names")  # fmt: skip
    parser.add_argument("--targets", default=None, help="comma-separated (default every target)")
    parser.add_argument("--out", type=Path, default=None, help="append the JSON lines here")
    parser.add_argument("--summary-of", type=Path, default=None,
                        help="only print the summary of the JSON lines in this file (no runs)")  # fmt: skip
    parser.add_argument("--places", action="store_true",
                        help="only print where each start-up order puts each target's best single source")  # fmt: skip
    args = parser.parse_args(argv)
    if args.places:
        table = convert(args.table)
        for split in [split for split in ("val", "test") if split in table.splits]:
            for name, places in best_source_places(table, split).items():
                print(f"{args.table}_{split}_best_source_place_{name}: median "
                      f"{statistics.median(places):g}, mean {np.mean(places):.1f} over {len(places)} targets")  # fmt: skip
        return
    if args.summary_of is not None:
        stored = read_lines(args.summary_of, parser)
        report(args.table, [r for r in stored if r.get("table", args.table) == args.table])
        return
    try:  # before any run: a file that cannot be written is an error now, not after an hour
        out = args.out.open("a") if args.out else None
    except OSError as error:
        parser.error(f"--out: cannot append to {args.out}: {error.strerror or error}")
    table = convert(args.table)
    records = table.to_records(split="val")
    targets = args.targets.split(",") if args.targets else list(table.targets)
    lines: list[dict[str, Any]] = []
    try:
        for seed in args.seeds:
            for target in targets:
                for variant in args.variants.split(","):
                    start = time.perf_counter()
                    trials = run_variant(
                        table, target, variant, seed=seed, cap=SEARCH_TRIAL_CAPS[args.table],
                        records=records,
                    )  # fmt: skip
                    line = {"table": args.table, "variant": variant, "target": target,
                            "seed": seed, "trials": trials,
                            "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
                    lines.append(line)
                    print(json.dumps(line), flush=True)
                    if out is not None:
                        out.write(json.dumps(line) + "\n")
                        out.flush()
    finally:
        if out is not None:
            out.close()
    report(args.table, lines)


def report(table: str, lines: Sequence[dict[str, Any]]) -> None:
    """Print ``<table>_trials_to_best_<variant>: median [90 % interval]`` and the paired difference."""
    for variant, summary in summarize(lines).items():
        low, high = summary["interval_90"]
        paired = summary["vs_graph"]
        versus = "" if paired is None else f", vs graph {paired.text()}"
        print(f"{table}_trials_to_best_{variant}: {summary['median_trials']:g} "
              f"[{low:g}, {high:g}] over {summary['runs']} runs{versus}")  # fmt: skip
    sys.stdout.flush()


if __name__ == "__main__":
    raise SystemExit(run_script(main))
