"""The records database: every trial's (task set, model configuration, scores) record.

SQLite by default (nothing to start), PostgreSQL at scale, sharing one URL with Optuna's own
storage.  Open it with :func:`open_repository`; the URL comes from :func:`resolve_storage_url`.
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
