"""``lookahead``: lookahead inter-task affinity from joint runs as a cheap prior.

Fifty et al. 2021, "Efficiently Identifying Task Groupings for Multi-Task Learning" (TAG,
NeurIPS): during one joint run, the relative drop of task ``j``'s loss after a gradient step on
task ``i`` alone, ``Z(i -> j)`` (:class:`~taskgraph.trial.LookaheadMatrix`, ``values[i][j]``;
positive = the step on ``i`` lowers ``j``'s loss).  One run of all tasks yields every pair.

The gain of ``t`` from ``S`` is predicted as ``alpha + beta * mean_{s in S} Z(s -> t)``.  When
pair gains were also measured, ``alpha`` and ``beta`` are their least-squares calibration and
the standard deviation is the calibration's residual spread; without pair gains ``beta = 1``,
``alpha = 0`` (the ranking is what the matrix can give) and the standard deviation is the
spread of ``Z``: the values are then lookahead scores, not gains (``calibrated`` False).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from taskgraph.affinity.estimators.base import AffinityEstimator, as_task_set, pooled_std
from taskgraph.affinity.gain_queries import pair_gains
from taskgraph.affinity.gains import GainKind, GainTable
from taskgraph.trial import LookaheadMatrix

__all__ = ["LookaheadEstimator", "average_lookahead"]


def average_lookahead(
    matrices: Sequence[LookaheadMatrix],
) -> dict[tuple[str, str], tuple[float, int]]:
    """Return ``(target, source) -> (mean Z(source -> target), n_matrices)`` over ``matrices``."""
    sums: dict[tuple[str, str], list[float]] = {}
    for matrix in matrices:
        for i, source in enumerate(matrix.tasks):
            for j, target in enumerate(matrix.tasks):
                value = matrix.values[i][j]
                if source != target and math.isfinite(value):
                    sums.setdefault((target, source), []).append(value)
    return {pair: (float(np.mean(v)), len(v)) for pair, v in sums.items()}


class LookaheadEstimator(AffinityEstimator):
    """Calibrated lookahead affinity (registry name ``lookahead``)."""

    name = "lookahead"

    def __init__(
        self,
        *,
        lookahead: Sequence[LookaheadMatrix] = (),
        gain_kind: GainKind = "relative",
        split: str | None = None,
        metric: str | None = None,
    ) -> None:
        super().__init__(gain_kind=gain_kind, split=split, metric=metric)
        self.lookahead = list(lookahead)

    def _fit(self, table: GainTable) -> None:
        self.z = average_lookahead(self.lookahead)
        # Which matrices hold each pair: a set's evidence counts each matrix once.
        self.holders: dict[tuple[str, str], set[int]] = {}
        for index, matrix in enumerate(self.lookahead):
            for i, source in enumerate(matrix.tasks):
                for j, target in enumerate(matrix.tasks):
                    if source != target and math.isfinite(matrix.values[i][j]):
                        self.holders.setdefault((target, source), set()).add(index)
        measured = pair_gains(table.gains)
        common = [pair for pair in measured if pair in self.z]
        z_values = [v for v, _ in self.z.values()]
        #: whether alpha and beta were fitted on measured pair gains (else the predictions
        #: are raw lookahead scores: a ranking, not a gain)
        self.calibrated = len(common) >= 3
        if self.calibrated:
            x = np.array([self.z[p][0] for p in common])
            y = np.array([measured[p][0] for p in common])
            design = np.column_stack([np.ones_like(x), x])
            (self.alpha, self.beta), *_ = np.linalg.lstsq(design, y, rcond=None)
            self.residual_std = pooled_std(
                y - design @ np.array([self.alpha, self.beta]), fallback=1.0
            )
        else:
            self.alpha, self.beta = 0.0, 1.0
            self.residual_std = pooled_std(z_values, fallback=1.0)

    @property
    def tasks(self) -> list[str]:
        """Return the tasks named in the records or the lookahead matrices."""
        return sorted(set(super().tasks) | {t for pair in self.z for t in pair})

    def _predict(self, target: str, auxiliaries: frozenset[str]) -> tuple[float, float]:
        # In name order: a frozenset's order follows PYTHONHASHSEED, and so would the mean's
        # last digits.
        known = [self.z[(target, s)][0] for s in sorted(auxiliaries) if (target, s) in self.z]
        if not known:
            return float(self.alpha), self.residual_std * 2.0
        return float(self.alpha + self.beta * np.mean(known)), self.residual_std / math.sqrt(
            len(known)
        )

    def n_evidence(self, target: str, task_set: Iterable[str]) -> int:
        """Return how many lookahead matrices relate ``target`` to a task of ``task_set``
        (each matrix once: one matrix is one screen or joint run)."""
        auxiliaries = as_task_set(task_set, "`task_set`") - {target}
        found: set[int] = set()
        for source in auxiliaries:
            found |= self.holders.get((target, source), set())
        return len(found)

    def describe(self) -> dict[str, Any]:
        """Return the base description plus whether the scores were calibrated into gains."""
        return {**super().describe(), "calibrated": bool(self.calibrated)}
