"""The score records read for the affinity model: the hot path of the records database.

:meth:`~RecordReads.score_records` gives the affinity commands one
:class:`~taskgraph.affinity.records.ScoreRecord` per finite score (filtered by target, study,
split, metric and status); :meth:`~RecordReads.records_containing` is the per-target query the
schema is indexed for (``ix_tg_scores_hot``): each shape of it is compiled once
(:meth:`~RecordReads._hot_statement`), its rows fetched as the driver's plain tuples
(:func:`_fetch_tuples`) with the cyclic garbage collector paused (:func:`_gc_paused`), and
returned as columns per task set (:class:`~taskgraph.storage.records.TaskSetRecords`).
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, select

from taskgraph.storage.reading import RepositoryReader, retried_read
from taskgraph.storage.records import (
    RecordColumns,
    TaskSetRecords,
    higher_is_better,
)
from taskgraph.storage.schema import (
    RunRow,
    ScoreRow,
    StudyRow,
    TaskSetMemberRow,
)
from taskgraph.storage.score_reads import (
    _AloneSettings,
    _run_fingerprints,
    _run_model_configs,
    data_families,
    partner_data,
)

if TYPE_CHECKING:
    from taskgraph.affinity.records import ScoreRecord

__all__ = ["RecordReads"]


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a burst of acyclic allocations.

    The hot query allocates ~10^4 row tuples at once; each crossing of the collector's
    threshold would otherwise trigger collections that walk every object of the process
    (tens of thousands once numpy and scipy are imported), which tripled its latency.
    Tuples of numbers and strings form no cycles, so nothing is left for the collector.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _fetch_tuples(
    connection: Connection, compiled: Any, values: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """Return the rows of a compiled statement as the driver's plain tuples.

    For the hot query only: its columns are integers, floats and strings, which need no
    result processing, and building a SQLAlchemy Row per record costs as much as the query
    itself at ~10^4 records.  The statement was compiled by SQLAlchemy for this dialect.
    """
    params = compiled.construct_params(
        {name: value for name, value in values.items() if name in compiled.binds}
    )
    if compiled.positional:
        params = tuple(params[name] for name in compiled.positiontup or ())
    # psycopg: binary results parse numbers without text conversion (a third less CPU).
    binary = {"binary": True} if connection.dialect.name == "postgresql" else {}
    cursor = connection.connection.cursor(**binary)
    try:
        cursor.execute(str(compiled), params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


class RecordReads(RepositoryReader):
    """The score record reads of :class:`~taskgraph.storage.repository.Repository`."""

    _hot_statements: dict[tuple[bool, bool, bool, bool], tuple[list[Any], Any]]

    @retried_read
    def score_records(
        self,
        *,
        target: str | None = None,
        study: str | None = None,
        split: str | None = None,
        metric: str | None = None,
        status: str | None = "complete",
    ) -> list[ScoreRecord]:
        """Return one ScoreRecord per (run, task, split, metric) with a finite value.

        ``target``: only the records of that task, from every task set that contains it
        (its single-task baselines included): what a gain for ``target`` is computed from.
        """
        from taskgraph.affinity.records import ScoreRecord  # numpy/scipy only when needed

        query = self._records_query(split=split, metric=metric, status=status)
        if target is not None:
            query = query.where(ScoreRow.task == target)
        with self._reading() as connection:
            if study is not None:
                study_id = connection.execute(
                    select(StudyRow.id).where(StudyRow.name == study)
                ).scalar_one_or_none()
                if study_id is None:
                    return []
                query = query.where(ScoreRow.study_id == study_id)
            rows = connection.execute(query.order_by(ScoreRow.run_id, ScoreRow.id)).all()
            keys, names = self._lookups(connection, {r[0] for r in rows}, {r[-1] for r in rows})
            fingerprints = _run_fingerprints(connection, {r[1] for r in rows})
            configs = _run_model_configs(connection, {r[1] for r in rows})
            run_task_sets, _ = self._lookups(
                connection, {shape[2] for shape in configs[0].values()}, set()
            )
        task_sets = {key: frozenset(key.split("+")) for key in set(keys.values())}
        settings = _AloneSettings(configs, run_task_sets)
        families = data_families(
            (task, family, fingerprints.get(run_id, {}).get(task))
            for _, run_id, task, _, _, _, family, _, _ in rows
        )
        return [
            ScoreRecord(
                task=task,
                task_set=task_sets[keys[task_set_id]],
                value=value,
                higher_is_better=higher_is_better(metric_),
                split=split_,
                metric=metric_,
                family=families.get((task, family, fingerprints.get(run_id, {}).get(task)), family),
                seed=seed,
                study=names.get(study_id),
                run_id=run_id,
                partner_data=partner_data(
                    task, task_sets[keys[task_set_id]], fingerprints.get(run_id, {})
                ),
                settings=settings.of(run_id, task),
            )
            for task_set_id, run_id, task, split_, metric_, value, family, seed, study_id in rows
        ]

    @retried_read
    def records_containing(
        self,
        target: str,
        *,
        split: str | None = None,
        metric: str | None = None,
        status: str | None = "complete",
        include_auxiliaries: bool = False,
    ) -> dict[str, TaskSetRecords]:
        """Return every record whose task set contains ``target``, grouped by task set key.

        The per-target query the schema is indexed for (measured by ``benchmarks/db_scale.py``;
        the affinity commands read :meth:`score_records`, which filters by split and metric
        across targets).  By default the records are ``target``'s own
        scores: one range of the covering index ``ix_tg_scores_hot``, already in task-set
        order.  ``include_auxiliaries`` adds the other tasks' scores from the same runs
        (through the task-set membership index).  Within a group records are ordered by run.
        Each group is a :class:`TaskSetRecords` (columns; iterating yields named tuples;
        ``group.score_records()`` gives the affinity code's ScoreRecords).
        """
        shape = (include_auxiliaries, split is None, metric is None, status is None)
        varying, compiled = self._hot_statement(shape)
        values = {"tg_target": target, "tg_split": split, "tg_metric": metric, "tg_status": status}
        with _gc_paused():
            with self._reading() as connection:
                rows = _fetch_tuples(connection, compiled, values)
                # One transposition in C and a view per task set: no object per record, which
                # is most of the latency at ~10^4 records.  Rows arrive in task-set order.
                columns = list(zip(*rows, strict=True)) if rows else [()] * (6 + len(varying))
                del rows  # freed now by reference counting, never walked by the collector
                counts = Counter(columns[0])  # in first-seen order, which is task-set order
                task_set_ids = list(counts)
                bounds = list(accumulate(counts.values()))
                starts = [0, *bounds[:-1]]
                keys, names = self._lookups(connection, set(task_set_ids), set(columns[-1]))
            position = {column.key: 2 + i for i, column in enumerate(varying)}
            shared = RecordColumns(
                run_ids=columns[1],
                tasks=columns[position["task"]] if "task" in position else target,
                splits=columns[position["split"]] if "split" in position else split or "",
                metrics=columns[position["metric"]] if "metric" in position else metric or "",
                values=columns[-4],
                families=columns[-3],
                seeds=columns[-2],
                studies=tuple(map(names.get, columns[-1])),
            )
            grouped = {
                keys[task_set_id]: TaskSetRecords(keys[task_set_id], shared, start, stop)
                for task_set_id, start, stop in zip(task_set_ids, starts, bounds, strict=True)
            }
        return grouped

    def _hot_statement(self, shape: tuple[bool, bool, bool, bool]) -> tuple[list[Any], Any]:
        """Return (the varying columns, the compiled statement) of one shape of the hot query.

        Compiled once per shape and kept: building and compiling the select costs a few
        milliseconds, a tenth of the query.  Only what varies is selected (the task, split
        and metric when they are not fixed): fewer Python objects per row.
        """
        cached = self._hot_statements.get(shape)
        if cached is not None:
            return cached
        include_auxiliaries, any_split, any_metric, any_status = shape
        varying = [
            column
            for column, selected in (
                (ScoreRow.task, include_auxiliaries),
                (ScoreRow.split, any_split),
                (ScoreRow.metric, any_metric),
            )
            if selected
        ]
        query = (
            select(
                ScoreRow.task_set_id,
                ScoreRow.run_id,
                *varying,
                ScoreRow.value,
                ScoreRow.family,
                ScoreRow.seed,
                ScoreRow.study_id,
            )
            .where(ScoreRow.value.is_not(None))
            .order_by(ScoreRow.task_set_id, ScoreRow.run_id, *varying)
        )
        if not any_split:
            query = query.where(ScoreRow.split == bindparam("tg_split"))
        if not any_metric:
            query = query.where(ScoreRow.metric == bindparam("tg_metric"))
        if not any_status:
            query = query.where(ScoreRow.status == bindparam("tg_status"))
        if include_auxiliaries:
            members = select(TaskSetMemberRow.task_set_id).where(
                TaskSetMemberRow.task == bindparam("tg_target")
            )
            runs = select(RunRow.id).where(RunRow.task_set_id.in_(members))
            query = query.where(ScoreRow.run_id.in_(runs))
        else:
            query = query.where(ScoreRow.task == bindparam("tg_target"))
        cached = self._hot_statements[shape] = (varying, query.compile(dialect=self.engine.dialect))
        return cached

    @staticmethod
    def _records_query(*, split: str | None, metric: str | None, status: str | None) -> Any:
        # Only tg_scores columns: the covering index answers the query without the table.
        query = select(
            ScoreRow.task_set_id,
            ScoreRow.run_id,
            ScoreRow.task,
            ScoreRow.split,
            ScoreRow.metric,
            ScoreRow.value,
            ScoreRow.family,
            ScoreRow.seed,
            ScoreRow.study_id,
        ).where(ScoreRow.value.is_not(None))
        if split is not None:
            query = query.where(ScoreRow.split == split)
        if metric is not None:
            query = query.where(ScoreRow.metric == metric)
        if status is not None:
            query = query.where(ScoreRow.status == status)
        return query
