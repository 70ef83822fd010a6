"""Recommendations from an estimator or a graph: best sets first, with std and evidence."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from taskgraph.affinity.estimators import HigherOrderEstimator, SetFunctionEstimator
from taskgraph.affinity.graph import affinity_graph, graph_from_edges
from taskgraph.affinity.recommend import recommend_auxiliaries
from taskgraph.affinity.records import ScoreRecord
from taskgraph.errors import ConfigError

from .conftest import additive_truth, records_from


def test_top_k_from_an_estimator_matches_exhaustive_ranking() -> None:
    truth = additive_truth(seed=2)
    model = SetFunctionEstimator().fit(records_from(truth, lambda t, a: True))
    top = recommend_auxiliaries(model, "a", 3)
    ranked = sorted((aux for (t, aux) in truth if t == "a"), key=lambda a: -truth[("a", a)])
    assert [frozenset(r.auxiliaries) for r in top] == ranked[:3]
    assert top[0].predicted_gain >= top[1].predicted_gain >= top[2].predicted_gain
    assert all(r.std >= 0 and r.evidence_runs > 0 for r in top)
    assert set(top[0].to_dict()) == {
        "auxiliaries", "predicted_relative_gain", "predicted_relative_gain_std",
        "measured_relative_gain", "evidence_runs",
    }  # fmt: skip
    limited = recommend_auxiliaries(model, "a", 50, max_size=2, candidates=["b", "c", "d"])
    assert len(limited) == 6 and all(
        len(r.auxiliaries) <= 2 and "e" not in r.auxiliaries for r in limited
    )


def test_from_a_graph_uses_the_mean_of_edges() -> None:
    truth = additive_truth()
    hoa = HigherOrderEstimator().fit(records_from(truth, lambda t, a: len(a) == 1))
    best = recommend_auxiliaries(affinity_graph(hoa), "a", 1)[0]
    assert best.predicted_gain == pytest.approx(hoa.predict("a", best.auxiliaries)[0])
    assert best.evidence_runs == len(best.auxiliaries)


def test_graph_edges_of_unknown_std_give_an_unknown_std() -> None:
    # graph_from_edges marks a missing std as -1; it once entered the variance as std 1.
    graph = graph_from_edges(
        [
            {"source": "b", "target": "a", "gain": 0.1, "std": None, "n_evidence": 1},
            {"source": "c", "target": "a", "gain": 0.2, "std": 0.03, "n_evidence": 1},
            {"source": "d", "target": "a", "gain": 0.0, "std": 0.04, "n_evidence": 1},
        ]
    )
    by_set = {r.auxiliaries: r for r in recommend_auxiliaries(graph, "a", 7)}
    assert by_set[("c",)].std == pytest.approx(0.03)
    assert by_set[("c", "d")].std == pytest.approx(0.05 / 2)
    assert np.isnan(by_set[("b",)].std) and np.isnan(by_set[("b", "c")].std)


def test_beam_search_for_many_candidates() -> None:
    # 16 sources: 65,535 sets exceed the exhaustive limit; gains are additive in the mean.
    sources = [f"s{i:02d}" for i in range(16)]
    weights = dict(zip(sources, np.linspace(-0.05, 0.1, 16), strict=True))
    records = [ScoreRecord(task="t", task_set=frozenset({"t"}), value=1.0)]
    for size in (1, 2):
        for combo in itertools.combinations(sources, size):
            gain = float(np.mean([weights[s] for s in combo]))
            records.append(
                ScoreRecord(task="t", task_set=frozenset({"t", *combo}), value=1.0 + gain)
            )
    top = recommend_auxiliaries(HigherOrderEstimator().fit(records), "t", 2)
    assert top[0].auxiliaries == ("s15",)
    assert top[1].auxiliaries == ("s14", "s15")


def test_bad_arguments() -> None:
    model = HigherOrderEstimator().fit(records_from(additive_truth(), lambda t, a: len(a) == 1))
    with pytest.raises(ConfigError, match="`k` must be >= 1"):
        recommend_auxiliaries(model, "a", 0)
    with pytest.raises(ConfigError, match="no candidate"):
        recommend_auxiliaries(model, "a", 1, candidates=["a"])


def test_the_measured_gain_stands_beside_the_prediction() -> None:
    truth = additive_truth(seed=2)
    # Pairs measured, larger sets not: a pair has a measured gain, a triple has none.
    model = SetFunctionEstimator().fit(records_from(truth, lambda t, a: len(a) == 1))
    by_set = {r.auxiliaries: r for r in recommend_auxiliaries(model, "a", 50, max_size=2)}
    pair = by_set[("b",)]
    assert pair.measured_gain == pytest.approx(truth[("a", frozenset({"b"}))])
    assert pair.to_dict()["measured_relative_gain"] == pair.measured_gain
    assert pair.to_dict()["predicted_relative_gain"] == pair.predicted_gain
    assert by_set[("b", "c")].measured_gain is None
    graph_best = {
        r.auxiliaries: r for r in recommend_auxiliaries(affinity_graph(model), "a", 50, max_size=2)
    }
    assert graph_best[("b",)].measured_gain == pytest.approx(pair.measured_gain)
    assert graph_best[("b", "c")].measured_gain is None


def test_evidence_counts_runs_not_metric_records() -> None:
    # Two runs, each scored on three metrics: two runs of evidence, not six records.
    records = [
        ScoreRecord(task="t", task_set=frozenset(s), value=v, metric=m, run_id=run)
        for run, s, base in ((1, {"t"}, 0.5), (2, {"t", "x"}, 0.6))
        for m, v in (("accuracy", base), ("precision", base + 0.1), ("recall", base - 0.1))
    ]
    model = HigherOrderEstimator().fit(records)
    assert model.n_evidence("t", {"x"}) == 1  # the baseline run is the reference, not evidence
    (only,) = recommend_auxiliaries(model, "t", 1)
    assert only.evidence_runs == 1


def test_a_run_behind_several_edges_of_a_graph_counts_once() -> None:
    # Runs of t: alone, with b, with c and with both.  The set {b, c} stands on three runs;
    # adding its edges' counts (2 + 2) counted the run with both twice.
    records = [
        ScoreRecord(task="t", task_set=frozenset({"t", *aux}), value=value, run_id=run)
        for run, (aux, value) in enumerate(
            [((), 0.5), (("b",), 0.6), (("c",), 0.55), (("b", "c"), 0.58)]
        )
    ]
    model = SetFunctionEstimator().fit(records)
    assert model.n_evidence("t", {"b", "c"}) == 3
    graph = affinity_graph(model)
    assert graph.edges["b", "t"]["evidence_runs"] == 2 and graph.edges["b", "t"]["pair_runs"] == 1
    by_set = {r.auxiliaries: r for r in recommend_auxiliaries(graph, "t", 3)}
    assert by_set[("b", "c")].evidence_runs == 3
    assert by_set[("b",)].evidence_runs == 2
    # Stored edges carry counts only: the best-evidenced edge's runs, never one run twice.
    stored = graph_from_edges(
        [{"source": s, "target": "t", "gain": 0.1, "std": 0.01, "n_evidence": 2} for s in "bc"]
    )
    by_set = {r.auxiliaries: r for r in recommend_auxiliaries(stored, "t", 3)}
    assert by_set[("b", "c")].evidence_runs == 2
