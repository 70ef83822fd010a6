"""Recovery: heartbeats for running trials (a killed driver's trials are found, failed and
retried) and Ctrl-C / SIGTERM deferral around the steps that must not be cut in half.

Optuna's RDB storage keeps a heartbeat per running trial when it is created with
``heartbeat_interval``; ``optuna.storages.fail_stale_trials`` fails every RUNNING trial whose
heartbeat is older than ``grace_period`` and hands it to the storage's
``heartbeat_stale_trial_callback`` (here :class:`RetryStaleTrial`: Optuna's
:class:`optuna.storages.RetryHeartbeatStaleTrialCallback`, which enqueues a copy, with two
kinds of trial retried whatever ``recovery.max_retry`` says).  ``study.optimize`` runs such a
heartbeat thread itself; the ask/tell loop and the Ray driver use :class:`Heartbeat`, one
thread beating for every trial it is given, which also runs at every beat what
:func:`keep_every_beat` registered for its storage (the engine keeps its study's liveness lock
so: :meth:`taskgraph.storage.locks.DriverLock.keep`).
"""

from __future__ import annotations

import copy
import signal
import threading
import warnings
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from types import TracebackType
from typing import TYPE_CHECKING, Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial

from taskgraph.search.progress import (
    FAILURE_ATTR,
    INTERRUPTED_ATTR,
    INTERRUPTED_BY_ATTR,
    RETRY_OF_ATTR,
    trial_results,
)
from taskgraph.search.space import BASELINE_ROLE, ROLE_ATTR

if TYPE_CHECKING:
    from taskgraph.storage.optuna_rdb import RetryingRDBStorage

__all__ = [
    "HELD_SIGNALS",
    "Heartbeat",
    "RetryStaleTrial",
    "Terminated",
    "always_retried",
    "deferred_interrupt",
    "fail_stale_trials",
    "keep_every_beat",
    "keep_terminate_as_interrupt",
    "make_optuna_storage",
    "optuna_warnings_only",
    "quiet_optuna",
    "storage_id",
    "terminate_as_interrupt",
    "was_terminated",
]


def storage_id(trial: optuna.Trial | FrozenTrial) -> int:
    """Return ``trial``'s id in its storage (what heartbeats and ``storage.get_trial`` take).

    Optuna keeps this id private (``_trial_id``) and has no public accessor; this function is
    the one place in taskgraph that reads it.
    """
    return int(trial._trial_id)


@contextmanager
def quiet_optuna() -> Iterator[None]:
    """Silence Optuna's warnings about what the engine does on purpose.

    Heartbeats with ask/tell (Optuna warns that heartbeats are meant for ``optimize``; the
    engine runs its own heartbeat thread, :class:`~taskgraph.search.heartbeat.Heartbeat`) and
    the experimental stale-trial helpers and ``group`` option.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")
        yield


@contextmanager
def optuna_warnings_only() -> Iterator[None]:
    """Hold Optuna's log at WARNING or quieter for the block, then put the caller's level back.

    Optuna logs a line per study opened and per trial told (a benchmark creates hundreds of
    studies; a CLI progress bar would be broken up), but the caller's own Optuna logging is
    theirs outside taskgraph's calls, so it is not set at import.  Main thread only: the
    heartbeat thread's calls do not touch it (a save and restore from two threads could leave
    the caller's level wrong).
    """
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(max(previous, optuna.logging.WARNING))
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)


def make_optuna_storage(
    url: str, *, heartbeat_interval: int, grace_period: int, max_retry: int
) -> RetryingRDBStorage:
    """Return Optuna's RDB storage on ``url`` with heartbeats and retry of stale trials; its
    calls ride out a database server restart (:mod:`taskgraph.storage.optuna_rdb`)."""
    from taskgraph.storage.engine import POSTGRES_CONNECT_TIMEOUT_S
    from taskgraph.storage.optuna_rdb import RetryingRDBStorage

    engine_kwargs: dict[str, object] = {}
    if url.startswith("sqlite"):
        # The records writer shares this file; wait for its lock instead of failing.
        engine_kwargs["connect_args"] = {"timeout": 60}
    else:
        engine_kwargs["pool_pre_ping"] = True
        engine_kwargs["connect_args"] = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S}
    with quiet_optuna():
        return RetryingRDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            heartbeat_stale_trial_callback=RetryStaleTrial(max_retry=max_retry),
        )


def always_retried(trial: FrozenTrial) -> bool:
    """Return whether ``trial``, once failed by a kill or Ctrl-C, is retried past ``max_retry``.

    The baseline is the study's reference (every gain is measured against it), and a trial
    whose seeds' runs were stored on it before the kill costs nothing to retry: the retry
    reuses the runs, which are recorded then instead of lost.
    """
    return trial.user_attrs.get(ROLE_ATTR) == BASELINE_ROLE or bool(trial_results(trial))


class RetryStaleTrial:
    """Enqueue a copy of a failed (stale or interrupted) trial, within ``max_retry`` retries.

    Optuna's :class:`~optuna.storages.RetryHeartbeatStaleTrialCallback` does the copying (the
    parameters, user attributes and the ``failed_trial``/``retry_history`` lineage); trials for
    which :func:`always_retried` holds are copied however many retries they already had.
    The copy does not inherit the marks of the interruption (``taskgraph:interrupted``,
    ``taskgraph:interrupted_by``): it is a new attempt, and a retry that completes must not
    read as interrupted in optuna-dashboard.  It carries ``taskgraph:retry_of``, the number of
    the trial it runs again (the lineage Optuna keeps is in system attributes, which
    optuna-dashboard does not show).
    """

    def __init__(self, *, max_retry: int | None) -> None:
        self.max_retry = max_retry
        with quiet_optuna():
            self._limited = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
            self._unlimited = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=None)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        retry = self._unlimited if always_retried(trial) else self._limited
        number = trial.number
        trial = copy.copy(trial)  # the caller's trial keeps its attributes
        trial.user_attrs = {
            **{k: v for k, v in trial.user_attrs.items() if k not in _NOT_INHERITED},
            RETRY_OF_ATTR: number,
        }
        retry(study, trial)


#: user attributes of an interrupted trial that its retry does not copy
_NOT_INHERITED = (INTERRUPTED_ATTR, INTERRUPTED_BY_ATTR)


#: ``taskgraph:interrupted_by`` of a trial failed because its heartbeat stopped
STALE_REASON = "its driver stopped beating (killed, lost or paused past the grace period)"


def fail_stale_trials(study: optuna.Study, storage: RetryingRDBStorage) -> None:
    """``optuna.storages.fail_stale_trials``, marking each stale trial first as interrupted.

    Optuna fails a stale trial with nothing on it, so optuna-dashboard showed a trial of a
    killed driver as a plain failure; the mark (``taskgraph:interrupted`` and
    ``taskgraph:interrupted_by``) says what :func:`~taskgraph.search.progress.trial_state`
    reads it as.  A trial that stored its failure before the kill keeps that failure alone.
    ``storage`` is the study's.  Only trials still stale when Optuna looks are failed (one
    that beats again in between keeps running, with the mark: a window of milliseconds).
    """
    for trial_id in storage.stale_trial_ids(storage.get_study_id_from_name(study.study_name)):
        if FAILURE_ATTR in storage.get_trial(trial_id).user_attrs:
            continue
        try:
            storage.set_trial_user_attr(trial_id, INTERRUPTED_ATTR, True)
            storage.set_trial_user_attr(trial_id, INTERRUPTED_BY_ATTR, STALE_REASON)
        except UpdateFinishedTrialError:
            continue  # another driver failed it first (and marked it)
    optuna.storages.fail_stale_trials(study)


# Per Optuna storage, what each Heartbeat on it also calls at every beat (keep_every_beat).
_KEEPERS: weakref.WeakKeyDictionary[Any, Callable[[], object]] = weakref.WeakKeyDictionary()
_KEEPERS_LOCK = threading.Lock()


def keep_every_beat(storage: Any, keep: Callable[[], object] | None) -> None:
    """Have every :class:`Heartbeat` on ``storage`` call ``keep()`` at each beat, after the
    trials' heartbeats (``None``: no longer).

    The engine registers the keeping of its study's liveness lock when it opens the study and
    removes it when it closes, so the local loop's heartbeat and the Ray driver's keep it alike.
    ``keep`` runs on the heartbeat thread: what it raises is dropped there (it must keep what
    it found for the driver's own next call), and it must not block for long.
    """
    with _KEEPERS_LOCK:
        if keep is None:
            _KEEPERS.pop(storage, None)
        else:
            _KEEPERS[storage] = keep


def _keeper(storage: Any) -> Callable[[], object] | None:
    with _KEEPERS_LOCK:
        return _KEEPERS.get(storage)


class Heartbeat:
    """A background thread recording a heartbeat for each trial id given to :meth:`add`
    (until :meth:`discard`), and running what :func:`keep_every_beat` registered for its
    storage; a context manager that starts and stops (joins) the thread."""

    def __init__(self, *, storage: optuna.storages.RDBStorage, interval: float) -> None:
        self.storage = storage
        self.interval = interval
        self._ids: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, trial_id: int) -> None:
        """Start beating for ``trial_id`` (one beat is recorded at once)."""
        self.storage.record_heartbeat(trial_id)
        with self._lock:
            self._ids.add(trial_id)

    def discard(self, trial_id: int) -> None:
        """Stop beating for ``trial_id``."""
        with self._lock:
            self._ids.discard(trial_id)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                ids = list(self._ids)
            for trial_id in ids:
                try:
                    self.storage.record_heartbeat(trial_id)
                except Exception:  # a finished trial or a database hiccup: the next beat retries
                    continue
            keep = _keeper(self.storage)
            if keep is not None:
                with suppress(Exception):  # kept by the keeper for the driver's next call
                    keep()

    def __enter__(self) -> Heartbeat:
        self._thread = threading.Thread(target=self._beat, name="taskgraph-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


class Terminated(KeyboardInterrupt):
    """SIGTERM where :func:`terminate_as_interrupt` asked for it to be handled as Ctrl-C.

    A :class:`KeyboardInterrupt`, so every ``except KeyboardInterrupt`` that fails the running
    trial and queues its retry handles ``kill <pid>`` the same way; the CLI tells them apart
    only for the exit status (130 for Ctrl-C, 143 for SIGTERM).
    """


#: Set when SIGTERM arrives under :func:`terminate_as_interrupt`: code that catches the
#: :class:`Terminated` and raises a plain ``KeyboardInterrupt`` instead (Ray's ``ray.wait``
#: does) would otherwise hide that it was a SIGTERM.
_SIGTERM_SEEN = threading.Event()


def _raise_terminated(signum: int, frame: object) -> None:
    _SIGTERM_SEEN.set()
    raise Terminated


def was_terminated(stop: KeyboardInterrupt) -> bool:
    """Return whether ``stop`` came from SIGTERM (under :func:`terminate_as_interrupt`)."""
    return isinstance(stop, Terminated) or _SIGTERM_SEEN.is_set()


@contextmanager
def _signal_handlers(handlers: Mapping[int, Callable[[int, Any], None]]) -> Iterator[None]:
    """Install ``handlers`` (signal -> handler) for the block, then put the previous ones back.

    Main thread only (where Python delivers signals); elsewhere nothing is installed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in handlers}
    try:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    except ValueError:  # not the main interpreter
        yield
        return
    try:
        yield
    finally:
        for signum, before in previous.items():
            if before is not None:  # None: a handler not set from Python, left as it is
                signal.signal(signum, before)


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (a ``KeyboardInterrupt``).

    ``kill <pid>`` is how a background driver is stopped (a shell starts ``nohup ... &`` jobs
    with SIGINT ignored, so Ctrl-C's signal never arrives); without this it kills the process
    mid-trial, as ``kill -9`` would, and the trial waits for its heartbeat to go stale.  Main
    thread only (where Python delivers signals); elsewhere the block runs as is.
    """
    _SIGTERM_SEEN.clear()
    with _signal_handlers({signal.SIGTERM: _raise_terminated}):
        yield


@contextmanager
def keep_terminate_as_interrupt() -> Iterator[None]:
    """Put :func:`terminate_as_interrupt`'s SIGTERM handler back if the block replaced it.

    ``ray.init`` installs its own (``sys.exit``), which would turn ``kill <pid>`` of a Ray
    driver into a ``SystemExit`` without the resume hint; outside
    :func:`terminate_as_interrupt` the block's handler is left as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    ours = signal.getsignal(signal.SIGTERM) is _raise_terminated
    try:
        yield
    finally:
        if ours:
            signal.signal(signal.SIGTERM, _raise_terminated)


#: what :func:`deferred_interrupt` holds: Ctrl-C and ``kill <pid>``
HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) and SIGTERM until the block is done, then deliver them.

    A held signal is raised again once the previous handlers are back, so it does what it
    would have done without the block: Ctrl-C raises ``KeyboardInterrupt``, SIGTERM under
    :func:`terminate_as_interrupt` raises :class:`Terminated`, an ignored signal stays
    ignored, and a default SIGTERM ends the process.  Only in the main thread (where Python
    delivers signals); elsewhere the block runs as is.
    """
    received: list[int] = []

    def hold(signum: int, frame: object) -> None:
        received.append(signum)

    with _signal_handlers(dict.fromkeys(HELD_SIGNALS, hold)):
        yield
    for held in dict.fromkeys(received):  # each held signal once, in arrival order
        signal.raise_signal(held)
