"""Affinity estimators, groupings and the graph-guided sampler on published results.

Prints ``name: value`` lines, each beside its baseline measured in the same run.  Validation
numbers are used for fitting and choosing, test numbers only for scoring (single-split tables,
TaskWeb and Bingel, are scored on their one split with the target's row held out).

    .venv/bin/python benchmarks/affinity_bench.py            # everything (about 8 minutes on 2 cores)
    .venv/bin/python benchmarks/affinity_bench.py --quick    # fewer seeds
    .venv/bin/python benchmarks/affinity_bench.py --only ettm1,standley

Sections:

* ``mimic27`` / ``ettm1``: Spearman between predicted and true per-task gains on groups of size
  >= 3, fitted on singles, pairs and 10 % of the larger groups (mean over fit seeds);
* ``standley``: total test loss of the grouping chosen at budgets 1-5 with at most 15 measured
  subsets (settings 1-3); ``_hoa`` is Standley's protocol, ``_optimum`` measures all 31;
* ``taskweb`` / ``bingel``: per-target Spearman, NDCG and Regret@3 of the source ranking when
  3 entries of the target's row are observed, against the popular-source prior;
* ``search``: trials until each ETTm1 target's best auxiliary set (of 64) is proposed: the
  graph-guided sampler, Optuna's TPE and random sampling, medians over seeds and targets.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence

import numpy as np
import optuna

from taskgraph.affinity.converters import convert
from taskgraph.affinity.evaluation import (
    evaluate_gain_prediction,
    evaluate_grouping,
    evaluate_source_ranking,
)
from taskgraph.cli.bench import SAMPLER_FACTORIES, search_candidates, trials_to_best

SECTIONS = ("mimic27", "ettm1", "standley", "taskweb", "bingel", "search")


def emit(name: str, value: float | int | str) -> None:
    text = f"{value:.5f}" if isinstance(value, float) else str(value)
    print(f"{name}: {text}", flush=True)


def log(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


def gain_prediction(name: str, seeds: int) -> None:
    table = convert(name)
    per: dict[str, list[tuple[float, float]]] = {"setfn": [], "hoa": []}
    start = time.perf_counter()
    for seed in range(seeds):
        result = evaluate_gain_prediction(table, ["setfn", "hoa"], fit_fraction=0.1, seed=seed)
        for method in per:
            per[method].append((result[method]["spearman_val"], result[method]["spearman"]))
    log(f"{name}: {seeds} fit seeds in {time.perf_counter() - start:.0f} s, {result['n_queries']} held-out (task, group) pairs")
    setfn, hoa = np.mean(per["setfn"], axis=0), np.mean(per["hoa"], axis=0)
    emit(f"{name}_spearman", float(setfn[1]))
    emit(f"{name}_spearman_hoa", float(hoa[1]))
    emit(f"{name}_spearman_ratio", float(setfn[1] / hoa[1]))
    emit(f"{name}_spearman_val", float(setfn[0]))
    emit(f"{name}_spearman_val_hoa", float(hoa[0]))
    emit(f"{name}_spearman_sd_over_seeds", float(np.std([t for _, t in per["setfn"]])))


def standley(budgets: Sequence[int]) -> None:
    for setting in (1, 2, 3):
        table = convert(f"standley_s{setting}")
        runs = {
            "": evaluate_grouping(table, "setfn", budgets=budgets, strategy="pairs"),
            "_hoa": evaluate_grouping(table, "hoa", budgets=budgets, strategy="pairs"),
            "_adaptive": evaluate_grouping(table, "setfn", budgets=budgets, strategy="adaptive"),
            "_optimum": evaluate_grouping(table, "hoa", budgets=budgets, strategy="optimum"),
        }
        for budget in budgets:
            for suffix, result in runs.items():
                emit(f"standley_s{setting}_budget{budget}_loss{suffix}", result[budget]["total"])


def source_ranking(name: str, seeds: int) -> None:
    start = time.perf_counter()
    result = evaluate_source_ranking(convert(name), ["setfn"], n_observed=3, seeds=range(seeds))
    log(f"{name}: {result['n_targets']} targets x {seeds} seeds in {time.perf_counter() - start:.0f} s")
    for metric in ("spearman", "ndcg", "regret@3"):
        key = metric.replace("@", "_at_")
        emit(f"{name}_{key}", result["setfn"][metric])
        emit(f"{name}_{key}_prior", result["prior"][metric])


def search(seeds: int, max_trials: int, first_seed: int = 0) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    table = convert("ettm1")
    medians = {}
    for name in ("graph", "tpe", "random"):
        start = time.perf_counter()
        counts = [
            trials_to_best(table, target, SAMPLER_FACTORIES[name](target, search_candidates(table, target), seed),
                           max_trials=max_trials)
            for target in table.targets
            for seed in range(first_seed, first_seed + seeds)
        ]
        medians[name] = float(statistics.median(counts))
        log(f"search {name}: mean {np.mean(counts):.1f}, {sum(c >= max_trials for c in counts)} never found, "
            f"{time.perf_counter() - start:.0f} s")  # fmt: skip
    for name, value in medians.items():
        emit(f"ettm1_trials_to_best_{name}", value)
    emit("ettm1_trials_to_best_ratio_graph_vs_random", medians["graph"] / medians["random"])
    emit("ettm1_trials_to_best_ratio_graph_vs_tpe", medians["graph"] / medians["tpe"])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer seeds (a smoke run, not the reported numbers)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {SECTIONS}")
    parser.add_argument("--first-seed", type=int, default=0, help="first sampler seed of the search section")
    args = parser.parse_args(argv)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; known: {', '.join(SECTIONS)}")
    quick = args.quick
    if "mimic27" in only:
        gain_prediction("mimic27", seeds=1 if quick else 5)
    if "ettm1" in only:
        gain_prediction("ettm1", seeds=3 if quick else 20)
    if "standley" in only:
        standley([5] if quick else [1, 2, 3, 4, 5])
    if "taskweb" in only:
        source_ranking("taskweb", seeds=1 if quick else 5)
    if "bingel" in only:
        source_ranking("bingel", seeds=3 if quick else 20)
    if "search" in only:
        search(seeds=2 if quick else 20, max_trials=300, first_seed=args.first_seed)


if __name__ == "__main__":
    main()
