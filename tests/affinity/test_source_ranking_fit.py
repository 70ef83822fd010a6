"""Source ranking: the fit never sees a hidden source's effect on the ranked target."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from taskgraph.affinity.estimators.base import AffinityEstimator, make_estimator
from taskgraph.affinity.evaluation import evaluate_source_ranking, with_stand_in_baselines
from taskgraph.affinity.longtable import LongRow, LongTable

SOURCES = ("s1", "s2", "s3", "s4", "s5", "s6")
#: the target's gain from each source alone; a group's gain is the mean of its members'
EFFECT = dict(zip(SOURCES, (0.10, -0.05, 0.03, 0.08, -0.02, 0.0), strict=True))


def _table() -> LongTable:
    """Target ``t`` with each of six sources alone and every two of them; ``u`` with a few pairs."""
    rows = [LongRow("t", frozenset({"t"}), "val", 0.6, True)]
    for size in (1, 2):
        for combo in itertools.combinations(SOURCES, size):
            gain = float(np.mean([EFFECT[s] for s in combo]))
            rows.append(LongRow("t", frozenset({"t", *combo}), "val", 0.6 * (1 + gain), True))
    rows.append(LongRow("u", frozenset({"u"}), "val", 0.5, True))
    for i, source in enumerate(SOURCES[:3]):
        rows.append(LongRow("u", frozenset({"u", source}), "val", 0.5 + 0.01 * i, True))
    return LongTable(rows=rows, source="hand")


def _predict(records: list, hidden: list[str]) -> np.ndarray:
    estimator = make_estimator("setfn").fit(with_stand_in_baselines(records))
    return estimator.predict_many("t", [{s} for s in hidden])[0]


def test_the_target_keeps_only_rows_of_observed_sources() -> None:
    """A group {t, observed, hidden} carries the hidden source's effect into the fit: the fit
    kept such rows when one of their sources was observed (ETTm1: 49 of 56 target rows)."""
    table = _table()
    fitted: list[AffinityEstimator] = []

    def spy(method: str, target: str, estimator: AffinityEstimator) -> None:
        if target == "t":
            fitted.append(estimator)

    evaluate_source_ranking(table, ["setfn"], seeds=[0], on_fit=spy)
    (estimator,) = fitted
    own = [g for g in estimator.table.gains if g.target == "t"]
    observed = frozenset().union(*(g.auxiliaries for g in own if len(g.auxiliaries) == 1))
    assert len(observed) == 3
    assert any(len(g.auxiliaries) == 2 for g in own)  # groups of observed sources stay
    assert all(g.auxiliaries <= observed for g in own)

    # On this table the leak changes the prediction; the protocol predicts as without it.
    hidden = [s for s in SOURCES if s not in observed]
    records = table.to_records(split="val")
    strict = [r for r in records if r.task != "t" or r.auxiliaries <= observed]
    leaky = [r for r in records if r.task != "t" or r.is_baseline or r.auxiliaries & observed]
    predicted = estimator.predict_many("t", [{s} for s in hidden])[0]
    assert predicted == pytest.approx(_predict(strict, hidden))
    assert np.max(np.abs(_predict(leaky, hidden) - predicted)) > 1e-3
