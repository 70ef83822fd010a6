"""Denormalise the run's study, task set, seed and status onto tg_scores; covering hot index.

"Every record of T, grouped by task set" then reads one index range of tg_scores and never
touches tg_runs (whose rows carry the full config JSON).  Existing rows are backfilled from
their runs, so an old database keeps every record; a sequential run's source-task scores get
the source phase's task set (see ``migrations/source_phase.py``).

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-03
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from taskgraph.storage.migrations.source_phase import repoint_in_migration

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COPIED: dict[str, sa.types.TypeEngine[Any]] = {
    "study_id": sa.Integer(),
    "task_set_id": sa.Integer(),
    "seed": sa.Integer(),
    "status": sa.String(16),
}
HOT_COLUMNS = [
    "task",
    "split",
    "metric",
    "status",
    "task_set_id",
    "run_id",
    "seed",
    "study_id",
    "value",
    "family",
]


def _backfill() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            "UPDATE tg_scores SET study_id = r.study_id, task_set_id = r.task_set_id, "
            "seed = r.seed, status = r.status FROM tg_runs AS r WHERE r.id = tg_scores.run_id"
        )
    else:
        # Correlated subqueries: UPDATE ... FROM needs SQLite >= 3.33.
        assignments = ", ".join(
            f"{column} = (SELECT r.{column} FROM tg_runs AS r WHERE r.id = tg_scores.run_id)"
            for column in COPIED
        )
        op.execute(f"UPDATE tg_scores SET {assignments}")
    # A sequential run's source tasks were scored in the source phase's task set, not the run's.
    repoint_in_migration("0003")


def upgrade() -> None:
    """Add, backfill and constrain the copied columns; swap the hot-query index."""
    with op.batch_alter_table("tg_scores") as batch:
        for column, type_ in COPIED.items():
            batch.add_column(sa.Column(column, type_, nullable=True))
    _backfill()
    with op.batch_alter_table("tg_scores") as batch:
        for column, type_ in COPIED.items():
            batch.alter_column(column, existing_type=type_, nullable=False)
        batch.create_foreign_key(
            "fk_tg_scores_study_id_tg_studies",
            "tg_studies",
            ["study_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_foreign_key(
            "fk_tg_scores_task_set_id_tg_task_sets", "tg_task_sets", ["task_set_id"], ["id"]
        )
        batch.drop_index("ix_tg_scores_task")
        batch.create_index("ix_tg_scores_hot", HOT_COLUMNS)


def downgrade() -> None:
    """Drop the copied columns and restore the narrow index of revision 0001."""
    with op.batch_alter_table("tg_scores") as batch:
        batch.drop_index("ix_tg_scores_hot")
        batch.drop_constraint("fk_tg_scores_task_set_id_tg_task_sets", type_="foreignkey")
        batch.drop_constraint("fk_tg_scores_study_id_tg_studies", type_="foreignkey")
        for column in COPIED:
            batch.drop_column(column)
        batch.create_index("ix_tg_scores_task", ["task", "split", "metric", "run_id"])
