"""From Python, ``records_long_table`` and ``Repository.runs``/``export`` check their arguments
as the CLI does: a wrong type or an unknown name is one error naming it, never a silent empty
result or an AttributeError."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from taskgraph.app import records_long_table
from taskgraph.errors import ConfigError, StorageError
from taskgraph.storage import open_repository
from taskgraph.trial import Cost, TrialConfig, TrialResult, TrialStatus


@pytest.fixture
def url(tmp_path: Path) -> str:
    """Return a database of study 'tab': a+b (target a), b alone (target b)."""
    url = f"sqlite:///{tmp_path / 'records.db'}"
    with open_repository(url) as repo:
        for number, (target, aux) in enumerate([("a", ("b",)), ("b", ())]):
            config = TrialConfig(target=target, auxiliaries=aux, seed=0)
            result = TrialResult(
                status=TrialStatus.COMPLETE,
                scores={task: {"dev": {"f1": 0.5 + number / 10}} for task in config.task_set},
                objective=0.5,
                cost=Cost(seconds=1.0),
            )
            repo.add_run_result(study="tab", trial_number=number, config=config, result=result)
    return url


def test_long_table_takes_a_list_of_names_and_picks_runs_by_target(url: str) -> None:
    table = records_long_table(storage=url, task_set=["a", "b"], metric="f1")
    assert sorted(row.target for row in table) == ["a", "b"]
    by_target = records_long_table(storage=url, study="tab", target="b", metric="f1")
    assert [(row.target, sorted(row.task_set)) for row in by_target] == [("b", ["b"])]


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"task_set": 3}, ConfigError, "`task_set` must be task names"),
        ({"study": 3}, ConfigError, "`study` is not a name"),
        ({"study": "nope"}, StorageError, "no study 'nope' in sqlite:///"),
        ({"target": "nope"}, StorageError, "no run has target 'nope'"),
        ({"contains": "nope"}, ConfigError, "`contains` 'nope': no run has task 'nope'"),
        ({"metric": "nosuch"}, ConfigError, "`metric` 'nosuch': the matching runs have no"),
    ],
)
def test_long_table_names_a_bad_argument(
    url: str, arguments: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as raised:
        records_long_table(storage=url, **arguments)  # type: ignore[arg-type]
    assert message in str(raised.value)
    if arguments.get("study") == "nope":
        assert "known studies: tab" in str(raised.value)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"study": "nope"}, "`study` 'nope': no such study in sqlite:///"),
        ({"status": "complet"}, "`status` must be one of ['complete', 'pruned', 'failed']"),
        ({"limit": "3"}, "`limit` must be an integer, but got '3'"),
        ({"limit": 0}, "`limit` must be >= 1"),
        ({"study": 3}, "`study` is not a name (a string)"),
        ({"task_set": 3}, "`task_set` must be task names joined by"),
        ({"contains": " "}, "`contains` is empty"),
    ],
)
def test_repository_runs_refuses_bad_filters(
    url: str, arguments: dict[str, object], message: str
) -> None:
    with open_repository(url, create=False) as repo, pytest.raises(ConfigError) as raised:
        repo.runs(**arguments)  # type: ignore[arg-type]
    assert message in str(raised.value)


def test_repository_export_refuses_an_unknown_study_before_writing(url: str) -> None:
    buffer = io.StringIO()
    with open_repository(url, create=False) as repo:
        with pytest.raises(ConfigError, match="known studies: tab"):
            repo.export(buffer, format="csv", study="nope")
        with pytest.raises(ConfigError, match="`status` must be one of"):
            repo.export(buffer, format="csv", status="complet")
        assert buffer.getvalue() == ""
        assert len(repo.runs(study="tab", limit=1)) == 1
        assert repo.export(io.StringIO(), format="json", study="tab") == 2
