"""What the mutation audit of the storage URLs found untested: an empty ``TASKGRAPH_STORAGE``
counts as unset, and a port alone before a SQLite path is refused like a host."""

from __future__ import annotations

import pytest

from taskgraph.errors import StorageError
from taskgraph.storage import parse_storage_url, resolve_storage_url
from taskgraph.storage.urls import storage_url_origin


@pytest.mark.parametrize("blank", ["", "   "])
def test_an_empty_storage_variable_counts_as_unset(
    monkeypatch: pytest.MonkeyPatch, blank: str
) -> None:
    monkeypatch.setenv("TASKGRAPH_STORAGE", blank)
    url = resolve_storage_url(spec_storage="sqlite:///spec.db")
    assert url == "sqlite:///spec.db" and storage_url_origin(url) == "spec"


def test_a_port_alone_before_a_sqlite_path_is_refused() -> None:
    # SQLAlchemy reads `:5` as a port with no host; SQLite would open ./x.db and say nothing.
    with pytest.raises(StorageError) as error:
        parse_storage_url("sqlite://:5/x.db")
    assert str(error.value) == (
        "storage URL 'sqlite://:5/x.db' has a user or port part, which SQLite ignores (the file "
        "would be 'x.db' in the working directory): use a file, e.g. 'sqlite:///taskgraph.db'"
    )
