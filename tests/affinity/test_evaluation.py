"""Benchmark protocols and metrics."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from taskgraph.affinity.converters import convert
from taskgraph.affinity.evaluation import (
    evaluate_gain_prediction,
    evaluate_grouping,
    evaluate_source_ranking,
    ndcg,
    regret_at_k,
    spearman,
)
from taskgraph.affinity.longtable import LongRow, LongTable
from taskgraph.errors import ConfigError


def test_metrics() -> None:
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    assert ndcg([3, 2, 1], [0.3, 0.2, 0.1]) == pytest.approx(1.0)
    assert ndcg([1, 2, 3], [0.3, 0.2, 0.1]) < 1.0
    # Top 3 by prediction: truths 0.0, 0.2, 0.5; the best source (1.0) is ranked last.
    assert regret_at_k([0.9, 0.1, 0.2, 0.3], [0.0, 1.0, 0.5, 0.2], k=3) == pytest.approx(0.5)
    assert regret_at_k([0.9, 0.1, 0.2, 0.3], [0.0, 1.0, 0.5, 0.2], k=4) == pytest.approx(0.0)
    assert regret_at_k([0.9, 0.1, 0.2, 0.3], [0.0, 1.0, 0.5, 0.2], k=1) == pytest.approx(1.0)


def test_gain_prediction_on_ettm1_holds_out_the_fitted_groups(benchmarks_dir: Path) -> None:
    table = convert("ettm1", root=benchmarks_dir)
    fitted: list[str] = []
    result = evaluate_gain_prediction(
        table, ["hoa"], fit_fraction=0.1, seed=0, on_fit=lambda m, e: fitted.append(e.name)
    )
    assert fitted == ["hoa"]
    assert (
        result["n_large_groups"] == 99
        and result["n_fit_groups"] == 10
        and result["scored_on"] == "test"
    )
    # 99 groups of size >= 3 hold 3*35 + 4*35 + 5*21 + 6*7 + 7 = 399 (target, group) pairs.
    assert 300 < result["n_queries"] < 399
    assert 0.2 < result["hoa"]["spearman"] < 0.5


def test_source_ranking_and_grouping_protocols(benchmarks_dir: Path) -> None:
    ranking = evaluate_source_ranking(convert("bingel", root=benchmarks_dir), ["setfn"], seeds=[0])
    assert ranking["n_targets"] == 10
    assert set(ranking["prior"]) == {"spearman", "ndcg", "regret@3"}
    assert -1.0 <= ranking["setfn"]["spearman"] <= 1.0
    table = convert("standley_s1", root=benchmarks_dir)
    optimum = evaluate_grouping(table, "hoa", budgets=[5], strategy="optimum")
    hoa = evaluate_grouping(table, "hoa", budgets=[5], strategy="pairs")
    assert optimum[5]["total"] == pytest.approx(0.43481, abs=5e-6)
    assert hoa[5]["total"] == pytest.approx(0.44196, abs=5e-6) and hoa[5]["n_measured"] == 15


def test_grouping_refuses_targets_of_opposite_directions() -> None:
    rows = [
        LongRow("a", frozenset({"a"}), "val", 0.9, True),
        LongRow("a", frozenset({"a", "b"}), "val", 0.5, True),
        LongRow("b", frozenset({"b"}), "val", 0.5, False),
        LongRow("b", frozenset({"a", "b"}), "val", 0.49, False),
    ]
    with pytest.raises(ConfigError, match="mixes higher-is-better and lower-is-better"):
        evaluate_grouping(LongTable(rows=rows, source="mixed"), "hoa", budgets=(2,))


def test_grouping_designs_measure_triples_and_choose_among_measured(benchmarks_dir: Path) -> None:
    table = convert("standley_s1", root=benchmarks_dir)
    pairs = evaluate_grouping(table, "measured", budgets=[5], strategy="pairs")[5]
    triples = evaluate_grouping(table, "measured", budgets=[5], strategy="triples")[5]
    # setting 1's optimum at budget 5 serves tasks from two triples, which only the second design measures
    assert triples["n_measured"] == pairs["n_measured"] == 15
    assert all(len(n) in (1, 3) for n in triples["networks"])
    assert all(len(n) in (1, 2) for n in pairs["networks"])
    assert triples["val_total"] < pairs["val_total"]
    assert triples["total"] == pytest.approx(0.43481, abs=5e-6)  # the optimum's grouping
    with pytest.raises(ConfigError, match="no grouping of 5 tasks fits budget 1"):
        evaluate_grouping(table, "measured", budgets=[1], strategy="pairs")
    with pytest.raises(ConfigError, match="needs an estimator"):
        evaluate_grouping(table, "measured", budgets=[5], strategy="adaptive")
