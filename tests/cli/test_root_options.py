"""The top level: `taskgraph --version`, and its own bad options as one `error:` line."""

from __future__ import annotations

from importlib.metadata import version

from typer.testing import CliRunner

from taskgraph.cli.app import app

runner = CliRunner()


def test_version_prints_the_installed_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"taskgraph {version('taskgraph')}\n"


def test_unknown_top_level_option_is_one_line() -> None:
    result = runner.invoke(app, ["--bogus"])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "No such option: --bogus" in result.stderr and "taskgraph --help" in result.stderr
    assert "╭" not in result.stderr


def test_a_subcommand_error_keeps_its_line() -> None:
    result = runner.invoke(app, ["records", "--bogus"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "taskgraph records: No such option: --bogus" in result.stderr
