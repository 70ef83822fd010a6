"""The Python API's promises, from an audit: arguments of the wrong type are a ConfigError naming
the keyword (before anything is written), the caller's objects are left as they were, a spec
object's table is stored absolute, and the API returns what the commands print."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import taskgraph
from taskgraph.errors import ConfigError, SpecError
from taskgraph.spec import StudySpec, spec_from_dict
from taskgraph.testing import write_rising_table

TASKS = ("a", "b", "c", "d", "e")
DEMO = Path(__file__).parents[2] / "searchspaces/demo.yaml"


@pytest.fixture
def table(tmp_path: Path) -> Path:
    """Every task alone and every pair, on val; each task's score rises with a partner."""
    return write_rising_table(tmp_path / "table.csv", TASKS, max_size=2)


def refused_writing_nothing(
    call: Callable[[str, Path], object],
    table: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    message: str,
) -> None:
    """Assert that ``call(url, table)`` is a ConfigError matching ``message`` and that the
    records database at ``url`` was not created."""
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'records.db'}"
    with pytest.raises(ConfigError, match=message):
        call(url, table)
    assert not (tmp_path / "records.db").exists()


def tabular_spec(name: str = "fromdict", **runner: Any) -> StudySpec:
    """A tabular study of ``a`` whose runner reads ``table.csv``, relative to nothing yet."""
    return spec_from_dict(
        {
            "name": name,
            "target": "a",
            "candidates": ["b", "c", "d", "e"],
            "objective": {"metric": "score", "split": "dev", "direction": "maximize"},
            "budget": {"trials": 2},
            "runner": {"name": "tabular", "table": "table.csv", "split": "val", **runner},
        }
    )


def stored_table(url: str, study: str) -> str:
    from taskgraph.storage import open_repository

    with open_repository(url, create=False) as repo:
        return str(repo.study_specs()[study]["runner"]["table"])


@pytest.mark.parametrize("override", [{}, {"runner__table": "table.csv"}])
def test_a_spec_objects_relative_table_is_read_from_the_cwd_and_stored_absolute(
    table: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, override: dict[str, str]
) -> None:
    url = f"sqlite:///{tmp_path / 'records.db'}"
    monkeypatch.chdir(tmp_path)
    taskgraph.run_study(tabular_spec(), storage=url, **override)
    assert stored_table(url, "fromdict") == str(table.resolve())
    # Resumed from a folder with another table.csv, the study still reads its own.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "table.csv").write_text("not the table\n")
    monkeypatch.chdir(elsewhere)
    assert taskgraph.resume_study("fromdict", storage=url, trials=3).progress.n_done == 3


@pytest.mark.parametrize(
    ("call", "keyword"),
    [
        (lambda url, table: taskgraph.load_study_spec(DEMO, trust_remote_code="false"), "trust"),
        (
            lambda url, table: taskgraph.run_study(
                tabular_spec(), storage=url, trust_remote_code="yes"
            ),
            "trust",
        ),
        (
            lambda url, table: taskgraph.resume_study("fromdict", storage=url, trust_remote_code=1),
            "trust",
        ),
        (lambda url, table: taskgraph.recommend("a", table=table, hyperprior="no"), "hyperprior"),
        (lambda url, table: taskgraph.groupings(2, table=table, hyperprior="no"), "hyperprior"),
        (lambda url, table: taskgraph.affinity_graph(table=table, hyperprior=0), "hyperprior"),
        (lambda url, table: taskgraph.fit_and_save(table=table, hyperprior="yes"), "hyperprior"),
    ],
)
def test_a_flag_must_be_a_bool_not_something_truthy(
    table: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    call: Callable[[str, Path], object],
    keyword: str,
) -> None:
    # `trust_remote_code="false"` unlocked a model's own code: a security gate takes a bool.
    name = "trust_remote_code" if keyword == "trust" else keyword
    refused_writing_nothing(call, table, tmp_path, monkeypatch, f"`{name}` must be True or False")


def test_overrides_do_not_write_into_the_callers_dicts(
    table: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = {"name": "ray", "resources": {"cpu": 1}}
    spec = taskgraph.load_study_spec(DEMO, {"runner": runner, "runner.resources.gpu": 0.5})
    assert spec.runner.resources.gpu == 0.5  # type: ignore[union-attr]
    assert runner == {"name": "ray", "resources": {"cpu": 1}}

    budget = {"trials": 3}
    spec = taskgraph.load_study_spec(DEMO, {"budget": budget, "budget.trials": 1})
    assert spec.budget.trials == 1 and budget == {"trials": 3}

    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'records.db'}"
    summary = taskgraph.run_study(
        tabular_spec(), storage=url, budget={"trials": 3}, budget__trials=1
    )
    assert summary.progress.budget == 1
    budget = {"trials": 3}
    taskgraph.run_study(tabular_spec("second"), storage=url, budget=budget, budget__trials=1)
    assert budget == {"trials": 3}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda url, table: taskgraph.run_study(tabular_spec(), storage=url, data=5), "`data`"),
        (lambda url, table: taskgraph.resume_study("fromdict", storage=url, data=5), "`data`"),
        (lambda url, table: taskgraph.recommend("a", table=3), "`table` must be a path"),
        (lambda url, table: taskgraph.groupings(2, table=3), "`table` must be a path"),
        (lambda url, table: taskgraph.affinity_graph(table=3), "`table` must be a path"),
        (lambda url, table: taskgraph.fit_and_save(table=3), "`table` must be a path"),
        (lambda url, table: taskgraph.bench(3), "`table` must be a path"),
        (lambda url, table: taskgraph.bench(table, task_metadata=3), "`task_metadata`"),
        (lambda url, table: taskgraph.grouping_report(2, tasks=5, table=table), "`tasks` must"),
        (lambda url, table: taskgraph.results_table("s", storage=url, metrics=3), "`metrics`"),
        (lambda url, table: taskgraph.bench(table, samplers=3), "`samplers` must be names"),
        (
            lambda url, table: taskgraph.recommend("a", table=table, method=["setfn"]),
            "`method` must be a name",
        ),
        (lambda url, table: taskgraph.bench(table, method=["hoa"]), "`method` must be a name"),
        (lambda url, table: taskgraph.bench(table, on_step=3), "`on_step` must be a callable"),
        (lambda url, table: taskgraph.bench(table, search="no"), "`search` must be True"),
        (lambda url, table: taskgraph.load_study_spec(None), "`path` must be a path"),
        (lambda url, table: taskgraph.load_study_spec(3), "`path` must be a path"),
        (
            lambda url, table: taskgraph.load_study_spec(DEMO, "budget.trials=3"),
            "`overrides` must be a mapping",
        ),
        (
            lambda url, table: taskgraph.load_study_spec(DEMO, labels="--trials"),
            "`labels` must be a mapping",
        ),
        (
            lambda url, table: taskgraph.run_study(tabular_spec(), storage=url, observer=object()),
            "`observer` must be an EngineObserver .* no on_open",
        ),
        (
            lambda url, table: taskgraph.resume_study("fromdict", storage=url, observer=3),
            "`observer` must be an EngineObserver",
        ),
        (lambda url, table: taskgraph.recommend("a", table=table, k=True), "`k` must be an int"),
    ],
)
def test_wrong_arguments_are_config_errors_and_write_nothing(
    table: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    call: Callable[[str, Path], object],
    message: str,
) -> None:
    refused_writing_nothing(call, table, tmp_path, monkeypatch, message)


def test_an_observer_with_every_hook_is_taken(
    table: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Hooks:  # not an EngineObserver subclass: its hooks are what the engine calls
        def __init__(self) -> None:
            self.ended: list[int] = []

        def on_open(self, progress: object) -> None: ...
        def on_wait(self, seconds: float, n_running: int) -> None: ...
        def on_trial_start(self, number: int, config: object) -> None: ...
        def on_trial_progress(self, number: int, step: object) -> None: ...

        def on_trial_end(self, number: int, outcome: object, progress: object) -> None:
            self.ended.append(number)

    monkeypatch.chdir(tmp_path)
    hooks = Hooks()
    taskgraph.run_study(tabular_spec(), storage=f"sqlite:///{tmp_path / 'r.db'}", observer=hooks)
    assert hooks.ended == [0, 1]


def test_numpy_integers_are_numbers(
    table: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from taskgraph.app.arguments import integer, number

    assert integer(np.int64(3), "k") == 3 and type(integer(np.int64(3), "k")) is int
    assert number(np.int32(2), "budget") == 2.0 and number(np.float32(0.5), "x") == 0.5
    for refused in (True, np.float64(2.0), "2"):
        with pytest.raises(ConfigError, match="`k` must be an integer"):
            integer(refused, "k")
    with pytest.raises(ConfigError, match="`budget` must be a finite number"):
        number(np.bool_(True), "budget")

    by_int = taskgraph.grouping_report(2, table=table).grouping
    assert taskgraph.grouping_report(np.int64(2), table=table).grouping == by_int
    assert len(taskgraph.recommend("a", table=table, k=np.int64(2), max_size=np.int64(1))) == 2
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'records.db'}"
    taskgraph.run_study(tabular_spec(), storage=url)
    shown = taskgraph.study_summary("fromdict", storage=url, top=np.int64(1))
    assert shown == taskgraph.study_summary("fromdict", storage=url, top=1)


def test_bench_returns_what_bench_json_prints(table: Path) -> None:
    # hoa predicts measured pairs only: its pair Spearman is undefined, null in `bench --json`.
    report = taskgraph.bench(table, method="hoa", seeds=2, folds=2, search=False)
    json.dumps(report, allow_nan=False)
    assert report["pair_spearman"] is None
    assert any(n.startswith("pair_spearman is undefined") for n in report["notes"])


def test_the_app_package_exports_the_api_that_taskgraph_exports() -> None:
    import taskgraph.app
    from taskgraph.app import graph_report, grouping_report

    assert grouping_report is taskgraph.grouping_report and graph_report is taskgraph.graph_report
    exported = taskgraph._API
    assert set(exported) <= set(taskgraph.app.__all__)


def test_bench_prints_an_undefined_score_as_nan(table: Path) -> None:
    # The app returns None (JSON's null) for a NaN; the text report still says nan.
    from typer.testing import CliRunner

    from taskgraph.cli.app import app

    args = ["bench", "--table", str(table), "--method", "hoa", "--seeds", "2", "--folds", "2"]
    result = CliRunner().invoke(app, [*args, "--no-search"])
    assert result.exit_code == 0, result.output
    assert "pair_spearman: nan\n" in result.stdout


@pytest.mark.parametrize(
    ("keyword", "value", "says"),
    [("data", 5, "`data` must be a path"), ("observer", object(), "`observer` must have")],
)
def test_screen_study_checks_its_arguments_first(
    tmp_path: Path, keyword: str, value: object, says: str
) -> None:
    database = tmp_path / "screen.db"
    with pytest.raises(ConfigError, match=says):
        taskgraph.screen_study(
            Path(__file__).parents[2] / "searchspaces" / "demo.yaml",
            storage=f"sqlite:///{database}",
            **{keyword: value},
        )
    assert not database.exists()


def test_a_spec_objects_runner_errors_name_no_command_line_option() -> None:
    # Every spec object passes the runner step (its table made absolute); its own error and a
    # `runner=` keyword's named `--runner/--address`, options the caller never gave.
    from taskgraph.app.studies.specs import checked_spec

    spec = taskgraph.load_study_spec(Path(__file__).parents[2] / "searchspaces" / "demo.yaml")
    own = spec.model_copy(update={"runner": spec.runner.model_copy(update={"threads": 0})})
    with pytest.raises(SpecError, match=r"^spec: runner\.threads: "):
        checked_spec(own, {})
    with pytest.raises(SpecError, match=r"^runner: unknown runner 'nosuch'"):
        checked_spec(spec, {"runner": {"name": "nosuch"}})
    with pytest.raises(SpecError, match=r"^runner: runner\.threads: "):
        checked_spec(spec, {"runner": {"name": "local", "threads": "x"}})


@pytest.mark.parametrize("as_object", [False, True], ids=["file", "object"])
def test_keyword_overrides_are_named_as_given(as_object: bool, tmp_path: Path) -> None:
    # They were named as the command line's options: `--set budget.trials`, `--runner/--address`.
    path = Path(__file__).parents[2] / "searchspaces" / "demo.yaml"
    spec = taskgraph.load_study_spec(path) if as_object else path
    url = f"sqlite:///{tmp_path / 'k.db'}"
    for keywords, says in (
        ({"budget__trials": "x"}, "budget__trials: "),
        ({"runner": "nosuch"}, "runner: unknown runner 'nosuch'"),
    ):
        with pytest.raises(SpecError) as error:
            taskgraph.run_study(spec, storage=url, **keywords)
        assert str(error.value).startswith(says), error.value
    assert not (tmp_path / "k.db").exists()
