"""Storage URLs: precedence, validation with one clear line, passwords masked everywhere."""

from __future__ import annotations

import pytest

from taskgraph.errors import StorageError
from taskgraph.storage import (
    DEFAULT_STORAGE_URL,
    mask_url,
    open_repository,
    parse_storage_url,
    resolve_storage_url,
)


def test_precedence_option_then_environment_then_spec_then_default(monkeypatch):
    monkeypatch.delenv("TASKGRAPH_STORAGE", raising=False)
    assert resolve_storage_url() == DEFAULT_STORAGE_URL == "sqlite:///taskgraph.db"
    assert resolve_storage_url(spec_storage="sqlite:///spec.db") == "sqlite:///spec.db"
    monkeypatch.setenv("TASKGRAPH_STORAGE", "sqlite:///env.db")
    assert resolve_storage_url(spec_storage="sqlite:///spec.db") == "sqlite:///env.db"
    assert (
        resolve_storage_url("sqlite:///opt.db", spec_storage="sqlite:///spec.db")
        == "sqlite:///opt.db"
    )


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (
            "postgresql+psycopg://alice:s3cret@db:5432/tg",
            "postgresql+psycopg://alice:***@db:5432/tg",
        ),
        ("postgresql://alice@db/tg", "postgresql://alice@db/tg"),
        ("sqlite:///taskgraph.db", "sqlite:///taskgraph.db"),
        ("not a url://bob:hunter2@host", "not a url://bob:***@host"),
    ],
)
def test_mask_url_hides_passwords(url, masked):
    assert mask_url(url) == masked


def test_postgres_aliases_use_psycopg3():
    assert parse_storage_url("postgresql://u:p@h/db").drivername == "postgresql+psycopg"
    assert parse_storage_url("postgres://u:p@h/db").drivername == "postgresql+psycopg"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("::nonsense", "is malformed"),
        ("mysql://root:topsecret@host/db", "unsupported database 'mysql'"),
        ("postgresql+psycopg2://u:topsecret@host/db", "uses driver 'psycopg2'"),
        ("postgresql+psycopg://u:topsecret@host", "names no database"),
        ("sqlite:////no/such/directory/x.db", "directory '/no/such/directory' does not exist"),
    ],
)
def test_bad_urls_are_one_line_storage_errors_without_the_password(url, message):
    with pytest.raises(StorageError, match=message) as error:
        open_repository(url)
    text = str(error.value)
    assert "topsecret" not in text and "\n" not in text


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("sqlite://demo.db", "did you mean 'sqlite:///demo.db' (three slashes)?"),
        ("sqlite+pysqlite://demo.db", "did you mean 'sqlite+pysqlite:///demo.db' (three slashes)?"),
        ("sqlite://", "use a file, e.g. 'sqlite:///taskgraph.db'"),
        ("sqlite://alice:topsecret@host", "use a file, e.g. 'sqlite:///taskgraph.db'"),
    ],
)
def test_two_slashes_before_a_file_name_suggest_three(url, hint):
    # `sqlite://demo.db` puts the name in the host part: SQLite opened an in-memory database,
    # refused with no word of the missing slash.
    with pytest.raises(StorageError) as error:
        parse_storage_url(url)
    text = str(error.value)
    assert "is an in-memory SQLite database, which the study's connections cannot share: " in text
    assert text.endswith(hint) and "topsecret" not in text


def test_unreachable_server_is_one_masked_line():
    with pytest.raises(StorageError) as error:
        open_repository("postgresql+psycopg://alice:topsecret@127.0.0.1:1/db")
    text = str(error.value)
    assert text.startswith(
        "cannot open the records database postgresql+psycopg://alice:***@127.0.0.1:1/db"
    )
    assert "topsecret" not in text and "\n" not in text


def test_a_file_that_is_not_a_database_is_a_storage_error(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("just text, not SQLite\n" * 100)
    with pytest.raises(StorageError, match="file is not a database"):
        open_repository(f"sqlite:///{path}")
    assert path.read_text().startswith("just text")


def test_a_host_part_before_a_sqlite_path_is_refused(tmp_path, monkeypatch):
    # `sqlite://demo/x.db`: SQLAlchemy drops the host, so the records went to ./x.db in silence.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").mkdir()
    with pytest.raises(StorageError) as error:
        parse_storage_url("sqlite://demo/x.db")
    assert str(error.value) == (
        "storage URL 'sqlite://demo/x.db' has a host part, which SQLite ignores (the file would "
        "be 'x.db' in the working directory): did you mean 'sqlite:///demo/x.db' (three "
        "slashes)?"
    )
    assert list(tmp_path.iterdir()) == [tmp_path / "demo"]  # nothing created
    parse_storage_url("sqlite:///demo/x.db")  # the three slashes are accepted


@pytest.mark.parametrize(
    ("url", "message"),
    [
        # a user is no host, and its password is masked
        ("sqlite://u:pw@/x.db", "storage URL 'sqlite://u:***@/x.db' has a user or port part, "
         "which SQLite ignores (the file would be 'x.db' in the working directory): use a file, "
         "e.g. 'sqlite:///taskgraph.db'"),
        # an absolute path after a host is not in the working directory, nor is a third slash
        # the answer
        ("sqlite://demo//tmp/x.db", "storage URL 'sqlite://demo//tmp/x.db' has a host part, which "
         "SQLite ignores (the file would be '/tmp/x.db'): use a file, e.g. "
         "'sqlite:///taskgraph.db'"),
        # the hint leaves out query parameters, which are refused on their own
        ("sqlite://demo.db?mode=ro", "storage URL 'sqlite://demo.db?mode=ro' is an in-memory "
         "SQLite database, which the study's connections cannot share: did you mean "
         "'sqlite:///demo.db' (three slashes)?"),
    ],
)  # fmt: skip
def test_the_host_part_messages_say_what_the_url_holds(url: str, message: str) -> None:
    with pytest.raises(StorageError) as error:
        parse_storage_url(url)
    assert str(error.value) == message
