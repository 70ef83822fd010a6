"""Plain-text lines printed into a pipe are never wrapped: a long URL stays one token."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.storage import open_repository
from taskgraph.tasks import TaskDef, get_task
from taskgraph.testing import complete_result
from taskgraph.trial import TrialConfig

runner = CliRunner()


def line_with(text: str, output: str) -> str:
    """Return the one line of ``output`` holding ``text`` (fails when it was wrapped)."""
    lines = [line for line in output.splitlines() if text in line]
    assert len(lines) == 1, output
    return lines[0]


@pytest.fixture
def long_url(tmp_path: Path) -> str:
    """Return a SQLite URL far past 80 columns (the database does not exist yet)."""
    folder = tmp_path / ("records-" * 12)
    folder.mkdir()
    return f"sqlite:///{folder / 'taskgraph.db'}"


def test_db_lines_keep_the_url_whole(long_url: str) -> None:
    result = runner.invoke(app, ["db", "upgrade", "--storage", long_url])
    assert result.exit_code == 0
    assert line_with(long_url, result.stdout).startswith(f"upgraded {long_url} from revision")
    result = runner.invoke(app, ["db", "upgrade", "--storage", long_url])
    assert line_with(long_url, result.stdout).endswith("is already at revision 0005")
    result = runner.invoke(app, ["db", "current", "--storage", long_url])
    assert line_with(long_url, result.stdout).endswith("head 0005 (at head)")
    result = runner.invoke(app, ["db", "check", "--storage", long_url])
    assert line_with(long_url, result.stdout).endswith("and matches the models")


def test_records_show_first_lines_are_whole(long_url: str) -> None:
    study = "a-study-with-a-name-long-enough-to-pass-eighty-columns-on-its-own"
    config = TrialConfig(target="ner", auxiliaries=("pos", "chunk"), seed=0)
    with open_repository(long_url) as repo:
        run_id = repo.add_run_result(
            study=study, trial_number=0, config=config, result=complete_result(config)
        )
    shown = runner.invoke(app, ["records", "show", str(run_id), "--storage", long_url])
    assert shown.exit_code == 0
    assert line_with(study, shown.stdout).endswith("task set chunk+ner+pos")
    assert line_with("status complete", shown.stdout).endswith(")")


def test_tasks_show_header_is_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    description = "a description of " + "considerable-length " * 6 + "that ends here"

    def long_task(name: str) -> TaskDef:
        return dataclasses.replace(get_task(name), description=description)

    monkeypatch.setattr("taskgraph.cli.tasks.get_task", long_task)
    shown = runner.invoke(app, ["tasks", "show", "synth_target"])
    assert shown.exit_code == 0, shown.output
    assert line_with("synth_target", shown.stdout) == f"synth_target  {description}"
