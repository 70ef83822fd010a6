"""``records list`` / ``records export``: an unknown or empty ``--study``/``--target`` is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--study", "nosuch", "no study 'nosuch' in sqlite:///"),
        ("--target", "nosuch", "no run has target 'nosuch' in sqlite:///"),
        ("--study", "", "`--study` is empty"),
        ("--target", "", "`--target` is empty"),
    ],
)
def test_unknown_or_empty_name_is_one_line_and_writes_nothing(
    one_run_url: str, tmp_path: Path, option: str, value: str, message: str
) -> None:
    known = {"--study": "known studies: demo", "--target": "known targets: ner"}[option]
    result = runner.invoke(app, ["records", "list", "--storage", one_run_url, option, value])
    assert result.exit_code != 0 and result.stdout == ""
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1
    if value:
        assert known in result.stderr
    output = tmp_path / "x.csv"
    result = runner.invoke(
        app, ["records", "export", "-o", str(output), "--storage", one_run_url, option, value]
    )
    assert result.exit_code != 0 and message in result.stderr
    assert not output.exists()


def test_known_names_still_list_and_export(one_run_url: str, tmp_path: Path) -> None:
    args = ["--storage", one_run_url, "--study", "demo", "--target", "ner"]
    result = runner.invoke(app, ["records", "list", *args, "--json"])
    assert result.exit_code == 0 and '"study": "demo"' in result.stdout
    output = tmp_path / "x.csv"
    result = runner.invoke(app, ["records", "export", "-o", str(output), *args])
    assert result.exit_code == 0 and len(output.read_text().splitlines()) == 3  # header + 2
