"""Record each run's optimizer steps: those that trained the target, and all of them.

Under the target step budget (``search.step_budget: target``) the target gets the same number of
its own batches in every trial of a study and auxiliary batches come on top, so the two counts
differ; a reader comparing runs needs both.  Runs written before this revision have NULL
(unknown).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("target_steps", "total_steps")


# Plain ALTER TABLE, not batch mode: a batch "move and copy" drops tg_runs, and with foreign
# keys on, the drop cascades to every score of every run (SQLite >= 3.35 drops a column in
# place).


def upgrade() -> None:
    """Add the two nullable step counts to ``tg_runs``."""
    for column in COLUMNS:
        op.add_column("tg_runs", sa.Column(column, sa.BigInteger(), nullable=True))


def downgrade() -> None:
    """Drop the step counts (the runs and their scores stay)."""
    for column in COLUMNS:
        op.drop_column("tg_runs", column)
