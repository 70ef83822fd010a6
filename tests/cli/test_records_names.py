"""``records list`` / ``records export``: an unknown or empty ``--study``/``--target`` is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.storage import open_repository
from taskgraph.trial import Cost, TrialConfig, TrialResult, TrialStatus

runner = CliRunner()


@pytest.fixture
def records_url(tmp_path: Path) -> str:
    """Return a SQLite database with one complete run of study 'demo' (target ner)."""
    url = f"sqlite:///{tmp_path / 'records.db'}"
    config = TrialConfig(target="ner", auxiliaries=("pos",), seed=0)
    result = TrialResult(
        status=TrialStatus.COMPLETE,
        scores={t: {"dev": {"f1": 0.5}} for t in config.task_set},
        objective=0.5,
        cost=Cost(seconds=1.0),
    )
    with open_repository(url) as repo:
        repo.add_run_result(study="demo", trial_number=0, config=config, result=result)
    return url


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
    records_url: str, tmp_path: Path, option: str, value: str, message: str
) -> None:
    known = {"--study": "known studies: demo", "--target": "known targets: ner"}[option]
    result = runner.invoke(app, ["records", "list", "--storage", records_url, option, value])
    assert result.exit_code != 0 and result.stdout == ""
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1
    if value:
        assert known in result.stderr
    output = tmp_path / "x.csv"
    result = runner.invoke(
        app, ["records", "export", "-o", str(output), "--storage", records_url, option, value]
    )
    assert result.exit_code != 0 and message in result.stderr
    assert not output.exists()


def test_known_names_still_list_and_export(records_url: str, tmp_path: Path) -> None:
    args = ["--storage", records_url, "--study", "demo", "--target", "ner"]
    result = runner.invoke(app, ["records", "list", *args, "--json"])
    assert result.exit_code == 0 and '"study": "demo"' in result.stdout
    output = tmp_path / "x.csv"
    result = runner.invoke(app, ["records", "export", "-o", str(output), *args])
    assert result.exit_code == 0 and len(output.read_text().splitlines()) == 3  # header + 2
