"""Tests for the mutants of ``taskgraph/search/engine.py`` that the engine's suites let live.

Each test names what a user would see go wrong: a study deleted under its driver explained
wrongly or not at all; prior records or embeddings given to the engine left unused; another
driver's running trial not counted against the budget; the stop line naming the wrong
failure; a finished trial failed again; a baseline pruned; a retry trained from scratch; every
seed's progress shown as the first.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import optuna
import pytest
import sqlalchemy

from taskgraph.app.studies.stored import delete_study
from taskgraph.search.engine import EngineObserver, StudyEngine, StudyVanishedError
from taskgraph.search.heartbeat import storage_id
from taskgraph.search.progress import INTERRUPTED_ATTR, TrialStep
from taskgraph.search.space import BASELINE_ROLE, ROLE_ATTR
from taskgraph.storage.testing import PostgresServer
from taskgraph.trial import Cost, TrialConfig, TrialResult
from tests.search.test_engine import family_spec, make_engine, make_spec
from tests.storage.test_driver_lock_reconnect import engine_of, share_holders, terminate


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database(f"t_{uuid.uuid4().hex[:16]}")


# -- the vanished-study detection ----------------------------------------------------------


@pytest.mark.postgres
def test_a_lock_found_lost_on_a_deleted_study_stays_lost(pg_url: str, tabular_demo: Path) -> None:
    engine = engine_of(tabular_demo, pg_url)
    try:
        engine.open()
        engine.run(max_trials=1)
        terminate(pg_url, share_holders(pg_url))
        # The window before the next beat: the delete goes through, the lock is taken again.
        delete_study("demo", storage=pg_url)
        with pytest.raises(StudyVanishedError, match="liveness lock was down"):
            engine.keep_driver_lock()
        # Held again by now, yet the study is gone: every later check says so, and the run
        # stops with the reason the first check found, not a guess at another deleter.
        with pytest.raises(StudyVanishedError, match="liveness lock was down"):
            engine.keep_driver_lock()
        with pytest.raises(StudyVanishedError, match="liveness lock was down"):
            engine.run(max_trials=1)
    finally:
        engine.close()


def test_a_study_deleted_and_created_again_under_its_driver_is_found(
    storage_url: str, fakes: ModuleType
) -> None:
    engine = make_engine(make_spec(seeds=1), storage_url, fakes.FakeEvaluator(), fakes)
    try:
        engine.run(max_trials=1)
        # Another study after it, so that the new "fake" cannot take the old one's id again.
        optuna.create_study(study_name="other", storage=storage_url)
        optuna.delete_study(study_name="fake", storage=storage_url)
        optuna.create_study(study_name="fake", storage=storage_url)
        vanished = engine.vanished_error()
        assert vanished is not None
        assert "study 'fake'" in str(vanished) and "optuna delete-study" in str(vanished)
    finally:
        engine.close()


def test_a_database_that_cannot_be_read_is_not_reported_as_a_vanished_study(
    storage_url: str, fakes: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(make_spec(seeds=1), storage_url, fakes.FakeEvaluator(), fakes)
    try:
        engine.open()

        def unreadable(name: str) -> int:
            raise sqlalchemy.exc.OperationalError("SELECT", {}, Exception("disk I/O error"))

        monkeypatch.setattr(engine.storage, "get_study_id_from_name", unreadable)
        # The database's own error is the one to report, not a deleted study.
        assert engine.vanished_error() is None
    finally:
        monkeypatch.undo()
        engine.close()


class DeleteAfterFirstTrial(EngineObserver):
    """Deletes the study as ``optuna delete-study`` would, once its first trial ends."""

    def __init__(self, url: str) -> None:
        self.url = url

    def on_trial_end(self, number: int, outcome: Any, progress: Any) -> None:
        if number == 0:
            optuna.delete_study(study_name="fake", storage=self.url)


def test_a_study_deleted_under_the_python_loop_ends_in_one_storage_error(
    storage_url: str, fakes: ModuleType
) -> None:
    engine = StudyEngine(
        spec=make_spec(seeds=1),
        storage_url=storage_url,
        evaluator=fakes.FakeEvaluator(),
        sharing_spaces=fakes.SHARING_SPACES,
        observer=DeleteAfterFirstTrial(storage_url),
    )
    try:
        # Not Optuna's KeyError('Record does not exist.') from wherever the loop read next.
        with pytest.raises(StudyVanishedError, match=r"study 'fake' .* was deleted"):
            engine.run()
    finally:
        engine.close()


# -- opening ---------------------------------------------------------------------------------


def no_text(tasks: list[str], **_: Any) -> dict[str, np.ndarray]:
    """Return no text embedding (the start-up order is not what these tests look at)."""
    return {}


def test_a_runner_without_a_curve_orders_its_start_by_the_embeddings_it_is_given(
    storage_url: str, fakes: ModuleType
) -> None:
    # A published table (no intermediate reports) trains nothing, so MiniLM is not loaded for
    # it; an `embed` given by the caller is used all the same.
    def embed(tasks: list[str], **_: Any) -> dict[str, np.ndarray]:
        vectors = {"tgt": [1.0, 0.0], "good": [1.0, 0.0], "bad": [-1.0, 0.0], "meh": [0.0, 1.0]}
        return {t: np.array(vectors[t]) for t in tasks if t in vectors}

    spec = make_spec(sampler={"name": "graph", "seed": 0})
    engine = StudyEngine(
        spec=spec,
        storage_url=storage_url,
        sharing_spaces=fakes.SHARING_SPACES,
        intermediate_reports=False,
        embed=embed,
    )
    try:
        source, scores = engine.startup_prior(screens=[])
    finally:
        engine.close()
    assert source == "textemb"
    assert scores == pytest.approx({"good": 1.0, "bad": -1.0, "meh": 0.0})


def test_prior_records_given_to_open_are_the_ones_the_graph_sampler_gets(
    storage_url: str, fakes: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    from taskgraph.search import creation
    from taskgraph.search.samplers import build_sampler

    first = make_spec(seeds=1, budget={"trials": 2}, sampler={"name": "random", "seed": 0})
    engine = make_engine(first, storage_url, fakes.FakeEvaluator(), fakes)
    engine.run()
    engine.close()
    given: dict[str, Any] = {}

    def spy(*args: Any, **kwargs: Any) -> Any:
        given.update(kwargs)
        return build_sampler(*args, **kwargs)

    monkeypatch.setattr(creation, "build_sampler", spy)
    guided = make_spec(name="guided", seeds=1, sampler={"name": "graph", "seed": 0})
    engine = StudyEngine(
        spec=guided, storage_url=storage_url, sharing_spaces=fakes.SHARING_SPACES, embed=no_text
    )
    try:
        assert engine.prior_records()  # the other study's records are there to read...
        engine.open(prior_records=[])
        assert given["prior_records"] == []  # ...but the caller's choice wins
    finally:
        engine.close()


# -- stopping --------------------------------------------------------------------------------


def test_a_trial_another_driver_runs_counts_against_the_budget(
    storage_url: str, fakes: ModuleType
) -> None:
    engine = make_engine(
        make_spec(seeds=1, budget={"trials": 2}), storage_url, fakes.FakeEvaluator(), fakes
    )
    try:
        engine.run(max_trials=1)
        # A second driver asked the last trial the budget allows and is training it.
        optuna.load_study(study_name="fake", storage=storage_url).ask()
        stop = engine.check_stop()
        assert stop is not None and stop.reason == "budget"
        assert (stop.progress.n_done, stop.progress.n_running) == (1, 1)
    finally:
        engine.close()


class FailingEvaluator:
    """Fails every trial with an auxiliary, with ``reasons`` in turn; the rest as the fake."""

    def __init__(self, inner: Any, reasons: list[str]) -> None:
        self.inner = inner
        self.reasons = list(reasons)

    def evaluate(self, config: TrialConfig, **kwargs: Any) -> TrialResult:
        """Return the next reason's failure for a trial with auxiliaries, else ``inner``'s."""
        if config.auxiliaries:
            return TrialResult.failed(self.reasons.pop(0), cost=Cost(seconds=0.01))
        return self.inner.evaluate(config, **kwargs)


def test_the_stop_line_names_the_latest_failure_by_its_first_line_cut_to_300(
    storage_url: str, fakes: ModuleType
) -> None:
    latest = "CUDA out of memory " + "x" * 400
    evaluator = FailingEvaluator(
        fakes.FakeEvaluator(), ["the first failure", f"{latest}\nTraceback (most recent call last)"]
    )
    spec = make_spec(
        search={"auxiliaries": {"include": ["good"]}}, budget={"trials": 10, "max_failures": 1}
    )
    engine = make_engine(spec, storage_url, evaluator, fakes)
    try:
        summary = engine.run()
    finally:
        engine.close()
    assert summary.reason == "max_failures"
    head = "2 trials failed (budget.max_failures is 1); the last: "
    assert summary.detail == head + latest[:297] + "..."


# -- finishing and interrupting trials -------------------------------------------------------


def test_interrupting_a_trial_that_is_already_finished_leaves_it_as_it_is(
    storage_url: str, fakes: ModuleType
) -> None:
    engine = make_engine(make_spec(seeds=1), storage_url, fakes.FakeEvaluator(), fakes)
    try:
        engine.run(max_trials=1)
        (done,) = engine.require_study().get_trials()
        # What the Ray driver does when Tune reports a trial ended that another path told.
        engine.interrupt(engine.trial(storage_id(done)))
        (after,) = engine.require_study().get_trials()
    finally:
        engine.close()
    assert after.state == optuna.trial.TrialState.COMPLETE and after.value == done.value
    assert INTERRUPTED_ATTR not in after.user_attrs  # and no retry enqueued for it


def test_the_baseline_of_a_later_family_is_never_pruned(
    storage_url: str, fakes: ModuleType
) -> None:
    # Every searched trial scores above the baseline at each evaluation, so the median rule
    # would prune the second family's baseline: every other trial's gain is measured by it.
    median = make_spec(pruner={"name": "median", "n_startup_trials": 1, "n_warmup_steps": 0})
    spec = family_spec().model_copy(update={"pruner": median.pruner})
    engine = make_engine(spec, storage_url, fakes.FakeEvaluator(), fakes)
    try:
        engine.run()
        trials = engine.require_study().get_trials()
    finally:
        engine.close()
    baselines = [t for t in trials if t.user_attrs.get(ROLE_ATTR) == BASELINE_ROLE]
    assert len(baselines) == 2
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in baselines)


class SeedWatcher(EngineObserver):
    """Keeps the seed index of every progress step by trial."""

    def __init__(self) -> None:
        self.seeds: dict[int, set[int]] = {}

    def on_trial_progress(self, number: int, step: TrialStep) -> None:
        self.seeds.setdefault(number, set()).add(step.seed_index)


def test_each_seeds_progress_is_shown_as_that_seed(storage_url: str, fakes: ModuleType) -> None:
    watcher = SeedWatcher()
    engine = StudyEngine(
        spec=make_spec(seeds=2, budget={"trials": 1}),
        storage_url=storage_url,
        evaluator=fakes.FakeEvaluator(),
        sharing_spaces=fakes.SHARING_SPACES,
        observer=watcher,
    )
    try:
        engine.run()
    finally:
        engine.close()
    assert watcher.seeds == {0: {0, 1}}


def test_a_retry_resumes_from_the_checkpoint_of_the_trial_it_replaces(
    storage_url: str, fakes: ModuleType
) -> None:
    spec = make_spec(seeds=1, budget={"trials": 3})
    engine = make_engine(spec, storage_url, fakes.FakeEvaluator(interrupt_on=2), fakes)
    with pytest.raises(KeyboardInterrupt):
        engine.run()
    engine.close()
    resumed = fakes.FakeEvaluator()
    engine = make_engine(spec, storage_url, resumed, fakes)
    try:
        engine.run(max_trials=1)  # the retry (trial 2) of interrupted trial 1 runs first
    finally:
        engine.close()
    # The checkpoint trial 1 saved before Ctrl-C is found under its key, not trained again.
    assert resumed.checkpoint_keys == ["trial-1"]
