"""Synthetic score records with known structure, and the published tables when present."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

from taskgraph.affinity.records import ScoreRecord

TASKS = ("a", "b", "c", "d", "e", "f")


def additive_truth(seed: int = 0, pooling: str = "mean") -> dict[tuple[str, frozenset[str]], float]:
    """Return gains g(t, A) = mean_{s in A} w[t, s] - 0.02 * log|A| for every target and set (``sum``: the sum)."""
    rng = np.random.default_rng(seed)
    weights = {(t, s): float(rng.normal(0.0, 0.05)) for t in TASKS for s in TASKS if s != t}
    truth = {}
    for target in TASKS:
        others = [s for s in TASKS if s != target]
        for size in range(1, len(others) + 1):
            for combo in itertools.combinations(others, size):
                aux = frozenset(combo)
                truth[(target, aux)] = float(
                    (np.mean if pooling == "mean" else np.sum)([weights[(target, s)] for s in aux])
                    - 0.02 * np.log(size)
                )
    return truth


def records_from(
    truth: dict[tuple[str, frozenset[str]], float],
    keep: Callable[[str, frozenset[str]], bool],
    *,
    baseline: float = 0.8,
    noise: float = 0.0,
    seeds: int = 1,
    seed: int = 0,
) -> list[ScoreRecord]:
    """Return records (relative gains around ``baseline``) of the kept (target, set) pairs, plus baselines."""
    rng = np.random.default_rng(seed)
    records = []
    for target in sorted({t for t, _ in truth}):
        for s in range(seeds):
            records.append(
                ScoreRecord(task=target, task_set=frozenset({target}), value=baseline, seed=s)
            )
    for (target, aux), gain in truth.items():
        if not keep(target, aux):
            continue
        for s in range(seeds):
            value = baseline * (1.0 + gain) + (noise * rng.standard_normal() if noise else 0.0)
            records.append(ScoreRecord(task=target, task_set=aux | {target}, value=value, seed=s))
    return records
