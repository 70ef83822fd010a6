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

from taskgraph.errors import SpecError, StorageError
from taskgraph.evaluator import TrialEvaluator
from taskgraph.search.dashboard_notes import write_study_note, write_trial_note
from taskgraph.search.heartbeat import (
    Heartbeat,
    RetryStaleTrial,
    always_retried,
    deferred_interrupt,
    fail_stale_trials,
    keep_every_beat,
    make_optuna_storage,
    optuna_warnings_only,
    quiet_optuna,
    storage_id,
)
from taskgraph.search.outcome import TrialOutcome, run_seeds
from taskgraph.search.progress import (
    BUDGET_ATTR,
    CONFIG_ATTR,
    FAILURE_ATTR,
    INTERRUPTED_ATTR,
    INTERRUPTED_BY_ATTR,
    REPEATS_ATTR,
    RESULTS_ATTR,
    SEARCH_HASH_ATTR,
    SPEC_ATTR,
    STARTUP_ATTR,
    STATUS_ATTR,
    StudyProgress,
    TrialStep,
    retried_numbers,
    spec_differences,
    study_progress,
    trained_by,
    trial_results,
    trial_state,
)
from taskgraph.search.recording import RecordWriter
from taskgraph.search.samplers import build_pruner, build_sampler
from taskgraph.search.space import (
    BASELINE_ROLE,
    FAMILY_ATTR,
    ROLE_ATTR,
    ROW_ATTR,
    SUBSET_ATTR,
    SearchSpace,
    is_first_baseline,
)
from taskgraph.spec.models import StudySpec
from taskgraph.storage.engine import serialize_sqlite_transactions
from taskgraph.storage.locks import (
    DriverLock,
    DriverLockLostError,
    hold_driver_lock,
    setup_lock,
)
from taskgraph.storage.repository import RECORDS_IDENTITY_ATTR
from taskgraph.storage.urls import mask_url, storable_spec
from taskgraph.trial import TrialConfig, TrialStatus, config_hash
from taskgraph.vocabulary import task_set_key

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


def _repeat_held(
    run: Any,
    held: Mapping[tuple[str, str, str, int], list[dict[str, str]]],
    *,
    data: Mapping[str, str] | None,
) -> bool:
    """Return whether ``run`` is complete and another trial's complete run in ``held`` has its
    configuration, task set and seed, on the dataset fingerprints ``data`` (``None``: on any
    data), so that the record writer would not write it."""
    if run.result.status is not TrialStatus.COMPLETE:
        return False
    config = run.config
    key = (config.model_config_hash(), task_set_key(config.task_set), config.target, config.seed)
    if key not in held:
        return False
    return data is None or dict(data) in held[key]


def _family_key(trial: FrozenTrial) -> str | None:
    """Return the model family (``TrialConfig.family_key``) of ``trial``'s configuration;
    before it has one, that of the family baseline it was enqueued as (``taskgraph:family``,
    without a ``per_setting`` key's settings), else ``None``."""
    if CONFIG_ATTR not in trial.user_attrs:
        family = trial.user_attrs.get(FAMILY_ATTR)
        return family.split("/settings:")[0] if isinstance(family, str) else None
    return TrialConfig.from_dict(trial.user_attrs[CONFIG_ATTR]).family_key()


#: ``budget.baselines`` values that enqueue a baseline for each kind of trial that completes
#: (its model family; with ``per_setting``, its family and alone settings)
_BASELINE_PER_TRIAL_KIND = ("per_family", "per_setting")

#: The target's dataset fingerprint (data version) a baseline trial was enqueued to train on,
#: on the baselines enqueued for a family or a new data version (its failures count against
#: the retries of that version's baseline)
DATA_VERSION_ATTR = "taskgraph:data_version"


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
        # Per trial number, what its stored configuration gives (it never changes once set):
        # computed once, not at every new trial over the whole study.
        self._config_hashes: dict[int, str] = {}
        self._families: dict[int, str] = {}
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
            self._check_same_study(stored_attrs)
        startup: tuple[str, dict[str, float]] = ("none", {})
        screens: list[Any] = []
        if spec.sampler.name == "graph":
            screens = self.repository.screens(spec.name)
            startup = self.startup_prior(cached=stored_attrs.get(STARTUP_ATTR), screens=screens)
        # Under the setup lock from the records check to the tie: two drivers creating one
        # study see each other's whole creation, never half of it.
        with setup_lock(self.storage_url):
            study = self._create_study(
                spec, prior_records, startup, screens, stored_attrs, keep_stored=keep_stored
            )
        self.study = study
        trials = self._recover_and_queue(study)
        self._reconcile(trials)
        return study

    def _create_study(
        self,
        spec: StudySpec,
        prior_records: Sequence[Any] | None,
        startup: tuple[str, dict[str, float]],
        screens: list[Any],
        stored_attrs: Mapping[str, Any],
        *,
        keep_stored: bool = False,
    ) -> optuna.Study:
        """Create or load the Optuna study, store its spec and tie it to its records study
        (``keep_stored``: a study that has a stored spec keeps it, and its budget)."""
        self._check_records()
        study = optuna.create_study(
            study_name=spec.name,
            storage=self.storage,
            sampler=build_sampler(
                spec,
                prior_records=prior_records,
                startup_scores=startup[1],
                lookahead=[screen.matrix for screen in screens],
            ),
            pruner=build_pruner(spec.pruner),
            direction=spec.objective.direction,
            load_if_exists=True,
        )
        if study.direction.name.lower() != spec.objective.direction:
            raise SpecError(
                f"study {spec.name!r} exists with direction {study.direction.name.lower()}, "
                f"the spec says {spec.objective.direction}"
            )
        # Stored without the storage URL's password: optuna-dashboard serves user attributes.
        # The stored spec, not this run's: an invocation's wall time is not the study's.
        stored = self.stored_spec.model_dump(mode="json")
        if not (keep_stored and SPEC_ATTR in stored_attrs):
            storable = storable_spec(stored)
            study.set_user_attr(SPEC_ATTR, storable)
            # optuna-dashboard cuts the attribute at 1024 characters; its note shows the whole.
            write_study_note(study, storable, replace=stored_attrs.get(SPEC_ATTR) != storable)
            study.set_user_attr(SEARCH_HASH_ATTR, spec.search_hash())
            study.set_user_attr(BUDGET_ATTR, spec.budget.trials)
        # optuna-dashboard's name for the objective (otherwise "Objective 0").
        metric = f"{spec.target} {self._objective_metric()} on {spec.objective.split}"
        with quiet_optuna():
            if study.metric_names != [metric]:
                study.set_metric_names([metric])
        if spec.sampler.name == "graph":
            study.set_user_attr(STARTUP_ATTR, {"source": startup[0], "scores": startup[1]})
        self.repository.ensure_study(
            spec.name,
            spec=stored,
            direction=spec.objective.direction,
            target=spec.target,
        )
        identity = self.repository.study_identity(spec.name)
        study_id = self.storage.get_study_id_from_name(spec.name)
        if self.storage.get_study_system_attrs(study_id).get(RECORDS_IDENTITY_ATTR) != identity:
            self.storage.set_study_system_attr(study_id, RECORDS_IDENTITY_ATTR, identity)
        return study

    def _check_records(self) -> None:
        """Refuse, before anything is written, a study whose name has records of another study.

        The Optuna study carries the identity of its records study
        (``RECORDS_IDENTITY_ATTR``, :meth:`Repository.study_identity`).  Records under the
        name with no Optuna study, or with an Optuna study tied to other records, belong to a
        study deleted outside taskgraph (``optuna delete-study``): the new study's runs would
        be dropped as repeats of the old ones (one run per study, trial and seed) and the old
        spec kept.  Adopted instead: records that hold no spec and no trial's run (written
        through the Repository alone, e.g. a screen stored first: no study ran on them; runs of
        trials under no spec are a deleted study's driver's late write, refused), and, by an
        Optuna study
        written before the tie existed (it has ``taskgraph:spec`` but no tie), the records it
        finds: nothing tells them apart, and refusing would stop every study of an existing
        database.
        """
        name = self.spec.name
        records = self.repository.study_identity(name)
        if records is None:
            return
        try:
            study_id = self.storage.get_study_id_from_name(name)
        except KeyError:
            study_id = None
        # Records without a spec were written through the Repository alone (a screen stored
        # before its study ran): no study has run on them, this one takes them.
        opened = self.repository.study_has_spec(name)
        if study_id is None:
            # Spec-less records holding runs of trials (numbers from 0; a screen's are
            # negative) were written by a driver of a study deleted under it: its late write
            # created the records again.  A new study would drop its own runs as repeats.
            trained = any(number >= 0 for number, _ in self.repository.run_keys(name))
            if not opened and not trained:
                return
            why = (
                "that no Optuna study holds (a study deleted outside taskgraph, or deleted "
                "while a driver still wrote to it, leaves them)"
            )
        else:
            tied = self.storage.get_study_system_attrs(study_id).get(RECORDS_IDENTITY_ATTR)
            if tied == records:
                return
            if tied is None and (
                not opened or SPEC_ATTR in self.storage.get_study_user_attrs(study_id)
            ):
                return  # written before the tie, or records no study ran on: adopted
            why = (
                "from another study of that name than the Optuna study (deleted and created again)"
            )
        from taskgraph.storage.urls import delete_command

        raise SpecError(
            f"study {name!r} has records in {mask_url(self.storage_url)} {why}; they would mix "
            f"with this study's: remove them with `{delete_command(name, self.storage_url)}`, "
            "or rename the study (field `name`)"
        )

    def _objective_metric(self) -> str:
        """Return the objective's metric: the spec's, else the catalog's primary metric of the
        target (a task the catalog does not know, such as a table's, says "score")."""
        from taskgraph.tasks import get_task

        if self.spec.objective.metric is not None:
            return self.spec.objective.metric
        try:
            return get_task(self.spec.target).primary_metric
        except KeyError:
            return "score"

    def _fill_queue(self, study: optuna.Study, trials: list[FrozenTrial]) -> list[FrozenTrial]:
        """Re-queue lost trials and a failed baseline, enqueue the first trials and the family
        baselines; return the trials as last read (without the last step's new waiting ones).

        Call it under the setup lock: drivers started together would each find no baseline.
        Each step sees what the steps before it enqueued: the trials are read again after a
        step that wrote, and only then.
        """
        steps: list[Callable[[optuna.Study, Sequence[FrozenTrial]], bool]] = [
            self._requeue_lost,
            self._requeue_failed_baseline,
            self._enqueue_first_trials,
            self._enqueue_data_baseline,
        ]
        if self.spec.budget.baselines in _BASELINE_PER_TRIAL_KIND:
            steps.append(self._enqueue_family_baselines)
        wrote = False
        for step in steps:
            if wrote:
                trials = study.get_trials(deepcopy=False)
            wrote = step(study, trials)
        return trials

    def _enqueue_first_trials(self, study: optuna.Study, trials: Sequence[FrozenTrial]) -> bool:
        """Enqueue the baseline, then the spec's other rows in order, each unless it is there
        in ``trials``; return whether anything was enqueued.

        Each is looked for, not only the baseline: a driver killed between enqueuing the
        baseline and the rows would otherwise leave the rows out for good.
        """
        space, rows = self.space, self.spec.rows
        wrote = False
        if not any(ROLE_ATTR in t.user_attrs for t in trials):
            self._enqueue_baseline(study)
            wrote = True
        queued = {t.user_attrs.get(ROW_ATTR) for t in trials}
        for row in rows:
            if row.auxiliaries and row.name not in queued:
                study.enqueue_trial(space.row_params(row), user_attrs=space.row_user_attrs(row))
                wrote = True
        return wrote

    def _enqueue_baseline(self, study: optuna.Study) -> None:
        """Enqueue the single-task baseline: the spec's row of the target alone, if it has one."""
        space = self.space
        alone = next((row for row in self.spec.rows if not row.auxiliaries), None)
        if alone is None:
            study.enqueue_trial(space.baseline_params(), user_attrs=space.baseline_user_attrs())
        else:
            study.enqueue_trial(space.row_params(alone), user_attrs=space.row_user_attrs(alone))

    def _enqueue_data_baseline(self, study: optuna.Study, trials: Sequence[FrozenTrial]) -> bool:
        """Enqueue the first baseline's configuration again when no baseline of its model
        family is on the target's current data version; return whether it did.

        ``study show`` measures a trial against a baseline on the same version of the
        target's data (its dataset fingerprint): after the target's files are edited between
        runs, every later trial would have no gain.  When the study has a complete first
        baseline but no baseline trial of its model family (``TrialConfig.family_key``) is
        complete on the current version, waiting or running, the first baseline's parameters
        are enqueued as a baseline marked with the version (``taskgraph:data_version``): the
        same configuration, trained afresh (a repeat is one on the same data,
        :meth:`same_configuration`).  One per data version whatever ``budget.baselines``; it
        counts against ``budget.trials`` like the family baselines (none is enqueued while
        the budget is spent: it would wait for a resume that never runs it), and one that
        fails is enqueued again up to ``recovery.max_retry`` times.
        """
        retried = retried_numbers(trials)
        states = {t.number: trial_state(t, retried=retried) for t in trials}
        firsts = [t for t in trials if is_first_baseline(t) and states[t.number] == "complete"]
        if not firsts or CONFIG_ATTR not in firsts[0].user_attrs:
            return False  # the first baseline is yet to train (the steps before see to it)
        done = sum(state in ("complete", "pruned", "failed") for state in states.values())
        if done >= self.spec.budget.trials:
            return False  # no trial left to train it in: a resume with a larger budget will
        first = firsts[0]
        family = _family_key(first)
        current = self._target_data()
        versions: dict[int, str | None] | None = None
        failures = 0
        for trial in trials:
            if trial.user_attrs.get(ROLE_ATTR) != BASELINE_ROLE:
                continue
            theirs = _family_key(trial)
            # an unsampled first baseline (no configuration yet) is of the first one's family
            if theirs != family and not (theirs is None and is_first_baseline(trial)):
                continue
            state = states[trial.number]
            if state in ("waiting", "running"):
                return False
            elif state == "complete":
                if versions is None:
                    versions = self._data_versions(trials)
                # a trial whose runs are not recorded yet trained on the data as it is now
                if versions.get(trial.number, current) == current:
                    return False
            elif state == "failed":
                attrs = trial.user_attrs
                if DATA_VERSION_ATTR in attrs and attrs[DATA_VERSION_ATTR] == current:
                    failures += 1
        if failures > self.spec.recovery.max_retry:
            return False  # given up on
        attrs = {ROLE_ATTR: BASELINE_ROLE, DATA_VERSION_ATTR: current}
        if ROW_ATTR in first.user_attrs:
            attrs[ROW_ATTR] = first.user_attrs[ROW_ATTR]
        study.enqueue_trial(dict(first.params), user_attrs=attrs)
        return True

    def _target_data(self) -> str | None:
        """Return the target's dataset fingerprint now (``None``: not known)."""
        target = self.spec.target
        return self.recorder.task_metadata((target,))[0].get(target)

    def _data_versions(self, trials: Sequence[FrozenTrial]) -> dict[int, str | None]:
        """Return trial number -> the target's dataset fingerprint its runs recorded (a
        repeat's: those of the trial it repeats; ``None``: none recorded), for the trials with
        recorded runs: the data version ``study show`` measures the trial on
        (:func:`taskgraph.search.report.target_data_versions`)."""
        recorded = self.repository.trial_fingerprints(self.spec.name, self.spec.target)
        trained = trained_by(trials)
        return {
            t.number: recorded[trained[t.number]] for t in trials if trained[t.number] in recorded
        }

    def _requeue_failed_baseline(
        self, study: optuna.Study, trials: Sequence[FrozenTrial] | None = None
    ) -> bool:
        """Enqueue the baseline again when every baseline trial so far failed; return whether
        it did.  ``trials``: the study's (read when not given).

        Every gain of the study is measured against it, and no sampler proposes the target
        alone when ``min_size`` >= 1: a baseline that failed once (a transient out-of-memory,
        a lost node) would leave the whole study without gains.  At most
        ``recovery.max_retry`` retries; the sampler chooses the retry's other settings anew
        (the failure may have been theirs).  Interrupted baselines are ``_requeue_lost``'s.
        """
        if trials is None:
            trials = study.get_trials(deepcopy=False)
        retried = retried_numbers(trials)
        states = [trial_state(t, retried=retried) for t in trials if is_first_baseline(t)]
        failed = bool(states) and all(state == "failed" for state in states)
        if failed and len(states) <= self.spec.recovery.max_retry:
            self._enqueue_baseline(study)
            return True
        return False

    def _family(self, trial: FrozenTrial) -> str | None:
        """Return the model family of ``trial``'s configuration (``None`` before it has one);
        under ``budget.baselines: per_setting`` with its alone settings' hash
        (``<family>/settings:<hash>``), so that each gets a baseline of its own."""
        family = self._families.get(trial.number)
        if family is None and CONFIG_ATTR in trial.user_attrs:
            config = TrialConfig.from_dict(trial.user_attrs[CONFIG_ATTR])
            if self.spec.budget.baselines == "per_setting":
                family = config.setting_family_key()
            else:
                family = config.family_key()
            self._families[trial.number] = family
        return family

    def _enqueue_family_baselines(
        self, study: optuna.Study, trials: Sequence[FrozenTrial] | None = None
    ) -> bool:
        """Enqueue a baseline for each model family of a complete trial that has none on the
        target's current data version; return whether any was enqueued.  ``trials``: the
        study's (read when not given).

        A gain compares a trial with the single-task run of its own model family
        (:meth:`TrialConfig.family_key`) on the same version of the target's data (its dataset
        fingerprint).  A space that searches the target's example cap or the pretraining stage
        reaches several families, and the first baseline is of one of them: each other family
        a complete trial lands in gets a baseline with that trial's family-defining parameters
        fixed (:meth:`SearchSpace.family_baseline`), marked ``taskgraph:family``, unless a
        complete trial of the target alone is already in that family (a pretraining study
        without auxiliaries: every trial is one; as ``study show`` takes it, only while the
        family has no complete baseline trial).  After the target's data changed, a family
        gets one again when a trial on the new data lands in it: only trials on the current
        data are answered (no baseline can train on the old).  It counts against
        ``budget.trials`` like any trial; with ``budget.baselines: one`` none is enqueued.  A
        family baseline that fails is enqueued again up to ``recovery.max_retry`` times, as
        the first one is.  Nothing is enqueued while the first baseline waits unsampled: its
        family is not known yet.
        """
        if self.spec.budget.baselines not in _BASELINE_PER_TRIAL_KIND:
            return False
        if trials is None:
            trials = study.get_trials(deepcopy=False)
        retried = retried_numbers(trials)
        states = {t.number: trial_state(t, retried=retried) for t in trials}
        current = self._target_data()
        recorded = self._data_versions(trials)

        def version(trial: FrozenTrial) -> str | None:
            # a trial whose runs are not recorded yet (just told) trained on the data as it is
            return recorded.get(trial.number, current)

        # (family, data version) pairs that have their single-task run
        covered: set[tuple[str, str | None]] = set()
        failures: dict[tuple[str, str | None], int] = {}
        # families with a complete baseline trial: a trial of the target alone is not theirs
        with_baseline: set[str] = set()
        alone: list[tuple[str, str | None]] = []
        for trial in trials:
            state = states[trial.number]
            if trial.user_attrs.get(ROLE_ATTR) != BASELINE_ROLE:
                # A complete trial of the target alone is its family's single-task run (gains
                # take any such run as the baseline): a baseline enqueued for it would repeat it.
                if trial.user_attrs.get(SUBSET_ATTR) == [] and state == "complete":
                    family = self._family(trial)
                    if family is not None:
                        alone.append((family, version(trial)))
                continue
            # The key of its configuration under the mode in force: the stored attribute is
            # the key of the mode it was enqueued under (``budget.baselines`` may have changed
            # between runs of the study), so it serves only while the trial is unsampled.
            family = self._family(trial) or trial.user_attrs.get(FAMILY_ATTR)
            if family is None:
                if state in ("waiting", "running"):
                    return False
                continue
            if state == "failed":
                # the data version it was enqueued for (before there was one: the current)
                key = (family, trial.user_attrs.get(DATA_VERSION_ATTR, current))
                failures[key] = failures.get(key, 0) + 1
                if failures[key] > self.spec.recovery.max_retry:
                    covered.add(key)  # given up on
            elif state in ("complete", "pruned"):
                covered.add((family, version(trial)))
                if state == "complete":
                    with_baseline.add(family)
            elif state != "interrupted":  # waiting or running: it trains on the current data
                covered.add((family, current))
        covered.update(key for key in alone if key[0] not in with_baseline)
        wrote = False
        for trial in trials:
            if trial.user_attrs.get(ROLE_ATTR) == BASELINE_ROLE or states[trial.number] != (
                "complete"
            ):
                continue
            family = self._family(trial)
            if family is None or version(trial) != current or (family, current) in covered:
                continue
            covered.add((family, current))
            params, attrs = self.space.family_baseline(
                trial.params, family, settings=self.spec.budget.baselines == "per_setting"
            )
            attrs[DATA_VERSION_ATTR] = current
            study.enqueue_trial(params, user_attrs=attrs)
            wrote = True
        return wrote

    def _check_same_study(self, attrs: Mapping[str, Any]) -> None:
        """Raise :class:`SpecError` naming the differing fields if the stored study is another."""
        spec = self.spec
        stored = attrs.get(SEARCH_HASH_ATTR)
        if stored is None or stored == spec.search_hash():
            return
        stored_spec = attrs.get(SPEC_ATTR)
        differences = None
        if isinstance(stored_spec, Mapping):
            differences = spec_differences(stored_spec, spec.model_dump(mode="json"))
            if not differences:
                return  # only fields that do not define the trials differ (e.g. data_dir)
        from taskgraph.storage.urls import resume_command

        which = f" ({'; '.join(differences)})" if differences else ""
        raise SpecError(
            f"study {spec.name!r} already exists in {self.repository.url} with another "
            f"spec{which}; rename the study (field `name`) or continue it with "
            f"`{resume_command(spec.name, self.repository.url)}`"
        )

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

    def _recover_and_queue(self, study: optuna.Study) -> list[FrozenTrial]:
        """Fail stale trials, then fill the queue (:meth:`_fill_queue`); return the trials.

        The trials are read once under the setup lock; only when some are running (a wait
        follows, outside the lock) are they read again.
        """
        fail_stale_trials(study, self.storage)
        # Two drivers opening the study at once would each re-queue the same lost trial.
        with setup_lock(self.storage_url):
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
        self.observer.on_wait(wait, len(running))
        self._wait_for_running(beaten, running, wait)
        fail_stale_trials(study, self.storage)
        with setup_lock(self.storage_url):
            return self._fill_queue(study, study.get_trials(deepcopy=False))

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

    def _requeue_lost(self, study: optuna.Study, trials: Sequence[FrozenTrial]) -> bool:
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

    def reconcile(self) -> int:
        """Write the runs of finished trials that the records database lacks.

        Checked per (trial, seed): a crash between two seeds' records (or inside the second
        one's transaction) leaves a trial with some of its runs.  A repeated configuration's
        complete run is the earlier trial's record and is never written (RecordWriter), so it
        is not missing.  Returns how many runs were written.
        """
        return self._reconcile(self.require_study().get_trials(deepcopy=False))

    def _reconcile(self, trials: Sequence[FrozenTrial]) -> int:
        """:meth:`reconcile` over ``trials``, the study's as read.

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
                    if not _repeat_held(
                        run,
                        held,
                        data=None
                        if repeat
                        else self.recorder.run_fingerprints(run.config, run.result),
                    )
                )
            if missing:
                self.write_records(trial.number, TrialOutcome(runs=missing))
                written += len(missing)
        return written

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
                    if not self._requeue_failed_baseline(study):
                        # a baseline on the target's new data version is retried as soon
                        self._enqueue_data_baseline(study, study.get_trials(deepcopy=False))
        elif status is TrialStatus.PRUNED:
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, outcome.value)
        if (
            status is not TrialStatus.PRUNED
            and self.spec.budget.baselines in _BASELINE_PER_TRIAL_KIND
        ):
            with setup_lock(self.storage_url):
                self._enqueue_family_baselines(study)
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
        wanted = config_hash(config.to_dict())
        study = self.require_study()
        trials = study.get_trials(deepcopy=False)
        versions: dict[int, dict[str, str]] | None = None
        trained: dict[int, int] | None = None
        for trial in reversed(trials):
            attrs = trial.user_attrs
            if (
                trial.number != number
                and trial.state == TrialState.COMPLETE
                and attrs.get(STATUS_ATTR) == TrialStatus.COMPLETE.value
                and CONFIG_ATTR in attrs
                and trial_results(trial) is not None
                and self._config_hash(trial) == wanted
            ):
                if versions is None or trained is None:
                    versions = self._recorded_data(number, config)
                    trained = trained_by(trials)
                if versions.get(trained[trial.number]) == self._current_data(config):
                    return trial
        return None

    def _current_data(self, config: TrialConfig) -> dict[str, str]:
        """Return the dataset fingerprint of each task of ``config`` now, computed afresh (a
        file may have changed since the study opened): what a run trained now would record."""
        return self.recorder.task_metadata(config.task_set)[0]

    def _recorded_data(self, number: int, config: TrialConfig) -> dict[int, dict[str, str]]:
        """Return trial number -> the dataset fingerprints recorded by the study's complete runs
        of ``config``'s model configuration, task set, target and seed (not trial ``number``'s)."""
        runs = self.repository.runs(
            study=self.spec.name,
            model_config=config.model_config_hash(),
            task_set=config.task_set,
            status=TrialStatus.COMPLETE.value,
        )
        return {
            run.trial_number: dict(run.task_fingerprints)
            for run in runs
            if run.trial_number != number
            and run.seed == config.seed
            and run.target == config.target
        }

    def _config_hash(self, trial: FrozenTrial) -> str:
        """Return the hash of ``trial``'s stored configuration (computed once per trial)."""
        digest = self._config_hashes.get(trial.number)
        if digest is None:
            digest = self._config_hashes[trial.number] = config_hash(trial.user_attrs[CONFIG_ATTR])
        return digest

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
