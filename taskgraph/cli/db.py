"""``taskgraph db``: schema migrations of the records database (upgrade, current, check)."""

from __future__ import annotations

from typing import Annotated

import typer
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from taskgraph.cli.options import JsonOption, StorageOption
from taskgraph.cli.output import emit_json, print_line
from taskgraph.errors import SchemaMismatchError, StorageError
from taskgraph.storage import mask_url, parse_storage_url, resolve_storage_url
from taskgraph.storage.engine import describe_error
from taskgraph.storage.migrate import (
    TABLE_PREFIX,
    SchemaState,
    alembic_config,
    check_revision,
    describe_difference,
    open_error,
    schema_differences,
    schema_mismatch,
    schema_state,
    upgrade,
)
from taskgraph.storage.repository import open_engine
from taskgraph.storage.urls import sqlite_path

__all__ = ["app"]

app = typer.Typer(
    rich_markup_mode="markdown",
    add_completion=False,
    help="Upgrade and check the records database schema (Alembic revisions shipped with "
    "taskgraph; version table tg_alembic_version, Optuna's tables untouched).",
    no_args_is_help=True,
)


@app.command("upgrade")
def upgrade_command(
    storage: StorageOption = None,
    revision: Annotated[
        str, typer.Option("--revision", help="Target revision (default: the newest, 'head').")
    ] = "head",
    as_json: JsonOption = False,
) -> None:
    """Upgrade the database schema to the newest revision (creates a new database)."""
    url = resolve_storage_url(storage)
    check_revision(revision, name="--revision")  # before the engine: nothing is created
    masked = mask_url(url)
    if revision == "base" and _missing_sqlite_file(url):
        # base is the schema without tables: opening the file would only leave it behind empty.
        if as_json:
            emit_json({"storage": masked, "before": None, "after": None, "missing": True})
        else:
            print_line(f"{masked} does not exist and revision base has no tables: nothing to do")
        return
    engine = open_engine(url, create=True)
    try:
        before, after = upgrade(engine, revision)
    finally:
        engine.dispose()
    if as_json:
        emit_json({"storage": masked, "before": before, "after": after})
    elif before == after:
        print_line(f"{masked} is already at revision {after or 'base (no taskgraph tables)'}")
    else:
        print_line(f"upgraded {masked} from revision {before or '(none)'} to {after}")


def _missing_sqlite_file(url: str) -> bool:
    """Return True when ``url`` names a SQLite file that does not exist yet."""
    parsed = parse_storage_url(url)
    path = sqlite_path(parsed) if parsed.get_backend_name() == "sqlite" else None
    return path is not None and not path.exists()


@app.command("current")
def current_command(storage: StorageOption = None, as_json: JsonOption = False) -> None:
    """Show the database's schema revision and the newest one this taskgraph knows."""
    url = resolve_storage_url(storage)
    engine = open_engine(url, create=False)
    try:
        with engine.connect() as connection:
            state = schema_state(connection)
            others = _other_tables(connection) if state.is_empty else []
    except StorageError:
        raise
    except Exception as error:
        raise open_error(
            error, f"cannot open {mask_url(url)}: {describe_error(error, engine.url)}"
        ) from None
    finally:
        engine.dispose()
    masked = mask_url(url)
    newer = _is_newer(state)
    if as_json:
        report: dict[str, object] = {
            "storage": masked,
            "current": state.current,
            "head": state.head,
            "at_head": state.at_head,
        }
        if newer:
            report["newer"] = True
        if others:
            report["other_tables"] = others
        emit_json(report)
        return
    where = "at head" if state.at_head else "behind: run `taskgraph db upgrade`"
    if newer:
        where = "newer than this taskgraph knows: upgrade taskgraph"
    if state.is_empty:
        where = "empty: run `taskgraph db upgrade` or a study to create it"
    if others:
        # Not "empty": another application's tables (Optuna's, or a wrong path?).  Not an
        # error: taskgraph's prefixed tables may share a database with others.
        where = _beside_others(others)
    print_line(f"{masked}: revision {state.current or '(none)'}, head {state.head} ({where})")


def _other_tables(connection: Connection) -> list[str]:
    """Return the database's tables that are not taskgraph's, sorted."""
    return sorted(
        name for name in inspect(connection).get_table_names() if not name.startswith(TABLE_PREFIX)
    )


def _beside_others(tables: list[str]) -> str:
    """Return what `db current` says of a database that holds ``tables`` and none of
    taskgraph's."""
    shown = ", ".join(tables[:_SHOWN_TABLES])
    if len(tables) > _SHOWN_TABLES:
        shown += f" and {len(tables) - _SHOWN_TABLES} more"
    count = f"{len(tables)} other table{'s' if len(tables) > 1 else ''}"
    return (
        f"no {TABLE_PREFIX}* tables, {count}: {shown}; is it the database you meant?  "
        "`taskgraph db upgrade` adds taskgraph's tables beside them"
    )


def _is_newer(state: SchemaState) -> bool:
    """Return True when the database is at a revision this taskgraph does not know (a newer
    taskgraph wrote it: ``taskgraph db upgrade`` cannot help, upgrading taskgraph does)."""
    if state.current is None or state.at_head:
        return False
    script = ScriptDirectory.from_config(alembic_config())
    return state.current not in {revision.revision for revision in script.walk_revisions()}


@app.command("check")
def check_command(storage: StorageOption = None, as_json: JsonOption = False) -> None:
    """Exit non-zero unless the database is at head and its tables match this taskgraph's."""
    url = resolve_storage_url(storage)
    masked = mask_url(url)
    engine = open_engine(url, create=False)
    try:
        with engine.connect() as connection:
            state = schema_state(connection)
            differences = schema_differences(connection) if state.at_head else []
    except StorageError:
        raise
    except Exception as error:
        raise open_error(
            error, f"cannot open {masked}: {describe_error(error, engine.url)}"
        ) from None
    finally:
        engine.dispose()
    # Alembic compares sets of tables and columns: sorted, the same schema reads the same.
    described = sorted(describe_difference(difference) for difference in differences)
    problem: SchemaMismatchError | None = None
    if not state.at_head:
        problem = schema_mismatch(state, masked)
    elif described:
        shown = "; ".join(described[:_SHOWN_DIFFERENCES])
        if len(described) > _SHOWN_DIFFERENCES:
            shown += f"; and {len(described) - _SHOWN_DIFFERENCES} more (see --json)"
        count = f"{len(described)} difference{'s' if len(described) > 1 else ''}"
        problem = SchemaMismatchError(
            f"{masked} is at revision {state.head} but its tables differ from this "
            f"taskgraph's models ({count}: {shown})"
        )
    if as_json:
        report: dict[str, object] = {
            "storage": masked,
            "current": state.current,
            "head": state.head,
            "ok": problem is None,
        }
        if _is_newer(state):
            report["newer"] = True
        if problem is not None:
            report["reason"] = str(problem)
        report["differences"] = described
        emit_json(report)
    if problem is not None:
        raise problem  # the error line on stderr and the exit status, with --json too
    if not as_json:
        print_line(f"ok: {masked} is at head ({state.head}) and matches the models")


#: how many schema differences `db check` names in its error line (--json lists them all)
_SHOWN_DIFFERENCES = 5
#: how many of another application's tables `db current` names
_SHOWN_TABLES = 5
