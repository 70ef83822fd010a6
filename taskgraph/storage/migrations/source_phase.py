"""Re-point sequential runs' source-task scores to the source phase's task set (a data fix).

A sequential run scores its source tasks when their phase ends, trained without the target, so
those score rows belong to the source phase's task set (``TrialConfig.source_phase_tasks()``),
not the run's; ``taskgraph.storage.writes.insert_run`` stores them so.  Databases written before
it did, and revision 0003's backfill (which copied each run's task set onto all of its scores),
left them under the run's whole task set, which credits the target with a gain it never gave.
Revisions 0003 (after its backfill) and 0005 (for databases backfilled before) call
:func:`repoint_source_scores`; a second call changes nothing.

The rule is copied here rather than imported from ``taskgraph.trial``: a migration must keep
doing what it did when it shipped, whatever later code does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.engine import Connection

__all__ = ["repoint_in_migration", "repoint_source_scores", "source_phase_tasks"]

_runs = sa.table(
    "tg_runs",
    sa.column("id", sa.Integer()),
    sa.column("transfer_mode", sa.String()),
    sa.column("config", sa.JSON()),
)
_scores = sa.table(
    "tg_scores",
    sa.column("run_id", sa.Integer()),
    sa.column("task", sa.String()),
    sa.column("task_set_id", sa.Integer()),
)
_task_sets = sa.table(
    "tg_task_sets",
    sa.column("id", sa.Integer()),
    sa.column("key", sa.String()),
    sa.column("size", sa.Integer()),
)
_members = sa.table(
    "tg_task_set_members", sa.column("task_set_id", sa.Integer()), sa.column("task", sa.String())
)


def source_phase_tasks(config: Mapping[str, Any]) -> tuple[str, ...]:
    """Return the auxiliaries a run's stored config trains in a source phase (none if joint).

    ``TrialConfig.source_phase_tasks()`` on the config's JSON form: a ``sequential`` run's
    auxiliaries, or those of them its hyperparameter ``source_tasks`` names.
    """
    if config.get("transfer_mode") != "sequential":
        return ()
    auxiliaries = [str(task) for task in config.get("auxiliaries") or ()]
    hyperparameters = config.get("hyperparameters")
    named = hyperparameters.get("source_tasks") if isinstance(hyperparameters, Mapping) else None
    if named is None:
        return tuple(auxiliaries)
    chosen = {str(task) for task in named} if isinstance(named, list | tuple) else set()
    return tuple(task for task in auxiliaries if task in chosen)


def _ensure_task_set(connection: Connection, tasks: Sequence[str]) -> int:
    """Return the id of the task set ``tasks``, creating it and its members (as writes.py does)."""
    names = sorted(set(tasks))
    key = "+".join(names)
    found = connection.execute(
        sa.select(_task_sets.c.id).where(_task_sets.c.key == key)
    ).scalar_one_or_none()
    if found is not None:
        return int(found)
    # The migration holds its lock (BEGIN IMMEDIATE / advisory lock): no concurrent insert.
    new_id = connection.execute(
        sa.insert(_task_sets).values(key=key, size=len(names)).returning(_task_sets.c.id)
    ).scalar_one()
    connection.execute(
        sa.insert(_members), [{"task_set_id": int(new_id), "task": name} for name in names]
    )
    return int(new_id)


def repoint_source_scores(connection: Connection) -> int:
    """Return how many score rows moved to their run's source-phase task set."""
    moved = 0
    query = sa.select(_runs.c.id, _runs.c.config).where(_runs.c.transfer_mode == "sequential")
    for run_id, config in connection.execute(query).all():
        sources = source_phase_tasks(config) if isinstance(config, Mapping) else ()
        if not sources:
            continue
        source_set_id = _ensure_task_set(connection, sources)
        done = connection.execute(
            sa.update(_scores)
            .where(
                _scores.c.run_id == run_id,
                _scores.c.task.in_(sources),
                _scores.c.task_set_id != source_set_id,
            )
            .values(task_set_id=source_set_id)
        )
        moved += int(done.rowcount or 0)
    return moved


def repoint_in_migration(revision: str) -> None:
    """Run :func:`repoint_source_scores` inside revision ``revision``'s upgrade.

    ``alembic upgrade --sql`` (offline) cannot read the runs' configs: the emitted SQL says so
    in a comment, and ``taskgraph db upgrade`` on the database does the fix.
    """
    if context.is_offline_mode():
        op.execute(
            f"-- revision {revision}: re-pointing sequential runs' source-task scores needs "
            "the rows; run `taskgraph db upgrade` on the database to apply it"
        )
        return
    repoint_source_scores(op.get_bind())
