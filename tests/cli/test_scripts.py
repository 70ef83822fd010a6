"""``taskgraph.cli.scripts``: what the scripts in benchmarks/ share for bad arguments."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from taskgraph.cli.scripts import directory, nonnegative_int, positive_int, run_script
from taskgraph.errors import ConfigError


def test_counts_and_seeds_are_checked_as_argparse_types(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("--seeds", type=positive_int, default=3)
    parser.add_argument("--first-seed", type=nonnegative_int, default=0)
    assert parser.parse_args(["--seeds", "2", "--first-seed", "0"]).seeds == 2
    for argv, message in (
        (["--seeds", "0"], "argument --seeds: must be >= 1, got 0"),
        (["--seeds", "x"], "argument --seeds: expected an integer, got 'x'"),
        (["--first-seed", "-1"], "argument --first-seed: must be >= 0, got -1"),
    ):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
        assert capsys.readouterr().err.strip().endswith(f"error: {message}")


def test_a_data_directory_must_exist(tmp_path: Path) -> None:
    assert directory(str(tmp_path)) == str(tmp_path)
    with pytest.raises(argparse.ArgumentTypeError, match="no directory"):
        directory(str(tmp_path / "missing"))


def test_a_taskgraph_error_in_a_script_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    def main() -> None:
        raise ConfigError("`budget` must be > 0, but got -1")

    assert run_script(main) == 2
    assert capsys.readouterr().err == "error: `budget` must be > 0, but got -1\n"
    assert run_script(lambda: 3) == 3 and run_script(lambda: {"a": 1}) == 0


def test_a_message_written_when_printed_is_worded_for_the_command_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # An unreachable database's error writes its resume hint when it is printed: a script
    # prints it as the taskgraph command does, naming the command, not the Python call.
    from taskgraph.storage.retry import DatabaseUnavailableError

    def main() -> None:
        raise DatabaseUnavailableError("database gone", study="s", url="sqlite:///x.db")

    assert run_script(main) == 2
    line = capsys.readouterr().err
    assert "`taskgraph study resume s --storage sqlite:///x.db`" in line, line
