"""benchmarks/affinity_bench.py's search section: medians with their bootstrap interval and the
graph-guided sampler's paired difference from each baseline (Taskonomy's 5 targets and Bingel's
10, 2 seeds)."""

from __future__ import annotations

import math
from collections.abc import Callable
from types import ModuleType

import pytest


@pytest.fixture(scope="module")
def module(benchmark_script: Callable[[str], ModuleType]) -> ModuleType:
    return benchmark_script("affinity_bench.py")


@pytest.mark.parametrize(("table", "targets", "cap"), [("taskonomy5", 5, 64), ("bingel", 10, 36)])
def test_search_prints_intervals_and_paired_differences(
    module: ModuleType, capsys: pytest.CaptureFixture[str], table: str, targets: int, cap: int
) -> None:
    # Taskonomy is searched over every subset, Bingel's pairs-only table over single sources.
    module.search(quick=True, tables=[table])
    captured = capsys.readouterr()
    values = {
        name: float(value)
        for name, value in (line.split(": ") for line in captured.out.strip().splitlines())
    }
    for sampler in module.BENCH_SAMPLERS:
        median = values[f"{table}_trials_to_best_{sampler}"]
        low = values[f"{table}_trials_to_best_{sampler}_lo90"]
        high = values[f"{table}_trials_to_best_{sampler}_hi90"]
        assert 1 <= low <= median <= high <= cap
    for baseline in module.BENCH_SAMPLERS[1:]:
        mean = values[f"{table}_trials_paired_graph_vs_{baseline}"]
        se = values[f"{table}_trials_paired_graph_vs_{baseline}_se"]
        assert math.isfinite(mean) and se >= 0
        assert f"# search {table} graph - {baseline}: " in captured.err
    # --quick runs every sampler on every target (GP too), so each pairing covers all of them.
    assert captured.err.count(f"trials over {targets} targets") == len(module.BENCH_SAMPLERS) - 1
