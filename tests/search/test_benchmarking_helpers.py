"""The helpers the search benchmarks share: a target's best single source, the start-up order, and
the spread and paired differences of trials to the best set."""

from __future__ import annotations

import math

import numpy as np
import pytest

from taskgraph.affinity.longtable import LongRow, LongTable
from taskgraph.errors import ConfigError
from taskgraph.search.benchmarking import (
    SearchRun,
    best_single,
    median_interval,
    paired_trials,
    popular_order,
    runs_by_target,
)


def _table(higher_is_better: bool) -> LongTable:
    values = {
        "a": {"b": 1.3, "c": 1.1, "d": 0.7},
        "b": {"a": 1.0, "c": 1.5, "d": 1.2},
        "c": {"a": 1.2, "b": 0.9, "d": 1.4},
    }
    rows = []
    for target, gains in values.items():
        rows.append(LongRow(target, frozenset({target}), "val", 1.0, higher_is_better))
        rows += [
            LongRow(target, frozenset({target, s}), "val", v, higher_is_better)
            for s, v in gains.items()
        ]
    rows.append(LongRow("a", frozenset({"a", "b", "c"}), "val", 9.0, higher_is_better))
    return LongTable(rows=rows, source="toy")


def test_best_single_follows_the_metric_direction_and_ignores_larger_sets() -> None:
    assert best_single(_table(True), "a") == "b"
    assert best_single(_table(False), "a") == "d"
    with pytest.raises(ConfigError, match=r"no single-auxiliary row of target 'd' on 'val'"):
        best_single(_table(True), "d")


def test_popular_order_ranks_by_the_other_targets_gains() -> None:
    table = _table(True)
    order, prior = popular_order(table, "a", table.to_records(split="val"))
    # Over b and c: d helps both (+0.2, +0.4), c helps b (+0.5), b hurts c (-0.1).
    assert order == ["c", "d", "b"]
    assert prior["c"] > prior["d"] > prior["b"]


def _runs(sampler: str, trials: dict[str, list[int]]) -> list[SearchRun]:
    return [
        SearchRun(sampler, target, seed, n, n, True)
        for target, per_seed in trials.items()
        for seed, n in enumerate(per_seed)
    ]


def test_paired_trials_pairs_by_target_and_seed_and_takes_the_error_over_targets() -> None:
    runs = _runs("graph", {"a": [4, 6], "b": [10, 10], "c": [3, 3]})
    runs += _runs("tpe", {"a": [8, 8], "b": [10, 12, 99], "d": [1]})  # b's seed 2 and d: unpaired
    paired = paired_trials(runs, "graph", "tpe")
    assert paired is not None
    # Per target: a (4-8 + 6-8)/2 = -3, b (0 - 2)/2 = -1; c and d have no common run.
    assert (paired.mean, paired.targets) == (-2.0, 2)
    assert paired.se == pytest.approx(math.sqrt(2.0) / math.sqrt(2.0))  # stdev(-3, -1) / sqrt 2
    assert (paired.better, paired.equal, paired.worse) == (2, 0, 0)
    assert paired.text() == "-2.0 ± 1.0 trials over 2 targets (2 better, 0 equal, 0 worse)"
    assert paired_trials(runs, "graph", "random") is None
    one = paired_trials(_runs("x", {"a": [5]}) + _runs("y", {"a": [5]}), "x", "y")
    assert one is not None and math.isnan(one.se) and one.text().startswith("+0.0 trials over 1")


def test_median_interval_resamples_targets_and_covers_the_median() -> None:
    rng = np.random.default_rng(0)
    # Every run of a target is equal: resampling runs changes nothing, resampling targets does.
    per_target = [[2] * 5, [4] * 5, [30] * 5]
    low, high = median_interval(per_target, rng=rng, resamples=500)
    assert low == 2.0 and high == 30.0
    assert median_interval([[7, 7], [7]], rng=rng, resamples=50) == (7.0, 7.0)
    assert all(math.isnan(v) for v in median_interval([], rng=rng))
    assert runs_by_target(_runs("g", {"a": [3, 4]}) + _runs("h", {"a": [9]}), "g") == {
        "a": {0: 3, 1: 4}
    }
