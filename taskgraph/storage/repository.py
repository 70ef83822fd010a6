"""The records repository: opening the records database, and every write made on it.

``open_repository(url)`` validates the URL, connects, and makes sure the schema is at head
(creating it in a brand-new database).  The repository writes each trial's run and scores in
one transaction, idempotently, and answers the queries the search engine, the affinity code
and the CLI need, as plain frozen dataclasses.

:class:`Repository` is one class put together from one module per concept; its writes (studies,
trial runs, screens, affinity fits) are here, its queries in the mixins it inherits:

* :mod:`~taskgraph.storage.run_queries`: runs by filter, studies, and the light queries the
  engine makes after each trial (:class:`~taskgraph.storage.run_queries.RunQueries`);
* :mod:`~taskgraph.storage.record_reads`: the score records the affinity model reads, the hot
  path (:class:`~taskgraph.storage.record_reads.RecordReads`);
* :mod:`~taskgraph.storage.screen_reads`: screens, lookahead matrices and affinity fits
  (:class:`~taskgraph.storage.screen_reads.ScreenReads`);
* :mod:`~taskgraph.storage.run_export`: the export of runs to a file
  (:class:`~taskgraph.storage.run_export.RunExport`);
* :mod:`~taskgraph.storage.reading`: the state and read connection they share
  (:class:`~taskgraph.storage.reading.RepositoryReader`).

Beside it: :mod:`~taskgraph.storage.filters` checks the run filters and picks runs by model
family, :mod:`~taskgraph.storage.score_reads` reads back what score records carry (data
versions, partner data, alone settings), :mod:`~taskgraph.storage.run_rows` turns stored
rows into records, and :mod:`~taskgraph.storage.writes` inserts the rows of a run.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

from sqlalchemy import Engine, func, or_, select, text
from sqlalchemy.exc import ArgumentError

from taskgraph.errors import (
    ConfigError,
    NotFoundError,
    StorageError,
    StorageURLError,
    option_name,
)
from taskgraph.storage.engine import create_storage_engine
from taskgraph.storage.filters import (
    check_run_filters,
    no_family_error,
)
from taskgraph.storage.migrate import ensure_schema
from taskgraph.storage.reading import retried_read
from taskgraph.storage.record_reads import RecordReads
from taskgraph.storage.records import StoredScreen
from taskgraph.storage.run_export import RunExport
from taskgraph.storage.run_queries import RunQueries
from taskgraph.storage.run_rows import _aware
from taskgraph.storage.schema import (
    AffinityEdgeRow,
    AffinityFitRow,
    LookaheadRow,
    RunRow,
    ScoreRow,
    StudyRow,
)
from taskgraph.storage.score_reads import (
    data_families,
    partner_data,
    records_by_task_set,
)
from taskgraph.storage.screen_reads import SCREEN_MODE, ScreenReads
from taskgraph.storage.session import SessionFactory, run_write
from taskgraph.storage.urls import mask_secrets, mask_url, parse_storage_url, sqlite_path
from taskgraph.storage.writes import ensure_study_row, insert_run, recorded_repeat, utcnow
from taskgraph.trial import (
    TrialConfig,
    TrialResult,
    TrialStatus,
)
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
]

#: the Optuna study's system attribute that ties it to its records study
#: (:meth:`Repository.study_identity`); see ``StudyCreator.check_records`` (``taskgraph/search/creation.py``)
RECORDS_IDENTITY_ATTR = "taskgraph:records_study"


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


class Repository(RunExport, RunQueries, RecordReads, ScreenReads):
    """Reads and writes (task set, model, score) records; use as a context manager."""

    def __init__(self, *, factory: SessionFactory) -> None:
        self._factory = factory
        self.engine = factory.engine
        # Task set keys and study names never change once written: remember them.
        self._task_set_keys: dict[int, str] = {}
        self._study_names: dict[int, str] = {}
        self._hot_statements: dict[tuple[bool, bool, bool, bool], tuple[list[Any], Any]] = {}

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

    @retried_read
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

    @retried_read
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
            # Two screens of one study written at once (PostgreSQL, READ COMMITTED) would both
            # take number -1 and the second insert would be dropped as a conflict: the study
            # row's lock makes the later writer wait and then see the earlier one's run.
            # (SQLite's write transactions already run one at a time; FOR UPDATE is left out.)
            session.execute(select(StudyRow.id).where(StudyRow.id == study_id).with_for_update())
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
