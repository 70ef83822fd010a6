"""Re-point sequential runs' source-task scores to the source phase's task set.

A sequential run scores its source tasks when their phase ends, before the target joins: those
records belong to the source phase's task set (``TrialConfig.source_phase_tasks()``), which is
what the writer stores.  Databases written before it did, or upgraded through revision 0003's
earlier backfill (each score got its run's task set), keep them under the run's whole task set
and so credit the target with a gain it never gave.  Data only; the schema does not change, and
the downgrade leaves the corrected rows as they are.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

from taskgraph.storage.migrations.source_phase import repoint_in_migration

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Move each sequential run's source-task scores to the source phase's task set."""
    repoint_in_migration("0005")


def downgrade() -> None:
    """Keep the scores where they are: the old layout was wrong, not another schema."""
