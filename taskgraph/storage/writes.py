"""Idempotent inserts: get-or-create by a unique key, safe under concurrent writers.

Every row with a natural key (study name, task name, task set key, model configuration hash,
(study, trial, seed) of a run) is written with ``INSERT ... ON CONFLICT DO NOTHING RETURNING
id`` and read back when the insert found it already there.  On PostgreSQL a conflicting insert
waits for the other transaction and then sees its row; on SQLite writers are serialised by
``BEGIN IMMEDIATE``.  Either way a retried or concurrent write never duplicates a row.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from taskgraph.errors import ConfigError
from taskgraph.storage.schema import (
    LookaheadRow,
    ModelConfigRow,
    RunRow,
    ScoreRow,
    StudyRow,
    TaskRow,
    TaskSetMemberRow,
    TaskSetRow,
)
from taskgraph.storage.urls import storable_spec
from taskgraph.trial import TrialConfig, TrialResult, TrialStatus, config_hash
from taskgraph.vocabulary import task_set_key

__all__ = [
    "ensure_study_row",
    "ensure_task_set",
    "insert_run",
    "task_family",
    "utcnow",
]


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(timezone.utc)


def _insert(session: Session, model: type[Any]) -> Any:
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(model)


def _insert_or_get(
    session: Session, model: type[Any], key: Mapping[str, Any], values: Mapping[str, Any]
) -> tuple[int, bool]:
    """Return (id, created) of the row with unique ``key``, inserting it with ``values`` if new."""
    stmt = (
        _insert(session, model)
        .values({**key, **values})
        .on_conflict_do_nothing(index_elements=list(key))
        .returning(model.id)
    )
    new_id = session.execute(stmt).scalar_one_or_none()
    if new_id is not None:
        return int(new_id), True
    found = session.execute(select(model.id).filter_by(**key)).scalar_one()
    return int(found), False


def ensure_study_row(
    session: Session,
    name: str,
    *,
    direction: str,
    target: str | None,
    spec: Mapping[str, Any] | None,
) -> int:
    """Return the id of study ``name``, creating it; a different direction is an error."""
    if direction not in ("maximize", "minimize"):
        raise ConfigError(f"`direction` must be 'maximize' or 'minimize', but got {direction!r}")
    if spec is not None:
        try:
            json.dumps(dict(spec), allow_nan=False)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"study {name!r}: `spec` must be plain JSON data ({error})") from None
        # The spec's storage URL may carry a password: it never reaches the database.
        spec = storable_spec(spec)
    study_id, created = _insert_or_get(
        session,
        StudyRow,
        {"name": name},
        {
            "direction": direction,
            "target": target,
            "spec": dict(spec) if spec is not None else None,
            "created_at": utcnow(),
        },
    )
    if not created:
        row = session.get(StudyRow, study_id)
        assert row is not None
        if row.direction != direction:
            raise ConfigError(
                f"study {name!r} already exists with direction {row.direction!r}, "
                f"but got {direction!r}"
            )
        if spec is not None and row.spec is None:
            row.spec = dict(spec)
        if target is not None and row.target is None:
            row.target = target
    return study_id


def ensure_task_set(session: Session, tasks: tuple[str, ...]) -> int:
    """Return the id of the task set ``tasks`` (sorted), creating it and its members."""
    key = task_set_key(tasks)
    task_set_id, created = _insert_or_get(session, TaskSetRow, {"key": key}, {"size": len(tasks)})
    if created:
        session.execute(
            _insert(session, TaskSetMemberRow),
            [{"task_set_id": task_set_id, "task": task} for task in sorted(tasks)],
        )
    return task_set_id


def _ensure_tasks(
    session: Session,
    tasks: tuple[str, ...],
    types: Mapping[str, str],
    fingerprints: Mapping[str, str],
) -> None:
    for task in tasks:
        values = {"type": types.get(task), "fingerprint": fingerprints.get(task)}
        stmt = _insert(session, TaskRow).values(name=task, **values)
        known = {k: v for k, v in values.items() if v is not None}
        if known:
            # Keep the latest type and dataset fingerprint seen; each run keeps its own copy.
            stmt = stmt.on_conflict_do_update(index_elements=["name"], set_=known)
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=["name"])
        session.execute(stmt)


def recorded_repeat(
    session: Session,
    *,
    study_id: int,
    trial_number: int,
    config: TrialConfig,
    task_fingerprints: Mapping[str, str] | None = None,
) -> int | None:
    """Return the id of another trial's complete run of ``config`` (same seed) in the study.

    Such a run is the same training on the same data: a second record of it would count one
    measurement twice (see ``Repository.add_run_result(skip_repeat=True)``).  With
    ``task_fingerprints`` (the run's data now), only a run that recorded the same ones is
    that: the same configuration trained on another version of the data is a new measurement.
    """
    query = (
        select(RunRow.id, RunRow.task_fingerprints)
        .join(ModelConfigRow, RunRow.model_config_id == ModelConfigRow.id)
        .join(TaskSetRow, RunRow.task_set_id == TaskSetRow.id)
        .where(
            RunRow.study_id == study_id,
            RunRow.trial_number != trial_number,
            RunRow.seed == config.seed,
            RunRow.target == config.target,
            RunRow.status == TrialStatus.COMPLETE.value,
            ModelConfigRow.hash == config.model_config_hash(),
            TaskSetRow.key == task_set_key(config.task_set),
        )
        .order_by(RunRow.id)
    )
    for run_id, prints in session.execute(query):
        if task_fingerprints is None or dict(prints or {}) == dict(task_fingerprints):
            return int(run_id)
    return None


def _ensure_model_config(session: Session, config: TrialConfig) -> int:
    model_config_id, _ = _insert_or_get(
        session,
        ModelConfigRow,
        {"hash": config.model_config_hash()},
        {"encoder": config.encoder, "sharing": config.sharing, "config": config.model_config()},
    )
    return model_config_id


def task_family(config: TrialConfig, task: str, *, within: Iterable[str] | None = None) -> str:
    """Return the model family of ``task``'s score in this run (its baseline's family_key).

    ``within``: the task set the score was measured in, when not the run's (a sequential
    run's sources are scored at the end of their own phase).  An auxiliary scored after
    training on a selected share of its data (``data_selection.keep < 1``), jointly with the
    target or as a sequential source (alone or with other sources), gets the family
    ``<family>/selected:<hash of the target, weights and keep>``: never compared with the
    task trained on all of its data.  The target's data are never selected.
    """
    if task == config.target:
        return config.family_key()
    others = tuple(t for t in (within or config.task_set) if t != task)
    family = replace(config, target=task, auxiliaries=others).family_key()
    selection = config.data_selection
    if selection is not None and selection.keep < 1 and task in config.auxiliaries:
        # An auxiliary trained on the share of its data chosen for this target (with the
        # target, or in a source phase alone or with other sources: each is selected) is not
        # the task trained on all of it: a family of its own, per selection, never its
        # single-task baseline.
        chosen = {"for": config.target, "weights": dict(selection.weights), "keep": selection.keep}
        family = f"{family}/selected:{config_hash(chosen)[:12]}"
    return family


def _run_config(config: TrialConfig, result: TrialResult) -> dict[str, Any]:
    """Return the run's copy of its configuration, with what its data stages produced.

    The selected example ids (``TrialResult.selection``) go under ``data_selection.kept`` and
    the pretraining stage's report (``TrialResult.pretraining``: cost, masked-token accuracy
    curve, whether it came from the cache) under ``pretraining.report`` of the run's own copy
    (the model configuration's hash does not see them), so the records keep them without a
    column of their own.
    """
    data = config.to_dict()
    if result.selection and isinstance(data.get("data_selection"), dict):
        data["data_selection"]["kept"] = dict(result.selection)
    if result.pretraining and isinstance(data.get("pretraining"), dict):
        data["pretraining"]["report"] = dict(result.pretraining)
    return data


def _utc(value: datetime | None) -> datetime | None:
    """Return ``value`` in UTC; a naive datetime is taken to be UTC already.

    SQLite keeps a timestamp's wall-clock digits and drops its offset (read back as UTC, see
    ``run_rows._aware``): 12:00 at +02:00 would come back as 12:00 UTC, two hours late.
    Naive values follow the records' convention (naive means UTC), on PostgreSQL too, where
    the server would otherwise read them in its session time zone.
    """
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def insert_run(
    session: Session,
    *,
    study_id: int,
    trial_number: int,
    config: TrialConfig,
    result: TrialResult,
    started_at: datetime | None,
    finished_at: datetime | None,
    task_fingerprints: Mapping[str, str],
    task_types: Mapping[str, str],
    host: str | None,
    code_version: str | None,
    transfer_mode: str | None = None,
    config_extra: Mapping[str, Any] | None = None,
) -> int:
    """Return the id of the run (study, trial, seed), inserting it and its scores if new.

    ``transfer_mode`` replaces the config's (a screen stores ``screen``); ``config_extra``
    adds keys to the stored run config (plain JSON), both in the same insert.
    """
    task_set = config.task_set
    outside = sorted(set(result.scores) - set(task_set))
    if outside:
        raise ConfigError(
            f"trial {trial_number}: scores for {outside} are not in its task set "
            f"{'+'.join(task_set)!r}"
        )
    _ensure_tasks(session, task_set, task_types, task_fingerprints)
    values = {
        "study_id": study_id,
        "trial_number": trial_number,
        "seed": config.seed,
        "target": config.target,
        "task_set_id": ensure_task_set(session, task_set),
        "model_config_id": _ensure_model_config(session, config),
        "family": config.family_key(),
        "transfer_mode": transfer_mode or config.transfer_mode,
        "status": result.status.value,
        "failure_reason": result.failure_reason,
        "objective": _finite(result.objective),
        "cost_seconds": float(result.cost.seconds),
        "cost_examples": int(result.cost.examples),
        "cost_tokens": int(result.cost.tokens),
        "target_steps": int(result.cost.target_steps),
        "total_steps": int(result.cost.total_steps),
        "device": result.cost.device,
        "started_at": _utc(started_at),
        "finished_at": _utc(finished_at),
        "created_at": utcnow(),
        "code_version": code_version,
        "host": host,
        "config": {**_run_config(config, result), **(config_extra or {})},
        "task_fingerprints": dict(task_fingerprints) or None,
        "intermediate": [[int(s), _finite(v)] for s, v in result.intermediate] or None,
    }
    stmt = (
        _insert(session, RunRow)
        .values(values)
        .on_conflict_do_nothing(index_elements=["study_id", "trial_number", "seed"])
        .returning(RunRow.id)
    )
    run_id = session.execute(stmt).scalar_one_or_none()
    if run_id is None:  # a retried write: the run and its scores are already there
        existing = session.execute(
            select(RunRow.id).filter_by(
                study_id=study_id, trial_number=trial_number, seed=config.seed
            )
        ).scalar_one()
        return int(existing)
    # A sequential run scores its source tasks when their phase ends, trained without the
    # target: their records belong to the source phase's task set, not the run's.
    sources = config.source_phase_tasks()
    measured_in = {task: values["task_set_id"] for task in task_set}
    if sources:
        source_set_id = ensure_task_set(session, tuple(sorted(sources)))
        measured_in.update(dict.fromkeys(sources, source_set_id))
    families = {
        task: task_family(config, task, within=sources if task in sources else None)
        for task in task_set
    }
    scores = [
        {
            "run_id": run_id,
            "task": task,
            "split": split,
            "metric": metric,
            "value": _finite(value),
            "family": families[task],
            "study_id": study_id,
            "task_set_id": measured_in[task],
            "seed": config.seed,
            "status": values["status"],
        }
        for task, splits in result.scores.items()
        for split, metrics in splits.items()
        for metric, value in metrics.items()
    ]
    if scores:
        session.execute(_insert(session, ScoreRow), scores)
    if result.lookahead is not None:
        session.add(
            LookaheadRow(
                run_id=run_id,
                tasks=list(result.lookahead.tasks),
                values=[[_finite(v) for v in row] for row in result.lookahead.values],
                n_probes=result.lookahead.n_probes,
            )
        )
    return int(run_id)
