"""Which 15 trainings to spend on Standley's grouping problem, and what setting 1's goal needs.

Issue 16, item 4 asks for a total test loss <= 0.4360 on Standley et al.'s setting 1 at
budget 5 with at most 15 of the 31 task subsets trained.  This script measures, on all four
settings and budgets 2-5, the regret (chosen grouping minus the grouping chosen with all 31
measured) of each measurement design (``pairs``: the 5 singles and 10 pairs, Standley's HOA
protocol and the benchmark's; ``triples``: the singles and 10 triples) with each way of
filling in the unmeasured subsets (``measured``: none, choose among the measured; ``hoa``;
``setfn``).  Validation regret is the selection criterion; test regret is printed beside it.
It then counts, for setting 1 at budget 5, how many of all groupings reach the goal on test
and which subsets they use, and ends with ``name: value`` lines: each design/method's mean
regrets (``pairs_setfn_val_regret``, ``..._test_regret``) and that count
(``standley_s1_budget5_groupings_at_goal``).

    .venv/bin/python benchmarks/grouping_designs.py        # about 10 s
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Mapping, Sequence

import numpy as np

from taskgraph.affinity.converters import convert
from taskgraph.affinity.evaluation import evaluate_grouping
from taskgraph.affinity.grouping import candidate_task_sets
from taskgraph.affinity.longtable import LongTable
from taskgraph.cli.scripts import ScriptParser, positive_int, run_script
from taskgraph.errors import ConfigError

DESIGNS = ("pairs", "triples")
METHODS = ("measured", "hoa", "setfn")
GOAL = 0.4360  # issue 16: setting 1, budget 5, total test loss
SETTINGS = (1, 2, 3, 4)  # Standley et al.'s settings, converted as standley_s<n>


def budget_list(text: str) -> list[int]:
    """An argparse ``type``: comma-separated budgets in networks, each an integer >= 1."""
    return [positive_int(part.strip()) for part in text.split(",")]


def setting_list(text: str) -> list[int]:
    """An argparse ``type``: comma-separated Standley settings, each of :data:`SETTINGS`."""
    settings = budget_list(text)
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"expected settings of {', '.join(map(str, SETTINGS))}, got {unknown[0]}"
        )
    return settings


def regrets(table: LongTable, budgets: Sequence[int]) -> dict[str, dict[int, tuple[float, float]]]:
    """Return ``design/method -> budget -> (val regret, test regret)``; budgets a design cannot cover are left out."""
    optimum = evaluate_grouping(table, "hoa", budgets=budgets, strategy="optimum")
    out: dict[str, dict[int, tuple[float, float]]] = {}
    for design, method in itertools.product(DESIGNS, METHODS):
        per: dict[int, tuple[float, float]] = {}
        for budget in budgets:
            try:
                chosen = evaluate_grouping(table, method, budgets=[budget], strategy=design)[budget]
            except ConfigError:  # the measured networks cannot cover the tasks within the budget
                continue
            best = optimum[budget]
            per[budget] = (
                chosen["val_total"] - best["val_total"],
                chosen["total"] - best["total"],
            )
        out[f"{design}/{method}"] = per
    return out


def groupings_below(
    table: LongTable, budget: int, threshold: float
) -> list[tuple[float, float, tuple[frozenset[str], ...]]]:
    """Return ``(val total, test total, networks)`` of every grouping of at most ``budget`` networks whose test total is at most ``threshold``.

    Each task is served by its best chosen network on validation (the grouping's rule); a
    grouping with a network that serves no task is left out (it is the smaller one's copy).
    """
    val, test = table.networks("val"), table.networks("test")
    tasks = table.tasks
    networks = candidate_task_sets(tasks)
    found = []
    for size in range(1, budget + 1):
        for combo in itertools.combinations(networks, size):
            if set(tasks) - set().union(*combo):
                continue
            serve = {t: min((n for n in combo if t in n), key=lambda n: val[n][t]) for t in tasks}
            if len(set(serve.values())) < size:
                continue
            test_total = sum(test[serve[t]][t] for t in tasks)
            if test_total <= threshold:
                found.append((sum(val[serve[t]][t] for t in tasks), test_total, combo))
    return sorted(found, key=lambda f: f[0])


def _short(network: frozenset[str], tasks: Sequence[str]) -> str:
    return (
        "".join(t[0] for t in sorted(network))
        if len({t[0] for t in tasks}) == len(tasks)
        else "+".join(sorted(network))
    )


def _print_regrets(
    per_setting: Mapping[int, Mapping[str, Mapping[int, tuple[float, float]]]],
) -> dict[str, tuple[float, float]]:
    """Print each design/method's regrets by cell; return its mean (val, test) regret."""
    names = list(next(iter(per_setting.values())))
    means: dict[str, tuple[float, float]] = {}
    for name in names:
        cells = {(s, b): v for s, table in per_setting.items() for b, v in table[name].items()}
        if not cells:
            continue
        val = [v for v, _ in cells.values()]
        test = [t for _, t in cells.values()]
        means[name] = (float(np.mean(val)), float(np.mean(test)))
        listed = " ".join(f"s{s}b{b} {v * 1e3:4.1f}" for (s, b), (v, _) in sorted(cells.items()))
        print(
            f"{name:16s} val regret x1e3 mean {np.mean(val) * 1e3:5.2f} "
            f"(test {np.mean(test) * 1e3:5.2f}; {len(cells)} cells): {listed}"
        )
    return means


def main(argv: Sequence[str] | None = None) -> int:
    parser = ScriptParser(description=__doc__)
    parser.add_argument("--settings", type=setting_list, default="1,2,3,4",
                        help="Standley settings (default 1,2,3,4)")  # fmt: skip
    parser.add_argument("--budgets", type=budget_list, default="2,3,4,5",
                        help="budgets in networks (default 2,3,4,5)")  # fmt: skip
    args = parser.parse_args(argv)
    settings, budgets = args.settings, args.budgets
    per_setting = {s: regrets(convert(f"standley_s{s}"), budgets) for s in settings}
    means = _print_regrets(per_setting)
    found: list[tuple[float, float, tuple[frozenset[str], ...]]] = []
    if 1 in settings:
        table = convert("standley_s1")
        found = groupings_below(table, 5, GOAL)
        print(f"standley_s1 budget 5: {len(found)} groupings reach test <= {GOAL}:")
        for val_total, test_total, combo in found:
            print(
                f"  val {val_total:.5f} test {test_total:.5f}  "
                + " ".join(_short(n, table.tasks) for n in combo)
            )
    # The summary, as every script of benchmarks/ ends: name: value lines.
    for name, (val, test) in means.items():
        key = name.replace("/", "_")
        print(f"{key}_val_regret: {val:.5f}")
        print(f"{key}_test_regret: {test:.5f}")
    if 1 in settings:
        print(f"standley_s1_budget5_groupings_at_goal: {len(found)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))
