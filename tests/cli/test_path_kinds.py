"""A path of the wrong kind (a directory for a file, a file for a directory) or an empty one
is refused with one line that says so, instead of "not found" or the working directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer.main
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


def _commands_with_argument(name: str) -> list[list[str]]:
    """Return every command (as its words) that takes a positional argument ``name``."""
    found: list[list[str]] = []

    def walk(command: Any, words: list[str]) -> None:
        if not hasattr(command, "list_commands"):  # typer vendors click: duck-typed
            if any(p.param_type_name == "argument" and p.name == name for p in command.params):
                found.append(words)
            return
        ctx = type(command).context_class(command)
        for sub in command.list_commands(ctx):
            walk(command.get_command(ctx, sub), [*words, sub])

    walk(typer.main.get_command(app), [])
    return found


def test_an_empty_spec_path_is_refused_not_read_as_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Typer read "" as Path(""), the working directory: `.: is a directory, not a spec file`.
    monkeypatch.chdir(tmp_path)
    commands = _commands_with_argument("spec")
    assert {"validate", "run", "screen", "submit"} <= {c[-1] for c in commands}, commands
    for command in commands:
        for empty in ("", "  "):
            line = error_line([*command, empty])
            assert "'spec': the path is empty: give the study's YAML file" in line, line
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "command", [["run", "spec.yaml"], ["screen", "spec.yaml"], ["resume", "s"]]
)
def test_an_empty_data_option_of_a_study_command_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    # Read as the working directory before: "data file ... does not exist: <cwd>/ud_en_ewt/...
    # (data directory <cwd>, from --data)", or a run on whatever lay there.
    monkeypatch.chdir(tmp_path)
    spec = "name: s\ntarget: ud_en_ewt_deps\ncandidates: [ud_en_ewt_upos]\n"
    (tmp_path / "spec.yaml").write_text(spec, encoding="utf-8")
    db = tmp_path / "r.db"
    line = error_line(["study", *command, "--data", "", "--storage", f"sqlite:///{db}"])
    assert "'--data': the path is empty: give the data directory" in line, line
    assert not db.exists()


def test_an_empty_results_folder_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_run_url: str
) -> None:
    # Read as the working directory before: "--write .: no README.md there".
    monkeypatch.chdir(tmp_path)
    line = error_line(["records", "table", "demo", "--storage", one_run_url, "--write", ""])
    assert "'--write': the path is empty: give a results folder" in line, line


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["affinity", "top", "--target", "t", "--table", ""], "'--table': the path is empty"),
        (
            ["affinity", "graph", "--format", "dot", "-o", ""],
            "'-o' / '--output': the path is empty",
        ),
        (["bench", "--table", ""], "'--table': the path is empty"),
        (
            ["bench", "--table", "t.csv", "--task-metadata", ""],
            "'--task-metadata': the path is empty",
        ),
    ],
    ids=["affinity-table", "graph-output", "bench-table", "bench-metadata"],
)
def test_an_empty_table_or_output_path_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], says: str
) -> None:
    # Read as the working directory before: "table file is a directory, not a CSV file: .",
    # "`--output` is a directory ...: .".
    monkeypatch.chdir(tmp_path)
    line = error_line(args)
    assert says in line, line
    assert not list(tmp_path.iterdir())


def test_data_path_that_is_a_file_or_empty(tmp_path: Path) -> None:
    spec = tmp_path / "demo.yaml"
    spec.write_text("name: demo\n", encoding="utf-8")
    with pytest.raises(DataNotFoundError, match="is a file, not a directory"):
        resolve_data_dir(spec)
    with pytest.raises(ConfigError, match=r"^`data_dir` is empty"):
        resolve_data_dir("")  # from Python: the keyword, not `--data`
    assert "is a file, not a directory" in error_line(["tasks", "list", "--data", str(spec)])
    # The shared `--data` option refuses "" as every other command does (typer read it as ".").
    for command in (["tasks", "list"], ["tasks", "show", "ud_en_ewt_upos"]):
        line = error_line([*command, "--data", ""])
        assert "'--data': the path is empty: give the data directory" in line, line


def test_sqlite_url_that_names_a_directory(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}"
    with pytest.raises(StorageError, match="is a directory, not a database file"):
        parse_storage_url(url)
    parse_storage_url(url, check_directory=False)  # a spec checked for another machine
    for command in (["records", "list"], ["db", "upgrade"], ["db", "current"]):
        assert "is a directory, not a database file" in error_line([*command, "--storage", url])
