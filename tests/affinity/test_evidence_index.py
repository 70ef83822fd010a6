"""Indexed evidence and measured gains equal the scans they replace (performance audit).

``n_evidence``, a recommendation's measured gain and the graph's edges were found by scanning
every gain for each candidate set or edge; they now read an index built once per fit.  These
tests pin the index to a brute-force scan on random gain tables (several targets and families,
run ids shared between gains and targets, gains without run ids, a hand-built gain whose
target is among its auxiliaries), for every (target, set), and pin the scans away: the gains
are read a fixed number of times, not once per set or edge.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from taskgraph.affinity import recommend
from taskgraph.affinity.estimators import HigherOrderEstimator, PairwiseEstimator
from taskgraph.affinity.estimators.base import AffinityEstimator
from taskgraph.affinity.gain_queries import evidence_runs, measured_gain
from taskgraph.affinity.gains import Gain, GainTable, compute_gains, gain_key
from taskgraph.affinity.graph import affinity_graph, graph_edges
from taskgraph.affinity.recommend import Recommendation, rank_auxiliaries
from taskgraph.affinity.records import ScoreRecord

TASKS = tuple(f"t{i}" for i in range(7))
TARGETS = TASKS[:5]  # t5 and t6 are only ever auxiliaries


class _Counted(list[Gain]):
    """A gain list that counts how often it is read through."""

    reads = 0

    def __iter__(self) -> Iterator[Gain]:
        self.reads += 1
        return super().__iter__()


class _SizeEstimator(AffinityEstimator):
    """Keeps the base class's ``n_evidence`` (any gain with a task of the set); predicts from names."""

    name = "size-test"

    def _fit(self, table: GainTable) -> None:
        self.weights = {t: (hash(t) % 7) / 10 for t in table.tasks}

    def _predict(self, target: str, auxiliaries: frozenset[str]) -> tuple[float, float]:
        return sum(self.weights[s] for s in auxiliaries) / len(auxiliaries), 0.1


def random_table(seed: int) -> GainTable:
    """Return a random gain table: overlapping run ids, anonymous gains, repeated sets."""
    rng = random.Random(seed)
    gains = []
    for target in TARGETS:
        others = [t for t in TASKS if t != target]
        for _ in range(rng.randint(6, 18)):
            auxiliaries = frozenset(rng.sample(others, rng.choice((1, 1, 2, 3))))
            anonymous = rng.random() < 0.3
            gains.append(
                Gain(
                    target=target,
                    auxiliaries=auxiliaries,
                    mean=rng.gauss(0.0, 0.1),
                    stderr=rng.choice((math.nan, rng.random() / 10)),
                    n_records=rng.randint(1, 5),
                    family=rng.choice(("", "small", "large")),
                    split="dev",
                    metric=rng.choice(("acc", "f1")),
                    # few ids: runs are shared between gains of a target and across targets
                    run_ids=frozenset()
                    if anonymous
                    else frozenset(rng.sample(range(25), rng.randint(1, 4))),
                )
            )
    # compute_gains never makes one, a hand-built table may: the target among its auxiliaries
    gains.append(Gain("t0", frozenset({"t0", "t1"}), 0.3, 0.01, 2, run_ids=frozenset({99})))
    gains.append(Gain("t1", frozenset({"t1"}), 0.2, 0.01, 3))
    rng.shuffle(gains)
    return GainTable(gains=gains)


def scan_any(gains: Iterable[Gain], target: str, task_set: Iterable[str]) -> int:
    """The base class's former ``n_evidence``: every gain of the target with a task of the set."""
    auxiliaries = frozenset(task_set) - {target}
    return evidence_runs(g for g in gains if g.target == target and g.auxiliaries & auxiliaries)


def scan_pairs(gains: Iterable[Gain], target: str, task_set: Iterable[str]) -> int:
    """The pair estimators' former ``n_evidence``: single-auxiliary gains with a task of the set."""
    auxiliaries = frozenset(task_set) - {target}
    return evidence_runs(
        g for g in gains
        if g.target == target and len(g.auxiliaries) == 1 and g.auxiliaries <= auxiliaries
    )  # fmt: skip


def every_set() -> Iterator[tuple[str, frozenset[str]]]:
    """Every (target, task set), sets holding the target or unknown names included."""
    names = (*TASKS, "unknown")
    for target in (*TASKS, "unknown"):
        for size in range(1, 5):
            for combo in itertools.combinations(names, size):
                yield target, frozenset(combo)


@pytest.mark.parametrize("seed", range(6))
def test_n_evidence_equals_the_scan_for_every_target_and_set(seed: int) -> None:
    table = random_table(seed)
    base = _SizeEstimator().fit_gains(table)
    hoa = HigherOrderEstimator().fit_gains(table)
    pairwise = PairwiseEstimator().fit_gains(table)
    checked = nonzero = 0
    for target, task_set in every_set():
        expected_any = scan_any(table.gains, target, task_set)
        expected_pairs = scan_pairs(table.gains, target, task_set)
        assert base.n_evidence(target, task_set) == expected_any, (target, task_set)
        assert hoa.n_evidence(target, task_set) == expected_pairs, (target, task_set)
        assert pairwise.n_evidence(target, task_set) == expected_pairs, (target, task_set)
        checked += 1
        nonzero += expected_any > 0
    # the tables are not trivial: most sets have evidence, some none
    assert checked > 1000 and checked // 2 < nonzero < checked


def test_n_evidence_follows_a_new_fit() -> None:
    estimator = HigherOrderEstimator().fit_gains(random_table(0))
    estimator.n_evidence("t0", {"t1"})  # the index of the first fit is built
    table = random_table(1)
    estimator.fit_gains(table)
    for target, task_set in every_set():
        assert estimator.n_evidence(target, task_set) == scan_pairs(table.gains, target, task_set)


@pytest.mark.parametrize("seed", range(6))
def test_evidence_index_equals_the_scan_for_every_target_and_set(seed: int) -> None:
    from taskgraph.affinity.gain_queries import EvidenceIndex

    table = random_table(seed)
    any_index = EvidenceIndex(table.gains)
    pair_index = EvidenceIndex(table.gains, pairs_only=True)
    for target, task_set in every_set():
        auxiliaries = task_set - {target}
        assert any_index.runs(target, auxiliaries) == scan_any(table.gains, target, task_set)
        assert pair_index.runs(target, auxiliaries) == scan_pairs(table.gains, target, task_set)


@pytest.mark.parametrize("seed", range(6))
def test_indexed_measured_gain_equals_the_scan_for_every_target_and_set(seed: int) -> None:
    from taskgraph.affinity.gain_queries import GainLookup

    table = random_table(seed)
    lookup = GainLookup(table.gains)
    several = 0
    for target, task_set in every_set():
        expected = measured_gain(table.gains, target, task_set)
        found = lookup.measured(target, task_set)
        # the same bits (repr), None where the set was never measured
        assert repr(found) == repr(expected), (target, task_set)
        wanted = task_set - {target}
        several += sum(g.target == target and g.auxiliaries == wanted for g in table.gains) > 1
    assert several > 0  # some sets are measured in several families: their mean is checked


def _reference_rank(
    estimator: AffinityEstimator,
    target: str,
    k: int,
    *,
    evidence_only: bool,
    scan: Any,
) -> tuple[list[Recommendation], int]:
    """``rank_auxiliaries`` as it was: every set's evidence by a scan of every gain."""
    pool = sorted(set(estimator.tasks) - {target})
    total = sum(math.comb(len(pool), size) for size in range(1, len(pool) + 1))
    if total <= recommend.EXHAUSTIVE_LIMIT:
        sets = list(recommend._enumerate(pool, len(pool)))
    else:
        sets = recommend._beam(pool, len(pool), lambda b: estimator.predict_many(target, b)[0])
    means, stds = estimator.predict_many(target, sets)
    evidence = [scan(estimator.table.gains, target, s) for s in sets]
    kept = [i for i in range(len(sets)) if not evidence_only or evidence[i] > 0]
    order = sorted(kept, key=lambda i: (-means[i], len(sets[i]), sorted(sets[i])))[:k]
    return [
        Recommendation(
            auxiliaries=tuple(sorted(sets[i])),
            predicted_gain=float(means[i]),
            std=float(stds[i]),
            evidence_runs=int(evidence[i]),
            measured_gain=measured_gain(estimator.table.gains, target, sets[i]),
            gain_kind=estimator.gain_kind,
        )
        for i in order
    ], len(sets) - len(kept)


@pytest.mark.parametrize("beam", [False, True])
@pytest.mark.parametrize("evidence_only", [False, True])
@pytest.mark.parametrize("seed", range(3))
def test_recommendations_equal_the_scanning_reference(
    seed: int, evidence_only: bool, beam: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if beam:  # 7 tasks: 63 sets, so a small limit sends them through the beam search
        monkeypatch.setattr(recommend, "EXHAUSTIVE_LIMIT", 10)
        monkeypatch.setattr(recommend, "BEAM_WIDTH", 3)
    table = random_table(seed)
    for estimator, scan in (
        (_SizeEstimator().fit_gains(table), scan_any),
        (HigherOrderEstimator().fit_gains(table), scan_pairs),
        (PairwiseEstimator().fit_gains(table), scan_pairs),
    ):
        for target in TARGETS:
            for k in (1, 4, 100):
                got = rank_auxiliaries(estimator, target, k, evidence_only=evidence_only)
                expected = _reference_rank(
                    estimator, target, k, evidence_only=evidence_only, scan=scan
                )
                assert repr(got) == repr(expected), (estimator.name, target, k)


def test_the_beam_counts_no_evidence_and_the_ranking_counts_it_for_the_sets_returned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(recommend, "EXHAUSTIVE_LIMIT", 10)  # the beam search
    estimator = HigherOrderEstimator().fit_gains(random_table(0))
    counted: list[frozenset[str]] = []
    original = estimator.n_evidence

    def n_evidence(target: str, task_set: Iterable[str]) -> int:
        counted.append(frozenset(task_set))
        return original(target, task_set)

    monkeypatch.setattr(estimator, "n_evidence", n_evidence)
    found, _ = rank_auxiliaries(estimator, "t0", 3)
    assert len(found) == 3
    assert sorted(map(sorted, counted)) == sorted(sorted(r.auxiliaries) for r in found)


def test_the_gains_are_read_a_fixed_number_of_times_not_once_per_set_or_edge() -> None:
    table = random_table(1)
    table.gains = _Counted(table.gains)
    estimator = HigherOrderEstimator().fit_gains(table)
    base = _SizeEstimator().fit_gains(table)
    table.gains.reads = 0
    graph = affinity_graph(estimator)
    assert graph.number_of_edges() == len(TARGETS) * (len(TASKS) - 1)
    # names, metrics, pairs and two indexes; a scan per edge read them 2 * 30 times more
    assert table.gains.reads <= 10
    for model in (estimator, base):
        table.gains.reads = 0
        rank_auxiliaries(model, "t0", 3)  # 63 sets
        assert table.gains.reads <= 5  # names and two indexes; a scan per set: 63 times more


@pytest.mark.parametrize("min_evidence", [0, 1, 3])
@pytest.mark.parametrize("seed", range(4))
def test_graph_edges_equal_the_scanning_reference(seed: int, min_evidence: int) -> None:
    table = random_table(seed)
    for estimator, scan in (
        (HigherOrderEstimator().fit_gains(table), scan_pairs),
        (_SizeEstimator().fit_gains(table), scan_any),
    ):
        graph = affinity_graph(estimator, min_evidence=min_evidence)
        edges = {(e["source"], e["target"]): e for e in graph_edges(graph)}
        expected = {}
        left_out = 0
        for target in estimator.targets:
            for source in estimator.tasks:
                if source == target:
                    continue
                evidence = scan(table.gains, target, {source})
                if evidence < min_evidence:
                    left_out += 1
                    continue
                measured = measured_gain(table.gains, target, {source})
                alone = evidence_runs(
                    g for g in table.gains if g.target == target and g.auxiliaries == {source}
                )
                expected[(source, target)] = (evidence, alone, repr(measured))
        found = {
            pair: (e["evidence_runs"], e["pair_runs"], repr(e[gain_key("measured", "relative")]))
            for pair, e in edges.items()
        }
        assert found == expected
        assert graph.graph.get("left_out_edges", 0) == left_out


def _records(seed: int) -> list[ScoreRecord]:
    """Records of two splits and two metrics whose keys first appear in sets of three tasks."""
    rng = random.Random(seed)
    tasks = ("a", "b", "c", "d")
    records = []
    for run in range(1, 121):
        task_set = frozenset(rng.sample(tasks, rng.choice((1, 2, 2, 3))))
        for task in sorted(task_set):
            for split, metric in (("dev", "acc"), ("dev", "f1"), ("test", "acc")):
                value = rng.choice((math.nan, *([rng.uniform(0.3, 0.9)] * 9)))
                records.append(
                    ScoreRecord(task=task, task_set=task_set, value=value, split=split,
                                metric=metric, family=rng.choice(("", "x")),
                                seed=rng.randint(0, 2), run_id=run)
                )  # fmt: skip
    # every key's first records are of a set of three (one not counted: not finite)
    first = [
        ScoreRecord(task=t, task_set=frozenset({"a", "b", "c"}), value=v, split=s, metric=m,
                    family=f, run_id=0)
        for f in ("x", "")
        for t in ("c", "a", "b")
        for s, m in (("test", "acc"), ("dev", "f1"), ("dev", "acc"))
        for v in (math.nan, 0.5)
    ]  # fmt: skip
    return first + records


@pytest.mark.parametrize(("split", "metric"), [(None, None), ("dev", None), ("dev", "acc")])
@pytest.mark.parametrize("seed", range(3))
def test_pair_records_give_the_pair_gains_of_all_records_to_the_bit(
    seed: int, split: str | None, metric: str | None
) -> None:
    from taskgraph.affinity.gain_queries import GainLookup
    from taskgraph.app.affinity.graph import _pair_records

    records = _records(seed)
    kept = list(_pair_records(records, split=split, metric=metric))
    assert len(kept) < len(records)  # the sets of three tasks are mostly left out
    whole = compute_gains(records, kind="absolute", split=split, metric=metric).gains
    pairs = GainLookup(compute_gains(kept, kind="absolute", split=split, metric=metric).gains)
    measured = 0
    for target in "abcd":
        for source in "abcd":
            if source != target:
                expected = measured_gain(whole, target, {source})
                assert repr(pairs.measured(target, {source})) == repr(expected)
                measured += expected is not None
    assert measured > 6
