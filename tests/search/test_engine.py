"""The study engine with a fake evaluator: budget, records, true states, failures, resume."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import optuna
import pytest

from taskgraph.errors import SpecError, command_line_wording
from taskgraph.search.engine import StudyEngine
from taskgraph.search.heartbeat import quiet_optuna
from taskgraph.search.progress import (
    FAILURE_ATTR,
    INTERRUPTED_ATTR,
    INTERRUPTED_BY_ATTR,
    RETRY_OF_ATTR,
    trial_state,
)
from taskgraph.search.space import BASELINE_ROLE, ROLE_ATTR, SUBSET_ATTR
from taskgraph.spec import StudySpec, spec_from_dict
from taskgraph.storage import open_repository
from taskgraph.trial import TrialResult


def make_spec(**overrides: Any) -> StudySpec:
    data: dict[str, Any] = {
        "name": "fake",
        "target": "tgt",
        "candidates": ["good", "bad", "meh", "boom"],
        "search": {
            "sharing": ["hard", "soft"],
            "learning_rate": {"low": 1e-5, "high": 1e-3, "log": True},
        },
        "sampler": {"name": "tpe", "seed": 0, "n_startup_trials": 3},
        "budget": {"trials": 8, "max_failures": 10},
        "seeds": 2,
        "recovery": {"heartbeat_interval": 1, "grace_period": 2},
    }
    data.update(overrides)
    return spec_from_dict(data)


def make_engine(spec: StudySpec, url: str, evaluator: Any, fakes: ModuleType) -> StudyEngine:
    return StudyEngine(
        spec=spec, storage_url=url, evaluator=evaluator, sharing_spaces=fakes.SHARING_SPACES
    )


def test_runs_exactly_the_budget_and_records_every_seed(
    storage_url: str, fakes: ModuleType
) -> None:
    spec = make_spec()
    engine = make_engine(spec, storage_url, fakes.FakeEvaluator(), fakes)
    summary = engine.run()
    engine.close()
    assert summary.reason == "budget"
    assert summary.progress.n_done == 8 and summary.progress.n_complete == 8

    study = optuna.load_study(study_name="fake", storage=storage_url)
    trials = study.get_trials()
    assert len(trials) == 8
    baseline = trials[0]
    assert baseline.user_attrs[ROLE_ATTR] == BASELINE_ROLE
    assert baseline.user_attrs[SUBSET_ATTR] == []
    assert baseline.value == pytest.approx(0.5005)  # mean over seeds 0 and 1

    with open_repository(storage_url) as repo:
        runs = repo.runs(study="fake")
    assert len(runs) == 16  # two seeds per trial
    assert Counter((r.trial_number, r.seed) for r in runs).most_common(1)[0][1] == 1
    by_trial = {t.number: t for t in trials}
    for run in runs:
        trial = by_trial[run.trial_number]
        assert run.status == "complete"
        assert list(run.task_set) == sorted(["tgt", *trial.user_attrs[SUBSET_ATTR]])
        assert run.objective == pytest.approx(fakes.known_objective(run.trial_config()))


def test_failures_are_recorded_and_the_study_goes_on(storage_url: str, fakes: ModuleType) -> None:
    spec = make_spec(
        search={"auxiliaries": {"include": ["boom"]}}, budget={"trials": 3, "max_failures": 5}
    )
    engine = make_engine(spec, storage_url, fakes.FakeEvaluator(fail_with=["boom"]), fakes)
    summary = engine.run()
    engine.close()
    # The baseline trains the target alone, so it completes; every other trial includes `boom`.
    assert (summary.progress.n_complete, summary.progress.n_failed) == (1, 2)
    study = optuna.load_study(study_name="fake", storage=storage_url)
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert all(t.user_attrs[FAILURE_ATTR] == "fake failure: loss is NaN" for t in failed)
    with open_repository(storage_url) as repo:
        runs = repo.runs(study="fake", status="failed")
    # A failed first seed ends the trial: one record per failed trial, with its reason.
    assert len(runs) == 2 and {r.failure_reason for r in runs} == {"fake failure: loss is NaN"}


def test_max_failures_stops_the_study(storage_url: str, fakes: ModuleType) -> None:
    spec = make_spec(
        search={"auxiliaries": {"include": ["boom"]}}, budget={"trials": 10, "max_failures": 1}
    )
    engine = make_engine(spec, storage_url, fakes.FakeEvaluator(fail_with=["boom"]), fakes)
    summary = engine.run()
    engine.close()
    assert summary.reason == "max_failures"
    assert summary.progress.n_failed == 2 and summary.progress.n_done == 3
    # The stop line says why, not only how many: a broken data file shows up here.
    assert summary.detail == (
        "2 trials failed (budget.max_failures is 1); the last: fake failure: loss is NaN"
    )


def test_pruned_trials_keep_their_true_state(storage_url: str, fakes: ModuleType) -> None:
    spec = make_spec(
        pruner={"name": "median", "n_startup_trials": 1},
        seeds=1,
        budget={"trials": 12},
        sampler={"name": "random", "seed": 3},
    )
    engine = make_engine(spec, storage_url, fakes.FakeEvaluator(n_evals=4), fakes)
    summary = engine.run()
    engine.close()
    assert summary.progress.n_done == 12
    assert summary.progress.n_pruned >= 1
    study = optuna.load_study(study_name="fake", storage=storage_url)
    pruned = {t.number for t in study.trials if t.state == optuna.trial.TrialState.PRUNED}
    with open_repository(storage_url) as repo:
        recorded = {r.trial_number for r in repo.runs(study="fake", status="pruned")}
    assert recorded == pruned


def test_ctrl_c_marks_the_trial_interrupted_and_resume_retries_it(
    storage_url: str, fakes: ModuleType
) -> None:
    spec = make_spec(seeds=1, budget={"trials": 5})
    engine = make_engine(spec, storage_url, fakes.FakeEvaluator(interrupt_on=3), fakes)
    with pytest.raises(KeyboardInterrupt):
        engine.run()
    engine.close()
    study = optuna.load_study(study_name="fake", storage=storage_url)
    states = [trial_state(t) for t in study.trials]
    assert states == ["complete", "complete", "interrupted", "waiting"]
    interrupted = study.trials[2]
    assert interrupted.user_attrs[INTERRUPTED_ATTR] is True
    retry = study.trials[3]
    assert retry.system_attrs["failed_trial"] == 2
    assert retry.user_attrs[RETRY_OF_ATTR] == 2
    assert retry.params == interrupted.params
    # The retry is a new attempt: it does not inherit the interruption's mark.
    assert INTERRUPTED_ATTR not in retry.user_attrs

    engine = make_engine(spec, storage_url, fakes.FakeEvaluator(), fakes)
    summary = engine.run()
    engine.close()
    assert summary.progress.n_done == 5 and summary.progress.n_interrupted == 1
    study = optuna.load_study(study_name="fake", storage=storage_url)
    assert [t.number for t in study.trials if t.user_attrs.get(INTERRUPTED_ATTR)] == [2]
    with open_repository(storage_url) as repo:
        runs = repo.runs(study="fake")
    assert len(runs) == 5
    assert 2 not in {r.trial_number for r in runs}  # the interrupted trial left no record


def test_a_killed_driver_trial_goes_stale_and_is_retried(
    storage_url: str, fakes: ModuleType
) -> None:
    spec = make_spec(seeds=1, budget={"trials": 3})
    engine = make_engine(spec, storage_url, fakes.FakeEvaluator(), fakes)
    engine.run(max_trials=1)
    # What a killed process leaves behind: a RUNNING trial whose heartbeat stopped.
    study = engine.require_study()
    with quiet_optuna():
        orphan = study.ask()
    engine.storage.record_heartbeat(orphan._trial_id)
    engine.close()

    waits: list[float] = []

    class Observer(fakes_observer()):  # type: ignore[misc]
        def on_wait(self, seconds: float, n_running: int) -> None:
            waits.append(seconds)

    engine = StudyEngine(
        spec=spec,
        storage_url=storage_url,
        evaluator=fakes.FakeEvaluator(),
        sharing_spaces=fakes.SHARING_SPACES,
        observer=Observer(),
    )
    summary = engine.run()
    engine.close()
    assert waits  # it waited for the orphan to go stale
    assert summary.progress.n_done == 3 and summary.progress.n_interrupted == 1
    study = optuna.load_study(study_name="fake", storage=storage_url)
    retried = [t for t in study.trials if t.system_attrs.get("failed_trial") == orphan.number]
    assert len(retried) == 1 and retried[0].state == optuna.trial.TrialState.COMPLETE
    # What optuna-dashboard shows (user attributes only): the stale trial reads as
    # interrupted, with why, and its retry names it.
    stale = study.trials[orphan.number]
    assert stale.user_attrs[INTERRUPTED_ATTR] is True
    assert stale.user_attrs[INTERRUPTED_BY_ATTR].startswith("its driver stopped beating")
    assert retried[0].user_attrs[RETRY_OF_ATTR] == orphan.number
    assert INTERRUPTED_ATTR not in retried[0].user_attrs
    assert study.metric_names == ["tgt score on dev"]  # not a catalog task


def _a_running_trial(
    storage_url: str, fakes: ModuleType, *, grace_period: int
) -> tuple[StudySpec, Any, optuna.Study, optuna.Trial]:
    """Run the baseline of a 3-trial study (heartbeat every 1 s), then ask for a trial as
    another driver would, without beating it; return the spec, that driver's storage, its
    study and the running trial."""
    from taskgraph.search.heartbeat import make_optuna_storage

    recovery = {"heartbeat_interval": 1, "grace_period": grace_period}
    spec = make_spec(seeds=1, budget={"trials": 3}, recovery=recovery)
    engine = make_engine(spec, storage_url, fakes.FakeEvaluator(), fakes)
    engine.run(max_trials=1)
    engine.close()
    storage = make_optuna_storage(
        storage_url, heartbeat_interval=1, grace_period=grace_period, max_retry=3
    )
    study = optuna.load_study(study_name="fake", storage=storage)
    with quiet_optuna():
        trial = study.ask()
    return spec, storage, study, trial


@pytest.mark.parametrize("sibling", ["beats", "finishes"])
def test_a_live_siblings_trial_is_left_alone_without_waiting_the_grace_period(
    storage_url: str, fakes: ModuleType, sibling: str
) -> None:
    # A driver started beside a running one: the sibling's trial beats again (or is told)
    # within a heartbeat interval, so the new driver stops waiting then, not after the whole
    # grace period, and leaves the trial to its driver.
    import threading
    import time

    from taskgraph.search.heartbeat import Heartbeat

    spec, storage, study, theirs = _a_running_trial(storage_url, fakes, grace_period=30)
    tell = threading.Timer(1.5, lambda: study.tell(theirs, 0.5))
    waits: list[float] = []

    class Observer(fakes_observer()):  # type: ignore[misc]
        def on_wait(self, seconds: float, n_running: int) -> None:
            waits.append(seconds)
            if sibling == "finishes":
                # Told 1.5 s into the wait, not 1.5 s after the test began: on a loaded
                # machine the engine could open after the trial had ended, and never wait.
                tell.start()

    with Heartbeat(storage=storage, interval=1) as beating:
        beating.add(theirs._trial_id)
        if sibling == "finishes":
            beating.discard(theirs._trial_id)
        started = time.monotonic()
        engine = StudyEngine(
            spec=spec,
            storage_url=storage_url,
            evaluator=fakes.FakeEvaluator(),
            sharing_spaces=fakes.SHARING_SPACES,
            observer=Observer(),
        )
        summary = engine.run()
        waited = time.monotonic() - started
        engine.close()
    if sibling == "finishes" and waits:
        tell.join()
    assert waits == [31]  # the most it would wait: grace period + interval
    assert waited < 15, waited  # it stopped once the sibling's trial beat again (or ended)
    state = storage.get_trial(theirs._trial_id).state
    expected = "RUNNING" if sibling == "beats" else "COMPLETE"
    assert state.name == expected  # never failed as stale
    assert summary.progress.n_interrupted == 0
    storage.engine.dispose()


def test_another_driver_opening_meanwhile_does_not_make_a_dead_trial_look_alive(
    storage_url: str, fakes: ModuleType
) -> None:
    # Every opening driver beat every running trial, so a second opener's beat read, to the
    # first, as the dead driver beating again: it stopped waiting and left the trial RUNNING.
    # Now only a trial without a heartbeat row is beaten, under the setup lock.
    import threading

    # killed before its first heartbeat: no row
    spec, storage, _, dead = _a_running_trial(storage_url, fakes, grace_period=4)
    summaries: dict[str, Any] = {}

    def drive(name: str, delay: float) -> None:
        import time

        time.sleep(delay)
        driver = make_engine(spec, storage_url, fakes.FakeEvaluator(), fakes)
        summaries[name] = driver.run(max_trials=1)
        driver.close()

    threads = [threading.Thread(target=drive, args=(n, d)) for n, d in (("b", 0), ("c", 1.5))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert storage.get_trial(dead._trial_id).state == optuna.trial.TrialState.FAIL
    trials = optuna.load_study(study_name="fake", storage=storage_url).trials
    assert [t.system_attrs.get("failed_trial") for t in trials].count(dead.number) == 1
    assert summaries["b"].progress.n_interrupted == 1
    storage.engine.dispose()


class _AlwaysFails:
    def evaluate(
        self, config: Any, *, callbacks: Any = (), checkpoint_key: str | None = None
    ) -> TrialResult:
        return TrialResult.failed("fake failure: loss is NaN")


class _Killed(BaseException):
    """What kill -9 does to the driver, as far as the database can tell."""


@pytest.mark.parametrize("fails", [False, True], ids=["complete", "failed"])
def test_a_kill_between_storing_runs_and_telling_counts_and_records_the_trial_once(
    storage_url: str, fakes: ModuleType, fails: bool
) -> None:
    # finish() stores the runs (and a failure's reason) on the trial, then tells Optuna; a
    # kill in between leaves a RUNNING trial that carries them. Its retry reuses the runs:
    # the one training must count once and be recorded once.
    spec = make_spec(seeds=1, budget={"trials": 3, "max_failures": 10})
    engine = make_engine(spec, storage_url, fakes.FakeEvaluator(), fakes)
    engine.run(max_trials=1)  # the baseline

    def killed_tell(*args: Any, **kwargs: Any) -> None:
        raise _Killed

    study = engine.require_study()
    study.tell = killed_tell  # type: ignore[method-assign]
    if fails:
        engine.evaluator = _AlwaysFails()
    with pytest.raises(_Killed):
        engine.run(max_trials=1)
    engine.close()

    engine = make_engine(spec, storage_url, engine.evaluator, fakes)
    summary = engine.run()
    engine.close()
    progress = summary.progress
    assert progress.n_done == 3 and progress.n_interrupted == 1
    assert progress.n_failed == (2 if fails else 0)
    with open_repository(storage_url) as repo:
        runs = repo.runs(study="fake")
    assert sorted(r.trial_number for r in runs) == [0, 2, 3]  # not the killed trial 1


def fakes_observer() -> type:
    from taskgraph.search.engine import EngineObserver

    return EngineObserver


def test_lost_record_writes_are_repaired_on_open(storage_url: str, fakes: ModuleType) -> None:
    spec = make_spec(seeds=1, budget={"trials": 2})
    engine = make_engine(spec, storage_url, fakes.FakeEvaluator(), fakes)
    original = engine.write_records
    engine.write_records = lambda number, outcome: None  # type: ignore[method-assign]
    engine.run()
    engine.write_records = original  # type: ignore[method-assign]
    with open_repository(storage_url) as repo:
        assert repo.runs(study="fake") == []
    assert engine.reconcile() == 2
    assert engine.reconcile() == 0  # idempotent
    engine.close()
    with open_repository(storage_url) as repo:
        assert sorted(r.trial_number for r in repo.runs(study="fake")) == [0, 1]


def test_run_again_continues_and_a_changed_spec_is_refused(
    storage_url: str, fakes: ModuleType
) -> None:
    spec = make_spec(seeds=1, budget={"trials": 2})
    engine = make_engine(spec, storage_url, fakes.FakeEvaluator(), fakes)
    engine.run()
    engine.close()
    bigger = make_spec(seeds=1, budget={"trials": 4})
    engine = make_engine(bigger, storage_url, fakes.FakeEvaluator(), fakes)
    assert engine.run().progress.n_done == 4
    engine.close()
    changed = make_spec(seeds=1, budget={"trials": 4}, target="other")
    engine = make_engine(changed, storage_url, fakes.FakeEvaluator(), fakes)
    # From Python the call that continues it; on the command line the command.
    with pytest.raises(
        SpecError, match=r"already exists .* `taskgraph\.resume_study\('fake', storage="
    ):
        engine.open()
    with (
        command_line_wording(),
        pytest.raises(SpecError, match=r"already exists .* `taskgraph study resume fake --storage"),
    ):
        engine.open()
    engine.close()


def test_wall_time_stops_between_trials(storage_url: str, fakes: ModuleType) -> None:
    spec = make_spec(seeds=1, budget={"trials": 50, "wall_time": 0.001})
    engine = make_engine(spec, storage_url, fakes.FakeEvaluator(), fakes)
    summary = engine.run()
    engine.close()
    assert summary.reason == "wall_time"
    assert summary.progress.n_done <= 1


def test_graph_sampler_starts_from_other_studies_records(
    storage_url: str, fakes: ModuleType
) -> None:
    first = make_spec(seeds=1, budget={"trials": 4}, sampler={"name": "random", "seed": 0})
    engine = make_engine(first, storage_url, fakes.FakeEvaluator(), fakes)
    engine.run()
    engine.close()
    second = make_spec(
        name="guided", seeds=1, budget={"trials": 4}, sampler={"name": "graph", "seed": 0}
    )
    engine = make_engine(second, storage_url, fakes.FakeEvaluator(), fakes)
    prior = engine.prior_records()
    # Every run of the first study scores each task of its set once, on the objective metric.
    with open_repository(storage_url) as repo:
        n_scores = sum(len(r.task_set) for r in repo.runs(study="fake"))
    assert len(prior) == n_scores and {r.study for r in prior} == {"fake"}
    assert {r.metric for r in prior} == {"accuracy"} and {r.split for r in prior} == {"dev"}
    summary = engine.run()
    assert summary.progress.n_done == 4
    assert {r.study for r in engine.prior_records()} == {"fake"}  # its own records stay out
    engine.close()


def test_a_failed_baseline_is_queued_again_up_to_max_retry(
    storage_url: str, fakes: ModuleType
) -> None:
    """Every gain is measured against the baseline and no sampler proposes the target alone
    with min_size 1: a baseline that failed (a transient error) is trained again."""
    failures = {"left": 1}

    class FlakyBaseline(fakes.FakeEvaluator):  # type: ignore[name-defined,misc]
        def evaluate(self, config: Any, **kwargs: Any) -> TrialResult:
            if not config.auxiliaries and failures["left"]:
                failures["left"] -= 1
                return TrialResult.failed("CUDA out of memory")
            return super().evaluate(config, **kwargs)  # type: ignore[no-any-return]

    spec = make_spec(search={"auxiliaries": {"min_size": 1}}, budget={"trials": 5}, seeds=1)
    engine = make_engine(spec, storage_url, FlakyBaseline(), fakes)
    engine.run()
    engine.close()
    study = optuna.load_study(study_name="fake", storage=storage_url)
    baselines = [t for t in study.trials if t.user_attrs.get(ROLE_ATTR) == BASELINE_ROLE]
    assert [trial_state(t) for t in baselines] == ["failed", "complete"]
    assert baselines[1].number == 1  # queued at once, before the sampler's next trial

    # Baselines that keep failing are retried recovery.max_retry times, then given up.
    failures["left"] = 100
    spec = make_spec(
        name="flaky", search={"auxiliaries": {"min_size": 1}}, budget={"trials": 6}, seeds=1,
        recovery={"heartbeat_interval": 1, "grace_period": 2, "max_retry": 2},
    )  # fmt: skip
    engine = make_engine(spec, storage_url, FlakyBaseline(), fakes)
    engine.run()
    engine.close()
    study = optuna.load_study(study_name="flaky", storage=storage_url)
    roles = [t.user_attrs.get(ROLE_ATTR) == BASELINE_ROLE for t in study.trials]
    assert roles == [True, True, True, False, False, False]


def test_a_repeated_configuration_is_told_again_not_trained_or_recorded_twice(
    storage_url: str, fakes: ModuleType
) -> None:
    """Two candidates and nothing else searched: 4 configurations, so 10 trials repeat some.
    A repeat is the same training on the same data; recorded twice it would look like two
    measurements (a gain's standard error of 0)."""
    from taskgraph.affinity.gains import compute_gains
    from taskgraph.search.progress import REPEATS_ATTR

    spec = make_spec(
        candidates=["good", "meh"], search={}, sampler={"name": "random", "seed": 0},
        budget={"trials": 10}, pruner="none",
    )  # fmt: skip
    evaluator = fakes.FakeEvaluator()
    engine = make_engine(spec, storage_url, evaluator, fakes)
    summary = engine.run()
    engine.close()
    assert summary.progress.n_complete == 10
    study = optuna.load_study(study_name="fake", storage=storage_url)
    repeats = [t for t in study.trials if REPEATS_ATTR in t.user_attrs]
    assert repeats  # 10 trials over 4 task sets
    for trial in repeats:
        earlier = study.trials[trial.user_attrs[REPEATS_ATTR]]
        assert earlier.number < trial.number and earlier.params == trial.params
        assert trial.value == earlier.value
    distinct = {tuple(sorted(t.params.items())) for t in study.trials}
    assert len(evaluator.calls) == 2 * len(distinct)  # each configuration trained once per seed
    with open_repository(storage_url) as repo:
        assert len(repo.runs(study="fake")) == 2 * len(distinct)
        records = repo.score_records(study="fake", target="tgt", split="dev")
    gains = compute_gains(records).gains
    assert gains and all(gain.n_records == 2 for gain in gains)  # the two seeds, once each
    # Opening again finds nothing to repair: a repeat's runs are the earlier trial's records.
    engine = make_engine(spec, storage_url, evaluator, fakes)
    engine.open()
    assert engine.reconcile() == 0
    engine.close()


def family_spec(**overrides: Any) -> StudySpec:
    """The target's example cap is searched: two model families, the first baseline in one."""
    return make_spec(
        candidates=["good", "meh"], sampler={"name": "random", "seed": 0}, seeds=1,
        search={"mixing": {"max_examples": {"tgt": [50, 100]}}, "auxiliaries": {"min_size": 1}},
        budget={"trials": 8, **overrides},
    )  # fmt: skip


def test_each_model_family_a_trial_lands_in_gets_its_own_baseline(
    storage_url: str, fakes: ModuleType
) -> None:
    """A gain compares a trial with the single-task run of its own model family (the target's
    cap is part of it): without a baseline per family, the records of the families the first
    baseline is not of gave no gains, silently."""
    from taskgraph.affinity.gains import compute_gains
    from taskgraph.search.progress import CONFIG_ATTR
    from taskgraph.search.space import FAMILY_ATTR
    from taskgraph.trial import TrialConfig

    engine = make_engine(family_spec(), storage_url, fakes.FakeEvaluator(), fakes)
    summary = engine.run()
    engine.close()
    assert summary.progress.n_done == 8
    study = optuna.load_study(study_name="fake", storage=storage_url)

    def family(trial: Any) -> str:
        return TrialConfig.from_dict(trial.user_attrs[CONFIG_ATTR]).family_key()

    baselines = [t for t in study.trials if t.user_attrs.get(ROLE_ATTR) == BASELINE_ROLE]
    searched = [t for t in study.trials if t.user_attrs.get(ROLE_ATTR) != BASELINE_ROLE]
    assert {family(t) for t in searched} == {family(t) for t in baselines}
    assert len(baselines) == 2  # one per family, not one per trial
    assert FAMILY_ATTR not in baselines[0].user_attrs  # the first, sampled freely
    assert baselines[1].user_attrs[FAMILY_ATTR] == family(baselines[1])
    assert all(t.user_attrs[SUBSET_ATTR] == [] for t in baselines)
    # The study's report still measures against the first baseline.
    assert summary.progress.baseline_number == baselines[0].number

    with open_repository(storage_url) as repo:
        records = repo.score_records(study="fake", target="tgt", split="dev")
    measured = {(g.family, g.auxiliaries) for g in compute_gains(records).gains}
    wanted = {(r.family, r.task_set - {"tgt"}) for r in records if len(r.task_set) > 1}
    assert len({family for family, _ in wanted}) == 2
    assert measured == wanted  # every trial's record has a gain

    # With `budget.baselines: one` the study trains only the first baseline.
    engine = make_engine(
        family_spec(baselines="one").model_copy(update={"name": "one"}),
        storage_url, fakes.FakeEvaluator(), fakes,
    )  # fmt: skip
    engine.run()
    engine.close()
    study = optuna.load_study(study_name="one", storage=storage_url)
    assert sum(t.user_attrs.get(ROLE_ATTR) == BASELINE_ROLE for t in study.trials) == 1
    # Opened again under `per_family` (a database written before it existed), the study
    # enqueues the missing family's baseline at once.
    engine = make_engine(
        family_spec().model_copy(update={"name": "one"}), storage_url, fakes.FakeEvaluator(), fakes
    )
    engine.open()
    engine.close()
    study = optuna.load_study(study_name="one", storage=storage_url)
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    first, *others = study.trials[: -len(waiting)]
    missing = {family(t) for t in others} - {family(first)}
    assert len(missing) == 1
    assert [t.user_attrs.get(FAMILY_ATTR) for t in waiting] == list(missing)


def test_a_family_with_a_complete_target_alone_trial_gets_no_extra_baseline(
    storage_url: str, fakes: ModuleType
) -> None:
    # A study without auxiliaries (a pretraining or cap study): every trial is the target
    # alone, so each family already has its single-task run; a baseline enqueued for it
    # repeated that trial and cost a budget slot.
    from taskgraph.search.progress import CONFIG_ATTR
    from taskgraph.search.space import FAMILY_ATTR
    from taskgraph.trial import TrialConfig

    spec = make_spec(
        candidates=["good"], sampler={"name": "random", "seed": 0}, seeds=1,
        search={"mixing": {"max_examples": {"tgt": [50, 100]}}, "auxiliaries": {"max_size": 0}},
        budget={"trials": 6},
    )  # fmt: skip
    engine = make_engine(spec, storage_url, fakes.FakeEvaluator(), fakes)
    engine.run()
    engine.close()
    study = optuna.load_study(study_name="fake", storage=storage_url)
    assert all(t.user_attrs[SUBSET_ATTR] == [] for t in study.trials)
    families = {TrialConfig.from_dict(t.user_attrs[CONFIG_ATTR]).family_key() for t in study.trials}
    assert len(families) == 2  # both caps were tried
    assert not [t.number for t in study.trials if FAMILY_ATTR in t.user_attrs]
    assert sum(t.user_attrs.get(ROLE_ATTR) == BASELINE_ROLE for t in study.trials) == 1


def test_a_failed_family_baseline_is_queued_again_up_to_max_retry(
    storage_url: str, fakes: ModuleType
) -> None:
    from taskgraph.search.space import FAMILY_ATTR

    class FailsFamilyBaselines(fakes.FakeEvaluator):  # type: ignore[name-defined,misc]
        def evaluate(self, config: Any, **kwargs: Any) -> TrialResult:
            if not config.auxiliaries and self.calls:
                return TrialResult.failed("CUDA out of memory")
            return super().evaluate(config, **kwargs)  # type: ignore[no-any-return]

    spec = family_spec().model_copy(
        update={"recovery": make_spec().recovery.model_copy(update={"max_retry": 1})}
    )
    engine = make_engine(spec, storage_url, FailsFamilyBaselines(), fakes)
    engine.run()
    engine.close()
    study = optuna.load_study(study_name="fake", storage=storage_url)
    family = [t for t in study.trials if FAMILY_ATTR in t.user_attrs]
    # Tried once and retried once (max_retry 1), then given up: not one per later trial.
    assert [trial_state(t) for t in family] == ["failed", "failed"]


def _count_trial_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the study's reads of its trials (every ``study.get_trials`` goes through here)."""
    reads = [0]
    original = optuna.storages._CachedStorage.get_all_trials

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        reads[0] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(optuna.storages._CachedStorage, "get_all_trials", counting)
    return reads


def test_opening_a_study_reads_its_trials_once(
    storage_url: str, fakes: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = make_spec()
    engine = make_engine(spec, storage_url, fakes.FakeEvaluator(), fakes)
    engine.run(max_trials=3)
    engine.close()

    reads = _count_trial_reads(monkeypatch)
    engine = make_engine(spec, storage_url, fakes.FakeEvaluator(), fakes)
    engine.open()
    # Retrying stale and lost trials, re-queuing a failed baseline, repairing records and
    # enqueuing the first trials and family baselines share one read when none of them writes.
    assert reads[0] == 1
    assert engine.progress().n_done == 3 and engine.progress().n_waiting == 0
    engine.close()


def test_opening_a_new_study_reads_its_trials_again_only_after_enqueuing(
    storage_url: str, fakes: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = _count_trial_reads(monkeypatch)
    engine = make_engine(make_spec(), storage_url, fakes.FakeEvaluator(), fakes)
    engine.open()
    # Once to find the study empty, once more after the baseline is enqueued so that the
    # family baselines' step sees it waiting.
    assert reads[0] == 2
    waiting = engine.require_study().get_trials(deepcopy=False)
    assert [t.user_attrs.get(ROLE_ATTR) for t in waiting] == [BASELINE_ROLE]
    engine.close()


def test_the_objective_is_named_for_optuna_dashboard(storage_url: str, fakes: ModuleType) -> None:
    # optuna-dashboard labels the objective by the study's metric names ("Objective 0" else);
    # without a metric in the spec, the catalog's primary metric of the target names it.
    spec = make_spec(target="synth_target", candidates=["synth_related"])
    engine = make_engine(spec, storage_url, fakes.FakeEvaluator(), fakes)
    assert engine.creator.objective_metric() == "accuracy"
    engine.close()
    spec = make_spec(objective={"metric": "f1", "split": "test", "direction": "maximize"})
    engine = make_engine(spec, storage_url, fakes.FakeEvaluator(), fakes)
    engine.run(max_trials=1)
    engine.close()
    assert optuna.load_study(study_name="fake", storage=storage_url).metric_names == [
        "tgt f1 on test"
    ]


@pytest.fixture
def interactive_ctrl_c() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt, as in an interactive shell (a background job, as CI
    may run the tests, inherits SIGINT ignored, and an ignored signal stays ignored)."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("interactive_ctrl_c")
def test_a_signal_held_while_asking_interrupts_the_asked_trial(
    storage_url: str, fakes: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C (or SIGTERM) that arrives while a trial is asked is delivered once the ask is
    done: the asked trial is failed as interrupted and queued again at once, not left RUNNING
    for a resume to wait a grace period on (and `study delete` to refuse meanwhile)."""
    import os
    import signal

    spec = make_spec(seeds=1, budget={"trials": 4})
    engine = make_engine(spec, storage_url, fakes.FakeEvaluator(), fakes)
    real_ask = optuna.Study.ask
    asked: list[int] = []

    def ask(self: optuna.Study, *args: Any, **kwargs: Any) -> optuna.Trial:
        trial = real_ask(self, *args, **kwargs)
        asked.append(trial.number)
        if len(asked) == 2:  # the user presses Ctrl-C while trial 1 is being asked
            os.kill(os.getpid(), signal.SIGINT)
        return trial

    monkeypatch.setattr(optuna.Study, "ask", ask)
    with pytest.raises(KeyboardInterrupt):
        engine.run()
    engine.close()
    monkeypatch.setattr(optuna.Study, "ask", real_ask)
    study = optuna.load_study(study_name="fake", storage=storage_url)
    states = [trial_state(t) for t in study.trials]
    assert states == ["complete", "interrupted", "waiting"]
    assert study.trials[1].user_attrs[INTERRUPTED_ATTR] is True
    assert study.trials[2].user_attrs[RETRY_OF_ATTR] == 1


@pytest.mark.usefixtures("interactive_ctrl_c")
def test_a_signal_held_while_recording_still_shows_the_finished_trial(
    storage_url: str, fakes: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ctrl-C held while a trial is told and recorded stops the run after it; the trial is
    stored, and the observer is told it ended (its progress line was missing)."""
    import os
    import signal

    ended: list[int] = []

    class Observer(fakes_observer()):  # type: ignore[misc]
        def on_trial_end(self, number: int, outcome: Any, progress: Any) -> None:
            ended.append(number)

    spec = make_spec(seeds=1, budget={"trials": 4})
    engine = StudyEngine(
        spec=spec,
        storage_url=storage_url,
        evaluator=fakes.FakeEvaluator(),
        sharing_spaces=fakes.SHARING_SPACES,
        observer=Observer(),
    )
    real_finish = StudyEngine.finish

    def finish(self: StudyEngine, trial: Any, outcome: Any) -> Any:
        result = real_finish(self, trial, outcome)
        if trial.number == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return result

    monkeypatch.setattr(StudyEngine, "finish", finish)
    with pytest.raises(KeyboardInterrupt):
        engine.run()
    engine.close()
    study = optuna.load_study(study_name="fake", storage=storage_url)
    assert [trial_state(t) for t in study.trials] == ["complete", "complete"]
    assert ended == [0, 1]


def test_study_show_names_the_interrupted_trial_and_its_waiting_retry(
    storage_url: str, fakes: ModuleType
) -> None:
    """The text header said '0 running' and nothing else after a Ctrl-C: the interrupted
    trial and its queued retry were only in `--json`."""
    from typer.testing import CliRunner

    from taskgraph.cli.app import app

    spec = make_spec(seeds=1, budget={"trials": 5})
    engine = make_engine(spec, storage_url, fakes.FakeEvaluator(interrupt_on=3), fakes)
    with pytest.raises(KeyboardInterrupt):
        engine.run()
    engine.close()
    result = CliRunner().invoke(
        app, ["study", "show", "fake", "--storage", storage_url], env={"COLUMNS": "250"}
    )
    assert result.exit_code == 0, result.output
    header = result.output.splitlines()[0]
    assert header.endswith("0 running, 1 interrupted, 1 waiting for `study resume`"), header
