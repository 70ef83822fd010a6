"""A driver process that really dies (``os._exit``) at a chosen point of a trial, then a resume.

Each test runs the engine with the fake evaluator in a child process patched by
:mod:`taskgraph.search.crashpoints`, checks that the process died there, and resumes the
study in this process: the study must end with exactly its budget of evaluated trials, its
baseline, and one record per (trial, seed) of every evaluated trial.
"""

from __future__ import annotations

import multiprocessing
import os
import uuid
from collections import Counter
from types import ModuleType
from typing import Any

import optuna
import pytest

from taskgraph.search import heartbeat
from taskgraph.search.crashpoints import CRASH_EXIT, POINTS, install
from taskgraph.search.engine import StudyEngine
from taskgraph.search.progress import RESULTS_ATTR, retried_numbers, trial_results, trial_state
from taskgraph.search.space import BASELINE_ROLE, ROLE_ATTR
from taskgraph.spec import spec_from_dict
from taskgraph.storage import open_repository


def drive(data: dict[str, Any], url: str, point: str, hit: int, fakes: ModuleType) -> None:
    """The driver process: the engine with the fake evaluator, crashing at ``point``."""
    install(point, hit)
    engine = StudyEngine(
        spec=spec_from_dict(data),
        storage_url=url,
        evaluator=fakes.FakeEvaluator(),
        sharing_spaces=fakes.SHARING_SPACES,
    )
    engine.run()
    engine.close()


def spec_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "crash",
        "target": "tgt",
        "candidates": ["good", "bad", "meh"],
        "search": {"sharing": ["hard", "soft"]},
        "sampler": {"name": "random", "seed": 0},
        "pruner": "none",
        "budget": {"trials": 4},
        "seeds": 1,
        "recovery": {"heartbeat_interval": 1, "grace_period": 2},
    }
    data.update(overrides)
    return data


def open_crashing_in_the_retry(data: dict[str, Any], url: str, fakes: ModuleType) -> None:
    """A resume that dies after failing the stale trials, before enqueuing their copies."""

    def crash(self: Any, study: Any, trial: Any) -> None:
        os._exit(CRASH_EXIT)

    heartbeat.RetryStaleTrial.__call__ = crash  # type: ignore[method-assign]
    StudyEngine(
        spec=spec_from_dict(data), storage_url=url, sharing_spaces=fakes.SHARING_SPACES
    ).open()


def fork(target: Any, *args: Any) -> int | None:
    """Run ``target(*args)`` in a forked child; return its exit status."""
    child = multiprocessing.get_context("fork").Process(target=target, args=args)
    child.start()
    child.join(timeout=300)
    if child.is_alive():
        child.kill()
        child.join()
    return child.exitcode


def crash_driver(data: dict[str, Any], url: str, point: str, hit: int, fakes: ModuleType) -> None:
    """Run the engine in a child process that must die at ``point`` on its ``hit``-th reach.

    Forked, so the child starts with this process's imports (a fresh interpreter takes
    seconds to import Optuna and SQLAlchemy); it opens its own database connections.
    """
    code = fork(drive, data, url, point, hit, fakes)
    assert code == CRASH_EXIT, f"the driver exited {code}, not at {point}"


def resume(data: dict[str, Any], url: str, fakes: ModuleType) -> tuple[Any, Any]:
    """Resume the study in this process; return (run summary, the evaluator it used)."""
    evaluator = fakes.FakeEvaluator()
    engine = StudyEngine(
        spec=spec_from_dict(data),
        storage_url=url,
        evaluator=evaluator,
        sharing_spaces=fakes.SHARING_SPACES,
    )
    try:
        return engine.run(), evaluator
    finally:
        engine.close()


def assert_exact(data: dict[str, Any], url: str) -> list[optuna.trial.FrozenTrial]:
    """Assert the budget, the baseline and one record per (trial, seed); return the trials."""
    trials = optuna.load_study(study_name=data["name"], storage=url).get_trials()
    retried = retried_numbers(trials)
    states = Counter(trial_state(t, retried=retried) for t in trials)
    assert states["running"] == 0 and states["waiting"] == 0, states
    counted = [t for t in trials if trial_state(t, retried=retried) == "complete"]
    assert len(counted) == data["budget"]["trials"], states
    assert [t for t in counted if t.user_attrs.get(ROLE_ATTR) == BASELINE_ROLE]
    with open_repository(url) as repo:
        runs = repo.runs(study=data["name"])
    keys = Counter((r.trial_number, r.seed) for r in runs)
    assert set(keys) == {(t.number, seed) for t in counted for seed in range(data["seeds"])}
    assert max(keys.values()) == 1
    return trials


def test_a_kill_before_the_first_heartbeat_is_failed_and_retried(
    storage_url: str, fakes: ModuleType
) -> None:
    # Killed between study.ask() and the trial's first heartbeat: a RUNNING trial without a
    # heartbeat row, which Optuna's stale check never sees. It must not stay RUNNING.
    data = spec_data()
    crash_driver(data, storage_url, "asked", 2, fakes)
    summary, _ = resume(data, storage_url, fakes)
    assert summary.reason == "budget"
    assert summary.progress.n_running == 0 and summary.progress.n_interrupted == 1
    assert summary.progress.n_done == 4
    assert_exact(data, storage_url)


@pytest.mark.parametrize(
    ("point", "hit"),
    [("record_written", 1), ("in_record", 2), ("record_written", 3)],
    ids=["after-first-seed-record", "inside-second-seed-record", "after-third-record"],
)
def test_a_crash_between_a_trials_seed_records_is_repaired_per_seed(
    storage_url: str, fakes: ModuleType, point: str, hit: int
) -> None:
    # seeds: 2 -- the trial is told COMPLETE, then its records are written one seed at a
    # time; a crash after the first (or inside the second's transaction) leaves 1 of 2.
    data = spec_data(seeds=2)
    crash_driver(data, storage_url, point, hit, fakes)
    with open_repository(storage_url) as repo:
        assert len(repo.runs(study="crash")) == (hit - 1 if point == "in_record" else hit)
    summary, _ = resume(data, storage_url, fakes)
    assert summary.progress.n_done == 4 and summary.progress.n_interrupted == 0
    assert_exact(data, storage_url)


@pytest.mark.parametrize("point", ["asked", "training"])
def test_the_baseline_is_requeued_when_no_retry_is_left(
    storage_url: str, fakes: ModuleType, point: str
) -> None:
    # max_retry: 0 and the driver killed during the baseline: the baseline must still run.
    data = spec_data(recovery={"heartbeat_interval": 1, "grace_period": 2, "max_retry": 0})
    crash_driver(data, storage_url, point, 1, fakes)
    summary, _ = resume(data, storage_url, fakes)
    assert summary.progress.baseline_value == pytest.approx(0.5)
    assert summary.progress.n_done == 4 and summary.progress.n_interrupted == 1
    trials = assert_exact(data, storage_url)
    baselines = [t for t in trials if t.user_attrs.get(ROLE_ATTR) == BASELINE_ROLE]
    assert [t.system_attrs.get("failed_trial") for t in baselines] == [None, 0]


def test_a_baseline_left_without_retry_is_requeued_on_open(
    storage_url: str, fakes: ModuleType
) -> None:
    # Killed during the baseline; the next open dies between failing the stale baseline and
    # enqueuing its copy (as a database from before this fix looks): the next open re-queues it.
    data = spec_data()
    crash_driver(data, storage_url, "training", 1, fakes)
    assert fork(open_crashing_in_the_retry, data, storage_url, fakes) == CRASH_EXIT
    trials = optuna.load_study(study_name="crash", storage=storage_url).get_trials()
    assert [t.state.name for t in trials] == ["FAIL"]
    summary, _ = resume(data, storage_url, fakes)
    assert summary.progress.baseline_value == pytest.approx(0.5)
    assert summary.progress.n_done == 4
    trials = assert_exact(data, storage_url)
    baselines = [t for t in trials if t.user_attrs.get(ROLE_ATTR) == BASELINE_ROLE]
    assert [t.system_attrs.get("failed_trial") for t in baselines] == [None, 0]


def test_stored_runs_are_recorded_when_no_retry_is_left(
    storage_url: str, fakes: ModuleType
) -> None:
    # max_retry: 0 and a kill after the second trial's runs were stored on it but before it
    # was told: its retry reuses those runs (nothing retrained) and records them.
    data = spec_data(seeds=2, recovery={"heartbeat_interval": 1, "grace_period": 2, "max_retry": 0})
    crash_driver(data, storage_url, "stored", 2, fakes)
    killed = optuna.load_study(study_name="crash", storage=storage_url).trials[1]
    stored = trial_results(killed)
    # Machine data, out of optuna-dashboard's user attributes (cut at 1024 characters there).
    assert stored and RESULTS_ATTR in killed.system_attrs and RESULTS_ATTR not in killed.user_attrs
    summary, evaluator = resume(data, storage_url, fakes)
    assert summary.progress.n_done == 4 and summary.progress.n_interrupted == 1
    trials = assert_exact(data, storage_url)
    retry = next(t for t in trials if t.system_attrs.get("failed_trial") == killed.number)
    assert trial_state(retry) == "complete" and trial_results(retry) == stored
    # The resume trained only the 2 new trials' seeds; the retry's runs are the stored ones.
    assert len(evaluator.calls) == 2 * 2
    with open_repository(storage_url) as repo:
        recorded = [r for r in repo.runs(study="crash") if r.trial_number == retry.number]
    assert sorted(r.started_at.isoformat() for r in recorded) == sorted(
        run["started_at"] for run in stored
    )


@pytest.mark.parametrize("point", POINTS)
def test_every_crash_point_resumes_to_an_exact_study(
    storage_url: str, fakes: ModuleType, point: str
) -> None:
    # The third trial's crash, whichever step of its sequence: nothing stuck, lost or doubled.
    data = spec_data(seeds=2)
    crash_driver(
        data, storage_url, point, 5 if point in ("record_written", "in_record") else 3, fakes
    )
    summary, _ = resume(data, storage_url, fakes)
    assert summary.reason == "budget" and summary.progress.n_done == 4
    assert_exact(data, storage_url)


@pytest.mark.postgres
@pytest.mark.parametrize("point", ["asked", "in_record"])
def test_crashes_on_postgres_resume_to_an_exact_study(
    postgres_server: Any, fakes: ModuleType, point: str
) -> None:
    url = postgres_server.create_database(f"crash_{point}_{uuid.uuid4().hex[:8]}")
    data = spec_data(seeds=2)
    crash_driver(data, url, point, 2, fakes)
    summary, _ = resume(data, url, fakes)
    assert summary.progress.n_done == 4 and summary.progress.n_running == 0
    assert_exact(data, url)
