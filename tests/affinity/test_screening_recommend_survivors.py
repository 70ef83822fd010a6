"""Screening, rank agreement, similarity kernels and recommendations: the cases a mutation
audit of ``affinity/screening.py``, ``similarity.py`` and ``recommend.py`` found untested."""

from __future__ import annotations

import itertools
import math
import warnings
from fractions import Fraction

import networkx as nx
import numpy as np
import pytest
from scipy import stats

from taskgraph.affinity import recommend
from taskgraph.affinity.graph import graph_from_edges
from taskgraph.affinity.recommend import rank_auxiliaries, recommend_auxiliaries
from taskgraph.affinity.records import ScoreRecord
from taskgraph.affinity.screening import (
    EXACT_MAX_N,
    RankAgreement,
    rank_agreement,
    screen_ranking,
    single_auxiliary_gains,
)
from taskgraph.affinity.similarity import embedding_similarity, profile_similarity
from taskgraph.errors import ConfigError
from taskgraph.trial import LookaheadMatrix

NAN = math.nan


def _exact_permutation_p(x: list[float], y: list[float]) -> Fraction:
    """Return the two-sided permutation p-value of Spearman's rho, in exact arithmetic.

    Over every order of ``y``'s (average) ranks, rho is the centred rank cross-product over a
    constant, so |rho'| >= |rho| compares integers and halves with no rounding at all.
    """
    # average ranks are whole or halves: exact as Fractions
    rx = [Fraction(float(r)).limit_denominator(2) for r in stats.rankdata(x)]
    ry = [Fraction(float(r)).limit_denominator(2) for r in stats.rankdata(y)]
    cx = [r - Fraction(sum(rx), len(rx)) for r in rx]
    cy = [r - Fraction(sum(ry), len(ry)) for r in ry]

    def cross(order: tuple[Fraction, ...]) -> Fraction:
        return abs(sum((a * b for a, b in zip(cx, order, strict=True)), Fraction(0)))

    observed = cross(tuple(cy))
    orders = list(itertools.permutations(cy))
    return Fraction(sum(cross(o) >= observed for o in orders), len(orders))


def _agreement(x: list[float], y: list[float], **kwargs: int) -> RankAgreement:
    names = [f"c{i}" for i in range(len(x))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns of constant input
        return rank_agreement(dict(zip(names, x, strict=True)), dict(zip(names, y, strict=True)),
                              **kwargs)  # fmt: skip


# --- screening.py: the ranking and the measured gains ------------------------------------


def test_a_target_named_among_the_candidates_is_not_ranked_against_itself() -> None:
    matrix = LookaheadMatrix(
        tasks=["t", "a"], values=[[0.9, NAN], [0.1, NAN]], n_probes=2
    )  # the diagonal holds a number: it must still not be a candidate's effect
    assert [e.candidate for e in screen_ranking(matrix, "t", ["t", "a"])] == ["a"]


def test_a_candidate_named_twice_is_ranked_once() -> None:
    matrix = LookaheadMatrix(
        tasks=["t", "a", "b"],
        values=[[NAN, NAN, NAN], [0.1, NAN, NAN], [0.3, NAN, NAN]],
        n_probes=2,
    )
    ranking = screen_ranking(matrix, "t", ["a", "b", "a"])
    assert [(e.candidate, e.rank) for e in ranking] == [("b", 1), ("a", 2)]


def test_single_auxiliary_gains_are_absolute_sign_normalised_and_of_the_target_only() -> None:
    def record(task: str, aux: tuple[str, ...], value: float, higher: bool) -> ScoreRecord:
        return ScoreRecord(task=task, task_set=frozenset({task, *aux}), value=value,
                           higher_is_better=higher)  # fmt: skip

    records = [
        record("t", (), 0.5, True), record("t", ("a",), 0.6, True),
        record("t", ("b",), 0.45, True), record("t", ("a", "b"), 0.9, True),
        # another target, lower is better: its loss falls by 1.0 with t; not t's gain
        record("u", (), 4.0, False), record("u", ("t",), 3.0, False),
    ]  # fmt: skip
    gains = single_auxiliary_gains(records, "t")
    # absolute: 0.6 - 0.5, not the relative 0.2; the set of two is not a single auxiliary
    assert gains == pytest.approx({"a": 0.1, "b": -0.05})
    # lower is better: a fall of the loss is a positive gain
    assert single_auxiliary_gains(records, "u") == pytest.approx({"t": 1.0})
    assert single_auxiliary_gains(records, "nobody") == {}


# --- screening.py: rank agreement --------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "y"),
    [
        # rho = -3/7 < 0: a two-sided p, not the share of the null above a negative rho
        ([1, 2, 3, 4, 5, 6, 7], [7, 2, 5, 6, 1, 4, 3]),
        # rho = -9/35, where scipy's and the permutations' rho differ in the last bits
        ([-0.732, -0.544, -0.316, 0.412, 1.043, -0.129],
         [1.366, -0.665, 0.352, 0.903, 0.094, -0.743]),
        # predictions far from evenly spaced: the null is of ranks, not of raw values
        ([0.0, 0.01, 0.02, 0.03, 5.0], [3.0, 1.0, 2.0, 5.0, 4.0]),
        # ties in the measured gains: kept as average ranks in every permutation
        ([1, 2, 3, 4, 5, 6], [0.1, 0.1, 0.3, 0.2, 0.2, 0.5]),
        ([1, 2, 2, 4, 5, 6], [0.1, 0.1, 0.3, 0.2, 0.2, 0.5]),
    ],
)  # fmt: skip
def test_the_exact_p_value_is_the_share_of_permutations_at_least_as_extreme(
    x: list[float], y: list[float]
) -> None:
    agreement = _agreement([float(v) for v in x], [float(v) for v in y], n_bootstrap=10)
    assert agreement.p_value == pytest.approx(float(_exact_permutation_p(x, y)), abs=1e-12)


def test_a_p_value_of_exactly_five_percent_is_not_significant() -> None:
    # With these ties the largest attainable |rho| (0.918) has p = 6/120 = 0.05 exactly.
    x, y = [0.0, 1.0, 2.0, 2.0, 2.0], [0.0, 1.0, 2.0, 3.0, 3.0]
    assert _exact_permutation_p(x, y) == Fraction(1, 20)
    agreement = _agreement(x, y, n_bootstrap=10)
    assert agreement.p_value == pytest.approx(0.05)
    assert agreement.critical is None


def test_the_exact_test_covers_up_to_exact_max_n_candidates_and_scipy_beyond() -> None:
    order = [float(i) for i in range(EXACT_MAX_N)]  # 8
    exact = _agreement(order, order, n_bootstrap=10)
    assert exact.p_value == pytest.approx(2 / math.factorial(8))  # t approximation: 0
    # tables of Spearman's critical values: 0.738 for n = 8 (two-sided, 5 %)
    assert exact.critical == pytest.approx(31 / 42)
    nine = [0.0, 2.0, 1.0, 3.0, 5.0, 4.0, 6.0, 8.0, 7.0]
    approximate = _agreement([float(i) for i in range(9)], nine, n_bootstrap=10)
    _, p = stats.spearmanr(range(9), nine)
    assert approximate.p_value == pytest.approx(p, rel=1e-12)
    t = stats.t.ppf(0.975, 7)
    assert approximate.critical == pytest.approx(t / math.sqrt(7 + t * t), rel=1e-9)


def test_the_t_critical_value_has_n_minus_two_degrees_of_freedom() -> None:
    fourteen = [float(i) for i in range(14)]
    agreement = _agreement(fourteen, fourteen, n_bootstrap=10)
    t = stats.t.ppf(0.975, 12)
    assert agreement.critical == pytest.approx(t / math.sqrt(12 + t * t), rel=1e-9)
    assert agreement.critical == pytest.approx(0.5324, abs=1e-4)


def test_predictions_without_spread_have_no_critical_value_from_a_nan_null() -> None:
    agreement = _agreement([1.0, 1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0, 5.0], n_bootstrap=10)
    assert math.isnan(agreement.spearman)
    # every permutation's rho is 0 (not 0/0): no |rho| is significant
    assert agreement.critical is None


@pytest.mark.parametrize("n", [4, 10])  # the exact test, and scipy's beyond EXACT_MAX_N
def test_a_spearman_that_is_not_defined_has_no_p_value(n: int) -> None:
    # Every prediction the same: nothing to test, so p is NaN, never 0 ("significant").
    flat, spread = [1.0] * n, [float(i) for i in range(n)]
    for predicted, measured in ((flat, spread), (spread, flat)):
        agreement = _agreement(predicted, measured, n_bootstrap=10)
        assert math.isnan(agreement.spearman)
        assert math.isnan(agreement.p_value)


def test_candidates_without_a_finite_prediction_or_gain_or_in_one_mapping_are_left_out() -> None:
    predicted = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0, "e": NAN, "f": 6.0, "only_p": 0.0}
    measured = {"a": 0.1, "b": 0.3, "c": 0.2, "d": 0.4, "e": 0.5, "f": NAN, "only_m": 0.0}
    agreement = rank_agreement(predicted, measured, n_bootstrap=200, seed=3)
    clean = rank_agreement({c: predicted[c] for c in "abcd"}, {c: measured[c] for c in "abcd"},
                           n_bootstrap=200, seed=3)  # fmt: skip
    assert agreement == clean and agreement.n == 4
    with pytest.raises(ConfigError, match=r">= 3 candidates .* but got 2 \(a, b\)"):
        rank_agreement({"a": 1.0, "b": 2.0, "c": NAN}, {"a": 1.0, "b": 2.0, "c": 3.0})


def _bootstrap_interval(x: np.ndarray, y: np.ndarray, n_bootstrap: int, seed: int) -> list[float]:
    """Return the 95 % percentile interval of rho over resamples of the candidates (with
    replacement), leaving out resamples where either side has no spread."""
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_bootstrap):
        pick = rng.integers(0, len(x), len(x))
        if len(set(x[pick])) > 1 and len(set(y[pick])) > 1:
            draws.append(stats.spearmanr(x[pick], y[pick])[0])
    return [float(v) for v in np.percentile(draws, [2.5, 97.5])]


def test_the_interval_is_a_95_percent_bootstrap_over_all_candidates_with_spread() -> None:
    # Tied gains: a resample of the first two candidates has spread in x but none in y.
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    y = np.array([0.2, 0.2, 0.4, 0.1, 0.9])
    for seed in (0, 1):
        agreement = _agreement(list(x), list(y), n_bootstrap=400, seed=seed)
        low, high = _bootstrap_interval(x, y, 400, seed)
        assert (agreement.low, agreement.high) == pytest.approx((low, high))
        assert math.isfinite(agreement.low) and agreement.low <= agreement.high
    assert _agreement(list(x), list(y), n_bootstrap=400, seed=0) != _agreement(
        list(x), list(y), n_bootstrap=400, seed=1
    )


# --- similarity.py ------------------------------------------------------------------------


def _pair_matrix() -> np.ndarray:
    # pair_matrix[t, s]; sources 1 and 2 help every target alike (identical columns)
    return np.array(
        [
            [0.0, 0.3, 0.3, -0.1, 0.2],
            [0.1, 0.5, 0.5, 0.4, -0.2],
            [-0.3, 0.2, 0.2, 0.1, 0.0],
            [0.2, -0.1, -0.1, 0.3, 0.6],
            [0.4, 0.0, 0.0, -0.2, 0.1],
        ]
    )


def test_profile_similarity_compares_sources_by_how_they_help_the_targets() -> None:
    kernel = profile_similarity(_pair_matrix())
    assert kernel is not None
    # identical columns: identical source profiles, whatever the targets' own rows are
    assert kernel[1, 2] == pytest.approx(1.0)
    assert np.allclose(kernel, kernel.T) and np.allclose(np.diag(kernel), 1.0)
    assert np.linalg.eigvalsh(kernel).min() > -1e-9


def test_profile_similarity_puts_every_target_on_its_own_scale() -> None:
    matrix = _pair_matrix()
    kernel = profile_similarity(matrix)
    assert kernel is not None
    shifted, scaled = matrix.copy(), matrix.copy()
    shifted[3] += 5.0  # one target gains more from every source alike
    scaled[1] *= 40.0  # one target's gains are larger
    for moved in (shifted, scaled):
        found = profile_similarity(moved)
        assert found is not None and np.allclose(found, kernel)


def test_profile_similarity_from_exactly_min_targets_with_unmeasured_pairs() -> None:
    # Three targets measured (each with its own pair unmeasured), two tasks never targets.
    matrix = np.full((5, 5), NAN)
    matrix[0, [1, 2, 3]] = [0.1, 0.3, 0.2]
    matrix[1, [0, 2, 4]] = [0.2, -0.1, 0.4]
    matrix[2, [0, 1, 3, 4]] = [0.0, 0.5, 0.1, -0.2]
    kernel = profile_similarity(matrix)
    assert kernel is not None and np.isfinite(kernel).all()
    assert np.allclose(np.diag(kernel), 1.0)
    assert profile_similarity(matrix, min_targets=4) is None


def test_a_source_that_helps_no_target_alike_has_zero_similarity_and_a_unit_diagonal() -> None:
    matrix = _pair_matrix()
    matrix[:, 4] = NAN  # never measured as a source: no profile
    kernel = profile_similarity(matrix)
    assert kernel is not None and np.isfinite(kernel).all()
    assert kernel[4, 4] == 1.0
    assert np.all(np.delete(kernel[4], 4) == 0.0) and np.all(np.delete(kernel[:, 4], 4) == 0.0)


def test_profile_similarity_of_more_sources_than_targets_is_a_kernel_over_the_sources() -> None:
    # 3 targets x 5 sources: the kernel is 5 x 5 with a unit diagonal (it was filled by the
    # row count: a 0 on the diagonal here, an IndexError for 5 targets x 3 sources).
    rng = np.random.default_rng(0)
    kernel = profile_similarity(rng.standard_normal((3, 5)))
    assert kernel is not None and kernel.shape == (5, 5)
    assert np.diag(kernel).tolist() == [1.0] * 5
    tall = profile_similarity(rng.standard_normal((5, 3)))
    assert tall is not None and tall.shape == (3, 3)
    assert np.diag(tall).tolist() == [1.0] * 3


def test_two_embedded_tasks_are_opposite_after_centring_and_a_shared_part_does_not_count() -> None:
    two = embedding_similarity(
        ["a", "b", "c"], {"a": np.array([1.0, 0.0]), "b": np.array([0.0, 1.0])}
    )
    assert two == pytest.approx(np.array([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
    embeddings = {"a": np.array([1.0, 0.0, 0.2]), "b": np.array([0.8, 0.3, 0.0]),
                  "c": np.array([0.0, 1.0, 0.5])}  # fmt: skip
    shared = np.array([3.0, -2.0, 7.0])
    moved = {task: vector + shared for task, vector in embeddings.items()}
    assert embedding_similarity(["a", "b", "c"], moved) == pytest.approx(
        embedding_similarity(["a", "b", "c"], embeddings)
    )


def test_an_embedding_at_the_mean_is_like_no_other_task_but_itself() -> None:
    kernel = embedding_similarity(["a", "b", "m"], {"a": np.array([1.0, 0.0]),
                                                    "b": np.array([-1.0, 0.0]),
                                                    "m": np.array([0.0, 0.0])})  # fmt: skip
    assert kernel == pytest.approx(np.array([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))


# --- recommend.py -------------------------------------------------------------------------


def _graph(edges: dict[str, dict[str, float]], target: str = "t") -> nx.DiGraph:
    graph = nx.DiGraph(gain_kind="relative")
    for source, data in edges.items():
        graph.add_edge(source, target, **data)
    return graph


def test_a_candidate_without_an_edge_predicts_nothing_known() -> None:
    graph = graph_from_edges(
        [{"source": "b", "target": "t", "gain": 0.1, "std": 0.02, "n_evidence": 2}]
    )
    by_set = {r.auxiliaries: r for r in recommend_auxiliaries(graph, "t", 5, candidates=["b", "x"])}
    lone = by_set[("x",)]
    assert (lone.predicted_gain, lone.std, lone.evidence_runs) == (0.0, math.inf, 0)
    # the edge it lacks is left out of a set's mean, std and evidence
    both = by_set[("b", "x")]
    assert both.predicted_gain == 0.1 and both.std == pytest.approx(0.02)
    assert both.evidence_runs == 2


def test_a_graph_edge_std_of_zero_is_known_and_an_infinite_one_is_not() -> None:
    graph = graph_from_edges(
        [
            {"source": "b", "target": "t", "gain": 0.1, "std": 0.0, "n_evidence": 1},
            {"source": "c", "target": "t", "gain": 0.2, "std": math.inf, "n_evidence": 1},
        ]
    )
    by_set = {r.auxiliaries: r for r in recommend_auxiliaries(graph, "t", 3)}
    assert by_set[("b",)].std == 0.0
    assert math.isnan(by_set[("c",)].std) and math.isnan(by_set[("b", "c")].std)


def test_a_graph_measured_gain_that_is_not_finite_is_no_measurement() -> None:
    graph = _graph({"b": {"predicted_relative_gain": 0.1, "measured_relative_gain": NAN}})
    (only,) = recommend_auxiliaries(graph, "t", 1)
    assert only.measured_gain is None


def test_pair_runs_above_an_edges_runs_count_no_more_than_its_runs() -> None:
    graph = _graph({"b": {"predicted_relative_gain": 0.1, "evidence_runs": 2, "pair_runs": 5}})
    (only,) = recommend_auxiliaries(graph, "t", 1)
    assert only.evidence_runs == 2


def test_ties_in_predicted_gain_put_the_smaller_set_first_then_names() -> None:
    graph = graph_from_edges(
        [{"source": s, "target": "t", "gain": 0.1, "std": 0.01, "n_evidence": 1} for s in "bc"]
    )
    assert [r.auxiliaries for r in recommend_auxiliaries(graph, "t", 3)] == [
        ("b",), ("c",), ("b", "c"),
    ]  # fmt: skip


def test_a_graph_refuses_the_target_as_its_own_candidate_an_unknown_target_and_max_size_0() -> None:
    graph = graph_from_edges(
        [{"source": "b", "target": "t", "gain": 0.1, "std": 0.01, "n_evidence": 1}]
    )
    with pytest.raises(ConfigError, match="no candidate auxiliary tasks for target 't'"):
        recommend_auxiliaries(graph, "t", 1, candidates=["t"])
    with pytest.raises(ConfigError, match="no candidate auxiliary tasks for target 'zzz'"):
        recommend_auxiliaries(graph, "zzz", 1)
    with pytest.raises(ConfigError, match="`max_size` must be >= 1, but got 0"):
        recommend_auxiliaries(graph, "t", 1, max_size=0)


GAINS = {"b": 0.5, "c": 0.4, "d": 0.3, "e": 0.2, "f": 0.1}


def _gain_graph() -> nx.DiGraph:
    return graph_from_edges(
        [{"source": s, "target": "t", "gain": g, "std": 0.01, "n_evidence": 1}
         for s, g in GAINS.items()]
    )  # fmt: skip


def test_up_to_exhaustive_limit_sets_every_set_is_ranked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recommend, "EXHAUSTIVE_LIMIT", 31)  # 5 sources: 31 sets
    monkeypatch.setattr(recommend, "BEAM_WIDTH", 1)
    ranked, left_out = rank_auxiliaries(_gain_graph(), "t", 100)
    assert len(ranked) == 31 and left_out == 0


def test_the_beam_keeps_the_best_sets_of_each_size_and_returns_every_set_it_scored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(recommend, "EXHAUSTIVE_LIMIT", 30)  # 31 sets: the beam search
    monkeypatch.setattr(recommend, "BEAM_WIDTH", 2)
    found = {r.auxiliaries for r in recommend_auxiliaries(_gain_graph(), "t", 100)}
    # size 1: all five, keep b and c; size 2: their seven extensions, keep bc and bd;
    # size 3: five extensions, keep bcd and bce; size 4: three; size 5: one
    singles = {(s,) for s in GAINS}
    pairs = {("b", "c"), ("b", "d"), ("b", "e"), ("b", "f"), ("c", "d"), ("c", "e"), ("c", "f")}
    triples = {("b", "c", "d"), ("b", "c", "e"), ("b", "c", "f"), ("b", "d", "e"), ("b", "d", "f")}
    fours = {("b", "c", "d", "e"), ("b", "c", "d", "f"), ("b", "c", "e", "f")}
    assert found == singles | pairs | triples | fours | {("b", "c", "d", "e", "f")}
