"""``textemb``: cold-start predictions from task similarity alone (Vu et al. 2020).

Vu et al. 2020, "Exploring and Predicting Transferability across NLP Tasks" (EMNLP), rank
source tasks for a target by the cosine similarity of TextEmb task embeddings (the mean
encoder embedding of a task's training text).  Here the predicted gain of ``t`` from ``S`` is
``alpha + beta * mean_{s in S} cos(e_t, e_s)``, with ``alpha`` and ``beta`` calibrated on any
measured pair gains (``alpha = 0``, ``beta = 1`` without them: a pure ranking).  It needs no
record of the target at all.  Embeddings are given as arrays (computed outside ``affinity/``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from taskgraph.affinity.estimators.base import AffinityEstimator, pooled_std
from taskgraph.affinity.gain_queries import pair_gains
from taskgraph.affinity.gains import GainKind, GainTable
from taskgraph.errors import ConfigError

__all__ = ["TextEmbEstimator"]


class TextEmbEstimator(AffinityEstimator):
    """Cosine similarity of task embeddings, calibrated on measured pairs (registry name ``textemb``)."""

    name = "textemb"

    def __init__(
        self,
        *,
        task_embeddings: Mapping[str, np.ndarray] | None = None,
        gain_kind: GainKind = "relative",
        split: str | None = None,
        metric: str | None = None,
    ) -> None:
        super().__init__(gain_kind=gain_kind, split=split, metric=metric)
        if not task_embeddings:
            raise ConfigError(
                "the textemb estimator needs `task_embeddings` (task -> vector), but got none"
            )
        self.embeddings = {
            t: np.asarray(v, dtype=float).ravel() for t, v in task_embeddings.items()
        }

    def _cos(self, a: str, b: str) -> float | None:
        if a not in self.embeddings or b not in self.embeddings:
            return None
        u, v = self.embeddings[a], self.embeddings[b]
        denominator = float(np.linalg.norm(u) * np.linalg.norm(v))
        return float(u @ v) / denominator if denominator > 0 else 0.0

    def _fit(self, table: GainTable) -> None:
        measured = pair_gains(table.gains)
        xs, ys = [], []
        for (target, source), (mean, _, _) in measured.items():
            cos = self._cos(target, source)
            if cos is not None:
                xs.append(cos)
                ys.append(mean)
        if len(xs) >= 3 and np.ptp(xs) > 0:
            design = np.column_stack([np.ones(len(xs)), xs])
            (self.alpha, self.beta), *_ = np.linalg.lstsq(design, np.array(ys), rcond=None)
            self.residual_std = pooled_std(
                np.array(ys) - design @ np.array([self.alpha, self.beta])
            )
        else:
            self.alpha, self.beta, self.residual_std = 0.0, 1.0, 1.0

    @property
    def tasks(self) -> list[str]:
        """Return the tasks with an embedding or a record."""
        return sorted(set(super().tasks) | set(self.embeddings))

    def _predict(self, target: str, auxiliaries: frozenset[str]) -> tuple[float, float]:
        # In name order: a frozenset's order follows PYTHONHASHSEED, and so would the mean's
        # last digits.
        sims = [c for s in sorted(auxiliaries) if (c := self._cos(target, s)) is not None]
        if not sims:
            return float(self.alpha), 2.0 * self.residual_std
        return float(self.alpha + self.beta * np.mean(sims)), self.residual_std

    def n_evidence(self, target: str, task_set: object) -> int:
        """Return 0: similarity is not evidence about this target."""
        return 0
