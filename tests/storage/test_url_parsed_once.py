"""A storage URL's text is parsed once; its file system checks run at every call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import URL

import taskgraph.storage.urls as urls
from taskgraph.errors import StorageError
from taskgraph.storage import open_repository, parse_storage_url
from taskgraph.storage.locks import setup_lock


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Return the texts SQLAlchemy parsed for the storage helpers, in order."""
    seen: list[str] = []
    make_url = urls.make_url

    def counting(text: Any) -> URL:
        seen.append(str(text))
        return make_url(text)

    monkeypatch.setattr(urls, "make_url", counting)
    return seen


def test_records_optuna_and_the_setup_lock_share_one_parse(
    tmp_path: Path, parses: list[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'records.db'}"
    with open_repository(url) as repository:  # the records database
        assert repository is not None
    optuna_url = parse_storage_url(url).render_as_string(hide_password=False)
    with setup_lock(url):
        pass
    assert optuna_url == url
    assert parses == [url]


def test_the_file_system_is_checked_at_every_call(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    url = f"sqlite:///{folder / 'x.db'}"
    assert parse_storage_url(url).database == str(folder / "x.db")
    folder.rmdir()
    with pytest.raises(StorageError, match="does not exist"):
        parse_storage_url(url)
    assert parse_storage_url(url, check_directory=False).database == str(folder / "x.db")
    (folder / "x.db").mkdir(parents=True)
    with pytest.raises(StorageError, match="is a directory, not a database file"):
        parse_storage_url(url)


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("mysql://u:secret@h/db", "unsupported database 'mysql'"),
        ("sqlite:///:memory:", "in-memory SQLite database"),
        ("sqlite:///x.db?timeout=3", r"query parameters \(timeout\)"),
        ("postgresql://u:secret@h", "names no database"),
    ],
)
def test_a_refused_url_is_refused_every_time(url: str, refused: str) -> None:
    for _ in range(2):
        with pytest.raises(StorageError, match=refused) as error:
            parse_storage_url(url)
        assert "secret" not in str(error.value)
