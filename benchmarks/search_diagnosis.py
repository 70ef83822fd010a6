"""Where the graph-guided sampler spends its trials on a published table, target by target.

Issue 16, item 2 asks why the graph sampler is not faster than the AutoSeM-style bandit on
ETTm1 and MIMIC-27.  For each target this prints what the table offers a search and what the
graph sampler and the bandit do with it:

* the best set (its size and relative gain), the baseline's rank among the target's sets and
  the mean standardised value of the sets of each size (how much set size alone says);
* ``R2 additive``: the in-sample R^2 of an ordinary least-squares fit of the target's values
  on one indicator per auxiliary (how much of the landscape any additive model can explain;
  with ``n`` candidates and ``m`` sets, chance alone gives about ``n / (m - 1)``);
* where the best single stands in the start-up order (the popular-source prior of the other
  targets' rows, as ``benchmarks/affinity_bench.py`` gives it);
* the graph sampler's trials per seed, how many of them were start-up trials (the baseline and
  the singles) and whether the best set was found during the start-up; the bandit's trials
  and the sizes of the sets it proposed.

    .venv/bin/python benchmarks/search_diagnosis.py --table ettm1 --seeds 5
    .venv/bin/python benchmarks/search_diagnosis.py --table mimic27 --seeds 2 --first-seed 100

Default seeds start at 100, the selection seeds: the search benchmark reports seeds from 0.
The end is ``name: value`` lines: ``runs`` (targets x seeds), ``graph_median_trials``,
``bandit_median_trials`` and ``graph_found_in_startup`` (runs whose best set the graph sampler
proposed during its start-up).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence

import numpy as np
import optuna

from taskgraph.affinity.converters import convert
from taskgraph.affinity.longtable import LongTable
from taskgraph.cli.scripts import ScriptParser, nonnegative_int, positive_int, run_script
from taskgraph.search.benchmarking import (
    SEARCH_TRIAL_CAPS,
    benchmark_spec,
    best_single,
    popular_order,
    search_candidates,
    search_max_size,
)
from taskgraph.search.heartbeat import optuna_warnings_only, quiet_optuna
from taskgraph.search.samplers import build_sampler
from taskgraph.search.space import SearchSpace


def trace(
    table: LongTable, target: str, sampler: str, *, seed: int, cap: int, options: dict | None
) -> tuple[list[frozenset[str]], bool]:
    """Return the sets proposed until the best one (included) and whether it was found."""
    bound = search_max_size(table, target)
    spec = benchmark_spec(
        table, target, sampler=sampler, seed=seed, max_size=bound, max_trials=cap,
        sampler_options=options,
    )  # fmt: skip
    rows = [
        r for r in table
        if r.target == target and r.split == "val" and (bound is None or len(r.auxiliaries) <= bound)
    ]  # fmt: skip
    best_value = (max if rows[0].higher_is_better else min)(r.value for r in rows)
    best = {r.auxiliaries for r in rows if r.value == best_value}
    space = SearchSpace(spec=spec, sharing_spaces={n: {} for n in spec.search.sharing})
    proposed: list[frozenset[str]] = []
    with quiet_optuna(), optuna_warnings_only():  # no "A new study created" line per trace
        study = optuna.create_study(direction=spec.objective.direction, sampler=build_sampler(spec))
        study.enqueue_trial(space.baseline_params(), user_attrs=space.baseline_user_attrs())
        for _ in range(cap):
            trial = study.ask()
            auxiliaries = frozenset(space.suggest(trial).auxiliaries)
            proposed.append(auxiliaries)
            if auxiliaries in best:
                return proposed, True
            row = table.get(target, auxiliaries, "val")
            if row is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, row.value)
    return proposed, False


def landscape(table: LongTable, target: str) -> dict[str, object]:
    """Return what the table offers a search of ``target`` (module docstring)."""
    bound = search_max_size(table, target)
    candidates = search_candidates(table, target)
    rows = [
        r for r in table
        if r.target == target and r.split == "val" and (bound is None or len(r.auxiliaries) <= bound)
    ]  # fmt: skip
    sign = 1.0 if rows[0].higher_is_better else -1.0
    values = np.array([sign * r.value for r in rows])
    z = (values - values.mean()) / (values.std() or 1.0)
    sizes = np.array([len(r.auxiliaries) for r in rows])
    design = np.array([[1.0] + [float(c in r.auxiliaries) for c in candidates] for r in rows])
    coef, *_ = np.linalg.lstsq(design, z, rcond=None)
    r2 = 1.0 - float(((z - design @ coef) ** 2).mean()) / float(z.var() or 1.0)
    order = np.argsort(-values, kind="stable")
    best = rows[int(order[0])]
    base = next(r for r in rows if not r.auxiliaries)
    return {
        "best": sorted(best.auxiliaries),
        "gain": sign * (best.value - base.value) / abs(base.value),
        "baseline_rank": [rows[i] for i in order].index(base) + 1,
        "n_sets": len(rows),
        "by_size": {int(k): round(float(z[sizes == k].mean()), 2) for k in np.unique(sizes)},
        "r2": r2,
        "chance_r2": len(candidates) / max(len(rows) - 1, 1),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = ScriptParser(description=__doc__)
    parser.add_argument("--table", default="ettm1", choices=sorted(SEARCH_TRIAL_CAPS))
    parser.add_argument("--seeds", type=positive_int, default=5)
    parser.add_argument("--first-seed", type=nonnegative_int, default=100)
    args = parser.parse_args(argv)
    table = convert(args.table)
    cap = SEARCH_TRIAL_CAPS[args.table]
    records = table.to_records(split="val")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    totals: dict[str, list[int]] = {"graph": [], "bandit": []}
    startup_hits = 0
    for target in table.targets:
        info = landscape(table, target)
        order, prior = popular_order(table, target, records)
        n_startup = 1 + len(order)  # the baseline, then every candidate alone
        best = best_single(table, target)
        graph, bandit = [], []
        in_startup = 0
        bandit_sizes: Counter[int] = Counter()
        for seed in seeds:
            proposed, _ = trace(table, target, "graph", seed=seed, cap=cap,
                                options={"startup_scores": prior})  # fmt: skip
            graph.append(len(proposed))
            in_startup += len(proposed) <= n_startup and len(proposed[-1]) <= 1
            proposed, _ = trace(table, target, "bandit", seed=seed, cap=cap, options=None)
            bandit.append(len(proposed))
            bandit_sizes.update(len(s) for s in proposed[1:])
        totals["graph"] += graph
        totals["bandit"] += bandit
        startup_hits += in_startup
        print(
            f"{target}: best {'+'.join(info['best'])} (size {len(info['best'])}, gain "  # type: ignore[arg-type]
            f"{info['gain']:+.3f}), baseline rank {info['baseline_rank']}/{info['n_sets']}, "
            f"R2 additive {info['r2']:.2f} (chance ~{info['chance_r2']:.2f}), "
            f"z by size {info['by_size']}; best single {best} at {order.index(best) + 1}"
            f"/{len(order)} of the start-up order\n"
            f"    graph {graph} (start-up {n_startup} trials; found in it {in_startup}/{len(seeds)})"
            f"  bandit {bandit} (sizes proposed {dict(sorted(bandit_sizes.items()))})",
            flush=True,
        )
    runs = len(totals["graph"])
    print(
        f"median trials over {runs} runs: graph {statistics.median(totals['graph'])}, "
        f"bandit {statistics.median(totals['bandit'])}; graph found the best set during its "
        f"start-up in {startup_hits} of {runs}"
    )
    # The summary, as every script of benchmarks/ ends: name: value lines.
    print(f"runs: {runs}")
    print(f"graph_median_trials: {statistics.median(totals['graph'])}")
    print(f"bandit_median_trials: {statistics.median(totals['bandit'])}")
    print(f"graph_found_in_startup: {startup_hits}")


if __name__ == "__main__":
    raise SystemExit(run_script(main))
