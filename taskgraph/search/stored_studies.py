"""Stored studies, opened read-only: one by name, the names in a database, every study's progress.

Nothing here creates a table: a database where no study ran yet must not be given Optuna's
schema by reading it, and a study taskgraph did not create (a plain Optuna study in the same
database) is named as such rather than reported.
"""

from __future__ import annotations

from typing import Any

import optuna

from taskgraph.errors import NotFoundError, StorageError
from taskgraph.search.heartbeat import quiet_optuna
from taskgraph.search.progress import SPEC_ATTR, study_progress

__all__ = [
    "list_progress",
    "load_optuna_study",
    "not_taskgraphs",
    "open_study",
    "read_only_storage",
    "study_names",
]


def load_optuna_study(
    name: str, *, storage: optuna.storages.BaseStorage, where: str
) -> optuna.Study:
    """Return study ``name`` from ``storage``; a missing one is a NotFoundError listing the
    known ones."""
    with quiet_optuna():
        try:
            return optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            known = ", ".join(study_names(storage)) or "(none)"
            raise NotFoundError(f"no study {name!r} in {where}; known studies: {known}") from None


def read_only_storage(storage_url: str) -> optuna.storages.RDBStorage | None:
    """Return Optuna's storage on the database at ``storage_url``, or ``None`` when the
    database has no Optuna tables (no study ran there yet); it creates no table.

    The records database is checked first, so a missing file, an unreachable server or an
    old schema is the storage layer's one clear line rather than Optuna's error.
    """
    import sqlalchemy

    from taskgraph.storage import open_repository, parse_storage_url

    with open_repository(storage_url, create=False) as repository:
        # `db upgrade` on an empty database makes taskgraph's tables only; Optuna's come
        # with the first study, and reading must not create them.
        if not sqlalchemy.inspect(repository.engine).has_table(_OPTUNA_STUDIES_TABLE):
            return None
    url = parse_storage_url(storage_url).render_as_string(hide_password=False)
    return optuna.storages.RDBStorage(url, skip_table_creation=True)


#: the table of Optuna's RDB storage that lists its studies
_OPTUNA_STUDIES_TABLE = "studies"


def open_study(name: str, *, storage_url: str) -> optuna.Study:
    """Return study ``name`` from the database at ``storage_url`` (read-only use; nothing is
    created).

    Raises :class:`~taskgraph.errors.NotFoundError` when there is no such study (naming the
    known ones), or when the study was not created by taskgraph (it has no ``taskgraph:spec``:
    a plain Optuna study in the same database).
    """
    from taskgraph.storage import mask_url

    where = mask_url(storage_url)
    storage = read_only_storage(storage_url)
    if storage is None:
        raise NotFoundError(f"no study {name!r} in {where}; known studies: (none)")
    study = load_optuna_study(name, storage=storage, where=where)
    if not study.user_attrs.get(SPEC_ATTR):
        raise not_taskgraphs(name, study, storage_url=storage_url)
    return study


def not_taskgraphs(name: str, study: optuna.Study, *, storage_url: str) -> NotFoundError:
    """Return the error for study ``name``, which has no ``taskgraph:spec``.

    A study with no taskgraph attribute and no trial is what a ``taskgraph study run`` killed
    while it created the study leaves (Optuna's row is written before the spec): the error
    says how to take it over or remove it.  Any other is a plain Optuna study.
    """
    from taskgraph.storage.urls import delete_command

    ours = any(key.startswith("taskgraph:") for key in study.user_attrs)
    if not ours and not study.get_trials(deepcopy=False):
        return NotFoundError(
            f"study {name!r} has no {SPEC_ATTR} and no trials: a `taskgraph study run` stopped "
            "while it created the study leaves it so; `taskgraph study run SPEC` with the spec "
            f"it was started from takes it over, or `{delete_command(name, storage_url)}` "
            "removes it"
        )
    return NotFoundError(f"study {name!r} was not created by taskgraph (no {SPEC_ATTR})")


def list_progress(*, storage_url: str) -> list[dict[str, Any]]:
    """Return one row per study in the database: its target and its progress.

    A study that taskgraph did not create (no ``taskgraph:spec``: a plain Optuna study) has
    ``"taskgraph": False`` and no target or budget; taskgraph's have ``"taskgraph": True``.
    """
    storage = _optuna_only_storage(storage_url) or read_only_storage(storage_url)
    if storage is None:
        return []
    rows = []
    with quiet_optuna():
        for name in study_names(storage):
            study = optuna.load_study(study_name=name, storage=storage)
            spec = study.user_attrs.get(SPEC_ATTR) or {}
            row = {"target": spec.get("target"), **study_progress(study).to_dict()}
            if not spec:
                row["budget"] = None  # not 0: Optuna alone has no budget
            rows.append({**row, "taskgraph": bool(spec)})
    storage.engine.dispose()
    return rows


def _optuna_only_storage(storage_url: str) -> optuna.storages.RDBStorage | None:
    """Return Optuna's storage on a database that holds Optuna's tables and nothing of
    taskgraph's (plain Optuna studies: listed, never given taskgraph's schema), else ``None``.

    It only reads the table names; anything else (a missing file, an unreachable server, an
    old taskgraph schema) is left to :func:`read_only_storage` to refuse in its words.
    """
    import sqlalchemy
    from sqlalchemy.exc import SQLAlchemyError

    from taskgraph.storage import parse_storage_url
    from taskgraph.storage.migrate import schema_state
    from taskgraph.storage.repository import open_engine

    try:
        engine = open_engine(storage_url, create=False)
    except StorageError:
        return None
    try:
        with engine.connect() as connection:
            state = schema_state(connection)
            has_optuna = sqlalchemy.inspect(connection).has_table(_OPTUNA_STUDIES_TABLE)
    except SQLAlchemyError:
        return None
    finally:
        engine.dispose()
    if not (state.is_empty and has_optuna):
        return None
    url = parse_storage_url(storage_url).render_as_string(hide_password=False)
    return optuna.storages.RDBStorage(url, skip_table_creation=True)


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    """Return the names of every study in ``storage``, sorted."""
    return sorted(s.study_name for s in storage.get_all_studies())
