"""Score records from their source: the records database or a long CSV table.

:func:`load_records` reads the records of one split and metric, :func:`lookahead_matrices`
the stored lookahead-affinity matrices; the private helpers open the database once and name
what is wrong with a source (two sources, an unknown task, a target without the metric).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from taskgraph.affinity.records import ScoreRecord
from taskgraph.app.affinity.objectives import ALL_METRICS, _objective, _study_objectives
from taskgraph.app.arguments import storage_url
from taskgraph.errors import ConfigError, option_name

if TYPE_CHECKING:
    from taskgraph.storage.repository import Repository

__all__ = ["load_records", "lookahead_matrices", "scored_by"]


PathLike = str | os.PathLike[str]


@contextmanager
def _records_database(
    storage: str | None, repository: Repository | None = None
) -> Iterator[Repository]:
    """Yield ``repository`` when given, else the records database at ``storage``, opened once
    (without creating it) and closed on the way out."""
    if repository is not None:
        yield repository
        return
    from taskgraph.storage import open_repository

    opened = open_repository(storage_url(storage), create=False)
    try:
        yield opened
    finally:
        opened.close()


def load_records(
    *,
    storage: str | None = None,
    table: PathLike | None = None,
    split: str | None = None,
    metric: str | None = None,
    repository: Repository | None = None,
) -> list[ScoreRecord]:
    """Return the score records from ``table`` (long CSV) or else from the records database.

    From the database, ``metric=None`` means the objective metric (and, with ``split=None``,
    split) of the studies the records come from; ``metric="all"`` keeps every metric.  The
    records returned are of one split.  Raises :class:`ConfigError` when the studies disagree
    on the metric, when no record has it, when several splits remain and none is named, or
    (``metric="all"``) when one task's metrics go in different directions (a loss, an accuracy);
    :class:`~taskgraph.errors.DataFormatError` for a bad table;
    :class:`~taskgraph.errors.StorageError` for a database that cannot be opened.
    ``repository``: an open records database to read instead of opening ``storage``.
    """
    if table is not None:
        from taskgraph.app.bench import load_bench_table

        if metric is not None:
            raise ConfigError(
                f"`{option_name('metric')}` {metric!r} chooses among the metrics of a records "
                f"database, but a {option_name('table')} holds one score per row and names no "
                f"metric: leave {option_name('metric')} out"
            )
        data = load_bench_table(table)
        if split is not None and split not in data.splits:
            raise ConfigError(
                f"`{option_name('split')}` {split!r} is not a split of {table}; it has "
                f"{', '.join(data.splits)}"
            )
        chosen = split or ("val" if "val" in data.splits else data.splits[0])
        return data.to_records(split=chosen)
    named_metric = None if metric in (None, ALL_METRICS) else metric
    with _records_database(storage, repository) as database:
        records = database.score_records(split=split, metric=named_metric)
        if not records and (split is not None or named_metric is not None):
            _no_records_named(database.score_records(), split=split, metric=named_metric)
        specs = database.study_specs() if metric is None else {}
    if metric is None and records:
        chosen_metric, objective_split = _objective(records, specs)
        kept = [r for r in records if r.metric == chosen_metric]
        if not kept:
            raise ConfigError(
                f"no records of the objective metric {chosen_metric!r} (the records have "
                f"{sorted({r.metric for r in records})}); choose one with "
                f"{option_name('metric', metavar='NAME')}"
            )
        records = kept
        if split is None and objective_split is not None:
            split = objective_split
            records = [r for r in records if r.split == split]
    if split is None:
        # Gains of one split are evidence; the same runs scored on dev and test are not two.
        splits = sorted({r.split for r in records})
        preferred = next(
            (s for s in ("dev", "val") if s in splits), splits[0] if len(splits) == 1 else None
        )
        if splits and preferred is None:
            raise ConfigError(
                f"the records have splits {splits}; choose one with {option_name('split')}"
            )
        records = [r for r in records if r.split == preferred]
    if metric == ALL_METRICS:
        _one_direction_per_task(records)
    return records


def _one_direction_per_task(records: Sequence[ScoreRecord]) -> None:
    """Raise a ConfigError when one task's records mix higher- and lower-is-better metrics:
    ``metric="all"`` averages a task's metrics, and a loss and an accuracy make no mean."""
    directions: dict[str, dict[bool, set[str]]] = {}
    for record in records:
        by_direction = directions.setdefault(record.task, {})
        by_direction.setdefault(record.higher_is_better, set()).add(record.metric or "score")
    for task, by_direction in sorted(directions.items()):
        if len(by_direction) > 1:
            raise ConfigError(
                f"{option_name('metric', ALL_METRICS)} would average the metrics of {task!r}, but "
                f"higher is better for {', '.join(sorted(by_direction[True]))} and lower for "
                f"{', '.join(sorted(by_direction[False]))}: choose one with "
                f"{option_name('metric', metavar='NAME')}"
            )


def _no_records_named(
    every: Sequence[ScoreRecord], *, split: str | None, metric: str | None
) -> None:
    """Raise a ConfigError naming the ``--split`` / ``--metric`` that matched no record, and
    what the records have (nothing when the database has no records at all)."""
    if not every:
        return
    asked = " and ".join(
        f"{option_name(keyword)} {value!r}"
        for keyword, value in (("split", split), ("metric", metric))
        if value
    )
    splits = ", ".join(sorted({r.split for r in every}))
    metrics = ", ".join(sorted({r.metric for r in every if r.metric}))
    raise ConfigError(
        f"no score records with {asked}; the records have splits {splits} and metrics {metrics}"
    )


def _target_has_metric(
    target: str,
    metric: str,
    *,
    storage: str | None,
    split: str | None,
    repository: Repository | None = None,
) -> None:
    """Raise a ConfigError when ``target`` has records but none scored by ``metric`` (other
    tasks' may be: the gains of ``target`` would then be fitted from nothing of its own)."""
    with _records_database(storage, repository) as database:
        every = database.score_records(split=split)
    own = [r for r in every if r.task == target]
    metrics = sorted({r.metric for r in own if r.metric})
    # (No record of any task with ``metric``: load_records names the metric and the splits.)
    if own and metric not in metrics and any(r.metric == metric for r in every):
        where = f" on {split}" if split else ""
        raise ConfigError(
            f"`{option_name('target')}` {target!r} has no {metric} scores{where}; its records "
            f"have metrics {', '.join(metrics)}: choose one with "
            f"{option_name('metric', metavar='NAME')}"
        )


def _target_objectives_differ(target: str, *, storage: str | None, split: str | None) -> None:
    """Raise a ConfigError when the studies with records of ``target`` read them in different
    metrics by default, naming those studies (not other targets') and each one's metric."""
    with _records_database(storage) as database:
        own = [r for r in database.score_records(split=split) if r.task == target]
        specs = database.study_specs()
    objectives = _study_objectives(own, specs)
    read_in: dict[str, str] = {}
    said = []
    for study in sorted({r.study for r in own if r.study}):
        if study in objectives:
            metric, on = objectives[study]
            read_in[study] = metric
            said.append(f"{study!r} optimises {metric}" + (f" on {on}" if on else ""))
            continue
        # No objective metric of its own (a benchmark table's `loss`): its records' metric.
        metrics = sorted({r.metric for r in own if r.study == study and r.metric})
        read_in[study] = " and ".join(metrics)
        said.append(f"{study!r} names none, its records have {read_in[study]}")
    if len(set(read_in.values())) > 1:
        raise ConfigError(
            f"`{option_name('target')}` {target!r} is scored by studies with different "
            f"objective metrics ({'; '.join(said)}); choose one with "
            f"{option_name('metric', metavar='NAME')}, or mix them with "
            f"{option_name('metric', ALL_METRICS)}"
        )


def lookahead_matrices(
    storage: str | None, table: PathLike | None, *, repository: Repository | None = None
) -> list[Any]:
    """Return the lookahead-affinity matrices stored in the records database (none for a
    table); ``repository``: an open database to read instead of opening ``storage``."""
    if table is not None:
        return []
    with _records_database(storage, repository) as database:
        return [stored.matrix for stored in database.lookahead_matrices()]


def _known_tasks(
    option: str, asked: Sequence[str], *, storage: str | None, table: PathLike | None
) -> None:
    """Raise a ConfigError naming the tasks of ``asked`` that no record (of any metric or
    split) and no lookahead matrix of the source holds; nothing when the source cannot be
    read (its own error is raised by the caller)."""
    try:
        if table is not None:
            known = {t for r in load_records(table=table) for t in r.task_set}
        else:
            with _records_database(storage) as database:
                known = {t for r in database.score_records() for t in r.task_set}
                known |= {t for m in database.lookahead_matrices() for t in m.matrix.tasks}
    except ConfigError:
        return
    unknown = [t for t in dict.fromkeys(asked) if t not in known]
    if not unknown or not known:
        return
    shown = ", ".join(repr(t) for t in unknown)
    raise ConfigError(
        f"`{option}` {shown}: no record holds {'it' if len(unknown) == 1 else 'them'}; known "
        f"tasks: {', '.join(sorted(known))}"
    )


def _one_source(storage: str | None, table: PathLike | None) -> None:
    # A table is read instead of any database: a storage URL beside it would be ignored.
    if storage is not None and table is not None:
        raise ConfigError(
            f"`storage` and `table` are two sources of records, but got both ({table}): pass one"
        )


def scored_by(records: Sequence[ScoreRecord]) -> str:
    """Return which scores the gains compare, e.g. ``f1 on dev``."""
    metrics = sorted({r.metric for r in records if r.metric}) or ["score"]
    splits = sorted({r.split for r in records})
    return f"{', '.join(metrics)} on {', '.join(splits)}"
