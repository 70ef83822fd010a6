"""A relative SQLite file in a spec's ``storage:`` is beside the spec, like its other paths."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.spec import load_spec
from taskgraph.storage import open_repository

runner = CliRunner()


def test_study_run_from_another_folder_writes_the_specs_database_beside_the_spec(
    tmp_path: Path, tabular_spec: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TASKGRAPH_STORAGE", raising=False)
    spec = tabular_spec(trials=2, storage="sqlite:///study.db")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert load_spec(spec).storage == f"sqlite:///{spec.parent / 'study.db'}"
    done = runner.invoke(app, ["study", "run", str(spec), "--quiet"])
    assert done.exit_code == 0, done.stderr
    assert (spec.parent / "study.db").is_file() and not (elsewhere / "study.db").exists()
    with open_repository(f"sqlite:///{spec.parent / 'study.db'}", create=False) as repo:
        assert len(repo.runs(study="bench")) == 2


def test_storage_option_stays_relative_to_the_working_directory(
    tmp_path: Path, tabular_spec: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TASKGRAPH_STORAGE", raising=False)
    spec = tabular_spec(trials=1, storage="sqlite:///study.db")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    done = runner.invoke(app, ["study", "run", str(spec), "--storage", "sqlite:///here.db"])
    assert done.exit_code == 0, done.stderr
    assert (elsewhere / "here.db").is_file() and not (spec.parent / "study.db").exists()


@pytest.mark.parametrize(
    "storage",
    ["sqlite:////abs/olute.db", "sqlite:///~/home.db", "postgresql://u@db/tg", ""],
)
def test_other_storage_urls_are_left_as_written(tmp_path: Path, storage: str) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(f"name: s\ntarget: a\ncandidates: [b]\nstorage: '{storage}'\n")
    assert load_spec(spec).storage == storage


def test_a_query_string_keeps_the_file_beside_the_spec(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("name: s\ntarget: a\ncandidates: [b]\nstorage: 'sqlite:///x.db?timeout=30'\n")
    assert load_spec(spec).storage == f"sqlite:///{(tmp_path / 'x.db').resolve()}?timeout=30"


@pytest.mark.parametrize(
    ("storage", "expected"),
    [
        ("sqlite+pysqlite:///sub/x.db", "sqlite+pysqlite:///{base}/sub/x.db"),
        ("sqlite:///my%20db.db?timeout=30", "sqlite:///{base}/my%20db.db?timeout=30"),
        ("  sqlite:///x.db  ", "sqlite:///{base}/x.db"),
        ("sqlite://host/x.db", "sqlite://host/x.db"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("sqlite:///file:x.db?mode=ro", "sqlite:///file:x.db?mode=ro"),
        ("sqlite://", "sqlite://"),
        ("not a url", "not a url"),
    ],
)
def test_the_storage_helper_rebases_only_a_relative_sqlite_file(
    tmp_path: Path, storage: str, expected: str
) -> None:
    from taskgraph.storage.urls import sqlite_url_relative_to

    assert sqlite_url_relative_to(storage, tmp_path) == expected.format(base=tmp_path.resolve())
