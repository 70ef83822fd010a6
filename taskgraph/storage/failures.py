"""Database failures that reach the command line from outside taskgraph's own storage code.

taskgraph's repository turns driver errors into :class:`~taskgraph.errors.StorageError`, but
Optuna's storage raises its own: ``StorageInternalError`` (a failed commit, e.g. a read-only
database file), raw SQLAlchemy errors, a ``RuntimeError`` when its tables are at a schema
version this Optuna does not run on, and the ``ImportError`` of a database driver that is not
installed (psycopg without the ``postgres`` extra) from an engine Optuna creates itself.  They
are the database's state or set-up, not bugs: the command line shows them as one ``error:``
line (password fields masked) instead of a traceback.
"""

from __future__ import annotations

import os
import sys
import traceback

from sqlalchemy.exc import SQLAlchemyError

from taskgraph.storage.engine import describe_error, missing_driver_message
from taskgraph.storage.urls import last_resolved_url, mask_secrets

__all__ = ["storage_failure_message"]


def storage_failure_message(error: BaseException) -> str | None:
    """Return one line describing ``error`` if it is a database failure, else ``None``."""
    where = last_resolved_url()
    prefix = f"database {where}" if where else "the database"
    optuna_exceptions = sys.modules.get("optuna.exceptions")
    storage_internal = getattr(optuna_exceptions, "StorageInternalError", None)
    if storage_internal is not None and isinstance(error, storage_internal):
        cause = error.__cause__ or error.__context__
        if cause is not None:
            return f"{prefix}: {_first_line(cause)}"
        return f"{prefix}: {_first_line(error)}"
    if isinstance(error, SQLAlchemyError):
        return f"{prefix}: {_first_line(error)}"
    missing_driver = missing_driver_message(error)
    if missing_driver is not None:
        return f"{prefix}: {missing_driver}"
    if isinstance(error, RuntimeError) and _raised_by_optuna_storage(error):
        text = str(error).replace("$STORAGE_URL", where or "URL")
        return f"{prefix}: {mask_secrets(text.strip().splitlines()[0] if text.strip() else '')}"
    return None


def _first_line(error: BaseException) -> str:
    if isinstance(error, SQLAlchemyError):
        return describe_error(error)
    text = str(error).strip()
    return mask_secrets(text.splitlines()[0] if text else type(error).__name__)


def _raised_by_optuna_storage(error: BaseException) -> bool:
    # Only Optuna's storage code: a RuntimeError raised anywhere else may be a bug and keeps
    # its traceback.
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return False
    return f"optuna{os.sep}storages{os.sep}" in frames[-1].filename
