"""From Python, a ``storage`` given explicitly is named as given by ``storage``, even when an
earlier call resolved the same text as the default or from ``TASKGRAPH_STORAGE``: where a URL
came from travels with the resolved value, not with its text (it was looked up by text, and
the explicit call was called "the default")."""

from __future__ import annotations

import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import taskgraph
from taskgraph.app.arguments import storage_url
from taskgraph.errors import NotFoundError
from taskgraph.storage.urls import DEFAULT_STORAGE_URL, resolve_storage_url, storage_url_origin

GIVEN = "(sqlite:///taskgraph.db, given by storage): run a study first, or pass the storage of"

CALLS: dict[str, Callable[..., Any]] = {
    "study_summary": lambda **storage: taskgraph.study_summary("x", **storage),
    "study_status": lambda **storage: taskgraph.study_status("x", **storage),
    "list_studies": lambda **storage: taskgraph.list_studies(**storage),
}


@pytest.fixture(autouse=True)
def _empty_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TASKGRAPH_STORAGE", raising=False)


def _message(call: Callable[..., Any], **storage: str) -> str:
    with pytest.raises(NotFoundError) as caught:
        call(**storage)
    return str(caught.value)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_the_default_then_the_same_url_given_explicitly(name: str, tmp_path: Path) -> None:
    call = CALLS[name]
    assert "(sqlite:///taskgraph.db, the default): run a study first" in _message(call)
    explicit = _message(call, storage=DEFAULT_STORAGE_URL)
    assert GIVEN in explicit and "the default" not in explicit
    assert "(sqlite:///taskgraph.db, the default)" in _message(call)  # and back
    assert not (tmp_path / "taskgraph.db").exists()


def test_the_variable_then_the_same_url_given_explicitly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASKGRAPH_STORAGE", DEFAULT_STORAGE_URL)
    assert "(sqlite:///taskgraph.db, from TASKGRAPH_STORAGE)" in _message(CALLS["study_summary"])
    explicit = _message(CALLS["study_summary"], storage=DEFAULT_STORAGE_URL)
    assert GIVEN in explicit and "TASKGRAPH_STORAGE" not in explicit
    assert not (tmp_path / "taskgraph.db").exists()


def test_only_the_resolved_value_knows_its_origin() -> None:
    resolved = resolve_storage_url()
    assert resolved == DEFAULT_STORAGE_URL and storage_url_origin(resolved) == "default"
    # The same text as a plain string was never chosen by resolve_storage_url.
    assert storage_url_origin(DEFAULT_STORAGE_URL) is None
    assert storage_url_origin(str(resolved)) is None
    assert storage_url_origin(storage_url(DEFAULT_STORAGE_URL)) == "option"
    assert storage_url_origin(storage_url(resolved)) == "default"  # kept, not re-resolved
    assert storage_url_origin(resolve_storage_url(spec_storage="sqlite:///s.db")) == "spec"


def test_a_pickled_resolved_url_keeps_its_origin_in_another_process() -> None:
    # A study's engine (and its URL) goes to worker processes pickled; a fresh process has
    # resolved nothing itself.
    resolved = resolve_storage_url(spec_storage="sqlite:///s.db")
    read = (
        "import pickle, sys; from taskgraph.storage.urls import storage_url_origin; "
        "urls = [pickle.loads(each) for each in pickle.loads(sys.stdin.buffer.read())]; "
        "print(*(f'{url} {storage_url_origin(url)}' for url in urls), sep='\\n')"
    )
    protocols = range(pickle.HIGHEST_PROTOCOL + 1)
    shown = subprocess.run(
        [sys.executable, "-c", read],
        input=pickle.dumps([pickle.dumps(resolved, protocol) for protocol in protocols]),
        capture_output=True,
        check=True,
    )
    assert shown.stdout.decode().splitlines() == ["sqlite:///s.db spec"] * len(protocols)
