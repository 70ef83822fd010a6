"""Questions asked of computed gains: pooled pairs, measured gains and the runs behind them.

:func:`pair_gains` pools a pair's single-auxiliary gains over model families,
:func:`measured_gain` gives the measured gain of one task set and :func:`evidence_runs` counts
the runs behind a group of gains, each run once; :class:`GainLookup` and :class:`EvidenceIndex`
answer the last two for many queries from an index built once.  The gains themselves come from
:func:`taskgraph.affinity.gains.compute_gains`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping

import numpy as np

from taskgraph.affinity.gains import Gain

__all__ = [
    "EvidenceIndex",
    "GainLookup",
    "evidence_runs",
    "measured_gain",
    "pair_gains",
]


def pair_gains(gains: Iterable[Gain]) -> Mapping[tuple[str, str], tuple[float, float, int]]:
    """Return ``(target, auxiliary) -> (mean, stderr, n_observations)`` over single-auxiliary gains.

    Observations of the same pair from several families are averaged with equal weight; the
    standard error of that mean comes from the families' own errors,
    ``sqrt(sum(se_f ** 2)) / n``, and is unknown (NaN) when one of them is.  (The spread of
    the family means is not an error of their mean: two families that agree would give 0
    whatever their seed noise.)
    """
    collected: dict[tuple[str, str], list[Gain]] = defaultdict(list)
    for gain in gains:
        if len(gain.auxiliaries) == 1:
            (source,) = gain.auxiliaries
            collected[(gain.target, source)].append(gain)
    result: dict[tuple[str, str], tuple[float, float, int]] = {}
    for pair, items in collected.items():
        means = np.array([g.mean for g in items])
        errors = np.array([g.stderr for g in items])
        se = float(math.sqrt(float(np.sum(errors**2))) / len(items))  # NaN when one is NaN
        result[pair] = (float(means.mean()), se, len(items))
    return result


def evidence_runs(gains: Iterable[Gain]) -> int:
    """Return how many runs stand behind ``gains``: each run once, whatever its metrics and splits.

    Gains from records without run ids (published tables) count their records, one per run.
    """
    ids: set[int] = set()
    anonymous = 0
    for gain in gains:
        if gain.run_ids:
            ids |= gain.run_ids
        else:
            anonymous += gain.n_records
    return len(ids) + anonymous


def measured_gain(gains: Iterable[Gain], target: str, auxiliaries: Iterable[str]) -> float | None:
    """Return the measured gain of ``target`` from exactly ``auxiliaries`` (mean over families), or None."""
    wanted = frozenset(auxiliaries) - {target}
    means = [g.mean for g in gains if g.target == target and g.auxiliaries == wanted]
    return float(np.mean(means)) if means else None


class GainLookup:
    """:func:`measured_gain` for many queries: the gains indexed once by (target, auxiliaries).

    ``lookup.measured(target, auxiliaries)`` equals ``measured_gain(gains, target,
    auxiliaries)`` (the same means averaged in the same order) without a scan of every gain.
    """

    def __init__(self, gains: Iterable[Gain]) -> None:
        self._means: dict[tuple[str, frozenset[str]], list[float]] = defaultdict(list)
        for gain in gains:
            self._means[(gain.target, gain.auxiliaries)].append(gain.mean)

    def measured(self, target: str, auxiliaries: Iterable[str]) -> float | None:
        """Return the measured gain of ``target`` from exactly ``auxiliaries``, or None."""
        means = self._means.get((target, frozenset(auxiliaries) - {target}))
        return float(np.mean(means)) if means else None


class EvidenceIndex:
    """:func:`evidence_runs` of a target's gains that include one of a set of sources, indexed once.

    ``index.runs(target, sources)`` equals ``evidence_runs(g for g in gains if g.target ==
    target and g.auxiliaries & sources)`` (``pairs_only``: single-auxiliary gains alone, ``len(
    g.auxiliaries) == 1``).  Each (target, source) holds the runs behind its gains as a bit
    mask (a bit per run id of the target) and its gains without run ids as another (a bit per
    such gain, weighed by its records), so a set's runs are the union of its sources' masks:
    a run or a gain behind several of the sources is counted once, as the scan counts it.
    """

    def __init__(self, gains: Iterable[Gain], *, pairs_only: bool = False) -> None:
        self._masks: dict[tuple[str, str], tuple[int, int]] = {}
        #: target -> records of each of its gains without run ids (bit i of an anonymous mask)
        self._anonymous: dict[str, list[int]] = {}
        positions: dict[str, dict[int, int]] = {}
        for gain in gains:
            if pairs_only and len(gain.auxiliaries) != 1:
                continue
            runs, anonymous = 0, 0
            if gain.run_ids:
                bits = positions.setdefault(gain.target, {})
                for run in gain.run_ids:
                    runs |= 1 << bits.setdefault(run, len(bits))
            else:
                weights = self._anonymous.setdefault(gain.target, [])
                anonymous = 1 << len(weights)
                weights.append(gain.n_records)
            for source in gain.auxiliaries:
                known_runs, known_anonymous = self._masks.get((gain.target, source), (0, 0))
                self._masks[(gain.target, source)] = (
                    known_runs | runs,
                    known_anonymous | anonymous,
                )

    def runs(self, target: str, sources: Iterable[str]) -> int:
        """Return how many runs stand behind the gains of ``target`` with a task of ``sources``."""
        runs, anonymous = 0, 0
        for source in sources:
            found = self._masks.get((target, source))
            if found is not None:
                runs |= found[0]
                anonymous |= found[1]
        total = runs.bit_count()
        if anonymous:
            weights = self._anonymous[target]
            while anonymous:
                lowest = anonymous & -anonymous
                total += weights[lowest.bit_length() - 1]
                anonymous ^= lowest
        return total
