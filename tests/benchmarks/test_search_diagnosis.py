"""``benchmarks/search_diagnosis.py`` on a small synthetic table with a known landscape."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from taskgraph.affinity.longtable import LongRow, LongTable

EFFECTS = {"a": 0.30, "b": 0.10, "c": -0.20}  # additive: the best set is {a, b}


@pytest.fixture(scope="module")
def diagnosis(benchmark_script: Callable[[str], ModuleType]) -> ModuleType:
    return benchmark_script("search_diagnosis.py")


def _table() -> LongTable:
    rows = []
    for target in ("t", "u"):
        others = [x for x in (*EFFECTS, "t", "u") if x != target and x in EFFECTS]
        for size in range(len(others) + 1):
            for subset in itertools.combinations(others, size):
                value = 1.0 + sum(EFFECTS[x] for x in subset)
                rows.append(LongRow(target, frozenset({target, *subset}), "val", value, True))
    return LongTable(rows, source="synthetic")


def test_landscape_reads_an_additive_table(diagnosis: ModuleType) -> None:
    info = diagnosis.landscape(_table(), "t")
    assert info["best"] == ["a", "b"]
    assert info["gain"] == pytest.approx(0.40)
    assert info["n_sets"] == 8
    assert info["baseline_rank"] == 6  # {a,b}, {a}, {a,b,c}, {b}, {a,c} beat it
    assert info["r2"] == pytest.approx(1.0)  # every value is a sum of per-task effects
    assert info["by_size"][1] < info["by_size"][2]


def test_trace_stops_at_the_best_set(diagnosis: ModuleType) -> None:
    proposed, found = diagnosis.trace(_table(), "t", "random", seed=0, cap=64, options=None)
    assert found
    assert proposed[0] == frozenset()  # the baseline trial comes first
    assert proposed[-1] == frozenset({"a", "b"})
    assert frozenset({"a", "b"}) not in proposed[:-1]


def test_the_script_ends_with_name_value_lines_and_logs_no_optuna_study(
    benchmarks_dir: Path,
) -> None:
    """It ended with a sentence, and wrote Optuna's "A new study created" line per trace to
    stderr."""
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "search_diagnosis.py"
    done = subprocess.run(
        [sys.executable, str(script), "--table", "taskonomy5", "--seeds", "1"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "TASKGRAPH_BENCHMARKS": str(benchmarks_dir)},
    )  # fmt: skip
    assert done.returncode == 0 and done.stderr == ""
    summary = dict(line.split(": ") for line in done.stdout.strip().splitlines()[-4:])
    assert list(summary) == [
        "runs", "graph_median_trials", "bandit_median_trials", "graph_found_in_startup"
    ]  # fmt: skip
    assert int(summary["runs"]) == 5  # Taskonomy's 5 targets x 1 seed
    assert 0 <= int(summary["graph_found_in_startup"]) <= 5
    assert float(summary["graph_median_trials"]) >= 1
