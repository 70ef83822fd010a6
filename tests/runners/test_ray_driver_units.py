"""The Ray driver's pieces without a Ray cluster: schedulers, the searcher's heartbeat,
SIGTERM under Ray, Tune's state directory."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from taskgraph.errors import ConfigError
from taskgraph.search.space import BASELINE_ROLE
from taskgraph.spec import spec_from_dict
from taskgraph.testing import load_fakes

pytestmark = pytest.mark.ray


class _Trial:
    """What Tune's schedulers read of a trial: a hashable object with its config."""

    def __init__(self, name: str, role: str = "search") -> None:
        from taskgraph.runners.ray.worker import PAYLOAD

        self.trial_id = name
        self.config = {PAYLOAD: {"role": role}}
        self.status = "RUNNING"

    def __repr__(self) -> str:
        return self.trial_id


def _result(step: int, value: float) -> dict[str, Any]:
    from taskgraph.runners.ray.worker import METRIC

    return {"training_iteration": step, "evaluation": step, METRIC: value}


def test_the_median_rule_spares_a_baseline_behind_better_trials_at_every_result() -> None:
    """The rule remembers a trial it meant to stop and asserts at its next result that it was
    stopped: a spared baseline crashed the driver with an AssertionError."""
    from ray.tune.schedulers import TrialScheduler

    from taskgraph.runners.ray.driver import MedianSparingBaseline
    from taskgraph.runners.ray.worker import METRIC

    rule = MedianSparingBaseline(
        time_attr="training_iteration", metric=METRIC, mode="max",
        grace_period=1.0, min_samples_required=1,
    )  # fmt: skip
    controller = SimpleNamespace(get_live_trials=list)  # nothing waits to run
    good, baseline = _Trial("good"), _Trial("baseline", role=BASELINE_ROLE)
    for step in range(1, 6):
        decision = rule.on_trial_result(controller, good, _result(step, 0.9))
        assert decision == TrialScheduler.CONTINUE
    for step in range(1, 6):  # far below the median at every step, never stopped
        decision = rule.on_trial_result(controller, baseline, _result(step, 0.1))
        assert decision == TrialScheduler.CONTINUE
    # and the rule still stops an ordinary trial that far behind
    bad = _Trial("bad")
    assert rule.on_trial_result(controller, bad, _result(1, 0.1)) == TrialScheduler.STOP


def test_asha_under_ray_lets_a_trial_run_past_100_evaluations(tmp_path: Path) -> None:
    """Ray's ASHAScheduler stops every trial at max_t (100 by default), recorded pruned; the
    local runner's Optuna pruner has no such cap."""
    from ray.tune.schedulers import TrialScheduler

    from taskgraph.runners.ray import RayTuneRunner

    spec = spec_from_dict({
        "name": "asha", "target": "tgt", "candidates": ["good"],
        "pruner": {"name": "asha", "min_resource": 150, "reduction_factor": 3},
        "runner": {"name": "ray", "experiment_dir": str(tmp_path / "tune")},
    })  # fmt: skip
    this = SimpleNamespace(engine=SimpleNamespace(spec=spec))
    # min_resource 150 > Ray's default max_t used to be an AssertionError traceback
    scheduler = RayTuneRunner._scheduler(this)  # type: ignore[arg-type]
    trial = _Trial("only")
    scheduler.on_trial_add(None, trial)
    decisions = [scheduler.on_trial_result(None, trial, _result(s, 0.5)) for s in range(1, 121)]
    assert decisions == [TrialScheduler.CONTINUE] * 120


# Optuna warns that a storage heartbeat is meant for Study.optimize: here Tune's searcher
# asks and tells, as TruthfulOptunaSearch does in a real run.
@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")
def test_a_suggested_trial_beats_before_tune_starts_it(tmp_path: Path) -> None:
    """Tune creates the Optuna trial (RUNNING) when it asks the searcher, then may wait for
    resources before starting it: without a heartbeat from then on, another driver opening the
    study failed it as stale under this one."""
    import optuna

    from taskgraph.runners.ray.worker import METRIC
    from taskgraph.search.heartbeat import storage_id

    beating: list[int] = []
    heartbeat = SimpleNamespace(add=beating.append, discard=lambda trial_id: None)
    with _searcher(tmp_path, "beats", heartbeat) as (engine, study, searcher):
        assert searcher.suggest("tune-1") is not None
        (running,) = study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
        assert beating == [storage_id(running)]
        # Failed as stale by another driver all the same (say this one was paused): this
        # driver's results for it are dropped instead of raising in Optuna mid-run.
        engine.storage.set_trial_state_values(
            storage_id(running), state=optuna.trial.TrialState.FAIL
        )
        searcher.on_trial_result("tune-1", {METRIC: 0.5, "training_iteration": 1})
        searcher.on_trial_complete("tune-1", {METRIC: 0.5, "taskgraph_outcome": "[]"})
        assert study.trials[running.number].state == optuna.trial.TrialState.FAIL


# Optuna warns that a storage heartbeat is meant for Study.optimize: here Tune's searcher
# asks and tells, as TruthfulOptunaSearch does in a real run.
@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")
def test_a_trial_whose_worker_died_costs_its_time_since_it_started(tmp_path: Path) -> None:
    """A worker that dies reports no time: the failed trial was recorded at 0 s."""
    from taskgraph.runners.ray.worker import METRIC
    from taskgraph.search.outcome import utcnow

    heartbeat = SimpleNamespace(add=lambda trial_id: None, discard=lambda trial_id: None)
    with _searcher(tmp_path, "died", heartbeat) as (_, _, searcher):
        assert searcher.suggest("tune-1") is not None
        searcher.book.started["tune-1"] = utcnow() - timedelta(seconds=7)
        searcher.book.results["tune-1"] = [
            {METRIC: 0.5, "training_iteration": 1, "time_total_s": 2.0}
        ]
        (run,) = searcher._outcome("tune-1", None, error=True).runs
        assert run.result.failure_reason == "the Ray trial errored"
        assert run.result.cost.seconds >= 7


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")
def test_a_pruned_trials_run_has_the_first_seed_and_its_last_reports_host(
    tmp_path: Path,
) -> None:
    """A trial stopped by the scheduler is recorded from the driver: its one run carries the
    spec's first seed (the seed it trained with) and the host of its latest report."""
    from taskgraph.runners.ray.worker import METRIC
    from taskgraph.trial import TrialStatus

    heartbeat = SimpleNamespace(add=lambda trial_id: None, discard=lambda trial_id: None)
    with _searcher(tmp_path, "pruned", heartbeat, seeds=[1, 2]) as (_, _, searcher):
        assert searcher.suggest("tune-1") is not None
        searcher.book.results["tune-1"] = [
            {METRIC: 0.5, "global_step": 6, "taskgraph_host": "node-a", "time_total_s": 1.0},
            {METRIC: 0.6, "global_step": 12, "taskgraph_host": "node-b", "time_total_s": 2.0},
        ]
        (run,) = searcher._outcome("tune-1", None, error=False).runs
        assert run.result.status is TrialStatus.PRUNED
        assert run.result.intermediate == [(6, 0.5), (12, 0.6)]
        assert run.config.seed == 1
        assert run.host == "node-b"
        # a worker that died is recorded the same way
        (died,) = searcher._outcome("tune-1", None, error=True).runs
        assert (died.config.seed, died.host) == (1, "node-b")


def test_finished_checkpoints_are_kept_while_a_retry_of_their_trial_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A failed first try's checkpoint is what its retry (``failed_trial``) resumes from: it is
    removed only once no retry of that trial waits or runs."""
    import optuna

    from taskgraph.runners.ray import driver
    from taskgraph.runners.ray.driver import RAY_CHECKPOINT_ATTR

    removed: list[set[str]] = []
    monkeypatch.setattr(driver, "remove_tune_checkpoints", removed.append)
    state = optuna.trial.TrialState

    def trial(number: int, st: Any, **attrs: Any) -> Any:
        return SimpleNamespace(number=number, state=st, system_attrs=attrs)

    trials = [
        trial(0, state.FAIL, **{RAY_CHECKPOINT_ATTR: "/ckpt/0"}),
        trial(1, state.WAITING, failed_trial=0),  # the retry of trial 0
        trial(2, state.COMPLETE, **{RAY_CHECKPOINT_ATTR: "/ckpt/2"}),
    ]
    study = SimpleNamespace(get_trials=lambda deepcopy=True: trials)
    driver.remove_finished_checkpoints(study)
    assert removed == [{"/ckpt/2"}]
    trials[1] = trial(1, state.RUNNING, failed_trial=0)
    driver.remove_finished_checkpoints(study)
    assert removed[-1] == {"/ckpt/2"}
    trials[1] = trial(1, state.COMPLETE, failed_trial=0)  # the retry ended: nothing waits
    driver.remove_finished_checkpoints(study)
    assert removed[-1] == {"/ckpt/0", "/ckpt/2"}


def test_a_failed_trials_final_report_carries_its_last_evaluation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A trial that fails after evaluating has no value: its final report gives Tune the last
    objective the scheduler saw, one evaluation past the last one."""
    import json
    import math

    from taskgraph.runners.ray import worker
    from taskgraph.search.outcome import SeedRun, TrialOutcome, utcnow
    from taskgraph.trial import TrialConfig, TrialResult

    reports: list[dict[str, Any]] = []
    monkeypatch.setattr(worker.tune, "report", lambda metrics, **kwargs: reports.append(metrics))
    spec = {"name": "final", "target": "tgt", "candidates": ["good"], "runner": {"name": "ray"}}
    result = TrialResult.failed("out of memory")
    result.intermediate = [(6, 0.5), (12, 0.7)]
    now = utcnow()
    run = SeedRun(config=TrialConfig(target="tgt"), result=result, started_at=now, finished_at=now)

    def final_report(outcome: TrialOutcome) -> dict[str, Any]:
        reports.clear()
        worker.train_in_worker(
            {worker.PAYLOAD: {"saved": outcome.to_list(), "number": 0}},
            spec_json=json.dumps(spec), data_dir=None, evaluator_factory=None,  # type: ignore[arg-type]
        )  # fmt: skip
        (report,) = reports
        assert report["taskgraph_final"] is True
        return report

    report = final_report(TrialOutcome(runs=(run,)))
    assert report[worker.METRIC] == 0.7
    assert report[worker.EVALUATION] == 3
    result.intermediate = []  # failed before its first evaluation
    report = final_report(TrialOutcome(runs=(run,)))
    assert math.isnan(report[worker.METRIC]) and report[worker.EVALUATION] == 1


def test_a_trial_told_ended_shows_no_more_progress() -> None:
    """With an ASHA pruner `[4/4] trial 3: ... pruned at 0.7152` was printed, then the live line
    kept `trial 3: ..., step 12/24, last evaluation 0.7152` (running) until the command exited:
    the callback passed on a result of a trial whose end was already told."""
    from taskgraph.runners.ray.driver import Book, DriverCallback
    from taskgraph.runners.ray.worker import METRIC, PAYLOAD

    shown: list[tuple[int, int, float | None]] = []
    observer = SimpleNamespace(
        on_trial_progress=lambda number, step: shown.append((number, step.step, step.objective))
    )
    engine: Any = SimpleNamespace(observer=observer, spec=SimpleNamespace(seeds=(0,)))
    heartbeat: Any = SimpleNamespace()  # no trial starts here: nothing beats
    book = Book()
    callback = DriverCallback(book=book, heartbeat=heartbeat, engine=engine)
    trial = SimpleNamespace(trial_id="tune-3", config={PAYLOAD: {"number": 3, "trial_id": 4}})

    def result(step: int, value: float, **extra: Any) -> dict[str, Any]:
        return {METRIC: value, "max_steps": 24, "global_step": step, **extra}

    callback.on_trial_result(1, [], trial, result(6, 0.70))
    assert shown == [(3, 6, 0.70)]
    book.finished.add("tune-3")  # told pruned (or failed, or complete): its end line printed
    callback.on_trial_result(2, [], trial, result(12, 0.7152, done=True))
    assert shown == [(3, 6, 0.70)]
    # still in the book: the trial's outcome and curve read every result
    assert [r["global_step"] for r in book.results["tune-3"]] == [6, 12]
    assert book.stopped_by_scheduler == {"tune-3"}


@contextmanager
def _searcher(
    tmp_path: Path, name: str, heartbeat: Any, **spec_fields: Any
) -> Iterator[tuple[Any, Any, Any]]:
    """Yield an opened engine of a two-candidate fake study, its Optuna study and the Ray
    driver's searcher on it (Tune's asks and tells, without Tune); the engine is closed after."""
    from taskgraph.runners.ray.driver import Book, DefineByRun, TruthfulOptunaSearch
    from taskgraph.runners.ray.worker import METRIC
    from taskgraph.search.engine import StudyEngine

    fakes = load_fakes()
    spec = spec_from_dict({
        "name": name, "target": "tgt", "candidates": ["good", "bad"],
        "runner": {"name": "ray", "experiment_dir": str(tmp_path / "tune")}, **spec_fields,
    })  # fmt: skip
    engine = StudyEngine(
        spec=spec, storage_url=f"sqlite:///{tmp_path / f'{name}.db'}",
        sharing_spaces=fakes.SHARING_SPACES,
    )  # fmt: skip
    study = engine.open()
    searcher = TruthfulOptunaSearch(
        engine=engine, book=Book(), heartbeat=heartbeat,
        space=DefineByRun(space=engine.space), metric=METRIC, mode="max",
        sampler=study.sampler, study_name=spec.name, storage=engine.storage,
    )  # fmt: skip
    try:
        yield engine, study, searcher
    finally:
        engine.close()


def test_sigterm_turned_into_a_plain_keyboard_interrupt_still_reads_as_sigterm() -> None:
    """Ray's ray.wait replaces the Terminated that SIGTERM raises with a plain
    KeyboardInterrupt: `kill <pid>` of a Ray driver exited 130 'interrupted', not 143."""
    from taskgraph.search.heartbeat import Terminated, terminate_as_interrupt, was_terminated

    with terminate_as_interrupt():
        assert not was_terminated(KeyboardInterrupt())  # Ctrl-C
        with pytest.raises(Terminated):
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0.1)  # let the handler run
        assert was_terminated(KeyboardInterrupt())  # what a library re-raised instead
    with terminate_as_interrupt():
        assert not was_terminated(KeyboardInterrupt())  # a new command starts clean


def test_an_unusable_experiment_dir_is_one_line_before_the_study_exists(tmp_path: Path) -> None:
    from taskgraph.runners.builtin import RAY

    blocker = tmp_path / "file"
    blocker.write_text("")
    spec = spec_from_dict({
        "name": "dir", "target": "tgt", "candidates": ["good"],
        "runner": {"name": "ray", "experiment_dir": str(blocker / "tune")},
    })  # fmt: skip
    with pytest.raises(ConfigError, match=r"runner\.experiment_dir: cannot create .*file/tune"):
        RAY.build_evaluator(spec)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")
def test_a_ray_trial_with_a_long_configuration_gets_a_dashboard_note(tmp_path: Path) -> None:
    """optuna-dashboard cuts an attribute at 1024 characters: the Ray driver writes the
    trial's configuration whole in its note, as the local engine does."""
    import json

    import yaml
    from optuna_dashboard._note import get_note_from_system_attrs

    from taskgraph.search.progress import CONFIG_ATTR

    heartbeat = SimpleNamespace(add=lambda trial_id: None, discard=lambda trial_id: None)
    long_search = {"hyperparameters": {f"option_{i:02d}": {"value": 0.5 + i} for i in range(40)}}
    with _searcher(tmp_path, "notes", heartbeat, search=long_search) as (_, study, searcher):
        assert searcher.suggest("tune-1") is not None
        (trial,) = study.get_trials()
        config = trial.user_attrs[CONFIG_ATTR]
        assert len(json.dumps(config)) > 1024
        attrs = study._storage.get_study_system_attrs(study._study_id)
        note = get_note_from_system_attrs(attrs, trial._trial_id)["body"]
        block = note.split("```yaml\n", 1)[1].rsplit("```", 1)[0]
        assert yaml.safe_load(block) == config
