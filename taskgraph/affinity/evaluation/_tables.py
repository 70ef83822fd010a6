"""The scored split, the true gains and the fit records that the protocols read off a table.

Also the estimator each protocol fits and the popular-source prior that the source ranking and
the pair gains compare it with.  Rank-only targets (no baseline row) get their truths and
stand-in baselines here: see :mod:`taskgraph.affinity.evaluation`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np

from taskgraph.affinity.estimators.base import AffinityEstimator, make_estimator
from taskgraph.affinity.gains import compute_gains
from taskgraph.affinity.longtable import LongTable
from taskgraph.affinity.records import ScoreRecord


def _score_split(table: LongTable) -> str:
    return "test" if "test" in table.splits else table.splits[0]


def _gain_lookup(table: LongTable, split: str) -> dict[tuple[str, frozenset[str]], float]:
    gains = compute_gains(table.to_records(split=split), kind="relative")
    return {(g.target, g.auxiliaries): g.mean for g in gains.gains}


def with_stand_in_baselines(records: Sequence[ScoreRecord]) -> list[ScoreRecord]:
    """Return ``records`` plus a stand-in baseline for each target that has none.

    The stand-in of a (family, target, split, metric) without a single-task record is the mean
    of its records' values (their largest magnitude when that mean is 0, as a relative gain
    divides by it): its gains are then in the order of its values, which is all a rank-only
    target can be scored on.  Targets with a baseline are left as they are, and so is a target
    with a single record: its stand-in would equal that record, a gain of exactly 0 made up by
    the stand-in, which would then count as evidence (and in the popular-source prior of the
    other targets); without a baseline its record gives no gain at all.
    """
    grouped: dict[tuple[str, str, str, str], list[ScoreRecord]] = defaultdict(list)
    for record in records:
        if math.isfinite(record.value):
            grouped[(record.family, record.task, record.split, record.metric)].append(record)
    added = []
    for (family, task, split, metric), rows in grouped.items():
        if len(rows) < 2 or any(r.is_baseline for r in rows):
            continue
        values = [r.value for r in rows]
        level = float(np.mean(values))
        if abs(level) < 1e-12:
            level = max(abs(v) for v in values) or 1.0
        added.append(
            ScoreRecord(
                task=task, task_set=frozenset({task}), value=level,
                higher_is_better=rows[0].higher_is_better, split=split, metric=metric,
                family=family,
            )
        )  # fmt: skip
    return [*records, *added]


def _pair_truth(
    table: LongTable, split: str, *, by_value: Collection[str] = ()
) -> dict[tuple[str, str], float]:
    """Return (target, source) -> the pair's gain on ``split``, or its sign-normalised value
    (rank-only) for a target without a baseline row there or named in ``by_value``."""
    gains = _gain_lookup(table, split)
    truth = {}
    for target in table.targets:
        ranked_by_gain = target not in by_value and table.get(target, (), split) is not None
        for task_set in table.task_sets(target, split=split):
            if len(task_set) != 2:
                continue
            source = next(iter(task_set - {target}))
            row = table.get(target, task_set, split)
            assert row is not None
            gain = gains.get((target, frozenset({source})))
            if ranked_by_gain and gain is not None:
                truth[(target, source)] = gain
            else:
                truth[(target, source)] = row.value if row.higher_is_better else -row.value
    return truth


def _build(method: str, options: Mapping[str, Any] | None) -> AffinityEstimator:
    return make_estimator(method, **dict(options or {}))


def _popular_prior(
    records: Sequence[ScoreRecord], target: str, sources: Sequence[str]
) -> np.ndarray:
    gains = compute_gains(records, kind="relative")
    per_source: dict[str, list[float]] = defaultdict(list)
    for gain in gains.gains:
        if gain.target != target and len(gain.auxiliaries) == 1:
            per_source[next(iter(gain.auxiliaries))].append(gain.mean)
    return np.array([np.mean(per_source[s]) if per_source[s] else 0.0 for s in sources])
