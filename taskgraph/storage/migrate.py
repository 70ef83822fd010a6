"""Schema migrations, run programmatically with Alembic (``taskgraph db upgrade|current|check``).

The migration scripts ship inside the package (``taskgraph/storage/migrations``) so that an
installed taskgraph can upgrade a database without a source checkout; ``db/alembic.ini`` points
the ``alembic`` command line at the same scripts.  taskgraph keeps its own version table,
``tg_alembic_version``, and only ever looks at ``tg_*`` tables, so it shares one database with
Optuna's storage (and optuna-dashboard) without either touching the other's tables.

Upgrades hold a lock for their whole transaction (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a
transaction-scoped advisory lock), so several workers opening a brand-new database at once
create the schema exactly once.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from taskgraph.errors import ConfigError, NotFoundError, SchemaMismatchError, StorageError
from taskgraph.storage.engine import WRITE, describe_error
from taskgraph.storage.schema import Base
from taskgraph.storage.urls import mask_url

__all__ = [
    "VERSION_TABLE",
    "NoRecordsError",
    "SchemaState",
    "alembic_config",
    "check_revision",
    "describe_difference",
    "ensure_schema",
    "head_revision",
    "include_name",
    "include_object",
    "open_error",
    "schema_differences",
    "schema_state",
    "upgrade",
]

VERSION_TABLE = "tg_alembic_version"
TABLE_PREFIX = "tg_"
# Arbitrary constant key of the PostgreSQL advisory lock that serialises upgrades.
_ADVISORY_LOCK_KEY = 0x7467_6D69_6772  # "tgmigr"
# A plain revision id or prefix; Alembic's relative and branch syntax (``-1``, ``head-1``,
# ``base+1``, ``a:b``, ``branch@head``) is refused: ``get_revisions`` accepts some of it
# (``-1``) and the upgrade then fails only after the database was created.
_PLAIN_REVISION = re.compile(r"[0-9A-Za-z_]+")

T = TypeVar("T")


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Return whether autogenerate looks at a reflected name: only taskgraph's own tables."""
    if type_ == "table":
        return name is not None and name.startswith(TABLE_PREFIX) and name != VERSION_TABLE
    return True


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Return whether autogenerate compares an object: only taskgraph's own tables."""
    if type_ == "table":
        return name is not None and name.startswith(TABLE_PREFIX) and name != VERSION_TABLE
    return True


def migrations_dir() -> Path:
    """Return the directory of the migration scripts shipped with the package."""
    return Path(str(resources.files("taskgraph.storage") / "migrations"))


def alembic_config(connection: Connection | None = None) -> Config:
    """Return an Alembic Config built in code (no ini file needed), bound to ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """Return the newest revision this taskgraph knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "taskgraph ships at least one migration"
    return head


def _known_revisions() -> set[str]:
    script = ScriptDirectory.from_config(alembic_config())
    return {revision.revision for revision in script.walk_revisions()}


def check_revision(revision: str, *, name: str = "revision") -> None:
    """Refuse a ``revision`` the shipped migrations do not have (``name``: the argument).

    Checked before any connection is made: connecting to SQLite creates the file, and an
    upgrade that cannot start must leave nothing behind.  ``head``, ``heads``, ``base``, a
    revision id or a unique prefix of one are accepted; relative and branch syntax is not.
    """
    script = ScriptDirectory.from_config(alembic_config())
    try:
        if not _PLAIN_REVISION.fullmatch(revision):
            raise CommandError("not a plain revision id")
        script.get_revisions(revision)
    except CommandError:
        ids = sorted(r.revision for r in script.walk_revisions())
        raise ConfigError(
            f"`{name}` {revision!r} is not a revision of taskgraph's migrations; known: "
            f"head, base, {', '.join(ids)}"
        ) from None


@dataclass(frozen=True)
class SchemaState:
    """Where a database stands: its revision (``None``: no taskgraph schema) and the head."""

    current: str | None
    head: str
    has_tables: bool  # tg_* tables exist (with or without a version table)

    @property
    def at_head(self) -> bool:
        """Return True when the database is at the newest revision."""
        return self.current == self.head

    @property
    def is_empty(self) -> bool:
        """Return True when the database holds nothing of taskgraph's yet."""
        return self.current is None and not self.has_tables


def schema_state(connection: Connection) -> SchemaState:
    """Return the schema state of the database behind ``connection``."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    current = context.get_current_revision()
    names = inspect(connection).get_table_names()
    has_tables = any(include_name(name, "table", None) for name in names)
    return SchemaState(current=current, head=head_revision(), has_tables=has_tables)


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade the database to ``revision`` under the migration lock; return (before, after).

    An unknown ``revision`` is a :class:`ConfigError` raised before connecting.
    """
    check_revision(revision)

    def run(connection: Connection) -> tuple[str | None, str | None]:
        state = schema_state(connection)
        before = state.current
        if before is not None and before not in _known_revisions():
            # A newer taskgraph wrote it: Alembic would only say it cannot locate the revision.
            raise schema_mismatch(state, mask_url(engine.url))
        try:
            config = alembic_config(connection)
            if before is not None and _is_older(config, revision, than=before):
                raise ConfigError(
                    f"cannot upgrade {mask_url(engine.url)} to revision {revision}: it is at "
                    f"{before}, which is newer (taskgraph's migrations only go up)"
                )
            command.upgrade(config, revision)
        except CommandError as error:
            raise StorageError(f"cannot upgrade {mask_url(engine.url)}: {error}") from None
        return before, schema_state(connection).current

    return _locked(engine, run)


def _is_older(config: Config, revision: str, *, than: str) -> bool:
    """Return True when ``revision`` comes before ``than`` in the migration history."""
    script = ScriptDirectory.from_config(config)
    wanted = script.get_revision(revision)  # an unknown revision: alembic's CommandError
    order = [r.revision for r in script.walk_revisions()]  # head first
    if than not in order:
        return False
    if wanted is None:  # base: before every revision
        return True
    if wanted.revision not in order:
        return False
    return order.index(wanted.revision) > order.index(than)


def _locked(engine: Engine, work: Callable[[Connection], T]) -> T:
    masked = mask_url(engine.url)
    try:
        with (
            engine.connect().execution_options(**{WRITE: True}) as connection,
            connection.begin(),
        ):
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY}
                )
            return work(connection)
    except SQLAlchemyError as error:
        raise open_error(
            error, f"migrating {masked} failed: {describe_error(error, engine.url)}"
        ) from None


def schema_differences(connection: Connection) -> list[Any]:
    """Return the differences between the tables in the database and this taskgraph's models."""
    context = MigrationContext.configure(
        connection,
        opts={
            "version_table": VERSION_TABLE,
            "include_name": include_name,
            "include_object": include_object,
            "compare_type": True,
        },
    )
    differences: list[Any] = []
    for difference in compare_metadata(context, Base.metadata):
        # Changes to one column come grouped in a list of ("modify_…", …) tuples.
        differences.extend(difference if isinstance(difference, list) else [difference])
    return differences


def describe_difference(difference: Any) -> str:
    """Return one difference of :func:`schema_differences` in words, from the database's side
    ("the schema": this taskgraph's models)."""
    kind = difference[0]
    if kind in ("add_table", "remove_table"):
        table = difference[1].name
        return (
            f"table {table} is missing"
            if kind == "add_table"
            else f"the database has a table {table} the schema does not"
        )
    if kind in ("add_column", "remove_column"):
        table, column = difference[2], difference[3].name
        return (
            f"{table} is missing column {column}"
            if kind == "add_column"
            else f"{table} has a column {column} the schema does not"
        )
    if kind in ("add_index", "remove_index", "add_constraint", "remove_constraint"):
        obj = difference[1]
        what = "index" if kind.endswith("index") else _constraint_kind(obj)
        table = obj.table.name if obj.table is not None else "?"
        name = f" {obj.name}" if obj.name else ""
        return (
            f"{what}{name} on {table} is missing"
            if kind.startswith("add")
            else f"{table} has {what}{name} the schema does not"
        )
    if kind in ("add_fk", "remove_fk"):
        fk = difference[1]
        table = fk.parent.name if fk.parent is not None else "?"
        columns = ", ".join(column.name for column in fk.columns) or "?"
        target = fk.referred_table.name if fk.elements else "?"
        what = f"foreign key ({columns}) -> {target}"
        return (
            f"{what} on {table} is missing"
            if kind == "add_fk"
            else f"{table} has {what} the schema does not"
        )
    if kind in ("modify_type", "modify_nullable", "modify_default", "modify_comment"):
        _, _, table, column, _, existing, wanted = difference
        if kind == "modify_nullable":
            existing, wanted = ("nullable" if flag else "NOT NULL" for flag in (existing, wanted))
            return f"{table}.{column} is {existing}, the schema says {wanted}"
        what = kind.removeprefix("modify_")
        return f"{table}.{column} has {what} {existing}, the schema says {wanted}"
    if kind in ("add_table_comment", "remove_table_comment"):
        return f"the comment of table {difference[1].name} differs from the schema's"
    return f"{kind} (as Alembic reports it: {difference})"


def _constraint_kind(constraint: Any) -> str:
    name = type(constraint).__name__  # UniqueConstraint, CheckConstraint, ...
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()
    return words or "constraint"


class NoRecordsError(NotFoundError):
    """A database without any taskgraph table, opened by a command that creates none.

    Its message suggests running a study or ``taskgraph db upgrade``; a command for which the
    schema alone is not enough (the dashboard needs Optuna's tables, which only a study
    creates) catches it and gives its own hint.  :attr:`masked` is the database's URL with
    the password masked.  Exit 2, as an unknown study: the database named holds nothing of
    taskgraph's.
    """

    def __init__(self, masked: str) -> None:
        self.masked = masked
        super().__init__(
            f"{masked} holds no taskgraph records yet: run a study, or create the schema "
            f"with `taskgraph db upgrade --storage {masked}`"
        )


def ensure_schema(engine: Engine, *, create: bool) -> SchemaState:
    """Return the schema state after making sure this code can use the database.

    A database without any taskgraph table is created at head when ``create`` is true (under
    the migration lock, so concurrent openers create it once), else it raises
    :class:`NoRecordsError`.  An older schema raises :class:`SchemaMismatchError` naming
    ``taskgraph db upgrade``; a newer one names the fix too.
    """
    masked = mask_url(engine.url)
    try:
        with engine.connect() as connection:
            state = schema_state(connection)
    except SQLAlchemyError as error:
        raise open_error(
            error,
            f"cannot open the records database {masked}: {describe_error(error, engine.url)}",
        ) from None
    if not state.at_head and not state.is_empty:
        # Its two reads (the version table, then the tables) may straddle another opener's
        # commit of the schema: tables seen, no version yet.  Read again under the migration
        # lock, which that opener holds until its schema is committed.
        state = _locked(engine, schema_state)
    if state.is_empty:
        if not create:
            raise NoRecordsError(masked)
        upgrade(engine)
        with engine.connect() as connection:
            return schema_state(connection)
    if state.at_head:
        return state
    raise schema_mismatch(state, masked)


def open_error(error: Exception, message: str) -> StorageError:
    """Return the error to raise for ``error`` met opening a database, worded ``message``.

    A file the user named that is no SQLite database (a CSV, a text file), or a database name
    the server does not have, is what the user gave: :class:`NotFoundError` (exit 2), as a
    missing SQLite file is.  Anything else (a locked database, an unreachable server, a full
    disk) is the environment's: :class:`StorageError` (exit 1).
    """
    if isinstance(error, SQLAlchemyError) and (_not_a_database(error) or _no_such_database(error)):
        return NotFoundError(message)
    return StorageError(message)


#: SQLite's result code for a file that is not a database (SQLITE_NOTADB)
_SQLITE_NOTADB = 26


def _not_a_database(error: SQLAlchemyError) -> bool:
    """Return whether ``error`` is SQLite's "file is not a database" (the file's header is
    not SQLite's), not a lock, a permission or an I/O failure."""
    orig = getattr(error, "orig", None)
    if not isinstance(orig, sqlite3.DatabaseError):
        return False
    code = getattr(orig, "sqlite_errorcode", None)
    return code == _SQLITE_NOTADB or "file is not a database" in str(orig)


_NO_SUCH_DATABASE = re.compile(r'database "[^"]*" does not exist')


def _no_such_database(error: SQLAlchemyError) -> bool:
    """Return whether ``error`` is a PostgreSQL server's refusal of a database name it does
    not have (``FATAL: database "x" does not exist``, SQLSTATE 3D000), which the user gave in
    the URL; not a refused password, an unreachable server or a full disk."""
    orig = getattr(error, "orig", None)
    if orig is None or isinstance(orig, sqlite3.Error):
        return False
    return getattr(orig, "sqlstate", None) == "3D000" or bool(_NO_SUCH_DATABASE.search(str(orig)))


def schema_mismatch(state: SchemaState, masked: str) -> SchemaMismatchError:
    """Return the error that says how far a schema is from head and which command fixes it."""
    if state.is_empty:
        return SchemaMismatchError(
            f"{masked} has no taskgraph schema yet: run `taskgraph db upgrade --storage {masked}`"
        )
    if state.current is None:
        return SchemaMismatchError(
            f"{masked} has taskgraph tables but no {VERSION_TABLE} table (created without "
            f"migrations?); recreate it or stamp it with `alembic -c db/alembic.ini stamp`"
        )
    if state.current in _known_revisions():
        return SchemaMismatchError(
            f"{masked} is at schema revision {state.current}, this taskgraph needs "
            f"{state.head}: run `taskgraph db upgrade --storage {masked}`"
        )
    return SchemaMismatchError(
        f"{masked} is at schema revision {state.current}, newer than this taskgraph knows "
        f"(head {state.head}): upgrade taskgraph"
    )
