"""The Ray driver's searcher, callback and schedulers given Tune's calls by hand (no Ray
cluster): a trial's true state, its curve, its heartbeat, its checkpoints and the lines the
user sees, where a mutation of ``runners/ray/driver.py`` went unnoticed."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import optuna
import pytest

from taskgraph.search.engine import EngineObserver, StudyEngine
from taskgraph.spec import spec_from_dict
from taskgraph.testing import load_fakes

pytestmark = [
    pytest.mark.ray,
    # Optuna warns that a storage heartbeat is meant for Study.optimize: here the searcher
    # asks and tells, as in a real run.
    pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning"),
    # A step told to Optuna twice is dropped with a warning: the driver never does it.
    pytest.mark.filterwarnings("error:The reported value is ignored"),
]


class _Beats:
    """The driver's heartbeat: the storage ids of the trials it beats now."""

    def __init__(self) -> None:
        self.ids: set[int] = set()

    def add(self, trial_id: int) -> None:
        self.ids.add(trial_id)

    def discard(self, trial_id: int) -> None:
        self.ids.discard(trial_id)


class _Shown(EngineObserver):
    """What the command shows: each trial's start, progress and end, by trial number."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.steps: list[tuple[int, int, int]] = []  # number, step, seeds
        self.ends: list[tuple[int, str]] = []

    def on_trial_start(self, number: int, config: Any) -> None:
        self.starts.append(number)

    def on_trial_progress(self, number: int, step: Any) -> None:
        self.steps.append((number, step.step, step.n_seeds))

    def on_trial_end(self, number: int, outcome: Any, progress: Any) -> None:
        self.ends.append((number, outcome.status.value))


@dataclass
class _Driver:
    engine: StudyEngine
    study: optuna.Study
    searcher: Any
    callback: Any
    beats: _Beats
    shown: _Shown
    tune_dir: Path

    def start(self, tune_id: str) -> Any:
        """Return the Tune trial ``tune_id`` as Tune starts it: suggested, then started."""
        config = self.searcher.suggest(tune_id)
        assert config is not None
        trial = SimpleNamespace(trial_id=tune_id, config=config, error_file=None)
        self.callback.on_trial_start(0, [], trial)
        return trial

    def report(self, trial: Any, result: dict[str, Any], *, stopped: bool = False) -> None:
        """Pass a worker's report as Tune does; the one on which the scheduler stops the trial
        (``stopped``: marked done) is withheld from the searcher."""
        if stopped:
            result = {**result, "done": True}
        self.callback.on_trial_result(0, [], trial, result)
        if not stopped:
            self.searcher.on_trial_result(trial.trial_id, result)

    def checkpoint(self, trial: Any, name: str) -> Path:
        """Return a checkpoint folder Tune persisted for ``trial``, noted by the callback."""
        path = self.tune_dir / trial.trial_id / name
        (path / "seed-0").mkdir(parents=True)
        self.callback.on_checkpoint(0, [], trial, SimpleNamespace(path=str(path)))
        return path

    def optuna_trial(self, number: int) -> optuna.trial.FrozenTrial:
        return self.study.trials[number]


@contextmanager
def _driver(tmp_path: Path, name: str, **spec_fields: Any) -> Iterator[_Driver]:
    """Yield the Ray driver's searcher and callback on an opened two-candidate fake study."""
    from taskgraph.runners.ray.driver import (
        Book,
        DefineByRun,
        DriverCallback,
        TruthfulOptunaSearch,
    )
    from taskgraph.runners.ray.worker import METRIC

    spec = spec_from_dict({
        "name": name, "target": "tgt", "candidates": ["good", "bad"],
        "runner": {"name": "ray", "experiment_dir": str(tmp_path / "tune")}, **spec_fields,
    })  # fmt: skip
    shown = _Shown()
    engine = StudyEngine(
        spec=spec, storage_url=f"sqlite:///{tmp_path / f'{name}.db'}",
        sharing_spaces=load_fakes().SHARING_SPACES, observer=shown,
    )  # fmt: skip
    study = engine.open()
    book, beats = Book(), _Beats()
    heartbeat: Any = beats  # what the driver calls of a Heartbeat
    searcher = TruthfulOptunaSearch(
        engine=engine, book=book, heartbeat=heartbeat,
        space=DefineByRun(space=engine.space), metric=METRIC, mode="max",
        sampler=study.sampler, study_name=spec.name, storage=engine.storage,
    )  # fmt: skip
    callback = DriverCallback(book=book, heartbeat=heartbeat, engine=engine)
    try:
        yield _Driver(engine, study, searcher, callback, beats, shown, tmp_path / "tune")
    finally:
        engine.close()


def _evaluation(index: int, value: float, *, iteration: int | None = None) -> dict[str, Any]:
    """Return a worker's evaluation report (Tune's iteration also counts checkpoint reports)."""
    from taskgraph.runners.ray.worker import EVALUATION, METRIC

    return {
        METRIC: value, EVALUATION: index, "training_iteration": iteration or index,
        "global_step": 6 * index, "max_steps": 24, "time_total_s": float(index),
    }  # fmt: skip


def _checkpoint_report(index: int, value: float, *, iteration: int) -> dict[str, Any]:
    """Return a worker's checkpoint report: the last evaluation repeated, marked."""
    from taskgraph.runners.ray.worker import CHECKPOINT_ONLY, EVALUATION, METRIC

    return {
        METRIC: value,
        EVALUATION: index,
        "training_iteration": iteration,
        CHECKPOINT_ONLY: True,
    }


def test_a_trial_the_scheduler_stops_is_pruned_with_its_curve_by_evaluation(
    tmp_path: Path,
) -> None:
    """Optuna's curve is indexed by evaluation (checkpoint reports advance Tune's iteration and
    are no evaluation), keeps the stopping result Tune withholds, and reports no step twice;
    the trial is told pruned, is no longer beaten, and the user sees its number throughout."""
    with _driver(tmp_path, "pruned", seeds=[1, 2]) as driver:
        trial = driver.start("tune-1")
        assert driver.shown.starts == [0]
        driver.report(trial, _evaluation(0, math.nan))  # diverged: nothing for the curve
        driver.report(trial, _evaluation(1, 0.5))
        folder = driver.checkpoint(trial, "checkpoint_000000")
        driver.report(trial, _checkpoint_report(1, 0.5, iteration=3))
        driver.report(trial, _evaluation(2, 0.6, iteration=4))
        stop = _evaluation(3, 0.7, iteration=5)
        driver.report(trial, stop, stopped=True)
        assert driver.optuna_trial(0).intermediate_values == {1: 0.5, 2: 0.6}
        driver.searcher.on_trial_complete("tune-1", {**stop, "done": True})

        told = driver.optuna_trial(0)
        assert told.state == optuna.trial.TrialState.PRUNED
        assert told.intermediate_values == {1: 0.5, 2: 0.6, 3: 0.7}
        assert driver.beats.ids == set()
        assert driver.shown.ends == [(0, "pruned")]
        assert {(number, seeds) for number, _, seeds in driver.shown.steps} == {(0, 2)}
        assert not folder.exists()  # no try of it runs again


def test_a_trial_cut_by_the_wall_time_is_retried_from_its_latest_checkpoint(
    tmp_path: Path,
) -> None:
    """A trial that Tune ends with the experiment (no stopping result, no final report) is
    interrupted, not pruned; each retry keeps its first try's checkpoint key and resumes the
    latest checkpoint noted, which supersedes the one before; once told, none is left."""
    from taskgraph.runners.ray.worker import PAYLOAD
    from taskgraph.search.progress import INTERRUPTED_ATTR, RAY_CHECKPOINT_ATTR

    with _driver(tmp_path, "wall") as driver:
        first = driver.start("tune-1")
        driver.report(first, _evaluation(1, 0.5))
        older = driver.checkpoint(first, "checkpoint_000000")
        assert driver.optuna_trial(0).system_attrs[RAY_CHECKPOINT_ATTR] == str(older)
        driver.searcher.on_trial_complete("tune-1", _evaluation(1, 0.5))
        assert driver.optuna_trial(0).state == optuna.trial.TrialState.FAIL
        assert driver.optuna_trial(0).user_attrs[INTERRUPTED_ATTR] is True
        assert driver.beats.ids == set()
        assert older.exists()  # what the retry resumes

        second = driver.start("tune-2")
        payload = second.config[PAYLOAD]
        assert (payload["number"], payload["checkpoint_key"]) == (1, "trial-0")
        assert payload["checkpoint"] == str(older)
        newer = driver.checkpoint(second, "checkpoint_000001")
        assert newer.exists() and not older.exists()
        driver.searcher.on_trial_complete("tune-2", None)  # cut again, before an evaluation

        third = driver.start("tune-3")
        assert third.config[PAYLOAD]["checkpoint_key"] == "trial-0"
        assert third.config[PAYLOAD]["checkpoint"] == str(newer)
        driver.report(third, _evaluation(2, 0.6), stopped=True)
        driver.searcher.on_trial_complete("tune-3", {**_evaluation(2, 0.6), "done": True})
        assert driver.optuna_trial(2).state == optuna.trial.TrialState.PRUNED
        assert not newer.exists()  # the checkpoint it resumed, told with it


def test_an_errored_trial_fails_with_its_errors_last_line_and_its_time_since_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from taskgraph.runners.ray import driver as module
    from taskgraph.search.outcome import utcnow
    from taskgraph.search.progress import FAILURE_ATTR, INTERRUPTED_ATTR

    now = [utcnow()]
    monkeypatch.setattr(module, "utcnow", lambda: now[0])
    with _driver(tmp_path, "errored") as driver:
        trial = driver.start("tune-1")
        now[0] += timedelta(seconds=9)
        error_file = tmp_path / "error.txt"
        error_file.write_text(
            'Traceback (most recent call last):\n  File "train.py", line 3\n'
            "RuntimeError: CUDA out of memory\n"
        )
        trial.error_file = str(error_file)
        driver.searcher.on_trial_complete("tune-1", None, error=True)

        told = driver.optuna_trial(0)
        assert told.state == optuna.trial.TrialState.FAIL
        assert INTERRUPTED_ATTR not in told.user_attrs  # failed, not queued again
        assert told.user_attrs[FAILURE_ATTR] == "Ray trial error: RuntimeError: CUDA out of memory"
        assert driver.beats.ids == set()
        assert driver.shown.ends == [(0, "failed")]
        run = driver.engine.repository.runs(study="errored")[0]
        assert run.status == "failed" and run.cost_seconds == pytest.approx(9.0)


def test_a_trial_failed_by_another_driver_is_no_longer_beaten(tmp_path: Path) -> None:
    from taskgraph.search.heartbeat import storage_id

    with _driver(tmp_path, "stale") as driver:
        driver.start("tune-1")
        (running,) = driver.study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
        assert driver.beats.ids == {storage_id(running)}
        driver.engine.storage.set_trial_state_values(
            storage_id(running), state=optuna.trial.TrialState.FAIL
        )
        driver.searcher.on_trial_complete("tune-1", None, error=True)
        assert driver.beats.ids == set()


class _SchedulerTrial:
    """What Tune's schedulers read of a trial: a hashable object with its config."""

    def __init__(self, name: str) -> None:
        from taskgraph.runners.ray.worker import PAYLOAD

        self.trial_id = name
        self.config = {PAYLOAD: {"role": "search"}}
        self.status = "RUNNING"


def test_the_schedulers_pass_over_a_checkpoint_report() -> None:
    """A checkpoint report repeats the last objective; the median rule, which has since seen
    better trials, would stop the trial on it: schedulers judge evaluations only."""
    from ray.tune.schedulers import TrialScheduler

    from taskgraph.runners.ray.driver import MedianSparingBaseline
    from taskgraph.runners.ray.worker import METRIC

    rule = MedianSparingBaseline(
        time_attr="evaluation", metric=METRIC, mode="max",
        grace_period=1.0, min_samples_required=1,
    )  # fmt: skip
    controller = SimpleNamespace(get_live_trials=list)
    late, good = _SchedulerTrial("late"), _SchedulerTrial("good")
    assert rule.on_trial_result(controller, late, _evaluation(1, 0.1)) == TrialScheduler.CONTINUE
    for index in (1, 2):
        rule.on_trial_result(controller, good, _evaluation(index, 0.9))
    decision = rule.on_trial_result(controller, late, _checkpoint_report(1, 0.1, iteration=2))
    assert decision == TrialScheduler.CONTINUE


def test_tunes_trial_folders_are_named_by_the_optuna_trial_number() -> None:
    from taskgraph.runners.ray.driver import trial_name
    from taskgraph.runners.ray.worker import PAYLOAD

    trial = SimpleNamespace(trial_id="a1b2", config={PAYLOAD: {"number": 7}})
    assert trial_name(trial) == "trial-7-a1b2"
