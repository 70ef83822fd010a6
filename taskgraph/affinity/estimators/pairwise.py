"""Estimators from measured pairs: ``pairwise`` and ``hoa`` (Standley et al. 2020).

Both read only the gains of a target from single auxiliary tasks (``g(t | {t, s})``).

* ``pairwise`` answers with the measured pair gain; for a larger set it adds the pair gains
  (the reading in which auxiliary tasks act independently).
* ``hoa`` is the higher-order approximation of Standley et al. 2020, "Which Tasks Should Be
  Learned Together in Multi-task Learning?" (ICML): the gain of ``t`` in ``S`` is the mean of
  its pair gains over ``S``.  Pairs that were never measured are left out of the mean; a set
  with no measured pair gets the prior (mean 0, the spread of all pair gains).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from taskgraph.affinity.estimators.base import AffinityEstimator, as_task_set, pooled_std
from taskgraph.affinity.gain_queries import pair_gains
from taskgraph.affinity.gains import GainTable
from taskgraph.errors import ConfigError

__all__ = ["HigherOrderEstimator", "PairwiseEstimator"]


class _PairBased(AffinityEstimator):
    def _fit(self, table: GainTable) -> None:
        if not table.tasks:
            raise ConfigError(f"no gains to fit: {table.why_empty()}")
        self.pairs = dict(pair_gains(table.gains))
        means = [m for m, _, _ in self.pairs.values()]
        self.prior_std = pooled_std(means, fallback=1.0)
        # Pairs measured once have no standard error of their own: use the typical one.  An
        # error of exactly 0 (identical values) says nothing about the noise of another pair.
        known_se = [se for _, se, _ in self.pairs.values() if math.isfinite(se) and se > 0]
        self.default_se = float(np.median(known_se)) if known_se else self.prior_std

    def _pair(self, target: str, source: str) -> tuple[float, float] | None:
        found = self.pairs.get((target, source))
        if found is None:
            return None
        mean, se, _ = found
        return mean, se if math.isfinite(se) else self.default_se

    def n_evidence(self, target: str, task_set: Iterable[str]) -> int:
        """Return the number of runs that measured a pair of ``target`` with a task of ``task_set``."""
        auxiliaries = as_task_set(task_set, "`task_set`") - {target}
        return self._evidence_index(pairs_only=True).runs(target, auxiliaries)


class PairwiseEstimator(_PairBased):
    """Measured pair gains; sums of them for larger sets (independent-effects reading)."""

    name = "pairwise"

    def _predict(self, target: str, auxiliaries: frozenset[str]) -> tuple[float, float]:
        mean = 0.0
        var = 0.0
        # In name order: a frozenset's order follows PYTHONHASHSEED, and float addition is not
        # associative, so another order could change the last digits between runs.
        for source in sorted(auxiliaries):
            pair = self._pair(target, source)
            if pair is None:
                var += self.prior_std**2
            else:
                mean += pair[0]
                var += pair[1] ** 2
        return mean, math.sqrt(var)


class HigherOrderEstimator(_PairBased):
    """Standley et al. 2020's higher-order approximation: the mean of the pair gains."""

    name = "hoa"

    def _predict(self, target: str, auxiliaries: frozenset[str]) -> tuple[float, float]:
        # In name order, as in ``pairwise``: the mean's last digits must not follow the hash seed.
        known = [p for s in sorted(auxiliaries) if (p := self._pair(target, s)) is not None]
        if not known:
            return 0.0, self.prior_std
        mean = float(np.mean([m for m, _ in known]))
        std = math.sqrt(sum(se**2 for _, se in known)) / len(known)
        return mean, std
