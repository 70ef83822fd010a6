"""A path of the wrong kind (a directory for a file, a file for a directory) or an empty one
is refused with one line that says so, instead of "not found" or the working directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.errors import ConfigError, DataNotFoundError, SpecError, StorageError
from taskgraph.spec import load_spec
from taskgraph.storage import parse_storage_url
from taskgraph.tasks.datadir import resolve_data_dir

runner = CliRunner()


def error_line(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code != 0 and result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    return result.stderr


def test_spec_path_that_is_a_directory_or_empty(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r": is a directory, not a spec file"):
        load_spec(tmp_path)
    with pytest.raises(SpecError, match="the spec path is empty"):
        load_spec("")
    assert f"{tmp_path}: is a directory" in error_line(["study", "validate", str(tmp_path)])


def test_data_path_that_is_a_file_or_empty(tmp_path: Path) -> None:
    spec = tmp_path / "demo.yaml"
    spec.write_text("name: demo\n", encoding="utf-8")
    with pytest.raises(DataNotFoundError, match="is a file, not a directory"):
        resolve_data_dir(spec)
    with pytest.raises(ConfigError, match="`--data` is empty"):
        resolve_data_dir("")
    assert "is a file, not a directory" in error_line(["tasks", "list", "--data", str(spec)])
    assert "`--data` is empty" in error_line(["tasks", "list", "--data", ""])


def test_sqlite_url_that_names_a_directory(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}"
    with pytest.raises(StorageError, match="is a directory, not a database file"):
        parse_storage_url(url)
    parse_storage_url(url, check_directory=False)  # a spec checked for another machine
    for command in (["records", "list"], ["db", "upgrade"], ["db", "current"]):
        assert "is a directory, not a database file" in error_line([*command, "--storage", url])
