"""Where the records database is: URL precedence, validation and password masking.

The URL comes from ``--storage``, else ``TASKGRAPH_STORAGE``, else the study spec's
``storage`` field, else ``sqlite:///taskgraph.db``.  Only SQLite and PostgreSQL (through
psycopg 3) are supported; ``postgresql://`` and ``postgres://`` are read as
``postgresql+psycopg://``.  Passwords never appear in messages: every message goes through
:func:`mask_url`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from taskgraph.errors import StorageError

__all__ = [
    "DEFAULT_STORAGE_URL",
    "STORAGE_ENV",
    "mask_url",
    "parse_storage_url",
    "resolve_storage_url",
    "sqlite_path",
]

STORAGE_ENV = "TASKGRAPH_STORAGE"
DEFAULT_STORAGE_URL = "sqlite:///taskgraph.db"

_SUPPORTED = {"sqlite": ("sqlite", "pysqlite"), "postgresql": ("postgresql", "psycopg")}
# user:password@ inside a string SQLAlchemy could not parse.
_PASSWORD_IN_TEXT = re.compile(r"(?P<head>://[^:/@\s]*:)(?P<password>[^@\s]*)(?P<tail>@)")


def resolve_storage_url(option: str | None = None, *, spec_storage: str | None = None) -> str:
    """Return the storage URL: ``option``, else ``$TASKGRAPH_STORAGE``, else the spec's, else the default."""
    for candidate in (option, os.environ.get(STORAGE_ENV), spec_storage):
        if candidate is not None and candidate.strip():
            return candidate.strip()
    return DEFAULT_STORAGE_URL


def mask_url(url: str | URL) -> str:
    """Return ``url`` with its password replaced by ``***`` (safe for messages and logs)."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return _PASSWORD_IN_TEXT.sub(r"\g<head>***\g<tail>", url)


def parse_storage_url(url: str) -> URL:
    """Return the parsed, normalised URL; raise :class:`StorageError` naming what is wrong.

    Checks the syntax, the dialect and driver, and for a SQLite file that its directory
    exists (nothing is created here).
    """
    masked = mask_url(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as error:
        raise StorageError(
            f"storage URL {masked!r} is malformed: expected e.g. 'sqlite:///taskgraph.db' "
            f"or 'postgresql+psycopg://user:password@host:5432/dbname' ({error})"
        ) from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "postgres":  # Heroku-style alias
        backend = "postgresql"
    if backend not in _SUPPORTED:
        raise StorageError(
            f"storage URL {masked!r} has unsupported database {backend!r}: "
            f"expected one of {sorted(_SUPPORTED)} (e.g. 'sqlite:///taskgraph.db')"
        )
    allowed = _SUPPORTED[backend]
    if driver and driver not in allowed:
        raise StorageError(
            f"storage URL {masked!r} uses driver {driver!r}: taskgraph supports "
            f"'{backend}+{allowed[1]}'"
        )
    if backend == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
        if not parsed.database:
            raise StorageError(f"storage URL {masked!r} names no database (…/dbname)")
    else:
        parsed = parsed.set(drivername="sqlite")
        path = sqlite_path(parsed)
        if path is not None and not path.parent.is_dir():
            raise StorageError(
                f"storage URL {masked!r}: directory {str(path.parent)!r} does not exist"
            )
    return parsed


def sqlite_path(url: URL) -> Path | None:
    """Return the file of a SQLite URL, or ``None`` for an in-memory database."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return Path(database).expanduser().resolve()
