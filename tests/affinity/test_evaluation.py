"""Benchmark protocols and metrics."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
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
    assert "queries" not in result and "predicted" not in result["hoa"]


def test_gain_prediction_keeps_what_it_scored(benchmarks_dir: Path) -> None:
    table = convert("ettm1", root=benchmarks_dir)
    result = evaluate_gain_prediction(table, ["hoa"], seed=0, keep_predictions=True)
    queries, predicted = result["queries"], result["hoa"]["predicted"]
    assert len(queries) == len(predicted) == len(result["truth"]) == result["n_queries"]
    assert all(
        len(auxiliaries) >= 2 and target not in auxiliaries for target, auxiliaries in queries
    )
    # The kept arrays are the ones scored: their Spearman is the reported one.
    assert spearman(predicted, result["truth"]) == pytest.approx(result["hoa"]["spearman"])
    assert spearman(predicted, result["truth_val"]) == pytest.approx(result["hoa"]["spearman_val"])


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


def test_a_one_row_target_without_baseline_adds_no_made_up_gain_to_the_prior() -> None:
    # y's only row is a+y and it has no baseline: its stand-in baseline was that row, a gain of
    # exactly 0 from `a` that entered the other targets' popular-source prior.
    from taskgraph.affinity.evaluation import evaluate_pair_gains, with_stand_in_baselines

    values = {
        "a": {"a": 0.50, "b": 0.55, "c": 0.45, "d": 0.60, "e": 0.52, "f": 0.40},
        "b": {"b": 0.30, "a": 0.33, "c": 0.29, "d": 0.35, "e": 0.31, "f": 0.28},
        "c": {"c": 0.70, "a": 0.72, "b": 0.69, "d": 0.75, "e": 0.71, "f": 0.66},
    }
    rows = [
        LongRow(t, frozenset({t, s}), "val", v, True)
        for t, row in values.items()
        for s, v in row.items()
    ]
    rows += [LongRow("z", frozenset({"z"}), "val", 0.5, True)]
    rows += [LongRow("y", frozenset({"a", "y"}), "val", 0.3, True)]
    table = LongTable(rows=rows, source="onerow")
    assert not [
        r for r in with_stand_in_baselines(table.to_records()) if r.task == "y" and r.is_baseline
    ]

    # By hand: prior(t, s) = mean over the other targets o with a pair row of s of
    # (value(o, s) - value(o, o)) / value(o, o); truth(t, s) the same gain of t.
    def gain(o: str, s: str) -> float:
        return (values[o][s] - values[o][o]) / values[o][o]

    per_target = []
    for t in values:
        sources = sorted(s for s in values[t] if s != t)
        prior = [
            float(np.mean([gain(o, s) for o in values if o not in (t, s) and s in values[o]]))
            for s in sources
        ]
        per_target.append(spearman(prior, [gain(t, s) for s in sources]))
    expected = float(np.mean(per_target))
    assert expected == pytest.approx(0.9069276, abs=1e-6)  # with y's made-up 0: 0.8333
    result = evaluate_pair_gains(table, ["hoa"], folds=5, seed=0)
    assert result["prior"]["spearman"] == pytest.approx(expected, abs=1e-12)


def test_a_spearman_of_two_items_is_not_a_measurement() -> None:
    # A target with two pair rows, or two hidden sources per draw, is +-1 whatever the ranking.
    from taskgraph.affinity.evaluation import MIN_RANKED, evaluate_pair_gains

    assert MIN_RANKED == 3
    rng = np.random.default_rng(0)
    tasks = [f"t{i}" for i in range(6)]
    rows = []
    for target in tasks:
        rows.append(LongRow(target, frozenset({target}), "val", 0.6, True))
        sources = [s for s in tasks if s != target][: 2 if target == "t0" else 5]
        rows += [
            LongRow(target, frozenset({target, s}), "val", 0.6 + rng.normal(0, 0.03), True)
            for s in sources
        ]
    table = LongTable(rows=rows, source="mixed")
    pairs = evaluate_pair_gains(table, ["hoa"], folds=5, seed=0)
    assert pairs["too_few_pairs"] == ["t0"] and pairs["n_targets"] == 5
    # 5 pairs and 3 observed leave 2 hidden: no Spearman (NDCG kept) when asked for 3
    ranked = evaluate_source_ranking(table, [], seeds=[0, 1], min_ranked=MIN_RANKED)
    assert ranked["too_few_hidden"] == ["t1", "t2", "t3", "t4", "t5"]
    assert math.isnan(ranked["prior"]["spearman"]) and math.isfinite(ranked["prior"]["ndcg"])
    assert ranked["n_draws"] == 10
    # the default keeps every rankable target's Spearman, as before
    assert evaluate_source_ranking(table, [], seeds=[0, 1])["too_few_hidden"] == []
