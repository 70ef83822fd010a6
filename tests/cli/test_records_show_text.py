"""``records show`` prints stored text literally, never as rich markup."""

from __future__ import annotations

from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.storage import open_repository
from taskgraph.trial import Cost, TrialConfig, TrialResult

REASON = "KeyError: [red]boom[/red] in [/data/x.csv] :thumbs_up:"
NOTE = "[bold]kept[/bold] [/x]"


def test_show_prints_markup_like_database_text_as_it_is(tmp_path):
    url = f"sqlite:///{tmp_path / 'records.db'}"
    config = TrialConfig(target="ner", seed=0, hyperparameters={"note": NOTE})
    with open_repository(url) as repo:
        run_id = repo.add_run_result(
            study="[m]",
            trial_number=0,
            config=config,
            result=TrialResult.failed(REASON, cost=Cost(seconds=1.0)),
        )
    done = CliRunner().invoke(app, ["records", "show", str(run_id), "--storage", url])
    assert done.exit_code == 0, done.output
    assert f"({REASON})" in done.stdout and "study '[m]'" in done.stdout
    assert NOTE in done.stdout  # inside the configuration table's cell


def test_show_says_why_a_run_has_no_objective(tmp_path):
    # a failed run printed "objective None"
    url = f"sqlite:///{tmp_path / 'records.db'}"
    with open_repository(url) as repo:
        run_id = repo.add_run_result(
            study="s",
            trial_number=0,
            config=TrialConfig(target="ner", seed=0),
            result=TrialResult.failed("OOM", cost=Cost(seconds=1.0)),
        )
    done = CliRunner().invoke(app, ["records", "show", str(run_id), "--storage", url])
    assert done.exit_code == 0, done.output
    assert "objective — (the run failed), cost 1.0 s" in done.stdout
    assert "None" not in done.stdout
