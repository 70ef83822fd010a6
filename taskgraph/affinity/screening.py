"""A screen's ranking: each candidate's predicted effect on the target, from one joint run.

A screen (``taskgraph study screen``) trains the target with every candidate at once, with
lookahead probes on (Fifty et al. 2021, :mod:`taskgraph.training.lookahead`).  The predicted
effect of candidate ``c`` on target ``t`` is the mean over the probes of
``Z(c -> t) = 1 - L_t(after a step on c) / L_t(before)``, with its standard error over the
probes; the ranking sorts the candidates by it (ties by name).  Pure: a
:class:`~taskgraph.trial.LookaheadMatrix` in, plain rows out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from taskgraph.errors import ConfigError
from taskgraph.trial import LookaheadMatrix

__all__ = ["ScreenEntry", "screen_ranking", "screen_scores"]


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
    wanted = [t for t in matrix.tasks if t != target] if candidates is None else list(candidates)
    rows: list[tuple[str, float, float | None]] = []
    for name in wanted:
        if name == target or name not in matrix.tasks:
            continue
        i = matrix.tasks.index(name)
        value = matrix.values[i][j]
        if value is None or not math.isfinite(value):
            continue
        error = None
        if matrix.stderr is not None:
            raw = matrix.stderr[i][j]
            error = float(raw) if raw is not None and math.isfinite(raw) else None
        rows.append((name, float(value), error))
    rows.sort(key=lambda row: (-row[1], row[0]))
    return [
        ScreenEntry(candidate=name, effect=effect, stderr=error, rank=k + 1)
        for k, (name, effect, error) in enumerate(rows)
    ]


def screen_scores(
    matrix: LookaheadMatrix, target: str, candidates: Sequence[str] | None = None
) -> dict[str, float]:
    """Return candidate -> predicted effect on ``target`` (higher is better), for the graph
    sampler's start-up order."""
    return {e.candidate: e.effect for e in screen_ranking(matrix, target, candidates)}
