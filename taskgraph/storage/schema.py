"""The records database's tables (all prefixed ``tg_``; JSON columns only, never pickle).

::

    tg_studies ─┐                    tg_tasks (name, type, dataset fingerprint)
                │
    tg_task_sets ──< tg_task_set_members (task set id, task)   ◄ hot query: index on task
        │
        └──< tg_runs >── tg_model_configs (canonical JSON, hash, encoder, sharing)
               │
               ├──< tg_scores (run, task, split, metric, value)  ◄ covering index on task
               └─── tg_lookahead_matrices (one per run)

    tg_affinity_fits ──< tg_affinity_edges (source, target, gain, std, n_evidence)

A run is unique on (study, Optuna trial number, seed): that constraint is what makes
``Repository.add_run_result`` idempotent under retries and concurrent writers.  The Alembic
revisions in ``migrations/versions`` create exactly these tables; ``taskgraph db check``
compares the two.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "AffinityEdgeRow",
    "AffinityFitRow",
    "Base",
    "LookaheadRow",
    "ModelConfigRow",
    "RunRow",
    "ScoreRow",
    "StudyRow",
    "TaskRow",
    "TaskSetMemberRow",
    "TaskSetRow",
]

# Stable constraint names, so migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# 64-bit keys on PostgreSQL; SQLite only auto-increments a column declared INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base of taskgraph's tables (Optuna's tables live beside them, untouched)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        datetime: DateTime(timezone=True),
    }


class StudyRow(Base):
    """One study: its name (Optuna's study name), direction, target and the spec it ran."""

    __tablename__ = "tg_studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    direction: Mapped[str] = mapped_column(String(16))
    target: Mapped[str | None] = mapped_column(String(128))
    spec: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime]


class TaskRow(Base):
    """One task: name, type and the fingerprint of the dataset files last seen."""

    __tablename__ = "tg_tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    type: Mapped[str | None] = mapped_column(String(64))
    fingerprint: Mapped[str | None] = mapped_column(String(128))


class TaskSetRow(Base):
    """One task set S, by its canonical key (sorted names joined by ``+``)."""

    __tablename__ = "tg_task_sets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(2048), unique=True)
    size: Mapped[int] = mapped_column(Integer)


class TaskSetMemberRow(Base):
    """Membership of a task in a task set: answers "which task sets contain T" by index."""

    __tablename__ = "tg_task_set_members"
    __table_args__ = (Index("ix_tg_task_set_members_task", "task", "task_set_id"),)

    task_set_id: Mapped[int] = mapped_column(
        ForeignKey("tg_task_sets.id", ondelete="CASCADE"), primary_key=True
    )
    task: Mapped[str] = mapped_column(String(128), primary_key=True)


class ModelConfigRow(Base):
    """One model configuration M: canonical JSON (everything but task set and seed) and its hash."""

    __tablename__ = "tg_model_configs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    encoder: Mapped[str] = mapped_column(String(512))
    sharing: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)


class RunRow(Base):
    """One trained model: study, trial, task set, model configuration, seed, status, cost."""

    __tablename__ = "tg_runs"
    __table_args__ = (
        UniqueConstraint("study_id", "trial_number", "seed", name="uq_tg_runs_study_trial_seed"),
        Index("ix_tg_runs_task_set_id", "task_set_id", "status"),
        Index("ix_tg_runs_target", "target", "status"),
        Index("ix_tg_runs_model_config_id", "model_config_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("tg_studies.id", ondelete="CASCADE"))
    trial_number: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    target: Mapped[str] = mapped_column(String(128))
    task_set_id: Mapped[int] = mapped_column(ForeignKey("tg_task_sets.id"))
    model_config_id: Mapped[int] = mapped_column(ForeignKey("tg_model_configs.id"))
    family: Mapped[str] = mapped_column(String(32))
    transfer_mode: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    objective: Mapped[float | None] = mapped_column(Float)
    cost_seconds: Mapped[float] = mapped_column(Float)
    cost_examples: Mapped[int] = mapped_column(BigInteger)
    cost_tokens: Mapped[int] = mapped_column(BigInteger)
    # Optimizer steps that trained the target, and all of them (revision 0004; NULL before).
    target_steps: Mapped[int | None] = mapped_column(BigInteger)
    total_steps: Mapped[int | None] = mapped_column(BigInteger)
    device: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    code_version: Mapped[str | None] = mapped_column(String(128))
    host: Mapped[str | None] = mapped_column(String(255))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    task_fingerprints: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    intermediate: Mapped[list[Any] | None] = mapped_column(JSON)

    study: Mapped[StudyRow] = relationship(lazy="joined", innerjoin=True)
    task_set: Mapped[TaskSetRow] = relationship(lazy="joined", innerjoin=True)
    model_config: Mapped[ModelConfigRow] = relationship(lazy="joined", innerjoin=True)
    scores: Mapped[list[ScoreRow]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", passive_deletes=True, order_by="ScoreRow.id"
    )
    lookahead: Mapped[LookaheadRow | None] = relationship(
        lazy="selectin", cascade="all, delete-orphan", passive_deletes=True
    )


class ScoreRow(Base):
    """One score record: (run, task, split, metric, value), with the task's model family.

    ``study_id``, ``task_set_id``, ``seed`` and ``status`` repeat the run's (revision 0003):
    runs are written once and never change, and with them the hot query "every record of T,
    grouped by task set" is one range scan of one covering index, without touching tg_runs.
    """

    __tablename__ = "tg_scores"
    __table_args__ = (
        UniqueConstraint("run_id", "task", "split", "metric", name="uq_tg_scores_run_task"),
        # The hot query, answered from the index alone (SQLite "covering index", PostgreSQL
        # index-only scan): equality columns first, then everything the query returns.
        Index(
            "ix_tg_scores_hot",
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
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("tg_runs.id", ondelete="CASCADE"))
    task: Mapped[str] = mapped_column(String(128))
    split: Mapped[str] = mapped_column(String(64))
    metric: Mapped[str] = mapped_column(String(128))
    value: Mapped[float | None] = mapped_column(Float)  # NULL: NaN / not finite
    family: Mapped[str] = mapped_column(String(32))
    study_id: Mapped[int] = mapped_column(ForeignKey("tg_studies.id", ondelete="CASCADE"))
    task_set_id: Mapped[int] = mapped_column(ForeignKey("tg_task_sets.id"))
    seed: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))


class LookaheadRow(Base):
    """The lookahead affinity matrix measured during one joint run (affinity evidence)."""

    __tablename__ = "tg_lookahead_matrices"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("tg_runs.id", ondelete="CASCADE"), primary_key=True
    )
    tasks: Mapped[list[Any]] = mapped_column(JSON)
    values: Mapped[list[Any]] = mapped_column(JSON)
    n_probes: Mapped[int] = mapped_column(Integer)


class AffinityFitRow(Base):
    """One fit of the affinity graph: the method and when it ran (added in revision 0002)."""

    __tablename__ = "tg_affinity_fits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    method: Mapped[str] = mapped_column(String(64), index=True)
    fitted_at: Mapped[datetime]
    n_edges: Mapped[int] = mapped_column(Integer)
    edges: Mapped[list[AffinityEdgeRow]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", passive_deletes=True
    )


class AffinityEdgeRow(Base):
    """One fitted edge source -> target: estimated gain, its std and the evidence behind it."""

    __tablename__ = "tg_affinity_edges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fit_id: Mapped[int] = mapped_column(
        ForeignKey("tg_affinity_fits.id", ondelete="CASCADE"), index=True
    )
    source: Mapped[str] = mapped_column(String(128))
    target: Mapped[str] = mapped_column(String(128))
    gain: Mapped[float] = mapped_column(Float)
    std: Mapped[float | None] = mapped_column(Float)
    n_evidence: Mapped[int] = mapped_column(Integer)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
