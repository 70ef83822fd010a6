"""SQLite paths of :mod:`taskgraph.storage.migrate` that a mutation audit left alive.

``db check`` names a dropped unique constraint as such and a dropped foreign key with its
target table.  The errors for a database without taskgraph's schema name the command
that creates it, for that very ``--storage``.  :func:`~migrate.ensure_schema` returns the
state of a database it has just created, not the empty one it found; and SQLite's "not a
database" is told by its result code as well as by its wording.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.exc import DatabaseError
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.errors import NotFoundError
from taskgraph.storage import head_revision, migrate, open_repository
from taskgraph.storage.repository import open_engine


def without_constraint(path: Path, table: str, constraint: str) -> None:
    """Recreate ``table`` (and its indexes) in the SQLite file ``path`` without its named
    ``constraint``: SQLite cannot drop a constraint in place."""
    connection = sqlite3.connect(path)
    try:
        (sql,) = connection.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        # The clause runs to the next constraint or to the statement's closing parenthesis.
        clause = rf",\s*CONSTRAINT {constraint}\b.*?(?=,\s*CONSTRAINT\b|\s*\)\s*$)"
        relaxed, count = re.subn(clause, "", sql, flags=re.DOTALL)
        assert count == 1, sql
        indexes = [
            row[0]
            for row in connection.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                "AND sql IS NOT NULL",
                (table,),
            )
        ]
        connection.execute(f"DROP TABLE {table}")
        connection.execute(relaxed)
        for index in indexes:
            connection.execute(index)
        connection.commit()
    finally:
        connection.close()


def differences_in_words(url: str) -> list[str]:
    """Return :func:`migrate.schema_differences` of ``url``'s database, described."""
    engine = open_engine(url)
    try:
        with engine.connect() as connection:
            return [migrate.describe_difference(d) for d in migrate.schema_differences(connection)]
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("table", "constraint", "described"),
    [
        (
            "tg_studies",
            "uq_tg_studies_name",
            "unique constraint uq_tg_studies_name on tg_studies is missing",
        ),
        (
            "tg_task_set_members",
            "fk_tg_task_set_members_task_set_id_tg_task_sets",
            "foreign key (task_set_id) -> tg_task_sets on tg_task_set_members is missing",
        ),
    ],
    ids=["unique-constraint", "foreign-key"],
)
def test_check_names_a_dropped_unique_constraint_and_a_dropped_foreign_key_with_its_target(
    tmp_path: Path, table: str, constraint: str, described: str
) -> None:
    path = tmp_path / "drift.db"
    url = f"sqlite:///{path}"
    open_repository(url).close()
    without_constraint(path, table, constraint)
    assert differences_in_words(url) == [described]


def test_ensure_schema_returns_the_state_of_the_database_it_created(sqlite_url: str) -> None:
    engine = open_engine(sqlite_url)
    try:
        state = migrate.ensure_schema(engine, create=True)
    finally:
        engine.dispose()
    assert state == migrate.SchemaState(
        current=head_revision(), head=head_revision(), has_tables=True
    )


def test_db_check_on_an_empty_database_names_the_command_that_creates_it(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    url = f"sqlite:///{path}"
    result = CliRunner().invoke(app, ["db", "check", "--storage", url])
    assert result.exit_code == 1, result.output
    assert result.stderr == (
        f"error: {url} has no taskgraph schema yet: run `taskgraph db upgrade --storage {url}`\n"
    )
    assert path.stat().st_size == 0


def test_no_records_error_names_the_storage_to_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    url = f"sqlite:///{path}"
    with pytest.raises(NotFoundError) as raised:
        open_repository(url, create=False)
    assert str(raised.value) == (
        f"{url} holds no taskgraph records yet: run a study, or create the schema with "
        f"`taskgraph db upgrade --storage {url}`"
    )


def test_not_a_database_is_told_by_its_result_code_whatever_the_wording() -> None:
    # SQLite builds word SQLITE_NOTADB differently (older ones: "file is encrypted or is not
    # a database"); the result code says it whatever the text.
    orig = sqlite3.DatabaseError("file is encrypted or is not a database")
    orig.sqlite_errorcode = 26
    error = DatabaseError("SELECT 1", {}, orig)
    assert isinstance(migrate.open_error(error, "cannot open x.db"), NotFoundError)
