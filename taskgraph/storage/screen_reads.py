"""The screens and lookahead matrices the search measured, and the affinity fits stored.

A screen is a run of its study with ``transfer_mode = SCREEN_MODE``, a negative trial number
and a lookahead matrix, written by
:meth:`~taskgraph.storage.repository.Repository.add_screen` and read back by
:meth:`~ScreenReads.screens`; :meth:`~ScreenReads.lookahead_matrices` gives every stored
matrix with its run, and :meth:`~ScreenReads.affinity_edges` the latest fit of each method
(written by :meth:`~taskgraph.storage.repository.Repository.save_affinity_edges`).
"""

from __future__ import annotations

from sqlalchemy import func, select

from taskgraph.storage.reading import RepositoryReader, retried_read
from taskgraph.storage.records import (
    AffinityEdgeRecord,
    StoredLookahead,
    StoredScreen,
)
from taskgraph.storage.run_rows import _aware, _lookahead_matrix
from taskgraph.storage.schema import (
    AffinityEdgeRow,
    AffinityFitRow,
    LookaheadRow,
    RunRow,
    StudyRow,
    TaskSetRow,
)

__all__ = ["SCREEN_MODE", "ScreenReads"]

#: ``tg_runs.transfer_mode`` of a screen's joint run (:meth:`Repository.add_screen`)
SCREEN_MODE = "screen"


class ScreenReads(RepositoryReader):
    """The screen, lookahead and affinity fit reads of
    :class:`~taskgraph.storage.repository.Repository`."""

    @retried_read
    def screens(self, study: str) -> list[StoredScreen]:
        """Return the screens of ``study``, oldest first (none: an empty list)."""
        query = (
            select(RunRow)
            .join(RunRow.study)
            .where(StudyRow.name == study, RunRow.transfer_mode == SCREEN_MODE)
            .order_by(RunRow.id)
        )
        with self._factory.session() as session:
            out = []
            for row in session.execute(query).unique().scalars():
                if row.lookahead is None:
                    continue
                config = dict(row.config)
                created_at = _aware(row.created_at)
                assert created_at is not None
                out.append(
                    StoredScreen(
                        run_id=row.id,
                        study=study,
                        number=row.trial_number,
                        target=row.target,
                        created_at=created_at,
                        matrix=_lookahead_matrix(row.lookahead, config),
                        cost_seconds=row.cost_seconds,
                        total_steps=row.total_steps,
                        config=config,
                        details={k: v for k, v in (config.get("screen") or {}).items()
                                 if k != "stderr"},
                    )
                )  # fmt: skip
            return out

    @retried_read
    def lookahead_matrices(self, *, study: str | None = None) -> list[StoredLookahead]:
        """Return every stored lookahead matrix with its run (of ``study`` when given)."""
        query = (
            select(LookaheadRow, StudyRow.name, TaskSetRow.key, RunRow.config)
            .join(RunRow, RunRow.id == LookaheadRow.run_id)
            .join(StudyRow, StudyRow.id == RunRow.study_id)
            .join(TaskSetRow, TaskSetRow.id == RunRow.task_set_id)
            .order_by(LookaheadRow.run_id)
        )
        if study is not None:
            query = query.where(StudyRow.name == study)
        with self._factory.session() as session:
            return [
                StoredLookahead(
                    run_id=row.run_id,
                    study=name,
                    task_set=tuple(key.split("+")),
                    matrix=_lookahead_matrix(row, config),
                )
                for row, name, key, config in session.execute(query)
            ]

    @retried_read
    def affinity_edges(self, *, method: str | None = None) -> list[AffinityEdgeRecord]:
        """Return the edges of the latest fit of each method (or of ``method`` only)."""
        latest = select(func.max(AffinityFitRow.id)).group_by(AffinityFitRow.method)
        if method is not None:
            latest = latest.where(AffinityFitRow.method == method)
        query = (
            select(AffinityEdgeRow, AffinityFitRow.method, AffinityFitRow.fitted_at)
            .join(AffinityFitRow, AffinityFitRow.id == AffinityEdgeRow.fit_id)
            .where(AffinityFitRow.id.in_(latest))
            .order_by(AffinityFitRow.method, AffinityEdgeRow.id)
        )
        with self._factory.session() as session:
            return [
                AffinityEdgeRecord(
                    source=row.source,
                    target=row.target,
                    gain=row.gain,
                    std=row.std,
                    n_evidence=row.n_evidence,
                    method=fit_method,
                    fitted_at=_aware(fitted_at) or fitted_at,
                    details=dict(row.details or {}),
                )
                for row, fit_method, fitted_at in session.execute(query)
            ]
