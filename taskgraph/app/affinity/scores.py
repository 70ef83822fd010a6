"""Measured scores of task sets, of one model family: what a grouping compares.

Scores of different model families (a small and a large encoder) are not comparable, so
:func:`score_family` picks one and :func:`measured_scores` returns its baselines, directions
and per-task scores of the task sets within the tasks grouped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from taskgraph.affinity.records import ScoreRecord
from taskgraph.errors import ConfigError

__all__ = ["measured_scores", "score_family"]


def _within(records: Sequence[ScoreRecord], tasks: Sequence[str]) -> list[ScoreRecord]:
    return [r for r in records if r.task_set <= set(tasks) and math.isfinite(r.value)]


def score_family(
    records: Sequence[ScoreRecord], tasks: Sequence[str]
) -> tuple[str | None, list[str]]:
    """Return the model family whose measured scores of ``tasks`` are compared, and every family.

    Scores of different families (a small and a large encoder) are not comparable: a mean
    over them is a score no model reached.  The family chosen has a single-task record of
    every task and, among those, the most records of task sets within ``tasks`` (ties by
    name); None when no family has every baseline.
    """
    family, counts = _score_family(_within(records, tasks), tasks)
    return family, sorted(counts)


def _score_family(
    within: Sequence[ScoreRecord], tasks: Sequence[str]
) -> tuple[str | None, dict[str, int]]:
    """Return :func:`score_family`'s family and each family's count of records, over records
    already within ``tasks`` (:func:`_within`)."""
    counts: dict[str, int] = {}
    baselines: dict[str, set[str]] = {}
    for record in within:
        counts[record.family] = counts.get(record.family, 0) + 1
        if record.is_baseline:
            baselines.setdefault(record.family, set()).add(record.task)
    complete = [f for f in counts if baselines.get(f, set()) >= set(tasks)]
    chosen = min(complete, key=lambda f: (-counts[f], f)) if complete else None
    return chosen, counts


def measured_scores(
    records: list[ScoreRecord], tasks: Sequence[str], *, family: str | None = None
) -> tuple[dict[str, float], dict[str, bool], dict[frozenset[str], dict[str, float]]]:
    """Return baselines, directions and measured per-task scores of the task sets within ``tasks``.

    Scores of one model family: ``family``, else :func:`score_family`'s.  A task set with
    records of only some of its members holds those members' scores (partly measured).
    """
    within = _within(records, tasks)
    chosen, counts = _score_family(within, tasks)
    return _measured_scores(
        within, tasks, family=chosen if family is None else family, counts=counts
    )


def _measured_scores(
    within: Sequence[ScoreRecord],
    tasks: Sequence[str],
    *,
    family: str | None,
    counts: Mapping[str, int],
) -> tuple[dict[str, float], dict[str, bool], dict[frozenset[str], dict[str, float]]]:
    """Return :func:`measured_scores` over records already within ``tasks`` (:func:`_within`),
    of ``family`` (None: :func:`_score_family` found none), ``counts`` being its counts."""
    if family is None and len(counts) > 1:
        largest = min(sorted(counts), key=lambda f: (-counts[f], f))
        missing = sorted(
            set(tasks) - {r.task for r in within if r.family == largest and r.is_baseline}
        )
        raise ConfigError(
            f"no single-task score for {missing} in model family {largest} (the one with the "
            f"most records of {len(counts)}), and no family has every task's: a grouping "
            "compares scores within one family"
        )
    values: dict[frozenset[str], dict[str, list[float]]] = {}
    higher: dict[str, bool] = {}
    for record in within:
        if family is None or record.family == family:
            values.setdefault(record.task_set, {}).setdefault(record.task, []).append(record.value)
            higher[record.task] = record.higher_is_better
    # Every member with records, also of a set whose other members have none (partly
    # measured: predicted_network_scores predicts only those others).
    measured = {n: {t: float(np.mean(v)) for t, v in per.items()} for n, per in values.items()}
    baselines = {t: measured[frozenset({t})][t] for t in tasks if frozenset({t}) in measured}
    missing = [t for t in tasks if t not in baselines]
    if missing:
        raise ConfigError(
            f"no single-task score for {missing}: groupings compare every task with its baseline"
        )
    return baselines, higher, measured
