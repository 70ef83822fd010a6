"""The Python API as a notebook uses it: arguments of the wrong type, a runner's table path,
what the returned objects show."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import taskgraph
from taskgraph.errors import ConfigError, StorageError
from taskgraph.testing import write_rising_table

TASKS = ("a", "b", "c")


@pytest.fixture
def table(tmp_path: Path) -> Path:
    """Every subset of three tasks, on val; each task's score rises with its partners."""
    return write_rising_table(tmp_path / "results.csv", TASKS, max_size=3)


@pytest.fixture
def studied(table: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A finished tabular study on ``table``, run with the table path relative to the cwd."""
    url = f"sqlite:///{tmp_path / 'api.db'}"
    monkeypatch.chdir(tmp_path)
    spec = taskgraph.load_study_spec(Path(__file__).parents[2] / "searchspaces/demo.yaml")
    summary = taskgraph.run_study(
        spec.model_copy(update={"name": "api", "target": "a", "candidates": ("b", "c")}),
        storage=url,
        budget__trials=3,
        runner={"name": "tabular", "table": table.name},
    )
    assert summary.progress.n_done == 3
    assert repr(summary) == "RunSummary(study='api', done=3/3, reason='budget')"
    assert summary.to_dict()["stopped_because"] == "budget"
    json.dumps(summary.to_dict(), allow_nan=False)
    return url


def test_a_runner_table_given_relative_is_stored_absolute(
    studied: str, table: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    # resumed from another directory, the stored table path still leads to the table
    summary = taskgraph.resume_study("api", storage=studied, trials=4)
    assert summary.progress.n_done == 4


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda url: taskgraph.study_summary(None, storage=url), "`name` must be a non-empty"),
        (lambda url: taskgraph.study_status("", storage=url), "`name` must be a non-empty"),
        (lambda url: taskgraph.resume_study(None, storage=url), "`name` must be a non-empty"),
        (lambda url: taskgraph.results_table(None, storage=url), "`study` must be a non-empty"),
        (lambda url: taskgraph.study_summary("api", storage=url, top=0), "`top` must be"),
        (lambda url: taskgraph.recommend("a", storage=url, k="3"), "`k` must be an integer"),
        (lambda url: taskgraph.recommend("a", storage=url, k=2.5), "`k` must be an integer"),
        (lambda url: taskgraph.groupings("x", storage=url), "`budget` must be a finite number"),
        (lambda url: taskgraph.affinity_graph(storage=url, min_evidence=-1), "`min_evidence`"),
        (
            lambda url: taskgraph.recommend("a", storage=Path(url)),
            "`storage` must be a database URL",
        ),
        (lambda url: taskgraph.run_study(123, storage=url), "`spec_or_path` must be"),
        (lambda url: taskgraph.resume_study("api", storage=url, runner=5), "`runner` must be"),
    ],
)
def test_wrong_arguments_are_config_errors_naming_the_keyword(
    studied: str, call: object, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        call(studied)  # type: ignore[operator]


def test_a_string_of_names_is_read_as_names(studied: str, table: Path) -> None:
    grouping, _, _ = taskgraph.groupings(2, tasks="a, b", table=table)
    assert sorted(grouping.assignment) == ["a", "b"]
    by_list = taskgraph.results_table("api", storage=studied, metrics=["accuracy"], split="dev")
    by_string = taskgraph.results_table("api", storage=studied, metrics="accuracy", split="dev")
    assert by_string.to_markdown() == by_list.to_markdown()
    assert repr(by_string).startswith("ResultsTable(study='api', target='a', split='dev'")
    with pytest.raises(StorageError, match="no study 'nope'"):
        taskgraph.results_table("nope", storage=studied)


def test_a_name_given_twice_is_kept_once_in_its_first_place() -> None:
    # `bench --samplers tpe,tpe` ran the same search twice; `--metrics a,a` printed two columns.
    from taskgraph.app.arguments import names

    assert names("tpe, random,tpe", "samplers") == ["tpe", "random"]
    assert names(["b", "a", "b", " a "], "tasks") == ["b", "a"]
    assert names(" , ", "metrics") == [] and names(None, "metrics") is None
