"""Crash safety pinned down where the suite left it loose: what a resume does with a killed
driver's trials, and the locks and heartbeats that tell a live driver from a dead one.

* Recovery at open (:class:`~taskgraph.search.recovery.TrialRecovery`): a trial already stale
  is failed without a wait; a dead trial whose heartbeat is fresh is failed after exactly one
  grace period plus interval, a live one is left alone after one poll; the queue is filled
  under the setup lock, from the trials as they are after the wait and the re-queuing; lost
  trials are re-queued once each, within ``max_retry`` but for the baseline (one per family)
  and trials with stored runs; a failed trial's lost runs are written, and the count written
  is of runs.  The wait runs on a fake clock, and the database clock is moved with it by
  shifting the heartbeat rows, so nothing sleeps.
* Stale trials (:func:`~taskgraph.search.heartbeat.fail_stale_trials`,
  :class:`~taskgraph.search.heartbeat.RetryStaleTrial`): a beat late by more than an interval
  but within the grace period is not stale, a stored failure is not marked interrupted, a
  race on one trial does not skip the others' marks, ``max_retry`` holds, and the caller's
  trial is left as it was.
* :class:`~taskgraph.search.heartbeat.Heartbeat`: a trial is beaten as it is added, a
  discarded one is no longer beaten, and one trial's failing beat or a failing keeper does not
  stop the others.
* Locks (:mod:`taskgraph.locking`, :mod:`taskgraph.storage.locks`): the setup lock excludes
  other holders every time it is taken (also on PostgreSQL), a driver waits while a ``study
  delete`` holds its study, the delete lets go when it is done, a refused try leaks no
  descriptor, the liveness lock works for every study name on PostgreSQL, and its
  reconnection waits a short time.
"""

from __future__ import annotations

import datetime
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import optuna
import pytest
import sqlalchemy
from optuna.storages._rdb import models as optuna_models
from optuna.trial import FrozenTrial, TrialState

from taskgraph.locking import file_lock, lock_descriptor
from taskgraph.search import recovery as recovery_module
from taskgraph.search.engine import StudyEngine
from taskgraph.search.heartbeat import (
    Heartbeat,
    RetryStaleTrial,
    fail_stale_trials,
    keep_every_beat,
    make_optuna_storage,
    quiet_optuna,
    storage_id,
)
from taskgraph.search.progress import (
    FAILURE_ATTR,
    INTERRUPTED_ATTR,
    INTERRUPTED_BY_ATTR,
    RETRY_OF_ATTR,
)
from taskgraph.search.recovery import TrialRecovery
from taskgraph.search.space import BASELINE_ROLE, FAMILY_ATTR, ROLE_ATTR
from taskgraph.spec import StudySpec, spec_from_dict
from taskgraph.storage import locks
from taskgraph.storage.locks import (
    hold_driver_lock,
    lock_file,
    no_driver,
    setup_lock,
)
from taskgraph.storage.optuna_rdb import RetryingRDBStorage
from taskgraph.storage.testing import PostgresServer
from taskgraph.trial import TrialResult

pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed")

# An interval of 4 s or more: the wait polls once a second.
GRACE_S = 20
INTERVAL_S = 8
READ_S = 0.1  # the fake clock's time between two of its reads


def make_spec(**overrides: Any) -> StudySpec:
    data: dict[str, Any] = {
        "name": "crash",
        "target": "tgt",
        "candidates": ["good", "bad", "meh"],
        "search": {"sharing": ["hard", "soft"]},
        "sampler": {"name": "random", "seed": 0},
        "pruner": "none",
        "budget": {"trials": 3},
        "seeds": 1,
        "recovery": {"heartbeat_interval": INTERVAL_S, "grace_period": GRACE_S},
    }
    data.update(overrides)
    return spec_from_dict(data)


# -- recovery at open, on a fake clock ---------------------------------------------------------


class FakeQueue:
    """The queue planner's place: records whether the setup lock was held when it filled, and
    the states of the trials it was given (by number)."""

    def __init__(self, url: str) -> None:
        path = lock_file(url)
        assert path is not None
        self.lock_file = path
        self.filled_under_lock: list[bool] = []
        self.seen: dict[int, TrialState] = {}

    def fill(self, study: optuna.Study, trials: list[FrozenTrial]) -> list[FrozenTrial]:
        fd = lock_descriptor(self.lock_file, wait=False)  # another driver would wait
        if fd is not None:
            os.close(fd)
        self.filled_under_lock.append(fd is None)
        self.seen = {t.number: t.state for t in trials}
        return trials


def shift_heartbeats(
    storage: RetryingRDBStorage, seconds: float, *, trial_id: int | None = None
) -> None:
    """Move the heartbeat of ``trial_id`` (of every trial: ``None``) ``seconds`` later."""
    beat = optuna_models.TrialHeartbeatModel
    with storage.engine.begin() as connection:
        query = sqlalchemy.select(beat.trial_heartbeat_id, beat.heartbeat)
        if trial_id is not None:
            query = query.where(beat.trial_id == trial_id)
        for row_id, when in list(connection.execute(query)):
            connection.execute(
                sqlalchemy.update(beat)
                .where(beat.trial_heartbeat_id == row_id)
                .values(heartbeat=when + datetime.timedelta(seconds=seconds))
            )


def age_heartbeats(storage: RetryingRDBStorage, seconds: float) -> None:
    """Move every heartbeat ``seconds`` into the past: its driver died that long ago."""
    shift_heartbeats(storage, -seconds)


class FakeClock:
    """``time`` for the recovery module, and the database's clock moved with it.

    Each sleep moves the clock, and the trials in ``live`` are beaten then by their (live)
    driver; each read of the clock moves it a tenth of a second (the database reads between
    two polls); ``sleep_ends`` holds the time each sleep ended.  A
    heartbeat is written by the database's clock, ahead of the real one by the fake seconds
    gone by; :meth:`catch_up` (before Optuna looks for stale trials, which reads the real
    clock) moves every heartbeat back by as much.
    """

    def __init__(
        self,
        storage: RetryingRDBStorage,
        monkeypatch: pytest.MonkeyPatch,
        live: tuple[int, ...] = (),
    ) -> None:
        self.storage = storage
        self.live = live
        self.now = self.synced = 1000.0
        self.slept: list[float] = []
        self.sleep_ends: list[float] = []
        record = storage.record_heartbeat

        def record_by_the_database_clock(trial_id: int) -> None:
            record(trial_id)
            shift_heartbeats(storage, self.now - self.synced, trial_id=trial_id)

        monkeypatch.setattr(storage, "record_heartbeat", record_by_the_database_clock)

    def monotonic(self) -> float:
        now = self.now
        self.now += READ_S
        return now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept.append(seconds)
        self.sleep_ends.append(self.now)
        for trial_id in self.live:
            self.storage.record_heartbeat(trial_id)

    def catch_up(self) -> None:
        shift_heartbeats(self.storage, self.synced - self.now)
        self.synced = self.now


class Opening:
    """A study on SQLite with heartbeats, and the recovery a driver opening it runs."""

    def __init__(self, url: str, *, max_retry: int = 3) -> None:
        self.url = url
        self.spec = make_spec()
        self.storage = make_optuna_storage(
            url, heartbeat_interval=INTERVAL_S, grace_period=GRACE_S, max_retry=max_retry
        )
        with quiet_optuna():
            self.study = optuna.create_study(study_name="crash", storage=self.storage)
        self.queue = FakeQueue(url)
        self.waits: list[tuple[float, int]] = []
        self.failed_under_lock: list[bool] = []

    def ask(self, **user_attrs: Any) -> optuna.Trial:
        """Ask a trial (RUNNING, no heartbeat row yet) with ``user_attrs``."""
        with quiet_optuna():
            trial = self.study.ask()
        for key, value in user_attrs.items():
            trial.set_user_attr(key, value)
        return trial

    def recover(self, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> list[FrozenTrial]:
        monkeypatch.setattr(recovery_module, "time", clock)

        def fail_stale(study: optuna.Study, storage: RetryingRDBStorage) -> None:
            fd = lock_descriptor(self.queue.lock_file, wait=False)  # another driver would wait
            if fd is not None:
                os.close(fd)
            self.failed_under_lock.append(fd is None)
            clock.catch_up()
            fail_stale_trials(study, storage)

        monkeypatch.setattr(recovery_module, "fail_stale_trials", fail_stale)
        recovery = TrialRecovery(
            spec=self.spec,
            storage=self.storage,
            storage_url=self.url,
            repository=None,  # type: ignore[arg-type]  # recover_and_queue writes no record
            recorder=None,  # type: ignore[arg-type]
            queue=self.queue,  # type: ignore[arg-type]
        )
        with quiet_optuna():
            return recovery.recover_and_queue(
                self.study, on_wait=lambda seconds, n: self.waits.append((seconds, n))
            )

    def trial(self, trial: optuna.Trial) -> FrozenTrial:
        return self.storage.get_trial(storage_id(trial))

    def retries_of(self, trial: optuna.Trial) -> list[FrozenTrial]:
        return [
            t
            for t in self.study.get_trials(deepcopy=False)
            if t.system_attrs.get("failed_trial") == trial.number
        ]


@pytest.fixture
def opening(storage_url: str) -> Iterator[Opening]:
    opened = Opening(storage_url)
    yield opened
    opened.storage.engine.dispose()


def test_a_trial_already_stale_is_failed_and_retried_without_a_wait(
    opening: Opening, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = opening.ask()
    opening.storage.record_heartbeat(storage_id(dead))
    age_heartbeats(opening.storage, GRACE_S + 1)  # its driver died a grace period ago
    clock = FakeClock(opening.storage, monkeypatch)

    opening.recover(clock, monkeypatch)

    assert opening.waits == [] and clock.slept == []  # nothing left to wait for
    assert opening.trial(dead).state == TrialState.FAIL
    assert opening.trial(dead).user_attrs[INTERRUPTED_ATTR] is True
    assert len(opening.retries_of(dead)) == 1
    assert opening.queue.filled_under_lock == [True]


def test_a_dead_trial_with_a_fresh_heartbeat_is_failed_after_one_grace_period(
    opening: Opening, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two dead drivers' trials, one that beat a moment before the kill, one killed before its
    # first beat (no heartbeat row: the opening driver beats it once).
    beaten, unbeaten = opening.ask(), opening.ask()
    opening.storage.record_heartbeat(storage_id(beaten))
    clock = FakeClock(opening.storage, monkeypatch)
    started = clock.now

    opening.recover(clock, monkeypatch)

    wait = GRACE_S + INTERVAL_S
    assert opening.waits == [(wait, 2)]  # announced: the seconds and the running trials
    # The whole wait, and no sleep past its end.
    assert clock.now - started >= wait
    assert max(clock.sleep_ends) <= started + wait + 2 * READ_S
    for dead in (beaten, unbeaten):
        frozen = opening.trial(dead)
        assert frozen.state == TrialState.FAIL, dead.number
        assert frozen.user_attrs[INTERRUPTED_BY_ATTR].startswith("its driver stopped beating")
        (retry,) = opening.retries_of(dead)
        assert retry.state == TrialState.WAITING
    # Filled after the wait, under the setup lock (two drivers opening at once would each
    # re-queue the same lost trial), from the trials as they are then.
    assert opening.queue.filled_under_lock == [True]
    # Stale trials are failed under it too, before and after the wait: on SQLite two drivers
    # opening at once each failed the same stale trial and each enqueued its retry.
    assert opening.failed_under_lock == [True, True]
    assert opening.queue.seen == {
        0: TrialState.FAIL,
        1: TrialState.FAIL,
        2: TrialState.WAITING,
        3: TrialState.WAITING,
    }


@pytest.mark.parametrize("row", [True, False], ids=["beating", "before-its-first-beat"])
def test_a_live_drivers_trial_is_left_alone_after_one_poll(
    opening: Opening, monkeypatch: pytest.MonkeyPatch, row: bool
) -> None:
    # A driver started beside a live one.  A trial asked a moment ago has no heartbeat row
    # yet: its live driver records its first beat during the wait, which must count.
    theirs = opening.ask()
    if row:
        opening.storage.record_heartbeat(storage_id(theirs))
    clock = FakeClock(opening.storage, monkeypatch, live=(storage_id(theirs),))

    opening.recover(clock, monkeypatch)

    assert opening.waits == [(GRACE_S + INTERVAL_S, 1)]
    assert sum(clock.slept) <= 1.0  # polled within a second, not the whole grace period
    frozen = opening.trial(theirs)
    assert frozen.state == TrialState.RUNNING
    assert INTERRUPTED_ATTR not in frozen.user_attrs
    assert opening.retries_of(theirs) == []


def test_max_retry_holds_for_a_stale_trial_without_stored_runs(
    storage_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    opening = Opening(storage_url, max_retry=0)
    try:
        plain = opening.ask()
        baseline = opening.ask(**{ROLE_ATTR: BASELINE_ROLE})
        for trial in (plain, baseline):
            opening.storage.record_heartbeat(storage_id(trial))
        age_heartbeats(opening.storage, GRACE_S + 1)

        opening.recover(FakeClock(opening.storage, monkeypatch), monkeypatch)

        assert opening.trial(plain).state == TrialState.FAIL
        assert opening.retries_of(plain) == []  # max_retry: 0
        assert len(opening.retries_of(baseline)) == 1  # the reference runs whatever the budget
    finally:
        opening.storage.engine.dispose()


# -- lost trials re-queued on open (requeue_lost) ----------------------------------------------


def _interrupted(opening: Opening, **user_attrs: Any) -> optuna.Trial:
    """Return a trial failed by an interruption (no failure stored), with no retry."""
    trial = opening.ask(**user_attrs)
    opening.storage.set_trial_state_values(storage_id(trial), state=TrialState.FAIL)
    return trial


def _requeue(opening: Opening) -> bool:
    recovery = TrialRecovery(
        spec=opening.spec,
        storage=opening.storage,
        storage_url=opening.url,
        repository=None,  # type: ignore[arg-type]
        recorder=None,  # type: ignore[arg-type]
        queue=opening.queue,  # type: ignore[arg-type]
    )
    with quiet_optuna():
        return recovery.requeue_lost(opening.study, opening.study.get_trials(deepcopy=False))


def test_a_lost_trial_without_stored_runs_is_not_requeued_past_max_retry(
    opening: Opening,
) -> None:
    lost = _interrupted(opening)
    assert _requeue(opening) is False
    assert opening.retries_of(lost) == []


def test_a_lost_baseline_is_not_requeued_while_its_family_has_a_baseline(
    opening: Opening,
) -> None:
    lost = _interrupted(opening, **{ROLE_ATTR: BASELINE_ROLE, FAMILY_ATTR: "bert"})
    other = _interrupted(opening, **{ROLE_ATTR: BASELINE_ROLE, FAMILY_ATTR: "roberta"})
    with quiet_optuna():
        opening.study.enqueue_trial({}, user_attrs={ROLE_ATTR: BASELINE_ROLE, FAMILY_ATTR: "bert"})
    assert _requeue(opening) is True
    assert opening.retries_of(lost) == []  # bert's baseline waits already
    assert len(opening.retries_of(other)) == 1


def test_the_queue_is_filled_from_the_trials_with_the_lost_ones_requeued(
    opening: Opening, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The planner would otherwise find a family or data-version baseline missing and
    # enqueue a second one beside the retry.
    lost = _interrupted(opening, **{ROLE_ATTR: BASELINE_ROLE})
    opening.recover(FakeClock(opening.storage, monkeypatch), monkeypatch)
    (retry,) = opening.retries_of(lost)
    assert opening.queue.seen == {lost.number: TrialState.FAIL, retry.number: TrialState.WAITING}


def test_two_lost_baselines_of_one_family_are_requeued_once(opening: Opening) -> None:
    first = _interrupted(opening, **{ROLE_ATTR: BASELINE_ROLE, FAMILY_ATTR: "bert"})
    second = _interrupted(opening, **{ROLE_ATTR: BASELINE_ROLE, FAMILY_ATTR: "bert"})
    assert _requeue(opening) is True
    assert len(opening.retries_of(first)) + len(opening.retries_of(second)) == 1


# -- stale trials: marks and retries ----------------------------------------------------------


def test_a_trial_that_beat_within_the_grace_period_is_not_stale(opening: Opening) -> None:
    # Its last beat is late by more than an interval (a busy database, a long pause of the
    # driver) but within the grace period: its driver is alive.
    late = opening.ask()
    opening.storage.record_heartbeat(storage_id(late))
    age_heartbeats(opening.storage, INTERVAL_S + 2)
    with quiet_optuna():
        fail_stale_trials(opening.study, opening.storage)
    assert opening.trial(late).state == TrialState.RUNNING
    assert INTERRUPTED_ATTR not in opening.trial(late).user_attrs


def test_a_stale_trial_that_stored_its_failure_is_not_marked_interrupted(
    opening: Opening,
) -> None:
    failed = opening.ask(**{FAILURE_ATTR: "loss is NaN"})
    opening.storage.record_heartbeat(storage_id(failed))
    age_heartbeats(opening.storage, GRACE_S + 1)
    with quiet_optuna():
        fail_stale_trials(opening.study, opening.storage)
    frozen = opening.trial(failed)
    assert frozen.state == TrialState.FAIL
    assert INTERRUPTED_ATTR not in frozen.user_attrs  # its failure alone
    assert frozen.user_attrs[FAILURE_ATTR] == "loss is NaN"


def test_a_trial_another_driver_failed_first_does_not_skip_the_others_marks(
    opening: Opening, monkeypatch: pytest.MonkeyPatch
) -> None:
    done, stale = opening.ask(), opening.ask()
    opening.storage.record_heartbeat(storage_id(stale))
    age_heartbeats(opening.storage, GRACE_S + 1)
    # Listed stale, then told by another driver before this one marks it.
    opening.storage.set_trial_state_values(storage_id(done), state=TrialState.FAIL)
    listed = opening.storage.stale_trial_ids
    monkeypatch.setattr(
        opening.storage, "stale_trial_ids", lambda study_id: [storage_id(done), *listed(study_id)]
    )
    with quiet_optuna():
        fail_stale_trials(opening.study, opening.storage)
    assert opening.trial(stale).state == TrialState.FAIL
    assert opening.trial(stale).user_attrs[INTERRUPTED_ATTR] is True


def test_a_retry_leaves_the_callers_trial_as_it_was(opening: Opening) -> None:
    trial = _interrupted(opening, **{INTERRUPTED_ATTR: True, INTERRUPTED_BY_ATTR: "Ctrl-C"})
    frozen = opening.trial(trial)
    with quiet_optuna():
        RetryStaleTrial(max_retry=3)(opening.study, frozen)
    assert frozen.user_attrs == {INTERRUPTED_ATTR: True, INTERRUPTED_BY_ATTR: "Ctrl-C"}
    (retry,) = opening.retries_of(trial)
    assert retry.user_attrs == {RETRY_OF_ATTR: trial.number}


# -- records a crash lost, written on open ----------------------------------------------------


class _AlwaysFails:
    def evaluate(
        self, config: Any, *, callbacks: Any = (), checkpoint_key: str | None = None
    ) -> TrialResult:
        return TrialResult.failed("fake failure: loss is NaN")


def _run_without_records(
    spec: StudySpec, url: str, evaluator: Any, fakes: ModuleType
) -> StudyEngine:
    engine = StudyEngine(
        spec=spec, storage_url=url, evaluator=evaluator, sharing_spaces=fakes.SHARING_SPACES
    )
    original = engine.write_records
    engine.write_records = lambda number, outcome: None  # type: ignore[method-assign]
    engine.run()
    engine.write_records = original  # type: ignore[method-assign]
    return engine


def test_a_failed_trials_lost_records_are_written_on_open(
    storage_url: str, fakes: ModuleType
) -> None:
    from taskgraph.storage import open_repository

    spec = make_spec(budget={"trials": 2, "max_failures": 10})
    engine = _run_without_records(spec, storage_url, _AlwaysFails(), fakes)
    try:
        assert engine.reconcile() == 2
    finally:
        engine.close()
    with open_repository(storage_url) as repo:
        runs = repo.runs(study="crash")
    assert sorted((r.trial_number, r.status) for r in runs) == [(0, "failed"), (1, "failed")]


def test_reconcile_counts_the_runs_it_wrote(storage_url: str, fakes: ModuleType) -> None:
    spec = make_spec(seeds=2, budget={"trials": 2})
    engine = _run_without_records(spec, storage_url, fakes.FakeEvaluator(), fakes)
    try:
        assert engine.reconcile() == 4  # 2 trials of 2 seeds
        assert engine.reconcile() == 0
    finally:
        engine.close()


# -- the heartbeat thread ---------------------------------------------------------------------


class BeatLog:
    """A storage stand-in that logs each heartbeat; beating ``refused`` raises, but for its
    first beat (:meth:`Heartbeat.add`'s)."""

    def __init__(self, refused: int | None = None) -> None:
        self.beats: list[int] = []
        self.refused = refused
        self.lock = threading.Lock()

    def record_heartbeat(self, trial_id: int) -> None:
        with self.lock:
            self.beats.append(trial_id)
            again = self.beats.count(trial_id) > 1
        if trial_id == self.refused and again:
            raise RuntimeError("a finished trial")

    def count(self, trial_id: int) -> int:
        with self.lock:
            return self.beats.count(trial_id)


def wait_for(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_a_trial_is_beaten_as_it_is_added() -> None:
    # Not one interval later: a driver opening the study meanwhile would find no heartbeat
    # and beat it itself, then wait for a beat until the interval is out.
    log = BeatLog()
    with Heartbeat(storage=log, interval=60) as beating:  # type: ignore[arg-type]
        beating.add(7)
        assert log.beats == [7]


def test_a_discarded_trial_is_no_longer_beaten() -> None:
    log = BeatLog()
    with Heartbeat(storage=log, interval=0.01) as beating:  # type: ignore[arg-type]
        beating.add(1)
        beating.add(2)
        assert wait_for(lambda: log.count(1) >= 3)
        beating.discard(1)
        before = log.count(1)
        after = log.count(2)
        assert wait_for(lambda: log.count(2) >= after + 5)
    assert log.count(1) <= before + 1  # at most a beat that was under way


def test_a_failing_beat_or_keeper_does_not_stop_the_other_beats() -> None:
    log = BeatLog(refused=1)  # set iteration beats 1 before 2
    kept: list[float] = []

    def keep() -> None:
        kept.append(time.monotonic())
        raise RuntimeError("the liveness lock is lost")

    keep_every_beat(log, keep)
    try:
        with Heartbeat(storage=log, interval=0.01) as beating:  # type: ignore[arg-type]
            beating.add(1)
            beating.add(2)
            assert wait_for(lambda: log.count(2) >= 5 and len(kept) >= 3)
    finally:
        keep_every_beat(log, None)


# -- the locks --------------------------------------------------------------------------------


def test_file_lock_is_exclusive_and_let_go_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    with file_lock(path):
        assert lock_descriptor(path, shared=True, wait=False) is None
    fd = lock_descriptor(path, wait=False)
    assert fd is not None
    os.close(fd)


def test_a_refused_try_leaves_no_descriptor_open(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    with file_lock(path):
        before = len(os.listdir("/proc/self/fd"))
        for _ in range(5):
            assert lock_descriptor(path, wait=False) is None
        assert len(os.listdir("/proc/self/fd")) == before


def test_the_sqlite_setup_lock_is_taken_every_time_not_only_the_first(tmp_path: Path) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'records.db'}"
    path = lock_file(sqlite_url)
    assert path is not None
    for _ in range(2):
        with setup_lock(sqlite_url):
            assert lock_descriptor(path, wait=False) is None  # another process would wait
        fd = lock_descriptor(path, wait=False)
        assert fd is not None
        os.close(fd)


def _pg_url(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database(f"t_{uuid.uuid4().hex[:16]}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'records.db'}"
    return _pg_url(request.getfixturevalue("postgres_server"))


def _in_thread(take: Callable[[], Any]) -> tuple[threading.Thread, threading.Event, list[Any]]:
    """Start ``take`` on a daemon thread; return it, an event set when ``take`` returned,
    and a list that gets what it returned."""
    done = threading.Event()
    got: list[Any] = []

    def run() -> None:
        got.append(take())
        done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, done, got


def test_a_driver_waits_while_a_delete_holds_its_study_and_starts_after(any_url: str) -> None:
    with no_driver(any_url, "demo") as free:
        assert free
        thread, done, got = _in_thread(lambda: hold_driver_lock(any_url, "demo"))
        assert not done.wait(0.5)  # the delete goes on; the driver waits for it
    assert done.wait(10)  # the delete is over: its lock went with it
    thread.join()
    (lock,) = got
    try:
        with no_driver(any_url, "demo") as free:
            assert not free  # and the driver holds its study now
    finally:
        lock.release()


@pytest.mark.postgres
def test_the_postgres_setup_lock_waits_for_another_holder(
    postgres_server: PostgresServer,
) -> None:
    url = _pg_url(postgres_server)
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as other:  # another driver's session, holding the setup lock
            other.execute(
                sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": locks._SETUP_LOCK_KEY}
            )

            def take() -> bool:
                with setup_lock(url):
                    return True

            thread, done, _ = _in_thread(take)
            assert not done.wait(0.5)
            other.execute(
                sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": locks._SETUP_LOCK_KEY}
            )
            assert done.wait(10)
            thread.join()
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_the_postgres_liveness_lock_works_for_every_study_name(
    postgres_server: PostgresServer,
) -> None:
    # The advisory lock's key is 64 bits of the name's hash: half the names set the top bit.
    url = _pg_url(postgres_server)
    names = [f"study-{i}" for i in range(8)]
    assert any(locks._driver_key(name) < 0 for name in names)
    for name in names:
        lock = hold_driver_lock(url, name)
        try:
            with no_driver(url, name) as free:
                assert not free, name
        finally:
            lock.release()
        with no_driver(url, name) as free:
            assert free, name


@pytest.mark.postgres
def test_the_liveness_lock_connects_again_with_a_short_timeout(
    postgres_server: PostgresServer,
) -> None:
    # keep() runs on the heartbeat thread: a server that does not answer must not hold the
    # trials' heartbeats up for long.
    url = _pg_url(postgres_server)
    seen: list[dict[str, Any]] = []

    def record(dialect: Any, conn_rec: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        seen.append(cparams)  # the dict itself: a listener after this one fills it

    lock = hold_driver_lock(url, "demo")
    try:
        sqlalchemy.event.listen(sqlalchemy.engine.Engine, "do_connect", record)
        try:
            engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
            try:
                with engine.connect() as connection:
                    connection.execute(
                        sqlalchemy.text(
                            "SELECT pg_terminate_backend(pid) FROM pg_locks "
                            "WHERE locktype = 'advisory' AND mode = 'ShareLock' AND database = "
                            "(SELECT oid FROM pg_database WHERE datname = current_database())"
                        )
                    )
            finally:
                engine.dispose()
            seen.clear()
            deadline = time.monotonic() + 10
            while not lock.keep():  # the session ends a moment after the terminate
                assert time.monotonic() < deadline
                time.sleep(0.05)
        finally:
            sqlalchemy.event.remove(sqlalchemy.engine.Engine, "do_connect", record)
        assert seen and all(0 < int(params.get("connect_timeout", 0)) <= 3 for params in seen), seen
    finally:
        lock.release()
