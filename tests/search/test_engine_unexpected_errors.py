"""An exception other than Ctrl-C inside a trial (an observer's hook, a bug) and Optuna's logging:
the trial is interrupted rather than left RUNNING, and the caller's Optuna verbosity is theirs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import optuna
import pytest
from typer.testing import CliRunner

import taskgraph
from taskgraph.cli.app import app
from taskgraph.errors import StorageError
from taskgraph.search.engine import EngineObserver, StudyEngine
from taskgraph.search.progress import (
    FAILURE_ATTR,
    INTERRUPTED_ATTR,
    INTERRUPTED_BY_ATTR,
    trial_state,
)
from taskgraph.spec import StudySpec, spec_from_dict
from taskgraph.testing import OptunaRecords, write_rising_table
from taskgraph.trial import TrialConfig
from tests.search.test_engine_crash import spec_data

TASKS = ("a", "b", "c")


def make_spec(**overrides: Any) -> StudySpec:
    # The crash tests' study; its grace period (2 s) is what a resume would wait on a trial
    # left RUNNING (and it would show).
    return spec_from_dict(spec_data(**{"name": "unexpected", **overrides}))


class RaisesOnTrial(EngineObserver):
    """Raises ``error`` when trial ``number`` starts; records the resume's waits."""

    def __init__(self, *, number: int | None = None, error: Exception | None = None) -> None:
        self.number = number
        self.error = error
        self.waits: list[float] = []

    def on_wait(self, seconds: float, n_running: int) -> None:
        self.waits.append(seconds)

    def on_trial_start(self, number: int, config: TrialConfig) -> None:
        if number == self.number and self.error is not None:
            raise self.error


def run_engine(spec: StudySpec, url: str, fakes: ModuleType, observer: EngineObserver) -> Any:
    engine = StudyEngine(
        spec=spec,
        storage_url=url,
        evaluator=fakes.FakeEvaluator(),
        sharing_spaces=fakes.SHARING_SPACES,
        observer=observer,
    )
    try:
        return engine.run()
    finally:
        engine.close()


def test_an_observer_error_interrupts_the_trial_and_the_resume_does_not_wait(
    storage_url: str, fakes: ModuleType
) -> None:
    spec = make_spec()
    with pytest.raises(ValueError, match="the caller's bug"):
        run_engine(
            spec, storage_url, fakes, RaisesOnTrial(number=1, error=ValueError("the caller's bug"))
        )
    study = optuna.load_study(study_name="unexpected", storage=storage_url)
    assert [trial_state(t) for t in study.trials] == ["complete", "interrupted", "waiting"]
    interrupted, retry = study.trials[1], study.trials[2]
    assert interrupted.user_attrs[INTERRUPTED_ATTR] is True
    assert interrupted.user_attrs[INTERRUPTED_BY_ATTR] == "ValueError: the caller's bug"
    assert FAILURE_ATTR not in interrupted.user_attrs  # not counted as the trial's failure
    assert retry.system_attrs["failed_trial"] == 1 and retry.params == interrupted.params

    observer = RaisesOnTrial()
    summary = run_engine(spec, storage_url, fakes, observer)
    assert observer.waits == []  # nothing RUNNING: no grace period to sit out
    assert summary.reason == "budget"
    assert summary.progress.n_done == 4 and summary.progress.n_failed == 0
    assert summary.progress.n_interrupted == 1 and summary.progress.n_running == 0


def test_a_database_error_leaves_the_trial_to_the_heartbeat(
    storage_url: str, fakes: ModuleType
) -> None:
    # A database that failed is not written to again (a server that is down would make the
    # cleanup wait out its retries once more): the trial stays RUNNING, as after a kill.
    spec = make_spec()
    with pytest.raises(StorageError, match="gone"):
        run_engine(spec, storage_url, fakes, RaisesOnTrial(number=1, error=StorageError("gone")))
    study = optuna.load_study(study_name="unexpected", storage=storage_url)
    assert [trial_state(t) for t in study.trials] == ["complete", "running"]


@pytest.fixture
def table(tmp_path: Path) -> Path:
    """Every subset of three tasks, on val; each task's score rises with its partners."""
    return write_rising_table(tmp_path / "results.csv", TASKS, max_size=3)


def run_tabular(table: Path, url: str, **kwargs: Any) -> Any:
    spec = taskgraph.load_study_spec(Path(__file__).parents[2] / "searchspaces/demo.yaml")
    return taskgraph.run_study(
        spec.model_copy(update={"name": "api", "target": "a", "candidates": ("b", "c")}),
        storage=url,
        budget__trials=3,
        runner={"name": "tabular", "table": str(table)},
        **kwargs,
    )


def test_an_observer_error_through_the_python_api_leaves_nothing_running(
    table: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'api.db'}"
    with pytest.raises(ValueError, match="boom"):
        run_tabular(table, url, observer=RaisesOnTrial(number=0, error=ValueError("boom")))
    status = taskgraph.study_status("api", storage=url)
    assert status["n_running"] == 0 and status["n_interrupted"] == 1


def test_importing_the_engine_leaves_optunas_verbosity_alone() -> None:
    code = (
        "import optuna\n"
        "optuna.logging.set_verbosity(optuna.logging.INFO)\n"
        "import taskgraph.search.engine\n"
        "print(optuna.logging.get_verbosity())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == str(optuna.logging.INFO)


def test_a_study_run_is_quiet_and_gives_the_callers_verbosity_back(
    table: Path, tmp_path: Path, optuna_at_info: OptunaRecords
) -> None:
    summary = run_tabular(table, f"sqlite:///{tmp_path / 'api.db'}")
    assert summary.progress.n_done == 3
    assert optuna.logging.get_verbosity() == optuna.logging.INFO
    # Optuna's line per study and per trial stays out of the progress bar's way meanwhile.
    assert optuna_at_info.below_warning() == []


def test_a_quieter_caller_stays_quieter(table: Path, tmp_path: Path) -> None:
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        run_tabular(table, f"sqlite:///{tmp_path / 'api.db'}", observer=RaisesOnTrial())
        assert optuna.logging.get_verbosity() == optuna.logging.ERROR
    finally:
        optuna.logging.set_verbosity(before)


def test_the_command_line_keeps_optuna_quiet(table: Path, optuna_at_info: OptunaRecords) -> None:
    # `taskgraph bench` creates an in-memory Optuna study per target, sampler and seed.
    result = CliRunner().invoke(
        app, ["bench", "--table", str(table), "--seeds", "1", "--samplers", "tpe", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert optuna_at_info.below_warning() == []


def test_bench_from_python_is_quiet_and_gives_the_callers_verbosity_back(
    table: Path, optuna_at_info: OptunaRecords
) -> None:
    # Its searches create an in-memory study per target, sampler and seed: a line each.
    taskgraph.bench(table, seeds=1, samplers="tpe", folds=2)
    assert optuna.logging.get_verbosity() == optuna.logging.INFO
    assert optuna_at_info.below_warning() == []
