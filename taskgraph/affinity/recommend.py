"""Recommendations: the best auxiliary sets for a target, with predicted gain and evidence.

``recommend_auxiliaries`` scores candidate sets with a fitted estimator, or with a graph
(then a set's gain is the mean of its edges into the target, as in Standley et al.'s
higher-order approximation, its standard deviation the edges' combined one, NaN when an
edge's is unknown).  Each recommendation carries the *predicted* gain beside the *measured*
one where the set was run (an estimator shrinks what it measured toward what it learned
from the other sets, so the two differ), and the runs behind the prediction, each counted
once.  A graph holds counts, not run identities: a set's runs from it are its edges'
``pair_runs`` (the target trained with that source alone, a different run for every edge)
plus the largest number of group runs behind any one of its edges (a run of a group with
several of the set's sources is behind each of their edges, so adding them would count it
again), exact for pair evidence and a lower bound beyond it.  Up to
:data:`EXHAUSTIVE_LIMIT` candidate sets are enumerated; beyond that a beam search grows sets
one auxiliary at a time, keeping the :data:`BEAM_WIDTH` best by predicted gain.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np

from taskgraph.affinity.estimators.base import AffinityEstimator, as_task_set
from taskgraph.affinity.gain_queries import GainLookup
from taskgraph.affinity.gains import GainKind, gain_key
from taskgraph.errors import ConfigError

__all__ = [
    "BEAM_WIDTH",
    "EXHAUSTIVE_LIMIT",
    "Recommendation",
    "rank_auxiliaries",
    "recommend_auxiliaries",
]

EXHAUSTIVE_LIMIT = 8192
BEAM_WIDTH = 64


@dataclass(frozen=True)
class Recommendation:
    """An auxiliary set for a target: predicted gain, its uncertainty, the measured gain, evidence.

    ``predicted_gain`` and ``measured_gain`` are both of kind ``gain_kind`` (relative by
    default: ``(score - baseline) / |baseline|``); ``measured_gain`` is None for a set never
    run.  ``evidence_runs``: runs that measured the target with a task of the set.
    """

    auxiliaries: tuple[str, ...]
    predicted_gain: float
    std: float
    evidence_runs: int
    measured_gain: float | None = None
    gain_kind: GainKind = "relative"

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-ready dict whose keys say which gain is which: ``predicted_relative_gain``, ..."""
        predicted = gain_key("predicted", self.gain_kind)
        return {
            "auxiliaries": list(self.auxiliaries),
            predicted: self.predicted_gain,
            f"{predicted}_std": self.std,
            gain_key("measured", self.gain_kind): self.measured_gain,
            "evidence_runs": self.evidence_runs,
        }


class _GraphModel:
    """Scores sets from a graph's edges (mean gain of the edges into the target)."""

    def __init__(self, graph: nx.DiGraph) -> None:
        self.graph = graph
        self.kind: GainKind = graph.graph.get("gain_kind", "relative")
        self.key = gain_key("predicted", self.kind)

    def candidates_for(self, target: str) -> list[str]:
        return sorted(self.graph.predecessors(target)) if target in self.graph else []

    def measured(self, target: str, aux: frozenset[str]) -> float | None:
        # A graph holds pair edges only: a larger set's measured gain is not in it.
        if len(aux) != 1 or not self.graph.has_edge(next(iter(aux)), target):
            return None
        value = self.graph.edges[next(iter(aux)), target].get(gain_key("measured", self.kind))
        return None if value is None or not math.isfinite(value) else float(value)

    def score(
        self, target: str, sets: Sequence[frozenset[str]]
    ) -> tuple[np.ndarray, np.ndarray, list[int]]:
        means, stds, evidence = [], [], []
        for aux in sets:
            # In name order: a frozenset's order follows PYTHONHASHSEED, and the mean's and
            # the variance's last digits would follow it.
            edges = [
                self.graph.edges[s, target] for s in sorted(aux) if self.graph.has_edge(s, target)
            ]
            if not edges:
                means.append(0.0)
                stds.append(math.inf)
                evidence.append(0)
                continue
            # Graphs written before the gain names were split keep "gain", "std", "n_evidence".
            means.append(float(np.mean([e.get(self.key, e.get("gain")) for e in edges])))
            # An edge's std is unknown when missing, negative (the graph's -1 marker) or not
            # finite; one unknown term makes the mean's std unknown too (NaN, as in gains).
            edge_stds = [e.get(f"{self.key}_std", e.get("std")) for e in edges]
            if all(sd is not None and math.isfinite(sd) and sd >= 0 for sd in edge_stds):
                variance = sum(float(sd) ** 2 for sd in edge_stds)
                stds.append(math.sqrt(variance) / len(edges))
            else:
                stds.append(math.nan)
            evidence.append(_distinct_runs(edges))
        return np.asarray(means), np.asarray(stds), evidence


def _distinct_runs(edges: Sequence[Mapping[str, Any]]) -> int:
    """Return the runs behind ``edges`` into one target, each run once (module docstring).

    Edges without ``pair_runs`` (stored edges, older files) count all their runs as group
    runs: the count is then the best-evidenced edge's.
    """
    alone, grouped = 0, 0
    for edge in edges:
        runs = int(edge.get("evidence_runs", edge.get("n_evidence", 0)) or 0)
        pair = min(int(edge.get("pair_runs", 0) or 0), runs)
        alone += pair
        grouped = max(grouped, runs - pair)
    return alone + grouped


def _enumerate(candidates: Sequence[str], max_size: int) -> Iterable[frozenset[str]]:
    for size in range(1, max_size + 1):
        for combo in itertools.combinations(candidates, size):
            yield frozenset(combo)


def recommend_auxiliaries(
    model_or_graph: AffinityEstimator | nx.DiGraph,
    target: str,
    k: int = 5,
    *,
    candidates: Sequence[str] | None = None,
    max_size: int | None = None,
) -> list[Recommendation]:
    """Return the ``k`` auxiliary sets with the highest predicted gain for ``target``, best first."""
    return rank_auxiliaries(model_or_graph, target, k, candidates=candidates, max_size=max_size)[0]


def rank_auxiliaries(
    model_or_graph: AffinityEstimator | nx.DiGraph,
    target: str,
    k: int = 5,
    *,
    candidates: Sequence[str] | None = None,
    max_size: int | None = None,
    evidence_only: bool = False,
) -> tuple[list[Recommendation], int]:
    """Return :func:`recommend_auxiliaries`' list and how many sets were left out for having
    no evidence (``evidence_only``: a set no run, pair or matrix backs is left out before
    ranking; its prediction is the estimator's placeholder prior, not a prediction from
    anything measured)."""
    if k < 1:
        raise ConfigError(f"`k` must be >= 1, but got {k}")
    if candidates is not None:
        candidates = sorted(as_task_set(candidates, "`candidates`"))
    if isinstance(model_or_graph, nx.DiGraph):
        graph_model = _GraphModel(model_or_graph)
        pool = sorted(
            set(candidates if candidates is not None else graph_model.candidates_for(target))
            - {target}
        )

        def predict(sets: Sequence[frozenset[str]]) -> tuple[np.ndarray, np.ndarray]:
            means, stds, _ = graph_model.score(target, sets)
            return means, stds

        def evidence_of(aux: frozenset[str]) -> int:
            return graph_model.score(target, [aux])[2][0]

        def measured(aux: frozenset[str]) -> float | None:
            return graph_model.measured(target, aux)

        kind = graph_model.kind
    else:
        estimator = model_or_graph
        pool = sorted(set(candidates if candidates is not None else estimator.tasks) - {target})
        lookup: GainLookup | None = None

        def predict(sets: Sequence[frozenset[str]]) -> tuple[np.ndarray, np.ndarray]:
            return estimator.predict_many(target, sets)

        def evidence_of(aux: frozenset[str]) -> int:
            return estimator.n_evidence(target, aux)

        def measured(aux: frozenset[str]) -> float | None:
            nonlocal lookup
            if lookup is None:  # the gains indexed once, for the sets returned
                lookup = GainLookup(estimator.table.gains)
            return lookup.measured(target, aux)

        kind = estimator.gain_kind

    if not pool:
        raise ConfigError(f"no candidate auxiliary tasks for target {target!r}")
    if max_size is not None and max_size < 1:
        raise ConfigError(f"`max_size` must be >= 1, but got {max_size}")
    top = len(pool) if max_size is None else min(max_size, len(pool))
    total = sum(math.comb(len(pool), size) for size in range(1, top + 1))
    if total <= EXHAUSTIVE_LIMIT:
        sets = list(_enumerate(pool, top))
    else:
        # The beam ranks by predicted gain alone: evidence is counted for the sets kept below.
        sets = _beam(pool, top, lambda batch: predict(batch)[0])
    means, stds = predict(sets)
    # Evidence is counted where it is used: for every set when a set without it is left out
    # (the count of those is returned), else for the k sets returned.
    evidence: dict[int, int] = {}
    if evidence_only:
        evidence = {i: evidence_of(sets[i]) for i in range(len(sets))}
        kept = [i for i in range(len(sets)) if evidence[i] > 0]
    else:
        kept = list(range(len(sets)))
    order = sorted(kept, key=lambda i: (-means[i], len(sets[i]), sorted(sets[i])))[:k]
    return [
        Recommendation(
            auxiliaries=tuple(sorted(sets[i])),
            predicted_gain=float(means[i]),
            std=float(stds[i]),
            evidence_runs=int(evidence[i] if i in evidence else evidence_of(sets[i])),
            measured_gain=measured(sets[i]),
            gain_kind=kind,
        )
        for i in order
    ], len(sets) - len(kept)


def _beam(pool: Sequence[str], max_size: int, predict: object) -> list[frozenset[str]]:
    """Return every set visited by a beam search over set size (the beam's members at each size)."""
    seen: dict[frozenset[str], None] = {}
    beam = [frozenset({t}) for t in pool]
    for size in range(1, max_size + 1):
        if not beam:
            break
        scores = predict(beam)  # type: ignore[operator]
        ranked = [beam[i] for i in np.argsort(-np.asarray(scores), kind="stable")[:BEAM_WIDTH]]
        seen.update(dict.fromkeys(beam))
        if size == max_size:
            break
        beam = list(dict.fromkeys(s | {t} for s in ranked for t in pool if t not in s))
    return list(seen)
