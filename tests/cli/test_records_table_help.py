"""``records table --help``: the `--write` text keeps its file name and section markers."""

from __future__ import annotations

from typer.testing import CliRunner

from taskgraph.cli.app import app

runner = CliRunner()


def test_write_help_shows_the_markers() -> None:
    result = runner.invoke(app, ["records", "table", "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0
    # The help is a box wrapped at the width: unwrap it before reading the sentence.
    text = " ".join(result.stdout.replace("│", " ").split())
    assert "write STUDY.csv in the long format" in text
    assert "hold the lines <!-- results:STUDY --> and <!-- /results:STUDY -->." in text
