"""A screen's ranking: each candidate's predicted effect on the target, from one joint run.

A screen (``taskgraph study screen``) trains the target with every candidate at once, with
lookahead probes on (Fifty et al. 2021, :mod:`taskgraph.training.lookahead`).  The predicted
effect of candidate ``c`` on target ``t`` is the mean over the probes of
``Z(c -> t) = 1 - L_t(after a step on c) / L_t(before)``, with its standard error over the
probes; the ranking sorts the candidates by it (ties by name).  Pure: a
:class:`~taskgraph.trial.LookaheadMatrix` in, plain rows out.

:func:`rank_agreement` scores a ranking against measured single-auxiliary gains
(:func:`single_auxiliary_gains`): Spearman's rho, its p-value (scipy's t approximation), a
bootstrap interval over the candidates, and the smallest |rho| that is significant at 5 % for
that many candidates (``benchmarks/screen_spearman.py``).  Up to :data:`EXACT_MAX_N`
candidates both come from every permutation of the measured ranks instead, and the critical
value is None when no |rho| is significant (3 or 4 candidates).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from taskgraph.affinity.gain_queries import pair_gains
from taskgraph.affinity.gains import compute_gains
from taskgraph.affinity.records import ScoreRecord
from taskgraph.errors import ConfigError
from taskgraph.trial import LookaheadMatrix

__all__ = [
    "EXACT_MAX_N",
    "RankAgreement",
    "ScreenEntry",
    "matrix_entry",
    "rank_agreement",
    "screen_ranking",
    "screen_scores",
    "single_auxiliary_gains",
]


@dataclass(frozen=True)
class ScreenEntry:
    """One candidate's predicted effect on the target: mean Z(candidate -> target) +- stderr."""

    candidate: str
    effect: float
    stderr: float | None
    rank: int


def screen_ranking(
    matrix: LookaheadMatrix, target: str, candidates: Sequence[str] | None = None
) -> list[ScreenEntry]:
    """Return the candidates (default: every task of ``matrix`` but ``target``) by predicted
    effect on ``target``, best first; a candidate the matrix lacks or did not measure is left out.

    Raises :class:`ConfigError` when ``target`` is not in the matrix.
    """
    if target not in matrix.tasks:
        raise ConfigError(
            f"the lookahead matrix has no task {target!r} (its tasks: {', '.join(matrix.tasks)})"
        )
    j = matrix.tasks.index(target)
    # A candidate named twice is one candidate (one rank), as a spec's candidates are.
    wanted = (
        [t for t in matrix.tasks if t != target]
        if candidates is None
        else list(dict.fromkeys(candidates))
    )
    rows: list[tuple[str, float, float | None]] = []
    for name in wanted:
        if name == target or name not in matrix.tasks:
            continue
        entry = matrix_entry(matrix, matrix.tasks.index(name), j)
        if entry is not None:
            rows.append((name, *entry))
    rows.sort(key=lambda row: (-row[1], row[0]))
    return [
        ScreenEntry(candidate=name, effect=effect, stderr=error, rank=k + 1)
        for k, (name, effect, error) in enumerate(rows)
    ]


def matrix_entry(matrix: LookaheadMatrix, i: int, j: int) -> tuple[float, float | None] | None:
    """Return Z(tasks[i] -> tasks[j]) of ``matrix`` and its standard error (None when not
    known), or None when that entry was not measured (missing or not finite)."""
    value = matrix.values[i][j]
    if value is None or not math.isfinite(value):
        return None
    error = None
    if matrix.stderr is not None:
        raw = matrix.stderr[i][j]
        error = float(raw) if raw is not None and math.isfinite(raw) else None
    return float(value), error


def screen_scores(
    matrix: LookaheadMatrix, target: str, candidates: Sequence[str] | None = None
) -> dict[str, float]:
    """Return candidate -> predicted effect on ``target`` (higher is better), for the graph
    sampler's start-up order."""
    return {e.candidate: e.effect for e in screen_ranking(matrix, target, candidates)}


def single_auxiliary_gains(records: Iterable[ScoreRecord], target: str) -> dict[str, float]:
    """Return source -> measured gain of ``target`` with that source as its only auxiliary.

    Absolute gains (score with the source - score alone, same model family, mean over seeds;
    one target's relative gains rank the same).  Records of other targets are ignored.
    """
    own = [r for r in records if r.task == target]
    if not own:
        return {}
    table = compute_gains(own, kind="absolute")
    return {source: mean for (t, source), (mean, _, _) in pair_gains(table.gains).items()
            if t == target}  # fmt: skip


#: up to this many candidates the p-value is exact (every permutation), above it scipy's
#: t approximation
EXACT_MAX_N = 8


def _permutation_rhos(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return Spearman's rho of ``x`` against every permutation of ``y`` (ties kept as ranked);
    all zeros when either has no spread."""
    from itertools import permutations

    from scipy import stats

    rx = stats.rankdata(x)
    ry = stats.rankdata(y)
    centred_x = rx - rx.mean()
    centred_y = ry - ry.mean()
    scale = float(np.sqrt((centred_x**2).sum() * (centred_y**2).sum()))
    orders = np.array(list(permutations(range(len(ry)))))
    if scale == 0:
        return np.zeros(len(orders))
    return np.asarray(centred_y[orders] @ centred_x / scale, dtype=float)


def _exact_p(null: np.ndarray, rho: float) -> float:
    """Return the two-sided p-value of ``rho``: the share of ``null`` at least as extreme.

    NaN when ``rho`` is (every prediction or every gain the same: nothing to test), as scipy's
    p-value is beyond :data:`EXACT_MAX_N` candidates; no comparison with NaN is ever true, so
    counting would say p = 0.
    """
    if not math.isfinite(rho):
        return math.nan
    return float(np.mean(np.abs(null) >= abs(rho) - 1e-12))


def _exact_critical(null: np.ndarray, alpha: float = 0.05) -> float | None:
    """Return the smallest |rho| of ``null`` whose two-sided p-value is below ``alpha``; None
    when no attainable |rho| is (4 candidates: even rho = 1 has p = 1/12)."""
    for value in np.unique(np.round(np.abs(null), 12)):
        if _exact_p(null, float(value)) < alpha:
            return float(value)
    return None


@dataclass(frozen=True)
class RankAgreement:
    """Spearman's rho between predicted and measured effects over ``n`` candidates."""

    spearman: float
    p_value: float  # two-sided; exact for up to EXACT_MAX_N candidates
    low: float  # 95 % bootstrap interval over the candidates
    high: float
    n: int
    #: the smallest |rho| with p < 0.05 (two-sided) for n candidates, from the same
    #: distribution as ``p_value`` (exact for up to EXACT_MAX_N); None when no |rho| reaches it
    critical: float | None


def rank_agreement(
    predicted: Mapping[str, float],
    measured: Mapping[str, float],
    *,
    n_bootstrap: int = 2000,
    seed: int = 0,
) -> RankAgreement:
    """Return the agreement of ``predicted`` with ``measured`` on the candidates both have.

    Raises :class:`ConfigError` with fewer than 3 common candidates.
    """
    from scipy import stats

    common = sorted(set(predicted) & set(measured))
    finite = [c for c in common if math.isfinite(predicted[c]) and math.isfinite(measured[c])]
    if len(finite) < 3:
        raise ConfigError(
            f"rank agreement needs >= 3 candidates with a prediction and a measured gain, "
            f"but got {len(finite)} ({', '.join(finite) or 'none'})"
        )
    x = np.array([predicted[c] for c in finite])
    y = np.array([measured[c] for c in finite])
    rho, p = stats.spearmanr(x, y)
    n = len(finite)
    critical: float | None
    if n <= EXACT_MAX_N:
        # The t approximation is poor for a handful of candidates: count permutations instead,
        # for the p-value and the critical value alike.
        null = _permutation_rhos(x, y)
        p = _exact_p(null, float(rho))
        critical = _exact_critical(null)
    else:
        t = float(stats.t.ppf(0.975, n - 2))
        critical = t / math.sqrt(n - 2 + t * t)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_bootstrap):
        pick = rng.integers(0, len(finite), len(finite))
        if np.ptp(x[pick]) > 0 and np.ptp(y[pick]) > 0:
            draws.append(stats.spearmanr(x[pick], y[pick])[0])
    low, high = np.percentile(draws, [2.5, 97.5]) if draws else (math.nan, math.nan)
    return RankAgreement(
        spearman=float(rho),
        p_value=float(p),
        low=float(low),
        high=float(high),
        n=n,
        critical=critical,
    )
