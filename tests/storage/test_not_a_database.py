"""A file that is no SQLite database is the user's (exit 2); a lock or I/O failure is not."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import DatabaseError, OperationalError

from taskgraph.errors import NotFoundError
from taskgraph.storage import open_repository


def test_a_text_file_is_refused_as_the_users_file(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    path.write_text("hello\n", encoding="utf-8")
    with pytest.raises(NotFoundError, match="file is not a database") as raised:
        open_repository(f"sqlite:///{path}")
    assert raised.value.exit_code == 2
    assert path.read_text(encoding="utf-8") == "hello\n"  # nothing written over it


@pytest.mark.parametrize(
    ("orig", "user"),
    [
        (sqlite3.DatabaseError("file is not a database"), True),
        (sqlite3.OperationalError("database is locked"), False),
        (sqlite3.OperationalError("unable to open database file"), False),
        (sqlite3.OperationalError("disk I/O error"), False),
    ],
)
def test_only_not_a_database_is_told_apart(orig: sqlite3.Error, user: bool) -> None:
    from taskgraph.storage.migrate import _not_a_database

    kind = DatabaseError if type(orig) is sqlite3.DatabaseError else OperationalError
    assert _not_a_database(kind("SELECT 1", {}, orig)) is user


@pytest.mark.postgres
def test_a_database_name_the_server_does_not_have_is_the_users(postgres_server: Any) -> None:
    """A reachable PostgreSQL server without the URL's database: what the user gave is wrong
    (exit 2, as a missing SQLite file is)."""
    from sqlalchemy.engine import make_url

    url = make_url(postgres_server.url)
    missing = url.set(database="taskgraph_no_such_db").render_as_string(hide_password=False)
    with pytest.raises(
        NotFoundError, match='database "taskgraph_no_such_db" does not exist'
    ) as raised:
        open_repository(missing)
    assert raised.value.exit_code == 2


@pytest.mark.parametrize("command", [["current"], ["check"], ["upgrade"]])
def test_db_commands_on_a_file_that_is_no_database_exit_2(
    tmp_path: Path, command: list[str]
) -> None:
    """`taskgraph db current|check|upgrade` follow the exit-status rule as `records list`
    does: a file that is not a database is what the user gave (2), and it is left as it was."""
    from typer.testing import CliRunner

    from taskgraph.cli.app import app

    path = tmp_path / "n.db"
    path.write_text("hello\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["db", *command, "--storage", f"sqlite:///{path}"])
    assert result.exit_code == 2, result.output
    assert "file is not a database" in result.output
    assert path.read_text(encoding="utf-8") == "hello\n"


def test_db_current_on_another_applications_sqlite_file_names_its_tables(
    tmp_path: Path,
) -> None:
    """A SQLite database with tables but none of taskgraph's is not "empty": `db current`
    names its tables (exit 0: taskgraph's prefixed tables may share a database), and adds
    nothing to it; a 0-byte file is still empty and a missing one is not created."""
    from typer.testing import CliRunner

    from taskgraph.cli.app import app

    path = tmp_path / "notes.db"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE notes (id INTEGER, body TEXT)")
    connection.commit()
    connection.close()
    before = path.read_bytes()
    url = f"sqlite:///{path}"
    result = CliRunner().invoke(app, ["db", "current", "--storage", url])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(
        "(no tg_* tables, 1 other table: notes; is it the database you meant?  "
        "`taskgraph db upgrade` adds taskgraph's tables beside them)"
    ), result.output
    result = CliRunner().invoke(app, ["db", "current", "--storage", url, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["other_tables"] == ["notes"]
    assert path.read_bytes() == before

    empty = tmp_path / "empty.db"
    empty.touch()
    result = CliRunner().invoke(app, ["db", "current", "--storage", f"sqlite:///{empty}"])
    assert result.exit_code == 0, result.output
    assert "(empty: run `taskgraph db upgrade` or a study to create it)" in result.output
    assert empty.stat().st_size == 0

    missing = tmp_path / "missing.db"
    result = CliRunner().invoke(app, ["db", "current", "--storage", f"sqlite:///{missing}"])
    assert result.exit_code == 2, result.output
    assert "no records database at" in result.output
    assert not missing.exists()
