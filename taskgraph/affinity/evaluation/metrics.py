"""Rank metrics of a predicted order against the true one, and their summaries over targets.

:func:`spearman`, :func:`ndcg` and :func:`regret_at_k` score one target's predictions; the
private summaries average per-target scores over targets and draws and pair a method's with the
popular-source prior's (what :mod:`.ranking` and :mod:`.gains` report).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import spearmanr

#: the fewest items a per-target rank correlation (Spearman) is computed on: over two it is
#: +-1 (or undefined) whatever the predictions, not a measurement
MIN_RANKED = 3


def spearman(predicted: ArrayLike, truth: ArrayLike) -> float:
    """Return Spearman's rank correlation (NaN when either side is constant or too short)."""
    a, b = np.asarray(predicted, dtype=float), np.asarray(truth, dtype=float)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(spearmanr(a, b).statistic)


def ndcg(predicted: ArrayLike, truth: ArrayLike) -> float:
    """Return NDCG of the ranking by ``predicted``, relevance = true gain minus the smallest one."""
    a, b = np.asarray(predicted, dtype=float), np.asarray(truth, dtype=float)
    relevance = b - b.min()
    discounts = 1.0 / np.log2(np.arange(2, len(b) + 2))
    ideal = float(np.sort(relevance)[::-1] @ discounts)
    if ideal == 0:
        return math.nan
    return float(relevance[np.argsort(-a, kind="stable")] @ discounts) / ideal


def regret_at_k(predicted: ArrayLike, truth: ArrayLike, k: int = 3) -> float:
    """Return the best true gain minus the best true gain among the top ``k`` predicted."""
    a, b = np.asarray(predicted, dtype=float), np.asarray(truth, dtype=float)
    top = np.argsort(-a, kind="stable")[:k]
    return float(b.max() - b[top].max())


def _target_mean(per_target: Mapping[str, Sequence[float]]) -> float:
    means = [float(np.nanmean(v)) for v in per_target.values() if np.isfinite(v).any()]
    return float(np.mean(means)) if means else math.nan


def _sd_over_seeds(per_target: Mapping[str, Sequence[float]]) -> float:
    rows = np.array(list(per_target.values()), dtype=float)  # targets x seeds
    if rows.ndim != 2 or rows.shape[1] < 2:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a seed where every target is NaN
        return float(np.nanstd(np.nanmean(rows, axis=0), ddof=1))


def _sd_within_target(per_target: Mapping[str, Sequence[float]]) -> float:
    spreads = [
        float(np.nanstd(v, ddof=1)) for v in per_target.values() if np.isfinite(v).sum() >= 2
    ]
    return float(np.mean(spreads)) if spreads else math.nan


def _paired(
    method: Mapping[str, Sequence[float]],
    prior: Mapping[str, Sequence[float]],
    *,
    lower_is_better: bool,
) -> dict[str, float]:
    diffs = np.array([
        float(np.nanmean(method[t])) - float(np.nanmean(prior[t]))
        for t in method if np.isfinite(method[t]).any() and np.isfinite(prior[t]).any()
    ])  # fmt: skip
    better = diffs < 0 if lower_is_better else diffs > 0
    worse = diffs > 0 if lower_is_better else diffs < 0
    se = float(diffs.std(ddof=1) / math.sqrt(len(diffs))) if len(diffs) > 1 else math.nan
    return {
        "diff": float(diffs.mean()) if len(diffs) else math.nan,
        "se": se,
        "better": int(better.sum()),
        "worse": int(worse.sum()),
    }
