"""Initial schema: studies, tasks, task sets, model configurations, runs, scores, lookahead.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the tables of revision 0001."""
    op.create_table(
        "tg_studies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("target", sa.String(128), nullable=True),
        sa.Column("spec", sa.JSON(), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tg_studies"),
        sa.UniqueConstraint("name", name="uq_tg_studies_name"),
    )
    op.create_table(
        "tg_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("type", sa.String(64), nullable=True),
        sa.Column("fingerprint", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tg_tasks"),
        sa.UniqueConstraint("name", name="uq_tg_tasks_name"),
    )
    op.create_table(
        "tg_task_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(2048), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tg_task_sets"),
        sa.UniqueConstraint("key", name="uq_tg_task_sets_key"),
    )
    op.create_table(
        "tg_task_set_members",
        sa.Column("task_set_id", sa.Integer(), nullable=False),
        sa.Column("task", sa.String(128), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_set_id"],
            ["tg_task_sets.id"],
            name="fk_tg_task_set_members_task_set_id_tg_task_sets",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("task_set_id", "task", name="pk_tg_task_set_members"),
    )
    op.create_index("ix_tg_task_set_members_task", "tg_task_set_members", ["task", "task_set_id"])
    op.create_table(
        "tg_model_configs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("encoder", sa.String(512), nullable=False),
        sa.Column("sharing", sa.String(64), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tg_model_configs"),
        sa.UniqueConstraint("hash", name="uq_tg_model_configs_hash"),
    )
    op.create_table(
        "tg_runs",
        sa.Column("id", BigId, nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("trial_number", sa.Integer(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(128), nullable=False),
        sa.Column("task_set_id", sa.Integer(), nullable=False),
        sa.Column("model_config_id", sa.Integer(), nullable=False),
        sa.Column("family", sa.String(32), nullable=False),
        sa.Column("transfer_mode", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("objective", sa.Float(), nullable=True),
        sa.Column("cost_seconds", sa.Float(), nullable=False),
        sa.Column("cost_examples", sa.BigInteger(), nullable=False),
        sa.Column("cost_tokens", sa.BigInteger(), nullable=False),
        sa.Column("device", sa.String(64), nullable=False),
        sa.Column("started_at", Timestamp, nullable=True),
        sa.Column("finished_at", Timestamp, nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("code_version", sa.String(128), nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("task_fingerprints", sa.JSON(), nullable=True),
        sa.Column("intermediate", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["tg_studies.id"],
            name="fk_tg_runs_study_id_tg_studies",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["task_set_id"], ["tg_task_sets.id"], name="fk_tg_runs_task_set_id_tg_task_sets"
        ),
        sa.ForeignKeyConstraint(
            ["model_config_id"],
            ["tg_model_configs.id"],
            name="fk_tg_runs_model_config_id_tg_model_configs",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_tg_runs"),
        sa.UniqueConstraint("study_id", "trial_number", "seed", name="uq_tg_runs_study_trial_seed"),
    )
    op.create_index("ix_tg_runs_task_set_id", "tg_runs", ["task_set_id", "status"])
    op.create_index("ix_tg_runs_target", "tg_runs", ["target", "status"])
    op.create_index("ix_tg_runs_model_config_id", "tg_runs", ["model_config_id"])
    op.create_table(
        "tg_scores",
        sa.Column("id", BigId, nullable=False),
        sa.Column("run_id", BigId, nullable=False),
        sa.Column("task", sa.String(128), nullable=False),
        sa.Column("split", sa.String(64), nullable=False),
        sa.Column("metric", sa.String(128), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("family", sa.String(32), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["tg_runs.id"], name="fk_tg_scores_run_id_tg_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_tg_scores"),
        sa.UniqueConstraint("run_id", "task", "split", "metric", name="uq_tg_scores_run_task"),
    )
    op.create_index("ix_tg_scores_task", "tg_scores", ["task", "split", "metric", "run_id"])
    op.create_table(
        "tg_lookahead_matrices",
        sa.Column("run_id", BigId, nullable=False),
        sa.Column("tasks", sa.JSON(), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("n_probes", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["tg_runs.id"],
            name="fk_tg_lookahead_matrices_run_id_tg_runs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", name="pk_tg_lookahead_matrices"),
    )


def downgrade() -> None:
    """Drop every table of revision 0001."""
    op.drop_table("tg_lookahead_matrices")
    op.drop_index("ix_tg_scores_task", table_name="tg_scores")
    op.drop_table("tg_scores")
    op.drop_index("ix_tg_runs_model_config_id", table_name="tg_runs")
    op.drop_index("ix_tg_runs_target", table_name="tg_runs")
    op.drop_index("ix_tg_runs_task_set_id", table_name="tg_runs")
    op.drop_table("tg_runs")
    op.drop_table("tg_model_configs")
    op.drop_index("ix_tg_task_set_members_task", table_name="tg_task_set_members")
    op.drop_table("tg_task_set_members")
    op.drop_table("tg_task_sets")
    op.drop_table("tg_tasks")
    op.drop_table("tg_studies")
