"""A file that is no SQLite database is the user's (exit 2); a lock or I/O failure is not."""

from __future__ import annotations

import sqlite3
from pathlib import Path

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
