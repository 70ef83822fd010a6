"""The records database: every trial's (task set, model configuration, scores) record.

SQLite by default (nothing to start), PostgreSQL at scale, sharing one URL with Optuna's own
storage.  Open it with :func:`open_repository`; the URL comes from :func:`resolve_storage_url`.

Where things are: :class:`Repository` (``repository.py``: opening the database and every
write) inherits its queries from one module per concept: ``run_queries.py`` (runs by filter,
studies, the engine's per-trial queries), ``record_reads.py`` (the score records the affinity
model reads: the hot path), ``screen_reads.py`` (screens, lookahead matrices, affinity fits)
and ``run_export.py`` (runs written to a file), over ``reading.py`` (their shared state and
read connection).  Rows in and out: ``schema.py`` (the ``tg_`` tables), ``writes.py`` (a
run's rows inserted), ``run_rows.py`` and ``score_reads.py`` (rows read back as records),
``records.py`` (the record dataclasses), ``filters.py`` (run filters), ``export.py`` (export
formats).  The database: ``urls.py``, ``engine.py``, ``session.py``, ``retry.py`` and
``optuna_rdb.py`` (a server that restarts), ``failures.py``, ``migrate.py`` (with
``migrations/``), ``locks.py`` (the setup lock, drivers' liveness locks); ``testing.py``
starts a throwaway PostgreSQL for the tests.
"""

from __future__ import annotations

from taskgraph.storage.migrate import VERSION_TABLE, SchemaState, head_revision
from taskgraph.storage.records import (
    AffinityEdgeRecord,
    RecordColumns,
    RunRecord,
    StoredLookahead,
    StoredScreen,
    StudySummary,
    TaskSetRecord,
    TaskSetRecords,
    higher_is_better,
)
from taskgraph.storage.repository import (
    SCREEN_MODE,
    Repository,
    open_repository,
    records_by_task_set,
)
from taskgraph.storage.urls import (
    DEFAULT_STORAGE_URL,
    STORAGE_ENV,
    mask_secrets,
    mask_url,
    parse_storage_url,
    resolve_storage_url,
    storable_spec,
)

__all__ = [
    "DEFAULT_STORAGE_URL",
    "SCREEN_MODE",
    "STORAGE_ENV",
    "VERSION_TABLE",
    "AffinityEdgeRecord",
    "RecordColumns",
    "Repository",
    "RunRecord",
    "SchemaState",
    "StoredLookahead",
    "StoredScreen",
    "StudySummary",
    "TaskSetRecord",
    "TaskSetRecords",
    "head_revision",
    "higher_is_better",
    "mask_secrets",
    "mask_url",
    "open_repository",
    "parse_storage_url",
    "records_by_task_set",
    "resolve_storage_url",
    "storable_spec",
]
