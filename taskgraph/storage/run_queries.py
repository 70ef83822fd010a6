"""The run and study queries: the stored runs and studies read back as records.

:meth:`~RunQueries.runs` (and :meth:`~RunQueries.families`, :meth:`~RunQueries.baselines`)
pick runs by the filters of :class:`_RunFilters` (checked by
:func:`~taskgraph.storage.filters.check_run_filters`, built into SQL by
:meth:`~RunQueries._run_query`); the light queries the engine makes after each trial
(:meth:`~RunQueries.trial_numbers`, :meth:`~RunQueries.run_keys`,
:meth:`~RunQueries.trial_fingerprints`, :meth:`~RunQueries.complete_run_data`) and the study
listings (:meth:`~RunQueries.studies`, :meth:`~RunQueries.targets`,
:meth:`~RunQueries.study_specs`, :meth:`~RunQueries.study_fingerprints`) are here too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

from sqlalchemy import Select, and_, func, or_, select

from taskgraph.errors import (
    ConfigError,
    NotFoundError,
    option_name,
)
from taskgraph.storage.export import family_parts
from taskgraph.storage.filters import (
    _in_family_row,
    check_run_filters,
)
from taskgraph.storage.reading import RepositoryReader, retried_read
from taskgraph.storage.records import (
    NO_PRETRAINING,
    RunRecord,
    StudySummary,
)
from taskgraph.storage.run_rows import _aware, _run_record
from taskgraph.storage.schema import (
    ModelConfigRow,
    RunRow,
    ScoreRow,
    StudyRow,
    TaskSetMemberRow,
    TaskSetRow,
)
from taskgraph.storage.score_reads import (
    _run_fingerprints,
    data_families,
)
from taskgraph.trial import TrialStatus
from taskgraph.vocabulary import task_set_key

__all__ = ["RunQueries", "TaskSetFilter"]

TaskSetFilter = str | Sequence[str] | None
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _task_set_key(task_set: str | Sequence[str]) -> str:
    names = task_set.split("+") if isinstance(task_set, str) else list(task_set)
    return task_set_key(name.strip() for name in names if name.strip())


@dataclass(frozen=True, kw_only=True)
class _RunFilters:
    """The filters of :meth:`Repository.runs` (those not given are None), given once to both
    the check and the query."""

    study: str | None = None
    target: str | None = None
    task_set: TaskSetFilter = None
    status: str | None = None
    contains: str | None = None
    model_config: str | None = None
    data_selection: bool | None = None
    pretraining: str | None = None
    family: str | None = None

    def check(self) -> None:
        """Raise what :func:`check_run_filters` raises for these filters."""
        check_run_filters(
            study=self.study, target=self.target, task_set=self.task_set, status=self.status,
            contains=self.contains, model_config=self.model_config,
            data_selection=self.data_selection, pretraining=self.pretraining, family=self.family,
        )  # fmt: skip


class RunQueries(RepositoryReader):
    """The run and study queries of :class:`~taskgraph.storage.repository.Repository`."""

    def _run_query(self, filters: _RunFilters) -> Select[RunRow]:
        """Return the query of the runs matching ``filters`` (``family``: see :meth:`runs`)."""
        query = select(RunRow)
        if filters.data_selection is not None:
            # The key is in a run's configuration only when selection was on (to_dict drops
            # None); `as_string` is JSON_EXTRACT on SQLite, ->> on PostgreSQL: NULL if absent.
            selected = RunRow.config["data_selection"].as_string()
            query = query.where(
                selected.isnot(None) if filters.data_selection else selected.is_(None)
            )
        if filters.study is not None:
            query = query.where(RunRow.study.has(StudyRow.name == filters.study))
        if filters.target is not None:
            query = query.where(RunRow.target == filters.target)
        if filters.task_set is not None:
            key = _task_set_key(filters.task_set)
            if not key:
                raise ConfigError(
                    f"`task_set` {filters.task_set!r} names no task: expected names joined by "
                    "'+', e.g. 'ner+pos'"
                )
            query = query.where(RunRow.task_set.has(TaskSetRow.key == key))
        if filters.status is not None:
            query = query.where(RunRow.status == filters.status)
        if filters.contains is not None:
            members = select(TaskSetMemberRow.task_set_id).where(
                TaskSetMemberRow.task == filters.contains
            )
            query = query.where(RunRow.task_set_id.in_(members))
        if filters.model_config is not None:
            if not filters.model_config:
                raise ConfigError("`model_config` is empty: give a hash or its prefix")
            # autoescape: '%' and '_' are characters of the prefix, not LIKE wildcards.
            # Hashes are lower-case hex: SQLite's LIKE ignores case, PostgreSQL's does not.
            prefix = filters.model_config.lower()
            query = query.where(
                RunRow.model_config.has(ModelConfigRow.hash.startswith(prefix, autoescape=True))
            )
        if filters.pretraining is not None:
            # The run's TrialConfig JSON: {"pretraining": null} or {"pretraining": {"scheme": ..}}.
            scheme = RunRow.config["pretraining"]["scheme"].as_string()
            query = query.where(
                scheme.is_(None)
                if filters.pretraining == NO_PRETRAINING
                else scheme == filters.pretraining
            )
        if filters.family is not None:
            # A run is in the family when one of its export rows is: a score of that family,
            # or (a run without scores has one row) the run's own family.  Families are
            # lower-case hex; autoescape keeps '%' and '_' literal.  A data version
            # (HASH/data:VERSION) is in the run's fingerprints: this picks the family's runs,
            # a superset that `_in_family_row` narrows.
            prefix = family_parts(filters.family)[0]
            query = query.where(
                or_(
                    RunRow.scores.any(ScoreRow.family.startswith(prefix, autoescape=True)),
                    and_(
                        ~RunRow.scores.any(),
                        RunRow.family.startswith(prefix, autoescape=True),
                    ),
                )
            )
        return query

    @retried_read
    def runs(
        self,
        *,
        study: str | None = None,
        target: str | None = None,
        task_set: TaskSetFilter = None,
        status: str | None = None,
        contains: str | None = None,
        model_config: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
        data_selection: bool | None = None,
        pretraining: str | None = None,
        family: str | None = None,
    ) -> list[RunRecord]:
        """Return the runs matching every filter given, in insertion order.

        ``target``: the run's target task; ``task_set``: a key ``a+b`` or names (any order);
        ``contains``: the task set contains this task; ``model_config``: a hash or its prefix;
        ``data_selection``: whether example-level data selection was on.
        ``pretraining``: the pretraining scheme (``none``: runs without the stage).
        ``family``: a model family hash or its prefix: runs with a score of that family (a run
        without scores: its own family), the runs that :meth:`export` keeps rows of;
        ``HASH/data:VERSION``: of that family measured on that data version (a prefix of the
        scored task's dataset fingerprint, a run without scores its target's), ``limit``
        counting the runs left.
        A filter of the wrong type, a ``status`` other than complete, pruned or failed, a
        ``limit`` below 1 and a ``study`` the database lacks (named with the known ones) are
        a :class:`ConfigError`.
        """
        filters = _RunFilters(
            study=study, target=target, task_set=task_set, status=status, contains=contains,
            model_config=model_config, data_selection=data_selection, pretraining=pretraining,
            family=family,
        )  # fmt: skip
        filters.check()
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise ConfigError(f"`{option_name('limit')}` must be an integer, but got {limit!r}")
        if limit is not None and limit < 1:
            raise ConfigError(f"`{option_name('limit')}` must be >= 1, but got {limit}")
        query = self._run_query(filters).order_by(RunRow.id.desc() if newest_first else RunRow.id)
        versioned = family is not None and family_parts(family)[1] is not None
        if limit is not None and not versioned:
            query = query.limit(limit)
        with self._factory.session() as session:
            rows: Iterable[RunRow] = session.execute(query).unique().scalars()
            if versioned:  # the data version is not in SQL: the limit counts the runs left
                assert family is not None
                rows = (row for row in rows if _in_family_row(row, family))
            found = [_run_record(row) for row in islice(rows, limit)]
        if not found and study is not None:
            self._check_study(study)  # only here: a name checked on every call costs a query
        return found

    @retried_read
    def families(
        self,
        *,
        study: str | None = None,
        target: str | None = None,
        task_set: TaskSetFilter = None,
        status: str | None = None,
        contains: str | None = None,
        model_config: str | None = None,
        data_selection: bool | None = None,
        pretraining: str | None = None,
    ) -> set[str]:
        """Return the model families of the matching runs' export rows: their scores'
        families (a run without scores: its own), what :meth:`runs` and :meth:`export` match
        ``family`` against; where a task's scores in one family were measured on several
        data versions, each is ``<family>/data:<version>`` (:func:`data_families`), as the
        error of a ``family`` none of them is of lists them.  The filters are those of
        :meth:`runs`."""
        filters = _RunFilters(
            study=study, target=target, task_set=task_set, status=status, contains=contains,
            model_config=model_config, data_selection=data_selection, pretraining=pretraining,
        )  # fmt: skip
        filters.check()
        picked = self._run_query(filters).with_only_columns(RunRow.id)
        scored = (
            select(ScoreRow.run_id, ScoreRow.task, ScoreRow.family)
            .where(ScoreRow.run_id.in_(picked))
            .distinct()
        )
        bare = select(RunRow.id, RunRow.target, RunRow.family).where(
            RunRow.id.in_(picked), ~RunRow.scores.any()
        )
        with self._reading() as connection:
            found: list[tuple[int, str, str]] = [
                (int(run_id), str(task), str(name))
                for query in (scored, bare)
                for run_id, task, name in connection.execute(query)
            ]
            prints = _run_fingerprints(connection, {run_id for run_id, _, _ in found})
        entries = [(task, name, prints.get(run_id, {}).get(task)) for run_id, task, name in found]
        versions = data_families(entries)
        return {versions.get(entry, entry[1]) for entry in entries}

    def _check_study(self, study: str) -> None:
        """Raise a NotFoundError naming ``study`` and the known studies when there is no such
        study."""
        with self._factory.session() as session:
            names = [str(n) for n in session.execute(select(StudyRow.name)).scalars()]
        if study not in names:
            raise NotFoundError(
                f"`{option_name('study')}` {study!r}: no such study in {self.url}; known studies: "
                f"{', '.join(sorted(names)) or '(none)'}"
            )

    @retried_read
    def run(self, run_id: int) -> RunRecord:
        """Return the run with id ``run_id``; NotFoundError if there is none."""
        if not _INT64_MIN <= run_id <= _INT64_MAX:
            # Ids are 64-bit: the driver would raise OverflowError for a larger number.
            raise NotFoundError(f"no run with id {run_id} in {self.url}")
        with self._factory.session() as session:
            row = session.get(RunRow, run_id)
            if row is None:
                raise NotFoundError(f"no run with id {run_id} in {self.url}")
            return _run_record(row)

    @retried_read
    def baselines(
        self,
        *,
        target: str | None = None,
        study: str | None = None,
        status: str | None = "complete",
    ) -> list[RunRecord]:
        """Return the single-task runs (|S| = 1), of task ``target`` when given."""
        query = self._run_query(_RunFilters(study=study, target=target, status=status)).where(
            RunRow.task_set.has(TaskSetRow.size == 1)
        )
        with self._factory.session() as session:
            return [
                _run_record(row)
                for row in session.execute(query.order_by(RunRow.id)).unique().scalars()
            ]

    @retried_read
    def trial_numbers(self, study: str) -> set[int]:
        """Return the Optuna trial numbers already stored for ``study`` (every status)."""
        query = select(RunRow.trial_number).join(RunRow.study).where(StudyRow.name == study)
        with self._factory.session() as session:
            return set(session.execute(query).scalars())

    @retried_read
    def run_keys(self, study: str) -> set[tuple[int, int]]:
        """Return the (Optuna trial number, seed) of every run stored for ``study``."""
        query = (
            select(RunRow.trial_number, RunRow.seed)
            .join(RunRow.study)
            .where(StudyRow.name == study)
        )
        with self._factory.session() as session:
            return {(int(number), int(seed)) for number, seed in session.execute(query)}

    @retried_read
    def trial_fingerprints(self, study: str, task: str) -> dict[int, str | None]:
        """Return trial number -> the dataset fingerprint of ``task`` that the trial's latest
        run of ``study`` recorded (``None``: none), in one light query (no scores, no
        configurations): what the engine reads after each trial to tell data versions apart."""
        query = (
            select(RunRow.trial_number, RunRow.task_fingerprints)
            .join(RunRow.study)
            .where(StudyRow.name == study)
            .order_by(RunRow.id)
        )
        with self._factory.session() as session:
            return {
                int(number): dict(prints or {}).get(task)
                for number, prints in session.execute(query)
            }

    @retried_read
    def complete_run_data(
        self, study: str
    ) -> dict[tuple[str, str, str, int], list[dict[str, str]]]:
        """Return (model config hash, task set key, target, seed) of ``study``'s complete runs
        -> the dataset fingerprints each of them recorded.

        What :func:`~taskgraph.storage.writes.recorded_repeat` matches: a run of one of these
        keys on the same data is never written again (the earlier trial's run is its record).
        """
        query = (
            select(
                ModelConfigRow.hash, TaskSetRow.key, RunRow.target, RunRow.seed,
                RunRow.task_fingerprints,
            )
            .join(RunRow.study)
            .join(ModelConfigRow, RunRow.model_config_id == ModelConfigRow.id)
            .join(TaskSetRow, RunRow.task_set_id == TaskSetRow.id)
            .where(StudyRow.name == study, RunRow.status == TrialStatus.COMPLETE.value)
        )  # fmt: skip
        found: dict[tuple[str, str, str, int], list[dict[str, str]]] = defaultdict(list)
        with self._factory.session() as session:
            for h, k, t, seed, prints in session.execute(query):
                found[(str(h), str(k), str(t), int(seed))].append(dict(prints or {}))
        return dict(found)

    @retried_read
    def studies(self) -> list[StudySummary]:
        """Return every study with its number of runs per status."""
        counts: dict[int, dict[str, int]] = defaultdict(dict)
        query = select(RunRow.study_id, RunRow.status, func.count()).group_by(
            RunRow.study_id, RunRow.status
        )
        with self._factory.session() as session:
            for study_id, status, count in session.execute(query):
                counts[study_id][status] = int(count)
            rows = session.execute(select(StudyRow).order_by(StudyRow.id)).scalars().all()
            return [
                StudySummary(
                    name=row.name,
                    direction=row.direction,
                    target=row.target,
                    created_at=_aware(row.created_at) or row.created_at,
                    counts=counts.get(row.id, {}),
                )
                for row in rows
            ]

    @retried_read
    def targets(self) -> list[str]:
        """Return the target tasks of the stored runs, sorted (none: an empty list)."""
        query = select(RunRow.target).distinct().order_by(RunRow.target)
        with self._factory.session() as session:
            return [str(target) for target in session.execute(query).scalars()]

    @retried_read
    def study_specs(self) -> dict[str, dict[str, Any]]:
        """Return each study's stored spec by name (``{}`` for a study stored without one)."""
        with self._factory.session() as session:
            rows = session.execute(select(StudyRow.name, StudyRow.spec)).all()
        return {name: dict(spec or {}) for name, spec in rows}

    @retried_read
    def study_fingerprints(self, study: str) -> dict[str, str]:
        """Return task -> the dataset fingerprint of the study's latest run that recorded one
        (``{}`` for an unknown study or one without runs)."""
        with self._reading() as connection:
            study_id = connection.execute(
                select(StudyRow.id).where(StudyRow.name == study)
            ).scalar_one_or_none()
            if study_id is None:
                return {}
            rows = connection.execute(
                select(RunRow.task_fingerprints)
                .where(RunRow.study_id == study_id, RunRow.task_fingerprints.is_not(None))
                .order_by(RunRow.id)
            ).all()
        latest: dict[str, str] = {}
        for (prints,) in rows:
            latest.update({str(k): str(v) for k, v in dict(prints or {}).items()})
        return latest
