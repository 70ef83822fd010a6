"""The export of the stored runs: the runs matching the filters written to a file or stream.

:meth:`~RunExport.export` picks the runs as
:meth:`~taskgraph.storage.run_queries.RunQueries.runs` does (a ``family`` picks each score by
its own family and data version) and hands them to
:func:`~taskgraph.storage.export.export_runs`, which writes the formats (csv, json, parquet).
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import IO, Any, Literal

from taskgraph.storage.filters import _rows_of_family
from taskgraph.storage.run_queries import RunQueries, TaskSetFilter, _RunFilters
from taskgraph.storage.run_rows import _run_record
from taskgraph.storage.schema import RunRow

__all__ = ["RunExport"]


class RunExport(RunQueries):
    """The export of :class:`~taskgraph.storage.repository.Repository`."""

    def export(
        self,
        path_or_stream: str | os.PathLike[str] | IO[Any],
        *,
        format: Literal["csv", "json", "parquet"],
        study: str | None = None,
        target: str | None = None,
        task_set: TaskSetFilter = None,
        status: str | None = None,
        contains: str | None = None,
        model_config: str | None = None,
        pretraining: str | None = None,
        family: str | None = None,
    ) -> int:
        """Write the matching records to a file or stream; return how many rows were written.

        ``json``: one object per run (config, scores, cost); ``csv``/``parquet``: one row per
        score record with its run's columns (a run without scores keeps one row).  Each score
        is labelled with the task set and family it was stored with (``tg_scores``), which a
        sequential run's sources and a capped auxiliary do not share with their run.

        ``pretraining``: only runs with that pretraining scheme (``none``: without the stage),
        as :meth:`runs` picks them.  ``family``: only the scores of that model family (its
        hash or a prefix), as ``records export --format long`` keeps them: the rows whose
        ``family`` column starts with it (json: each run's scores of that family, runs with
        none left out); ``HASH/data:VERSION``: the scores of that family measured on that
        data version (a prefix of the scored task's dataset fingerprint, the rows'
        ``data_version``).  A ``family`` that none of the other filters' rows has is a
        :class:`ConfigError` listing their families (nothing is written).
        """
        from taskgraph.storage.export import export_runs, in_family

        filters = _RunFilters(
            study=study, target=target, task_set=task_set, status=status, contains=contains,
            model_config=model_config, pretraining=pretraining, family=family,
        )  # fmt: skip
        filters.check()
        if study is not None:  # before anything is written: an unknown name writes no file
            self._check_study(study)
        # The family is not in SQL here: its rows are picked below, each score by its own.
        query = self._run_query(replace(filters, family=None)).order_by(RunRow.id)
        with self._factory.session() as session:
            rows = session.execute(query).unique().scalars().all()
            if family is not None:
                rows = _rows_of_family(rows, family)
            runs = [_run_record(row) for row in rows]
            used = {score.task_set_id for row in rows for score in row.scores}
            keys, _ = self._lookups(session.connection(), used, set())
            labels = {
                row.id: {
                    score.task: (keys[score.task_set_id], score.family) for score in row.scores
                }
                for row in rows
            }
        if family is not None:  # a run keeps the scores of the family (its rows in csv)
            runs = [
                replace(
                    run,
                    scores={
                        task: splits
                        for task, splits in run.scores.items()
                        if in_family(
                            family,
                            labels[run.id].get(task, ("", run.family))[1],
                            run.task_fingerprints.get(task),
                        )
                    },
                )
                for run in runs
            ]
        return export_runs(runs, path_or_stream, format=format, labels=labels)
