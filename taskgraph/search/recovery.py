"""Recovery at open: stale and lost trials retried, and the runs the records database lacks written.

A driver killed mid-trial leaves a RUNNING trial (failed once its heartbeat is stale, then
retried), maybe a lost retry (re-queued here), and maybe finished trials whose runs were not
all written to the records database (written here from the runs stored on the trial).
:class:`TrialRecovery` does this when the engine opens a study, then fills the queue
(:class:`~taskgraph.search.queueing.QueuePlanner`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from taskgraph.search.heartbeat import (
    RetryStaleTrial,
    always_retried,
    fail_stale_trials,
    storage_id,
)
from taskgraph.search.outcome import TrialOutcome
from taskgraph.search.progress import (
    REPEATS_ATTR,
    retried_numbers,
    trial_results,
    trial_state,
)
from taskgraph.search.queueing import QueuePlanner
from taskgraph.search.repeats import repeat_held
from taskgraph.search.space import BASELINE_ROLE, FAMILY_ATTR, ROLE_ATTR
from taskgraph.spec.models import StudySpec
from taskgraph.storage.locks import setup_lock

if TYPE_CHECKING:
    from taskgraph.search.recording import RecordWriter
    from taskgraph.storage.optuna_rdb import RetryingRDBStorage
    from taskgraph.storage.repository import Repository

__all__ = ["TrialRecovery"]


class TrialRecovery:
    """Retries a study's stale and lost trials, fills its queue (``queue``) and writes the
    runs its records lack.

    ``spec``: the study's (its name and ``recovery`` settings); ``storage`` and
    ``storage_url``: Optuna's storage and the URL whose setup lock drivers take turns under;
    ``repository`` and ``recorder``: the records database and the writer's fingerprints.
    """

    def __init__(
        self,
        *,
        spec: StudySpec,
        storage: RetryingRDBStorage,
        storage_url: str,
        repository: Repository,
        recorder: RecordWriter,
        queue: QueuePlanner,
    ) -> None:
        self.spec = spec
        self.storage = storage
        self.storage_url = storage_url
        self.repository = repository
        self.recorder = recorder
        self.queue = queue

    def recover_and_queue(
        self, study: optuna.Study, *, on_wait: Callable[[float, int], None]
    ) -> list[FrozenTrial]:
        """Fail stale trials, then fill the queue (:meth:`_fill_queue`); return the trials.

        Stale trials are failed and the trials read once under the setup lock; only when some
        are running (a wait follows, outside the lock, announced to ``on_wait`` with its
        seconds and the number of running trials) is it done again.
        """
        # Two drivers opening the study at once would each re-queue the same lost trial, and
        # each fail (and retry) the same stale one: SQLite takes no row lock on a trial, so
        # both saw it running.  Failing stale trials is short: it is done under the lock too.
        with setup_lock(self.storage_url):
            fail_stale_trials(study, self.storage)
            trials = study.get_trials(deepcopy=False)
            running = [storage_id(t) for t in trials if t.state == TrialState.RUNNING]
            if not running:
                return self._fill_queue(study, trials)
            # A driver killed between ``study.ask()`` and the trial's first heartbeat leaves a
            # RUNNING trial without a heartbeat row, which Optuna never finds stale: beat
            # once for each such trial, so it goes stale one grace period from now.  Only
            # those: a trial that has a row is beaten by its driver alone, so a change of its
            # heartbeat from here on means that driver is alive (another driver opening the
            # study meanwhile finds the row, under this lock, and beats nothing).
            seen = self.storage.heartbeat_times(running)
            for trial_id in running:
                if trial_id not in seen:
                    self.storage.record_heartbeat(trial_id)
            beaten = self.storage.heartbeat_times(running)
        # Trials of a run stopped moments ago still look alive: wait up to one grace period,
        # then whatever is still beating belongs to a live driver and is left alone.
        wait = self.spec.recovery.grace_period + self.spec.recovery.heartbeat_interval
        on_wait(wait, len(running))
        self._wait_for_running(beaten, running, wait)
        with setup_lock(self.storage_url):
            fail_stale_trials(study, self.storage)
            return self._fill_queue(study, study.get_trials(deepcopy=False))

    def _fill_queue(self, study: optuna.Study, trials: list[FrozenTrial]) -> list[FrozenTrial]:
        """Re-queue lost trials (:meth:`requeue_lost`), then fill the queue
        (:meth:`QueuePlanner.fill`); return the trials as last read.

        Call it under the setup lock.  The trials are read again only when lost trials were
        re-queued, so that the queue sees them.
        """
        if self.requeue_lost(study, trials):
            trials = study.get_trials(deepcopy=False)
        return self.queue.fill(study, trials)

    def _wait_for_running(
        self, beaten: Mapping[int, Any], trial_ids: Sequence[int], wait: float
    ) -> None:
        """Sleep until each of ``trial_ids`` has beaten since ``beaten`` (their heartbeats as
        read under the setup lock) or finished, which only their live driver does, or until
        ``wait`` seconds have passed (a dead driver's trial is stale by then).

        Drivers started beside a running one thus wait about one heartbeat interval rather
        than a whole grace period; a killed driver's trial still costs the full wait.
        """
        deadline = time.monotonic() + wait
        poll = min(1.0, self.spec.recovery.heartbeat_interval / 4)
        pending = set(trial_ids)
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(poll, left))
            running = {
                trial_id
                for trial_id in pending
                if self.storage.get_trial(trial_id).state == TrialState.RUNNING
            }
            now = self.storage.heartbeat_times(running)
            pending = {
                trial_id
                for trial_id in running
                if trial_id not in beaten or now.get(trial_id) == beaten[trial_id]
            }

    def requeue_lost(self, study: optuna.Study, trials: Sequence[FrozenTrial]) -> bool:
        """Retry the interrupted trials of ``trials`` that must run again and have no retry;
        return whether any was retried.

        A retry can be missing because ``recovery.max_retry`` ran out before
        :class:`RetryStaleTrial` retried the baseline and trials with stored runs whatever the
        budget (databases written before), or because the driver died between failing a stale
        trial and enqueuing its copy.  The baseline is re-queued only while no other baseline
        trial of its model family (``taskgraph:family``) is done, running or waiting.
        """
        retried = retried_numbers(trials)
        states = {t.number: trial_state(t, retried=retried) for t in trials}
        # Families with a baseline trial that is done, running or waiting (None: the first).
        alive = {
            t.user_attrs.get(FAMILY_ATTR)
            for t in trials
            if t.user_attrs.get(ROLE_ATTR) == BASELINE_ROLE and states[t.number] != "interrupted"
        }
        retry = RetryStaleTrial(max_retry=None)
        wrote = False
        for trial in trials:
            if states[trial.number] != "interrupted" or trial.number in retried:
                continue
            if not always_retried(trial):
                continue
            if trial.user_attrs.get(ROLE_ATTR) == BASELINE_ROLE:
                family = trial.user_attrs.get(FAMILY_ATTR)
                if family in alive:
                    continue
                alive.add(family)
            retry(study, self.storage.get_trial(storage_id(trial)))
            wrote = True
        return wrote

    def reconcile(
        self, trials: Sequence[FrozenTrial], *, write: Callable[[int, TrialOutcome], None]
    ) -> int:
        """Write, with ``write``, the runs of finished ``trials`` (the study's as read) that the
        records database lacks; return how many were written
        (:meth:`~taskgraph.search.engine.StudyEngine.reconcile`).

        Waiting trials enqueued since the read change nothing here: only evaluated trials have
        runs, and a retry marks as retried only a trial that was already interrupted.
        """
        stored = self.repository.run_keys(self.spec.name)
        held: dict[tuple[str, str, str, int], list[dict[str, str]]] | None = None
        retried = retried_numbers(trials)
        written = 0
        for trial in trials:
            # A trial killed after its runs were stored on it but before it was told is
            # failed by the heartbeat and retried with those runs: only the retry counts, so
            # only the retry is recorded (recording both would store one training twice).
            counted = trial_state(trial, retried=retried) in ("complete", "pruned", "failed")
            saved = trial_results(trial)
            if not counted or saved is None:
                continue
            outcome = TrialOutcome.from_list(saved)
            missing = tuple(
                run for run in outcome.runs if (trial.number, run.config.seed) not in stored
            )
            # A repeat's complete runs are the earlier trial's records; another trial's
            # complete run of the same configuration is its record too, unless it was on
            # other data (the data changed in between: this trial trained again).  The data a
            # run was trained on is what its stored result says (the files may have changed
            # since, or changed back), and what it is written with.
            repeat = trial.user_attrs.get(REPEATS_ATTR) is not None
            if missing:
                if held is None:
                    held = self.repository.complete_run_data(self.spec.name)
                missing = tuple(
                    run
                    for run in missing
                    if not repeat_held(
                        run,
                        held,
                        data=None
                        if repeat
                        else self.recorder.run_fingerprints(run.config, run.result),
                    )
                )
            if missing:
                write(trial.number, TrialOutcome(runs=missing))
                written += len(missing)
                # Read again for the next trial: a repeat's run is held by the run of its
                # original just written (counted once, as it is inserted once).
                held = None
        return written
