"""Behaviour of the long table, results writing, record filters and spec overrides that the
other tests left unpinned (each assertion is one the code documents)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.app import records_long_table
from taskgraph.app.results.record_filters import check_record_filters
from taskgraph.app.results.table import ResultsTable
from taskgraph.app.results.writing import write_results
from taskgraph.app.studies.specs import checked_spec
from taskgraph.cli.app import app
from taskgraph.spec import spec_from_dict
from taskgraph.storage import open_repository
from taskgraph.storage.repository import Repository
from taskgraph.trial import Cost, TrialConfig, TrialResult, TrialStatus

runner = CliRunner()


def _add(repo: Repository, number: int, config: TrialConfig, metric: str, value: float) -> None:
    scores = {task: {"dev": {metric: value}} for task in config.task_set}
    result = TrialResult(
        status=TrialStatus.COMPLETE, scores=scores, objective=value, cost=Cost(seconds=1.0)
    )
    repo.add_run_result(study="s", trial_number=number, config=config, result=result)


def test_a_long_table_of_a_loss_is_lower_is_better(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'loss.db'}"
    with open_repository(url) as repo:
        _add(repo, 0, TrialConfig(target="ner"), "loss", 0.4)
        _add(repo, 1, TrialConfig(target="ner", auxiliaries=("pos",)), "loss", 0.3)
    table = records_long_table(storage=url, metric="loss")
    assert table.rows and all(row.higher_is_better is False for row in table.rows)
    out = tmp_path / "long.csv"
    done = runner.invoke(
        app, ["records", "export", "-o", str(out), "--storage", url, "-f", "long",
              "--metric", "loss"],
    )  # fmt: skip
    assert done.exit_code == 0, done.stderr
    rows = list(csv.DictReader(out.open()))
    assert rows and {r["higher_is_better"] for r in rows} == {"0"}


def test_a_long_table_cell_averages_each_seed_first(tmp_path: Path) -> None:
    # seed 0 trained twice (0.8 and 0.6: one measurement, 0.7), seed 1 once (0.9): 0.8, not
    # the plain mean of the three runs (0.7667).
    url = f"sqlite:///{tmp_path / 'seeds.db'}"
    with open_repository(url) as repo:
        for number, (seed, value) in enumerate([(0, 0.8), (0, 0.6), (1, 0.9)]):
            _add(repo, number, TrialConfig(target="ner", seed=seed), "f1", value)
    table = records_long_table(storage=url, metric="f1")
    assert [(r.target, r.split) for r in table.rows] == [("ner", "val")]
    assert table.rows[0].value == pytest.approx(0.8)


def test_results_without_long_rows_write_only_the_readme(tmp_path: Path) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    readme = folder / "README.md"
    readme.write_text("# R\n\n<!-- results:s -->\nold\n<!-- /results:s -->\n")
    table = ResultsTable(
        study="s", target="ner", objective_metric="f1", metrics=("f1",), split="test", rows=()
    )
    assert table.long_rows() == []
    assert write_results(table, folder) == [readme]
    assert not (folder / "s.csv").exists()
    assert "old" not in readme.read_text()


def test_a_model_config_prefix_in_capitals_is_known(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hash.db'}"
    with open_repository(url) as repo:
        _add(repo, 0, TrialConfig(target="ner", max_length=64), "f1", 0.5)
        _add(repo, 1, TrialConfig(target="ner", auxiliaries=("pos",), max_length=128), "f1", 0.6)
        alone = next(run for run in repo.runs() if tuple(run.task_set) == ("ner",))
        prefix = alone.model_config_hash[:16].upper()
        assert prefix != prefix.lower()  # a letter in it, so the case matters
        # Known names that match nothing together are no error: no run of that hash has pos.
        check_record_filters(repo, model_config=prefix, contains="pos")


def test_runner_fields_on_a_spec_object_switch_its_runner_as_runner_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from taskgraph.testing import write_rising_table

    monkeypatch.chdir(tmp_path)
    write_rising_table(tmp_path / "t.csv", ["a", "b", "c"], max_size=3)
    spec = spec_from_dict(
        {
            "name": "bench",
            "target": "a",
            "candidates": ["b", "c"],
            "runner": {"name": "local", "threads": 2, "checkpoints": False},
            "budget": {"trials": 1},
        }
    )
    by_fields, _ = checked_spec(spec, {"runner__name": "tabular", "runner__table": "t.csv"})
    by_runner, _ = checked_spec(spec, {"runner": {"name": "tabular", "table": "t.csv"}})
    assert by_fields == by_runner
    assert by_fields.runner.model_dump() == {
        "name": "tabular",
        "table": str((tmp_path / "t.csv").resolve()),
        "split": "val",
    }
