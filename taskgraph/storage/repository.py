"""The records repository: the queries and writes made on the records database.

``open_repository(url)`` validates the URL, connects, and makes sure the schema is at head
(creating it in a brand-new database).  The repository writes each trial's run and scores in
one transaction, idempotently, and answers the queries the search engine, the affinity code
and the CLI need, as plain frozen dataclasses.

Beside it: :mod:`~taskgraph.storage.filters` checks the run filters and picks runs by model
family, :mod:`~taskgraph.storage.score_reads` reads back what score records carry (data
versions, partner data, alone settings), and :mod:`~taskgraph.storage.run_rows` turns stored
rows into records.
"""

from __future__ import annotations

import gc
import hashlib
import math
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from itertools import accumulate, islice
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Literal

from sqlalchemy import Connection, Engine, Select, and_, bindparam, func, or_, select, text
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from taskgraph.errors import (
    ConfigError,
    NotFoundError,
    StorageError,
    StorageURLError,
    option_name,
)
from taskgraph.storage.engine import create_storage_engine, describe_error
from taskgraph.storage.export import family_parts
from taskgraph.storage.filters import (
    _in_family_row,
    _rows_of_family,
    check_run_filters,
    no_family_error,
    row_families,
)
from taskgraph.storage.migrate import ensure_schema
from taskgraph.storage.records import (
    NO_PRETRAINING,
    AffinityEdgeRecord,
    RecordColumns,
    RunRecord,
    StoredLookahead,
    StoredScreen,
    StudySummary,
    TaskSetRecords,
    higher_is_better,
)
from taskgraph.storage.run_rows import _aware, _lookahead_matrix, _run_record
from taskgraph.storage.schema import (
    AffinityEdgeRow,
    AffinityFitRow,
    LookaheadRow,
    ModelConfigRow,
    RunRow,
    ScoreRow,
    StudyRow,
    TaskSetMemberRow,
    TaskSetRow,
)
from taskgraph.storage.score_reads import (
    _AloneSettings,
    _run_fingerprints,
    _run_model_configs,
    data_families,
    partner_data,
    records_by_task_set,
)
from taskgraph.storage.session import SessionFactory, run_write
from taskgraph.storage.urls import mask_secrets, mask_url, parse_storage_url, sqlite_path
from taskgraph.storage.writes import ensure_study_row, insert_run, recorded_repeat, utcnow
from taskgraph.trial import (
    TrialConfig,
    TrialResult,
    TrialStatus,
)

if TYPE_CHECKING:
    from taskgraph.affinity.records import ScoreRecord

from taskgraph.vocabulary import task_set_key

__all__ = [
    "RECORDS_IDENTITY_ATTR",
    "SCREEN_MODE",
    "Repository",
    "check_run_filters",
    "data_families",
    "no_family_error",
    "open_engine",
    "open_repository",
    "partner_data",
    "records_by_task_set",
    "row_families",
]

#: ``tg_runs.transfer_mode`` of a screen's joint run (:meth:`Repository.add_screen`)
SCREEN_MODE = "screen"

#: the Optuna study's system attribute that ties it to its records study
#: (:meth:`Repository.study_identity`); see ``StudyCreator.check_records`` (``taskgraph/search/creation.py``)
RECORDS_IDENTITY_ATTR = "taskgraph:records_study"

TaskSetFilter = str | Sequence[str] | None
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def open_repository(url: str, *, create: bool = True) -> Repository:
    """Return a repository on ``url``, creating the schema in a brand-new database.

    With ``create=False`` nothing is created: a missing SQLite file or a database without
    taskgraph's tables is a :class:`StorageError`.  A malformed URL, an unknown dialect or an
    unreachable server is a :class:`StorageError` with one line and the password masked; a
    database at an older schema is a ``SchemaMismatchError`` naming ``taskgraph db upgrade``.
    """
    engine = open_engine(url, create=create)
    try:
        ensure_schema(engine, create=create)
    except BaseException:
        engine.dispose()
        raise
    return Repository(factory=SessionFactory(engine=engine))


def open_engine(url: str, *, create: bool = True) -> Engine:
    """Return an engine on ``url`` after validating it; with ``create=False`` a missing SQLite
    file is a :class:`~taskgraph.errors.NotFoundError` (and is not created)."""
    parsed = parse_storage_url(url)
    path = sqlite_path(parsed) if parsed.get_backend_name() == "sqlite" else None
    if path is not None and not create and not path.exists():
        origin, hint = _url_origin(url)
        raise NotFoundError(
            f"no records database at {str(path)!r} ({mask_url(parsed)}, {origin}): run a study "
            f"first, or {hint}"
        )
    try:
        return create_storage_engine(parsed, switch_to_wal=create)
    except (ArgumentError, ValueError, TypeError) as error:
        # e.g. "?port=abc": SQLAlchemy rejects the URL's arguments when building the engine.
        raise StorageURLError(
            f"storage URL {mask_url(parsed)!r} is invalid: {mask_secrets(str(error), parsed)}"
        ) from None


def _url_origin(url: str) -> tuple[str, str]:
    """Return where ``url`` came from, as :func:`~taskgraph.storage.urls.resolve_storage_url`
    chose it (a URL it never chose was given directly: the ``storage`` argument), and how to
    name another."""
    from taskgraph.storage.urls import STORAGE_ENV, storage_url_origin

    storage = option_name("storage")
    origin = storage_url_origin(url)
    if origin == "env":
        return f"from {STORAGE_ENV}", f"set {STORAGE_ENV} to an existing database"
    if origin == "default":
        return "the default", f"pass {storage} / set {STORAGE_ENV}"
    if origin == "spec":
        return "the spec's storage field", "point it at an existing database"
    return f"given by {storage}", f"pass the {storage} of an existing database"


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


def _task_set_key(task_set: str | Sequence[str]) -> str:
    names = task_set.split("+") if isinstance(task_set, str) else list(task_set)
    return task_set_key(name.strip() for name in names if name.strip())


def _measurement_key(study: str, config: TrialConfig) -> int:
    """Return the advisory lock key of one measurement: (study, model config, task set, seed).

    64 bits of a BLAKE2b hash, signed for PostgreSQL's bigint, as the liveness lock's key is
    made (:mod:`taskgraph.storage.locks`), with its own personalisation so the two never meet.
    """
    parts = (study, config.model_config_hash(), task_set_key(config.task_set), str(config.seed))
    digest = hashlib.blake2b(
        "\0".join(parts).encode("utf-8"), digest_size=8, person=b"tg-measure"
    ).digest()
    return int.from_bytes(digest, "big", signed=True)


def _lock_measurement(session: Any, *, study: str, config: TrialConfig) -> None:
    """Serialise the write transactions of one measurement until this one ends (PostgreSQL).

    At READ COMMITTED, writers of the same configuration and seed running at once would each
    find no earlier run and each insert one.  A transaction-level advisory lock makes the later
    writer wait, and its next statement sees the earlier one's committed run.  The lock goes
    with the transaction (commit, rollback, lost connection), so a retried write takes it anew.
    SQLite needs none: its write transactions already run one at a time (BEGIN IMMEDIATE).
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    session.execute(
        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _measurement_key(study, config)}
    )


def _deleted(result: Any) -> int:
    """Return how many rows a DELETE removed (0 where the driver cannot tell)."""
    count = getattr(result, "rowcount", None)
    return max(int(count), 0) if isinstance(count, int) else 0


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


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


class Repository:
    """Reads and writes (task set, model, score) records; use as a context manager."""

    def __init__(self, *, factory: SessionFactory) -> None:
        self._factory = factory
        self.engine = factory.engine
        # Task set keys and study names never change once written: remember them.
        self._task_set_keys: dict[int, str] = {}
        self._study_names: dict[int, str] = {}
        self._hot_statements: dict[tuple[bool, bool, bool, bool], tuple[list[Any], Any]] = {}

    @property
    def url(self) -> str:
        """Return the database URL with the password masked."""
        return mask_url(self.engine.url)

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()

    def __enter__(self) -> Repository:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---------------------------------------------------------------- writes

    def ensure_study(
        self,
        name: str,
        *,
        spec: Mapping[str, Any] | None = None,
        direction: str = "maximize",
        target: str | None = None,
    ) -> int:
        """Return the id of study ``name``, creating it (its spec, direction and target)."""
        return run_write(
            self._factory,
            lambda s: ensure_study_row(s, name, direction=direction, target=target, spec=spec),
        )

    def study_identity(self, name: str) -> str | None:
        """Return the identity of study ``name``'s records (``None``: no records study).

        ``<tg_studies.id>@<created_at in UTC>``: a study deleted and created again under its
        name gets another (SQLite may reuse the id, never with the same creation time).  The
        engine ties the Optuna study to it (``RECORDS_IDENTITY_ATTR``), so that records
        left by a study deleted outside taskgraph never mix with a new study's.
        """
        with self._factory.session() as session:
            row = session.execute(
                select(StudyRow.id, StudyRow.created_at).where(StudyRow.name == name)
            ).one_or_none()
        if row is None:
            return None
        created = _aware(row[1]) or row[1]
        return f"{int(row[0])}@{created.astimezone(timezone.utc).isoformat()}"

    def study_has_spec(self, name: str) -> bool:
        """Return whether study ``name``'s records hold a spec: a study engine opened them
        (records written through :meth:`add_run_result` or :meth:`add_screen` alone hold
        none until a study of that name runs)."""
        with self._factory.session() as session:
            spec = session.execute(
                select(StudyRow.spec).where(StudyRow.name == name)
            ).scalar_one_or_none()
        return spec is not None

    def delete_study(self, name: str, *, optuna_study_id: int | None = None) -> dict[str, int]:
        """Delete study ``name``'s records and, given its id, the Optuna study; one transaction.

        Deleted: the study's row, its runs (screens included), their scores and lookahead
        matrices, and Optuna's study ``optuna_study_id`` with everything Optuna keeps of it
        (trials, parameters, values, attributes, heartbeats: Optuna's own cascade, as
        ``optuna.delete_study``).  Shared rows (tasks, task sets, model configurations) and
        affinity fits stay.  Returns how many rows went, by kind.
        """
        from optuna.storages._rdb import models as optuna_models
        from sqlalchemy import delete

        def work(session: Any) -> dict[str, int]:
            counts = {"runs": 0, "scores": 0, "lookahead_matrices": 0, "optuna_trials": 0}
            study_id = session.execute(
                select(StudyRow.id).where(StudyRow.name == name)
            ).scalar_one_or_none()
            if study_id is not None:
                runs = select(RunRow.id).where(RunRow.study_id == study_id)
                counts["lookahead_matrices"] = _deleted(
                    session.execute(delete(LookaheadRow).where(LookaheadRow.run_id.in_(runs)))
                )
                counts["scores"] = _deleted(
                    session.execute(
                        delete(ScoreRow).where(
                            or_(ScoreRow.study_id == study_id, ScoreRow.run_id.in_(runs))
                        )
                    )
                )
                counts["runs"] = _deleted(
                    session.execute(delete(RunRow).where(RunRow.study_id == study_id))
                )
                session.execute(delete(StudyRow).where(StudyRow.id == study_id))
            if optuna_study_id is not None:
                study = session.get(optuna_models.StudyModel, optuna_study_id)
                if study is not None:
                    counts["optuna_trials"] = len(getattr(study, "trials", ()))
                    session.delete(study)  # Optuna's models cascade to everything of the study
            return counts

        return run_write(self._factory, work)

    def add_run_result(
        self,
        *,
        study: str,
        trial_number: int,
        config: TrialConfig,
        result: TrialResult,
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
        task_fingerprints: Mapping[str, str] | None = None,
        task_types: Mapping[str, str] | None = None,
        host: str | None = None,
        code_version: str | None = None,
        skip_repeat: bool = False,
    ) -> int:
        """Return the run id after writing the run and its scores in one transaction.

        Idempotent on (study, trial_number, config.seed): a retried write returns the id of
        the run already stored and writes nothing.  An unknown study is created with the
        config's objective direction and target.  ``skip_repeat``: a complete result whose
        configuration and seed another trial of the study holds as a complete run on the same
        data (the same ``task_fingerprints``) is not written; that run's id is returned (what a
        study's repeated trials do).  One held only on other data is written beside it.
        Writers of one measurement at once (parallel drivers) store it once and all get its id.
        """

        def work(session: Any) -> int:
            study_id = ensure_study_row(
                session,
                study,
                direction=config.objective.direction,
                target=config.target,
                spec=None,
            )
            if skip_repeat and result.status is TrialStatus.COMPLETE:
                # Parallel drivers may write this measurement at once: each must see the
                # other's run before deciding to insert (see _lock_measurement).
                _lock_measurement(session, study=study, config=config)
                earlier = recorded_repeat(
                    session,
                    study_id=study_id,
                    trial_number=trial_number,
                    config=config,
                    task_fingerprints=task_fingerprints or {},
                )
                if earlier is not None:
                    return earlier
            return insert_run(
                session,
                study_id=study_id,
                trial_number=trial_number,
                config=config,
                result=result,
                started_at=started_at,
                finished_at=finished_at,
                task_fingerprints=task_fingerprints or {},
                task_types=task_types or {},
                host=host,
                code_version=code_version,
            )

        return run_write(self._factory, work)

    def save_affinity_edges(self, edges: Sequence[Mapping[str, Any]], *, method: str) -> None:
        """Store one fit of ``method``: edges with source, target, gain, std, n_evidence.

        Keys other than those five are kept in the edge's ``details`` (JSON).
        """
        known = {"source", "target", "gain", "std", "n_evidence"}
        rows = []
        for index, edge in enumerate(edges):
            missing = {"source", "target", "gain"} - set(edge)
            if missing:
                raise StorageError(
                    f"affinity edge {index} lacks {sorted(missing)}: got {sorted(edge)}"
                )
            details = {k: v for k, v in edge.items() if k not in known}
            std = edge.get("std")
            rows.append(
                AffinityEdgeRow(
                    source=str(edge["source"]),
                    target=str(edge["target"]),
                    gain=float(edge["gain"]),
                    std=None if std is None else float(std),
                    n_evidence=int(edge.get("n_evidence", 0)),
                    details=details or None,
                )
            )

        def work(session: Any) -> None:
            session.add(
                AffinityFitRow(method=method, fitted_at=utcnow(), n_edges=len(rows), edges=rows)
            )

        run_write(self._factory, work)

    # ---------------------------------------------------------------- reads

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

    def trial_numbers(self, study: str) -> set[int]:
        """Return the Optuna trial numbers already stored for ``study`` (every status)."""
        query = select(RunRow.trial_number).join(RunRow.study).where(StudyRow.name == study)
        with self._factory.session() as session:
            return set(session.execute(query).scalars())

    def run_keys(self, study: str) -> set[tuple[int, int]]:
        """Return the (Optuna trial number, seed) of every run stored for ``study``."""
        query = (
            select(RunRow.trial_number, RunRow.seed)
            .join(RunRow.study)
            .where(StudyRow.name == study)
        )
        with self._factory.session() as session:
            return {(int(number), int(seed)) for number, seed in session.execute(query)}

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

    def targets(self) -> list[str]:
        """Return the target tasks of the stored runs, sorted (none: an empty list)."""
        query = select(RunRow.target).distinct().order_by(RunRow.target)
        with self._factory.session() as session:
            return [str(target) for target in session.execute(query).scalars()]

    def study_specs(self) -> dict[str, dict[str, Any]]:
        """Return each study's stored spec by name (``{}`` for a study stored without one)."""
        with self._factory.session() as session:
            rows = session.execute(select(StudyRow.name, StudyRow.spec)).all()
        return {name: dict(spec or {}) for name, spec in rows}

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

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """Yield a connection for reads; driver errors become a masked StorageError.

        On PostgreSQL it runs in autocommit: no BEGIN and ROLLBACK round trips around
        queries whose rows (immutable once written) need no snapshot spanning statements.
        """
        dbapi_error = self.engine.dialect.loaded_dbapi.Error
        try:
            with self.engine.connect() as connection:
                if self.engine.dialect.name == "postgresql":
                    connection = connection.execution_options(isolation_level="AUTOCOMMIT")
                yield connection
        except (SQLAlchemyError, dbapi_error) as error:
            raise StorageError(
                f"reading {self.url} failed: {describe_error(error, self.engine.url)}"
            ) from error

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

    def _lookups(
        self, connection: Connection, task_set_ids: set[int], study_ids: set[int]
    ) -> tuple[dict[int, str], dict[int, str]]:
        """Return (task set id -> key, study id -> name), caching what never changes."""
        missing = [i for i in task_set_ids if i not in self._task_set_keys]
        if missing:
            query = select(TaskSetRow.id, TaskSetRow.key)
            if len(missing) <= 100:  # else one pass over the (small) table is cheaper
                query = query.where(TaskSetRow.id.in_(missing))
            self._task_set_keys.update({int(i): key for i, key in connection.execute(query)})
        if study_ids - self._study_names.keys():
            found = connection.execute(select(StudyRow.id, StudyRow.name))
            self._study_names.update({int(i): name for i, name in found})
        return self._task_set_keys, self._study_names

    def add_screen(
        self,
        *,
        study: str,
        config: TrialConfig,
        result: TrialResult,
        details: Mapping[str, Any],
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
        task_fingerprints: Mapping[str, str] | None = None,
        task_types: Mapping[str, str] | None = None,
        host: str | None = None,
        code_version: str | None = None,
    ) -> StoredScreen:
        """Store a screen of ``study`` (:class:`StoredScreen`) and return it.

        One transaction: the run gets the next negative trial number of the study (a
        re-screen adds one; the latest is the one :meth:`screens` lists last), its lookahead
        matrix, and no score rows.  ``details`` (plain JSON) go under ``screen`` in the run's
        config, with the matrix's standard errors.
        """
        if result.lookahead is None:
            raise ConfigError(f"study {study!r}: a screen needs the run's lookahead matrix")
        stderr = result.lookahead.stderr
        extra = dict(details)
        if stderr is not None:
            extra["stderr"] = [[_finite_or_none(v) for v in row] for row in stderr]

        def work(session: Any) -> int:
            study_id = ensure_study_row(
                session,
                study,
                direction=config.objective.direction,
                target=config.target,
                spec=None,
            )
            lowest = session.execute(
                select(func.min(RunRow.trial_number)).where(
                    RunRow.study_id == study_id, RunRow.trial_number < 0
                )
            ).scalar_one_or_none()
            return insert_run(
                session,
                study_id=study_id,
                trial_number=(lowest or 0) - 1,
                config=config,
                result=replace(result, scores={}),
                started_at=started_at,
                finished_at=finished_at,
                task_fingerprints=task_fingerprints or {},
                task_types=task_types or {},
                host=host,
                code_version=code_version,
                transfer_mode=SCREEN_MODE,
                config_extra={"screen": extra},
            )

        run_id = run_write(self._factory, work)
        return next(s for s in self.screens(study) if s.run_id == run_id)

    def screens(self, study: str) -> list[StoredScreen]:
        """Return the screens of ``study``, oldest first (none: an empty list)."""
        query = (
            select(RunRow)
            .join(RunRow.study)
            .where(StudyRow.name == study, RunRow.transfer_mode == SCREEN_MODE)
            .order_by(RunRow.id)
        )
        with self._factory.session() as session:
            out = []
            for row in session.execute(query).unique().scalars():
                if row.lookahead is None:
                    continue
                config = dict(row.config)
                created_at = _aware(row.created_at)
                assert created_at is not None
                out.append(
                    StoredScreen(
                        run_id=row.id,
                        study=study,
                        number=row.trial_number,
                        target=row.target,
                        created_at=created_at,
                        matrix=_lookahead_matrix(row.lookahead, config),
                        cost_seconds=row.cost_seconds,
                        total_steps=row.total_steps,
                        config=config,
                        details={k: v for k, v in (config.get("screen") or {}).items()
                                 if k != "stderr"},
                    )
                )  # fmt: skip
            return out

    def lookahead_matrices(self, *, study: str | None = None) -> list[StoredLookahead]:
        """Return every stored lookahead matrix with its run (of ``study`` when given)."""
        query = (
            select(LookaheadRow, StudyRow.name, TaskSetRow.key, RunRow.config)
            .join(RunRow, RunRow.id == LookaheadRow.run_id)
            .join(StudyRow, StudyRow.id == RunRow.study_id)
            .join(TaskSetRow, TaskSetRow.id == RunRow.task_set_id)
            .order_by(LookaheadRow.run_id)
        )
        if study is not None:
            query = query.where(StudyRow.name == study)
        with self._factory.session() as session:
            return [
                StoredLookahead(
                    run_id=row.run_id,
                    study=name,
                    task_set=tuple(key.split("+")),
                    matrix=_lookahead_matrix(row, config),
                )
                for row, name, key, config in session.execute(query)
            ]

    def affinity_edges(self, *, method: str | None = None) -> list[AffinityEdgeRecord]:
        """Return the edges of the latest fit of each method (or of ``method`` only)."""
        latest = select(func.max(AffinityFitRow.id)).group_by(AffinityFitRow.method)
        if method is not None:
            latest = latest.where(AffinityFitRow.method == method)
        query = (
            select(AffinityEdgeRow, AffinityFitRow.method, AffinityFitRow.fitted_at)
            .join(AffinityFitRow, AffinityFitRow.id == AffinityEdgeRow.fit_id)
            .where(AffinityFitRow.id.in_(latest))
            .order_by(AffinityFitRow.method, AffinityEdgeRow.id)
        )
        with self._factory.session() as session:
            return [
                AffinityEdgeRecord(
                    source=row.source,
                    target=row.target,
                    gain=row.gain,
                    std=row.std,
                    n_evidence=row.n_evidence,
                    method=fit_method,
                    fitted_at=_aware(fitted_at) or fitted_at,
                    details=dict(row.details or {}),
                )
                for row, fit_method, fitted_at in session.execute(query)
            ]

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
