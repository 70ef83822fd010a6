"""Fitted affinity edges: one row per fit (method, time) and its edges.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create tg_affinity_fits and tg_affinity_edges."""
    op.create_table(
        "tg_affinity_fits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("fitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("n_edges", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tg_affinity_fits"),
    )
    op.create_index("ix_tg_affinity_fits_method", "tg_affinity_fits", ["method"])
    op.create_table(
        "tg_affinity_edges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fit_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("target", sa.String(128), nullable=False),
        sa.Column("gain", sa.Float(), nullable=False),
        sa.Column("std", sa.Float(), nullable=True),
        sa.Column("n_evidence", sa.Integer(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["fit_id"],
            ["tg_affinity_fits.id"],
            name="fk_tg_affinity_edges_fit_id_tg_affinity_fits",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_tg_affinity_edges"),
    )
    op.create_index("ix_tg_affinity_edges_fit_id", "tg_affinity_edges", ["fit_id"])


def downgrade() -> None:
    """Drop the affinity edge tables."""
    op.drop_index("ix_tg_affinity_edges_fit_id", table_name="tg_affinity_edges")
    op.drop_table("tg_affinity_edges")
    op.drop_index("ix_tg_affinity_fits_method", table_name="tg_affinity_fits")
    op.drop_table("tg_affinity_fits")
