"""Stored run rows read back as records: a ``tg_runs`` row, with its scores and lookahead
matrix, as a :class:`~taskgraph.storage.records.RunRecord` (:func:`_run_record`).

Timestamps come back timezone-aware (:func:`_aware`), and matrix entries stored as NULL come
back as NaN (:func:`_lookahead_matrix`).  The repository's queries use these on every row
they return.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from taskgraph.storage.records import RunRecord
from taskgraph.storage.schema import LookaheadRow, RunRow
from taskgraph.trial import LookaheadMatrix


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands timestamps back naive; they were written in UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def _nan_rows(rows: Sequence[Sequence[float | None]]) -> list[list[float]]:
    # Entries stored as NULL (not measured, or not finite) read back as NaN.
    return [[float("nan") if v is None else float(v) for v in row] for row in rows]


def _lookahead_matrix(row: LookaheadRow, config: Mapping[str, Any] | None) -> LookaheadMatrix:
    """Return the stored matrix; a screen keeps its standard errors in its run's config."""
    screen = (config or {}).get("screen")
    stderr = screen.get("stderr") if isinstance(screen, Mapping) else None
    return LookaheadMatrix(
        tasks=list(row.tasks),
        values=_nan_rows(row.values),
        n_probes=row.n_probes,
        stderr=_nan_rows(stderr) if stderr is not None else None,
    )


def _run_record(row: RunRow) -> RunRecord:
    scores: dict[str, dict[str, dict[str, float | None]]] = {}
    for score in row.scores:
        scores.setdefault(score.task, {}).setdefault(score.split, {})[score.metric] = score.value
    lookahead = None
    if row.lookahead is not None:
        lookahead = _lookahead_matrix(row.lookahead, row.config)
    created_at = _aware(row.created_at)
    assert created_at is not None
    return RunRecord(
        id=row.id,
        study=row.study.name,
        trial_number=row.trial_number,
        target=row.target,
        task_set=tuple(row.task_set.key.split("+")),
        seed=row.seed,
        status=row.status,
        failure_reason=row.failure_reason,
        objective=row.objective,
        cost_seconds=row.cost_seconds,
        cost_examples=row.cost_examples,
        cost_tokens=row.cost_tokens,
        device=row.device,
        target_steps=row.target_steps,
        total_steps=row.total_steps,
        started_at=_aware(row.started_at),
        finished_at=_aware(row.finished_at),
        created_at=created_at,
        code_version=row.code_version,
        host=row.host,
        model_config_hash=row.model_config.hash,
        family=row.family,
        transfer_mode=row.transfer_mode,
        config=dict(row.config),
        scores=scores,
        task_fingerprints=dict(row.task_fingerprints or {}),
        intermediate=[(int(s), float(v)) for s, v in (row.intermediate or []) if v is not None],
        lookahead=lookahead,
    )
