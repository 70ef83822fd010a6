"""The table helpers the search benchmarks share: a target's best single source and the start-up order."""

from __future__ import annotations

import pytest

from taskgraph.affinity.longtable import LongRow, LongTable
from taskgraph.errors import ConfigError
from taskgraph.search.benchmarking import best_single, popular_order


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
