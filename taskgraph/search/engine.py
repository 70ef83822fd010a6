"""The study driver: Optuna study on the records database, ask/tell loop, records, resume.

One URL holds both Optuna's tables and taskgraph's ``tg_`` tables, so optuna-dashboard shows
every trial and the affinity code sees every record.  The driver (never a worker) finishes each
trial in this order, which makes interruptions at any point safe:

1. the seeds' runs are stored on the Optuna trial (system attribute ``taskgraph:results``);
2. the trial is told its true state (COMPLETE with the mean objective, PRUNED, or FAILED with
   the reason in ``taskgraph:failure``);
3. each seed's run is written to the records database in one transaction, idempotently on
   (study, trial, seed).

A crash between 2 and 3, or between two seeds' records of 3, is repaired when the study is
opened again (:meth:`StudyEngine.open` writes every (trial, seed) run of a finished trial that
the records database lacks).  A crash before 2 leaves the trial RUNNING; its heartbeat stops,
and on the next open ``fail_stale_trials`` fails it and
:class:`~taskgraph.search.heartbeat.RetryStaleTrial` enqueues a copy that runs first.  A trial
killed before its first heartbeat was recorded (between ``study.ask()`` and the first beat)
has no heartbeat for Optuna to find stale: opening beats once for every RUNNING trial, so such
a trial goes stale one grace period later unless a live driver beats it.  The baseline, and a
trial whose runs were stored before the kill, are retried whatever ``recovery.max_retry``
says; opening re-queues them if a crash lost their retry.  Ctrl-C, SIGTERM and any other
exception raised while a trial is evaluated (an observer's hook, a bug) fail the trial as
interrupted and enqueue its retry at once, then propagate; only a database that failed leaves
it RUNNING for the heartbeat.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any, Literal

import optuna
from optuna.trial import FrozenTrial, TrialState

from taskgraph.errors import StorageError
from taskgraph.evaluator import TrialEvaluator
from taskgraph.search.creation import StudyCreator
from taskgraph.search.dashboard_notes import write_trial_note
from taskgraph.search.heartbeat import (
    Heartbeat,
    RetryStaleTrial,
    deferred_interrupt,
    keep_every_beat,
    make_optuna_storage,
    optuna_warnings_only,
    quiet_optuna,
    storage_id,
)
from taskgraph.search.outcome import TrialOutcome, run_seeds
from taskgraph.search.progress import (
    CONFIG_ATTR,
    FAILURE_ATTR,
    INTERRUPTED_ATTR,
    INTERRUPTED_BY_ATTR,
    REPEATS_ATTR,
    RESULTS_ATTR,
    STARTUP_ATTR,
    STATUS_ATTR,
    StudyProgress,
    TrialStep,
    study_progress,
    trial_results,
)
from taskgraph.search.queueing import BASELINE_PER_TRIAL_KIND, QueuePlanner
from taskgraph.search.recording import RecordWriter
from taskgraph.search.recovery import TrialRecovery
from taskgraph.search.repeats import RepeatFinder
from taskgraph.search.space import BASELINE_ROLE, ROLE_ATTR, SearchSpace
from taskgraph.spec.models import StudySpec
from taskgraph.storage.engine import serialize_sqlite_transactions
from taskgraph.storage.locks import (
    DriverLock,
    DriverLockLostError,
    hold_driver_lock,
    setup_lock,
)
from taskgraph.storage.urls import mask_url
from taskgraph.trial import TrialConfig, TrialStatus

__all__ = ["EngineObserver", "RunSummary", "StopReason", "StudyEngine", "StudyVanishedError"]


#: ``exhausted``: the sampler has nothing left to propose (the graph sampler's ``max_repeats``).
StopReason = Literal["budget", "wall_time", "max_failures", "exhausted"]


class StudyVanishedError(StorageError):
    """The study was deleted while this driver ran it (by a taskgraph without the liveness
    lock, by ``optuna delete-study``, or while the driver's lock was down with its PostgreSQL
    connection): the driver stops, writing nothing more of it."""


# How a study was deleted under a driver whose PostgreSQL liveness lock dropped.
_LOCK_DOWN = (
    "while its liveness lock was down with its PostgreSQL connection: a server restart, an "
    "idle timeout or a terminated backend"
)


class EngineObserver:
    """No-op hooks the CLI overrides to show progress."""

    def on_open(self, progress: StudyProgress) -> None:
        """Called once the study is ready, before the first new trial."""

    def on_wait(self, seconds: float, n_running: int) -> None:
        """Called before waiting for trials of a stopped run to go stale."""

    def on_trial_start(self, number: int, config: TrialConfig) -> None:
        """Called when a trial starts training."""

    def on_trial_progress(self, number: int, step: TrialStep) -> None:
        """Called as a trial trains: after steps (throttled) and after each evaluation."""

    def on_trial_end(self, number: int, outcome: TrialOutcome, progress: StudyProgress) -> None:
        """Called after a trial is told and recorded."""


class RunSummary:
    """Why a run stopped, and where the study stands."""

    def __init__(self, *, progress: StudyProgress, reason: StopReason, detail: str = "") -> None:
        self.progress = progress
        self.reason = reason
        self.detail = detail

    def to_dict(self) -> dict[str, Any]:
        """Return what ``taskgraph study run --json`` prints: the progress, why it stopped."""
        return {**self.progress.to_dict(), "stopped_because": self.reason, "detail": self.detail}

    def __repr__(self) -> str:
        done = f"{self.progress.n_done}/{self.progress.budget}"
        return f"RunSummary(study={self.progress.name!r}, done={done}, reason={self.reason!r})"


class StudyEngine:
    """Drives one study: opens it, runs trials until the budget is spent, records everything.

    ``evaluator`` answers trials for the local loop (the ``local`` and ``tabular`` runners);
    the ``ray`` runner (:mod:`taskgraph.runners.ray`) uses the same engine to open the study
    and finish trials.  ``sharing_spaces`` and ``task_defs`` replace registry and catalog
    look-ups (tests, tabular benchmarks).  ``intermediate_reports`` (the runner's capability)
    attaches the pruning and progress callbacks to each trial; a runner without a training
    curve (a published table) gets none, and the trainer's modules are not imported.
    ``wall_time`` (seconds) is this invocation's wall-time budget: it replaces
    ``spec.budget.wall_time`` in :attr:`spec` for this run only, and the study keeps the
    spec's own value (a ``--wall-time`` given once does not limit every later resume).
    ``source_fingerprints``: the data version each task's records carry when its scores do
    not come from its dataset (``Runner.data_fingerprints``; see :class:`RecordWriter`).
    """

    def __init__(
        self,
        *,
        spec: StudySpec,
        storage_url: str,
        evaluator: TrialEvaluator | None = None,
        sharing_spaces: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
        task_defs: Mapping[str, Any] | None = None,
        data_dir: str | Path | None = None,
        observer: EngineObserver | None = None,
        intermediate_reports: bool = True,
        embed: Callable[..., Mapping[str, Any]] | None = None,
        wall_time: float | None = None,
        source_fingerprints: Mapping[str, str] | None = None,
    ) -> None:
        from taskgraph.storage import open_repository, parse_storage_url

        #: the spec the study is stored with (``taskgraph:spec``, ``tg_studies.spec``)
        self.stored_spec = spec
        if wall_time is not None:
            budget = spec.budget.model_copy(update={"wall_time": float(wall_time)})
            spec = spec.model_copy(update={"budget": budget})
        #: the spec this run follows: the stored one with this invocation's wall time
        self.spec = spec
        self.storage_url = storage_url
        self.evaluator = evaluator
        self.intermediate_reports = intermediate_reports
        self.observer = observer or EngineObserver()
        self.data_dir = data_dir
        self.embed = embed
        self.space = SearchSpace(spec=spec, sharing_spaces=sharing_spaces)
        self.repository = open_repository(storage_url)
        self.recorder = RecordWriter(
            repository=self.repository,
            study=spec.name,
            task_defs=task_defs,
            data_dir=data_dir,
            source_fingerprints=source_fingerprints,
        )
        # Optuna needs the URL with its driver and password, normalised as the records side does.
        url = parse_storage_url(storage_url).render_as_string(hide_password=False)
        recovery = spec.recovery
        # Optuna creates its tables without a lock: drivers on a new database take turns.
        with setup_lock(storage_url):
            self.storage = make_optuna_storage(
                url,
                heartbeat_interval=recovery.heartbeat_interval,
                grace_period=recovery.grace_period,
                max_retry=recovery.max_retry,
            )
        serialize_sqlite_transactions(self.storage.engine)
        self.study: optuna.Study | None = None
        # What the engine delegates: the study's creation (and the checks that its name holds
        # no other study), the queue planned at open and as trials end, the recovery of stale
        # and lost trials and of missing records, the look-up of repeated configurations.
        self.creator = StudyCreator(
            spec=spec,
            stored_spec=self.stored_spec,
            storage=self.storage,
            storage_url=storage_url,
            repository=self.repository,
        )
        self.queue = QueuePlanner(
            spec=spec, space=self.space, repository=self.repository, recorder=self.recorder
        )
        self.recovery = TrialRecovery(
            spec=spec,
            storage=self.storage,
            storage_url=storage_url,
            repository=self.repository,
            recorder=self.recorder,
            queue=self.queue,
        )
        self.repeats = RepeatFinder(
            study_name=spec.name, repository=self.repository, recorder=self.recorder
        )
        # The study's liveness lock, held shared from open() to close(): `study delete`
        # refuses the study while a driver holds it (taskgraph.storage.locks).  Kept at every
        # heartbeat and before each new trial (keep_driver_lock); set once it was found lost.
        self._driver_lock: DriverLock | None = None
        self._lock_lost: StudyVanishedError | None = None

    def close(self) -> None:
        """Release database connections and the study's liveness lock."""
        keep_every_beat(self.storage, None)
        lock, self._driver_lock = self._driver_lock, None
        if lock is not None:
            lock.release()
        self.repository.close()
        self.storage.remove_session()
        self.storage.engine.dispose()

    # -- opening -----------------------------------------------------------------------------

    def open(
        self, *, prior_records: Sequence[Any] | None = None, keep_stored: bool = False
    ) -> optuna.Study:
        """Return the study, created or loaded, with stale trials retried and records repaired.

        Takes the study's liveness lock first (shared with its other drivers, held until
        :meth:`close`; it waits while a ``study delete`` of it runs): ``study delete`` refuses
        a study a driver holds.  ``keep_stored``: a study that exists keeps its stored spec and
        trial budget (``study screen`` opens it with its spec file, and spends no trial).
        """
        if self._driver_lock is None:
            self._driver_lock = hold_driver_lock(self.storage_url, self.spec.name)
            # Every heartbeat on this storage (the local loop's, the Ray driver's) keeps it.
            keep_every_beat(self.storage, self.keep_driver_lock)
        with quiet_optuna(), optuna_warnings_only():
            return self._open(prior_records, keep_stored=keep_stored)

    def keep_driver_lock(self) -> None:
        """Check that the study's liveness lock is held, taking it again when its PostgreSQL
        connection dropped (:meth:`~taskgraph.storage.locks.DriverLock.keep`; a no-op on
        SQLite), at every heartbeat and before each new trial (:meth:`check_stop`).

        Raises :class:`StudyVanishedError`, then at every call, when a ``study delete`` held
        the lock, or had deleted the study, by the time it was taken again.
        """
        lost = self._lock_lost
        lock = self._driver_lock
        if lost is None and lock is not None:
            try:
                taken_again = lock.keep()
            except DriverLockLostError:
                lost = self._vanished(_LOCK_DOWN)
            else:
                # Taken again after a delete that went through while the lock was down.
                if taken_again and self._study_gone():
                    lost = self._vanished(_LOCK_DOWN)
            if lost is not None:
                self._lock_lost = lost
        if lost is not None:
            raise lost

    def vanished_error(self) -> StudyVanishedError | None:
        """Return the error saying the opened study is gone from the database (deleted, or
        deleted and created again, behind this driver's back), or ``None`` while it is there
        (or cannot be read: that error is the one to report).

        A liveness lock down with its PostgreSQL connection is kept first
        (:meth:`keep_driver_lock`), so that a study deleted while it was down says so.
        """
        if self.study is None:
            return self._lock_lost
        with suppress(Exception):  # what it found is in self._lock_lost
            self.keep_driver_lock()
        if self._lock_lost is not None:
            return self._lock_lost
        if not self._study_gone():
            return None
        return self._vanished(
            "by `optuna delete-study`, or a taskgraph that does not check for running drivers"
        )

    def _study_gone(self) -> bool:
        """Return whether the opened study is no longer in the database (``False`` while it
        is, and when it cannot be read)."""
        if self.study is None:
            return False
        try:
            with quiet_optuna():
                study_id: int | None = self.storage.get_study_id_from_name(self.spec.name)
        except KeyError:
            study_id = None
        except Exception:
            return False
        return study_id != self.study._study_id

    def _vanished(self, how: str) -> StudyVanishedError:
        return StudyVanishedError(
            f"study {self.spec.name!r} in {mask_url(self.storage_url)} was deleted while this "
            f"driver ran it ({how}); the driver stopped, the result of a trial it was "
            "finishing is lost"
        )

    def _open(self, prior_records: Sequence[Any] | None, *, keep_stored: bool) -> optuna.Study:
        spec = self.spec
        if prior_records is None and spec.sampler.name == "graph":
            prior_records = self.prior_records()
        try:
            study_id = self.storage.get_study_id_from_name(spec.name)
        except KeyError:
            study_id = None
        stored_attrs: Mapping[str, Any] = {}
        if study_id is not None:
            stored_attrs = self.storage.get_study_user_attrs(study_id)
            self.creator.check_same_study(stored_attrs)
        startup: tuple[str, dict[str, float]] = ("none", {})
        screens: list[Any] = []
        if spec.sampler.name == "graph":
            screens = self.repository.screens(spec.name)
            startup = self.startup_prior(cached=stored_attrs.get(STARTUP_ATTR), screens=screens)
        # Under the setup lock from the records check to the tie: two drivers creating one
        # study see each other's whole creation, never half of it.
        with setup_lock(self.storage_url):
            study = self.creator.create(
                prior_records, startup, screens, stored_attrs, keep_stored=keep_stored
            )
        self.study = study
        trials = self.recovery.recover_and_queue(study, on_wait=self.observer.on_wait)
        self.recovery.reconcile(trials, write=self.write_records)
        return study

    def startup_prior(
        self, *, cached: Mapping[str, Any] | None = None, screens: Sequence[Any] | None = None
    ) -> tuple[str, dict[str, float]]:
        """Return (source, candidate -> score) of the graph sampler's start-up order.

        The study's latest screen, else the text-embedding similarity to the target (computed
        once, by the MiniLM TextEmb of :mod:`taskgraph.models.task_embeddings` or this engine's
        ``embed``, and kept on the study as ``cached``), else ``("none", {})``.  A runner that
        trains nothing (a published table) gets no text embeddings.  ``screens``: the study's
        (read from its records when not given).
        """
        from taskgraph.search.screening import screen_tasks, startup_scores, textemb_scores

        spec = self.spec
        candidates = screen_tasks(spec)

        def similarities() -> Mapping[str, float]:
            return textemb_scores(spec.target, candidates, data_dir=self.data_dir, embed=self.embed)

        trains = self.intermediate_reports or self.embed is not None
        return startup_scores(
            target=spec.target,
            candidates=candidates,
            screens=self.repository.screens(spec.name) if screens is None else screens,
            cached=cached,
            embed=similarities if trains else None,
        )

    def prior_records(self) -> list[Any]:
        """Return the records of *other* studies the graph-guided sampler starts from."""
        return self.recorder.prior_records(
            split=self.spec.objective.split, metric=self.spec.objective.metric
        )

    def reconcile(self) -> int:
        """Write the runs of finished trials that the records database lacks.

        Checked per (trial, seed): a crash between two seeds' records (or inside the second
        one's transaction) leaves a trial with some of its runs.  A repeated configuration's
        complete run is the earlier trial's record and is never written (RecordWriter), so it
        is not missing.  Returns how many runs were written.
        """
        return self.recovery.reconcile(
            self.require_study().get_trials(deepcopy=False), write=self.write_records
        )

    def require_study(self) -> optuna.Study:
        """Return the opened study; raise :class:`RuntimeError` before :meth:`open`."""
        if self.study is None:
            raise RuntimeError("call StudyEngine.open() first")
        return self.study

    def trial(self, trial_id: int) -> optuna.Trial:
        """Return a handle on the opened study's trial with storage id ``trial_id``
        (what another process, such as a Ray worker, names a trial by)."""
        return optuna.Trial(self.require_study(), trial_id)

    def progress(self) -> StudyProgress:
        """Return where the study stands."""
        return study_progress(self.require_study(), budget=self.spec.budget.trials)

    # -- finishing trials --------------------------------------------------------------------

    def finish(self, trial: optuna.Trial, outcome: TrialOutcome) -> None:
        """Store ``outcome`` on ``trial``, tell Optuna its true state, write its records."""
        with optuna_warnings_only():
            self._finish(trial, outcome)

    def _finish(self, trial: optuna.Trial, outcome: TrialOutcome) -> None:
        study = self.require_study()
        status = outcome.status
        # A system attribute: machine data, which optuna-dashboard would show cut at 1024
        # characters among the user attributes.
        self.storage.set_trial_system_attr(storage_id(trial), RESULTS_ATTR, outcome.to_list())
        trial.set_user_attr(STATUS_ATTR, status.value)
        if status is TrialStatus.FAILED:
            trial.set_user_attr(FAILURE_ATTR, outcome.failure_reason)
            study.tell(trial, state=TrialState.FAIL)
            if trial.user_attrs.get(ROLE_ATTR) == BASELINE_ROLE:
                with setup_lock(self.storage_url):
                    if not self.queue.requeue_failed_baseline(study):
                        # a baseline on the target's new data version is retried as soon
                        self.queue.enqueue_data_baseline(study, study.get_trials(deepcopy=False))
        elif status is TrialStatus.PRUNED:
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, outcome.value)
        if (
            status is not TrialStatus.PRUNED
            and self.spec.budget.baselines in BASELINE_PER_TRIAL_KIND
        ):
            with setup_lock(self.storage_url):
                self.queue.enqueue_family_baselines(study)
        self.write_records(trial.number, outcome)

    def interrupt(self, trial: optuna.Trial, *, reason: str | None = None) -> None:
        """Fail ``trial`` as interrupted (not counted) and enqueue its retry.

        ``reason``: the exception that stopped the driver, when it was not Ctrl-C (stored as
        ``taskgraph:interrupted_by``).  A trial that is already finished is left alone (its
        records, if missing, are written when the study is opened again).
        """
        study = self.require_study()
        if self.storage.get_trial(storage_id(trial)).state.is_finished():
            return
        with quiet_optuna():
            trial.set_user_attr(INTERRUPTED_ATTR, True)
            if reason is not None:
                trial.set_user_attr(INTERRUPTED_BY_ATTR, reason)
            frozen = study.tell(trial, state=TrialState.FAIL)
            RetryStaleTrial(max_retry=self.spec.recovery.max_retry)(study, frozen)

    def write_records(self, number: int, outcome: TrialOutcome) -> None:
        """Write each seed's run of trial ``number`` to the records database.

        A complete run whose configuration and seed another trial holds as a complete run on
        the same data is that run's record (a repeat: not written again); one the study holds
        only as runs on other data is written beside them: the same training on another data
        version is a new measurement (``Repository.add_run_result`` compares the runs'
        dataset fingerprints, in the write's own retried transaction).
        """
        self.recorder.write(number, outcome)

    # -- the local ask/tell loop -------------------------------------------------------------

    def run(self, *, max_trials: int | None = None) -> RunSummary:
        """Run trials in this process until the budget, the wall time or the failures run out.

        ``max_trials`` stops after that many new trials (tests; the budget still applies).
        """
        if self.evaluator is None:
            raise RuntimeError("StudyEngine.run needs an evaluator (the local or tabular runner)")
        with quiet_optuna(), optuna_warnings_only():
            try:
                return self._run(max_trials)
            except KeyError as error:
                # Optuna's "Record does not exist.": the study (or a trial of it) was deleted
                # under the loop; one error, not a traceback from wherever it surfaced.
                vanished = self.vanished_error()
                if vanished is None:
                    raise
                raise vanished from error

    def _run(self, max_trials: int | None) -> RunSummary:
        study = self.study or self.open()
        self.observer.on_open(self.progress())
        started = time.monotonic()
        new = 0
        with Heartbeat(
            storage=self.storage, interval=self.spec.recovery.heartbeat_interval
        ) as beat:
            while True:
                if max_trials is not None and new >= max_trials:
                    return RunSummary(
                        progress=self.progress(), reason="budget", detail="max_trials"
                    )
                # Checking the budget and asking are one step across drivers: several drivers
                # on one study each saw room for one more trial and overshot the budget.
                trial = None
                try:
                    with setup_lock(self.storage_url), deferred_interrupt():
                        stop = self.check_stop(started=started)
                        if stop is not None:
                            return stop
                        # Asking is not interruptible: a Ctrl-C here would leave a RUNNING
                        # trial that only the heartbeat's grace period could reclaim.
                        trial = study.ask()
                        beat.add(storage_id(trial))
                except KeyboardInterrupt:
                    # A Ctrl-C or SIGTERM held while asking is delivered as the block ends,
                    # with the trial asked: it is failed as interrupted and queued again, as
                    # one that arrives while the trial trains.
                    if trial is not None:
                        with deferred_interrupt():
                            self.interrupt(trial)
                        beat.discard(storage_id(trial))
                    raise
                try:
                    outcome = self._evaluate(trial)
                except KeyboardInterrupt:
                    with deferred_interrupt():
                        self.interrupt(trial)
                    beat.discard(storage_id(trial))
                    raise
                except Exception as error:
                    # Not the trial's failure (evaluators return those as results) but a bug
                    # or the caller's (an observer hook that raised): the trial is interrupted
                    # as after Ctrl-C, not left RUNNING for a resume to wait a grace period on.
                    # A database that failed is not written to again, and a write that fails
                    # here is dropped: either way the trial stays RUNNING for the heartbeat,
                    # as after a kill, and the exception raised is the one that stopped the run.
                    if not isinstance(error, StorageError):
                        with deferred_interrupt(), suppress(Exception):
                            self.interrupt(trial, reason=f"{type(error).__name__}: {error}")
                    beat.discard(storage_id(trial))
                    raise
                try:
                    with deferred_interrupt():
                        # Telling and recording are one step as far as Ctrl-C is concerned; a
                        # second Ctrl-C waits until the trial is safely stored.
                        self.finish(trial, outcome)
                        beat.discard(storage_id(trial))
                except KeyboardInterrupt:
                    # Held while the trial was told and recorded, delivered after: the trial
                    # is stored, so it is shown as any finished trial before the run stops.
                    self.observer.on_trial_end(trial.number, outcome, self.progress())
                    raise
                new += 1
                self.observer.on_trial_end(trial.number, outcome, self.progress())

    def _watch(self, number: int, config: TrialConfig) -> list[Any]:
        """Return the callback that shows the observer this seed's steps (none for a table)."""
        if not self.intermediate_reports:
            return []
        from taskgraph.search.watching import ObserverCallback

        seeds = list(self.spec.seeds)
        index = seeds.index(config.seed) if config.seed in seeds else 0
        return [
            ObserverCallback(
                observer=self.observer, number=number, seed_index=index, n_seeds=len(seeds)
            )
        ]

    def check_stop(self, *, started: float | None = None) -> RunSummary | None:
        """Return why no new trial may start now, or ``None`` when one may.

        The one stopping rule of every runner: more failed trials than
        ``budget.max_failures``; done and running trials filling ``budget.trials``; the wall
        time (``budget.wall_time``, counted from ``started``, a :func:`time.monotonic` value;
        not checked when ``started`` is ``None``); a sampler with nothing left to propose
        (``exhausted``).  Running trials count against the budget, so several drivers on one
        study never start more trials than it allows.  The study's liveness lock is kept
        first (:meth:`keep_driver_lock`: raises :class:`StudyVanishedError` once it was lost).
        """
        self.keep_driver_lock()
        progress = self.progress()
        spec = self.spec
        if progress.n_failed > spec.budget.max_failures:
            detail = (
                f"{progress.n_failed} trials failed (budget.max_failures is "
                f"{spec.budget.max_failures})"
            )
            last = self._last_failure()
            if last is not None:
                detail += f"; the last: {last}"
            return RunSummary(progress=progress, reason="max_failures", detail=detail)
        if progress.n_done + progress.n_running >= progress.budget:
            return RunSummary(progress=progress, reason="budget")
        wall = spec.budget.wall_time
        if wall is not None and started is not None and time.monotonic() - started >= wall:
            return RunSummary(progress=progress, reason="wall_time", detail=f"{wall:g} s elapsed")
        study = self.require_study()
        exhausted = getattr(study.sampler, "exhausted", None)
        if callable(exhausted) and exhausted(study):
            return RunSummary(progress=progress, reason="exhausted", detail=(
                "every valid auxiliary set has run sampler.options.max_repeats times"))  # fmt: skip
        return None

    def _last_failure(self, limit: int = 300) -> str | None:
        """Return the first line of the latest failed trial's reason (cut at ``limit``)."""
        failed = self.require_study().get_trials(deepcopy=False, states=(TrialState.FAIL,))
        for trial in reversed(failed):
            reason = trial.user_attrs.get(FAILURE_ATTR)
            if isinstance(reason, str) and reason.strip():
                line = reason.strip().splitlines()[0]
                return line if len(line) <= limit else line[: limit - 3] + "..."
        return None

    def same_configuration(self, number: int, config: TrialConfig) -> FrozenTrial | None:
        """Return the latest complete trial (not ``number``) that trained ``config`` on the
        data its tasks have now, if any.

        The same configuration is the same training only on the same data: a trial whose
        runs recorded other dataset fingerprints of a task of ``config`` (its file edited
        since, or read from another ``--data`` directory) measured something else, and
        ``config`` is trained again.  A repeat's data is that of the trial it repeats.
        """
        return self.repeats.same_configuration(self.require_study(), number, config)

    def _evaluate(self, trial: optuna.Trial) -> TrialOutcome:
        # The stored trial, read once: its runs (a retry's) and its lineage (a system
        # attribute neither the sampler nor the steps below change).
        frozen = self.storage.get_trial(storage_id(trial))
        saved = trial_results(frozen)
        if saved:
            # A retry of a trial that finished training but was not told: reuse its runs.
            return TrialOutcome.from_list(saved)
        config = self.space.suggest(trial)
        config_data = config.to_dict()
        trial.set_user_attr(CONFIG_ATTR, config_data)
        write_trial_note(trial, config_data)  # optuna-dashboard cuts a long one's attribute
        self.observer.on_trial_start(trial.number, config)
        earlier = self.same_configuration(trial.number, config)
        if earlier is not None:
            # The sampler asked for a configuration the study already trained with these
            # seeds: the same training would give the same result (Optuna's FAQ, "How can I
            # ignore duplicated samples?").  Its value is told again; its runs are not recorded
            # twice (RecordWriter).
            trial.set_user_attr(REPEATS_ATTR, earlier.number)
            return TrialOutcome.from_list(trial_results(earlier) or [])
        callbacks: list[Any] = []
        # Every trial reports its curve (the pruner's evidence, the dashboard's plots); the
        # baseline is never pruned: every other trial's gain is measured against it.
        # (A published table answers at once: it has no curve, and the trainer's callback
        # module, which imports torch, is not needed.)
        if self.intermediate_reports:
            from taskgraph.search.pruning import OptunaPruningCallback

            baseline = trial.user_attrs.get(ROLE_ATTR) == BASELINE_ROLE
            may_prune = self.spec.pruner.name != "none" and not baseline
            callbacks.append(OptunaPruningCallback(trial=trial, may_prune=may_prune))
        # A retried trial keeps the number of the trial it replaces as its checkpoint key.
        original = frozen.system_attrs.get("failed_trial", trial.number)
        evaluator = self.evaluator
        assert evaluator is not None  # run() checked it

        def evaluate(config: TrialConfig, callbacks: Sequence[Any]) -> Any:
            return evaluator.evaluate(
                config,
                callbacks=[*callbacks, *self._watch(trial.number, config)],
                checkpoint_key=f"trial-{original}",
            )

        return run_seeds(
            config, seeds=self.spec.seeds, evaluate=evaluate, first_seed_callbacks=callbacks
        )
