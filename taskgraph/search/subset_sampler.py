"""The Optuna plumbing shared by the samplers that propose auxiliary sets jointly.

:class:`SubsetSampler` claims the ``aux/<task>`` flags of its free candidates as its relative
search space, fills them from :meth:`SubsetSampler.propose_for` (the one method a subclass
writes) and hands every other parameter to an inner sampler (TPE by default).

A proposal is recorded on its trial at once (the system attribute :data:`PROPOSAL_ATTR`), not
only when the objective suggests the flags: trials run in parallel (``study.optimize(...,
n_jobs=4)``, several drivers on one storage) then see each other's sets between the proposal
and the suggestions.  Choosing and recording are one step (:func:`proposal_lock`): for the
threads of a process (a lock of the module), and on a database storage for every process on it
(the database's setup lock, :func:`taskgraph.storage.locks.setup_lock`: a ``flock`` beside the
SQLite file, a PostgreSQL advisory lock), so two drivers cannot choose the same set.  The slow
part of a proposal (the graph sampler's estimator fit) runs before the lock
(:meth:`SubsetSampler.prepare`); under it the trials are read again, and the set chosen from
them.  A trial whose every flag ``enqueue_trial`` fixed (a row, a baseline, a requeued or
family baseline) needs no choice: its set is recorded as it starts (when it is asked:
:meth:`SubsetSampler.before_trial`), not when its objective first suggests, so a proposal made
in between (another thread or driver) counts it.

A trial interrupted by its driver (Ctrl-C, a killed or lost driver: :func:`is_interrupted`)
is no proposal of its set: its retry runs the same parameters (and carries the proposal), so
:func:`counted_trials` leaves it out and the set counts once, by the retry.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler
from optuna.storages import BaseStorage, RDBStorage, _CachedStorage
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import URL

from taskgraph.errors import ConfigError, StorageURLError
from taskgraph.search.heartbeat import storage_id
from taskgraph.search.progress import FAILURE_ATTR, INTERRUPTED_ATTR, retried_numbers
from taskgraph.search.space import AUX_PARAM_PREFIX, SUBSET_ATTR
from taskgraph.storage.locks import setup_lock
from taskgraph.storage.urls import parse_storage_url

__all__ = [
    "PROPOSAL_ATTR",
    "SubsetSampler",
    "check_sampler_arguments",
    "counted_trials",
    "has_subset",
    "is_interrupted",
    "proposal_lock",
    "proposal_lock_url",
    "proposed_set",
]

#: system attribute of a trial: the sorted free auxiliaries a subset sampler proposed for it
PROPOSAL_ATTR = "taskgraph:proposed_auxiliaries"
# One lock for every subset sampler of the process: a seeded study builds one sampler per
# trial (TrialSeededSampler), so a lock of the instance would not keep its threads apart.
# Taken inside the setup lock (proposal_lock), never around it: no thread waits for the setup
# lock while holding this one, so a thread that sampled under the setup lock could not deadlock.
_PROPOSAL_LOCK = threading.Lock()


def proposal_lock_url(storage: BaseStorage) -> URL | None:
    """Return the database URL whose setup lock keeps proposals on ``storage`` apart across
    processes, or ``None`` where the module's thread lock does alone.

    ``None``: a storage that is no :class:`~optuna.storages.RDBStorage` (Optuna's in-memory
    one, a journal file), an in-memory SQLite database (one process), or a URL taskgraph does
    not lock (another database, a SQLite URL with query parameters).  The URL is normalised as
    the engine's own ``setup_lock(storage_url)`` normalises it (its Optuna storage's URL is
    that normal form), so a thread already holding the setup lock takes it again for free.
    """
    backend = storage._backend if isinstance(storage, _CachedStorage) else storage
    if not isinstance(backend, RDBStorage):
        return None
    try:
        return parse_storage_url(backend.url, check_directory=False)
    except StorageURLError:
        return None


@contextmanager
def proposal_lock(storage: BaseStorage) -> Iterator[None]:
    """Hold the lock under which a subset sampler chooses a set and records it.

    The threads of this process take turns on a module lock; on a database storage
    (:func:`proposal_lock_url`) the processes on it take turns too, on its setup lock
    (:func:`taskgraph.storage.locks.setup_lock`).  No caller samples while holding that lock
    (the engine's ask step samples nothing: the set is sampled when the objective first
    suggests), and if one did it would not wait on itself: the setup lock is reentrant within
    a thread, and this module's lock is taken inside it, never around it.
    """
    url = proposal_lock_url(storage)
    if url is None:
        with _PROPOSAL_LOCK:
            yield
        return
    with setup_lock(url), _PROPOSAL_LOCK:
        yield


class SubsetSampler(BaseSampler):
    """Base of the graph-guided and bandit samplers; subclasses set ``free``, ``_rng``,
    ``_independent`` and implement :meth:`propose_for`."""

    free: Sequence[str]
    _rng: np.random.Generator
    _independent: BaseSampler

    def propose_for(self, study: Study, trial: FrozenTrial) -> frozenset[str]:
        """Return the free auxiliaries of ``trial``'s set (called under :func:`proposal_lock`:
        read the study's trials here, not before)."""
        raise NotImplementedError

    def prepare(self, study: Study, trial: FrozenTrial) -> None:
        """Do the slow part of the next :meth:`propose_for` before the lock (the estimator
        fit); what it computes may be stale by then, and :meth:`propose_for` must check.
        Nothing by default."""

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        """Return the ``aux/<task>`` flags of every free candidate (known before any trial)."""
        if study._is_multi_objective():
            return {}
        return {f"{AUX_PARAM_PREFIX}{t}": CategoricalDistribution([False, True]) for t in self.free}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        """Return the proposed set as ``{"aux/<task>": bool}`` for the flags in ``search_space``."""
        if not search_space:
            return {}
        # Flags fixed by ``enqueue_trial`` win over the proposal (Optuna uses them first).
        fixed = _fixed_params(trial)
        every_flag_fixed = all(name in fixed for name in search_space)
        if not every_flag_fixed:
            self.prepare(study, trial)
        # Choosing and recording are one step for every thread and driver process.
        with proposal_lock(study._storage):
            if every_flag_fixed:
                values = {}
            else:
                subset = self.propose_for(study, trial)
                proposed = {name: name[len(AUX_PARAM_PREFIX) :] in subset for name in search_space}
                values = self._around_fixed(proposed, fixed)
            # Recorded before the lock is released: the next proposal (another thread, or
            # another driver process on the same database) counts this trial's set as proposed.
            _record_set(study, trial, search_space, {**values, **fixed})
        return values

    def _free_bounds(self) -> tuple[int, int]:
        """Return the fewest and the most free auxiliaries a proposed set may have."""
        raise NotImplementedError

    def _around_fixed(self, proposed: dict[str, bool], fixed: dict[str, Any]) -> dict[str, bool]:
        """Return ``proposed`` with as few of its other flags changed as it takes for the set
        that ``fixed`` (flags ``enqueue_trial`` fixed, which win) makes of it to fit the size
        bounds.

        Without this, fixing one flag of a proposal already at ``max_size`` gave a set one too
        large, and the search space's repair, which knows nothing of fixed flags, could drop
        the fixed task (or add back one fixed out, to reach ``min_size``).  The flags changed
        are drawn at random among the ones not fixed.
        """
        if not fixed:
            return proposed
        low, high = self._free_bounds()
        size = sum({**proposed, **fixed}[name] is True for name in proposed)
        on = [name for name, value in proposed.items() if value and name not in fixed]
        off = [name for name, value in proposed.items() if not value and name not in fixed]
        if size > high:
            changed, to = list(self._rng.permutation(on))[: size - high], False
        elif size < low:
            changed, to = list(self._rng.permutation(off))[: low - size], True
        else:
            return proposed
        return {**proposed, **dict.fromkeys(map(str, changed), to)}

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        """Return the inner sampler's value for a parameter outside the subset flags."""
        return self._independent.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        """Record the set of a trial whose every flag ``enqueue_trial`` fixed, then let the
        inner sampler prepare the trial.

        Optuna calls this as the trial is asked (running from then on).  Such a trial's set is
        known then, and it counts as proposed from then (:data:`PROPOSAL_ATTR`), not only once
        its objective first suggests a flag: the engine asks under its setup lock but samples
        later, in the objective, and a proposal made in between (another thread or driver) did
        not see the set (before: it proposed it again, past ``max_repeats``).  A waiting trial
        does not count yet (:func:`has_subset`), nor one whose flags are not all fixed (its
        set is chosen when it samples).
        """
        self._record_fixed_set(study, trial)
        self._independent.before_trial(study, trial)

    def _record_fixed_set(self, study: Study, trial: FrozenTrial) -> None:
        if trial.state != TrialState.RUNNING or PROPOSAL_ATTR in trial.system_attrs:
            return  # (a retry carries its original's proposal: the same parameters)
        fixed = _fixed_params(trial)
        if not any(name.startswith(AUX_PARAM_PREFIX) for name in fixed):
            return  # no lock taken for the trials the sampler proposes
        search_space = self.infer_relative_search_space(study, trial)
        if not search_space or not all(name in fixed for name in search_space):
            return
        with proposal_lock(study._storage):
            _record_set(study, trial, search_space, fixed)

    def after_trial(
        self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        """Let the inner sampler record the finished trial."""
        self._independent.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        """Reseed this sampler's generator and the inner sampler's."""
        self._rng = np.random.default_rng()
        self._independent.reseed_rng()


def _fixed_params(trial: FrozenTrial) -> dict[str, Any]:
    """Return the parameters ``enqueue_trial`` fixed for ``trial`` (Optuna's own system
    attribute ``fixed_params``; none for a trial the sampler samples)."""
    fixed = trial.system_attrs.get("fixed_params")
    return fixed if isinstance(fixed, dict) else {}


def _record_set(
    study: Study,
    trial: FrozenTrial,
    search_space: Collection[str],
    values: dict[str, Any],
) -> None:
    """Record on ``trial`` (stored and cached) the free auxiliaries whose flag of
    ``search_space`` is True in ``values`` as its proposal (:data:`PROPOSAL_ATTR`)."""
    chosen = sorted(name[len(AUX_PARAM_PREFIX) :] for name in search_space if values[name] is True)
    study._storage.set_trial_system_attr(storage_id(trial), PROPOSAL_ATTR, chosen)
    trial.system_attrs[PROPOSAL_ATTR] = chosen


def has_subset(trial: FrozenTrial) -> bool:
    """Return whether ``trial`` has its auxiliary set yet (the subset samplers count it as seen,
    unless it was interrupted: :func:`counted_trials`).

    A trial has one from the moment a subset sampler proposed it (:data:`PROPOSAL_ATTR`; for a
    trial whose every flag ``enqueue_trial`` fixed, as it is asked:
    :meth:`SubsetSampler.before_trial`), or once it suggested a flag; a waiting trial, or a
    running one not yet sampled, has none.
    """
    if trial.state == TrialState.WAITING:
        return False
    return (
        SUBSET_ATTR in trial.user_attrs
        or PROPOSAL_ATTR in trial.system_attrs
        or any(name.startswith(AUX_PARAM_PREFIX) for name in trial.params)
    )


def is_interrupted(trial: FrozenTrial, *, retried: Collection[int] = ()) -> bool:
    """Return whether ``trial`` failed because its driver stopped, not on its own.

    Such a trial is failed with ``taskgraph:interrupted`` (Ctrl-C, an exception of the driver,
    a driver killed or lost: the heartbeat marks it) and without a failure reason of its own,
    or another trial retries it (``retried``: :func:`~taskgraph.search.progress.retried_numbers`
    of the study's trials), whatever it carries.  A failure of its own (no mark, or a reason
    and no retry) is not an interruption: that trial's set counts as proposed.
    """
    if trial.state != TrialState.FAIL:
        return False
    if trial.number in retried:
        return True
    return bool(trial.user_attrs.get(INTERRUPTED_ATTR)) and FAILURE_ATTR not in trial.user_attrs


def counted_trials(
    trials: Sequence[FrozenTrial], *, exclude_trial: int | None = None
) -> list[FrozenTrial]:
    """Return the trials of ``trials`` (a study's, all of them) that count as a proposal of
    their set: those that have it (:func:`has_subset`) but the interrupted ones
    (:func:`is_interrupted`; the retry runs the set, and counts from the moment it runs) and
    ``exclude_trial`` (the number of the trial being sampled)."""
    retried = retried_numbers(trials)
    return [
        t
        for t in trials
        if t.number != exclude_trial and has_subset(t) and not is_interrupted(t, retried=retried)
    ]


def proposed_set(trial: FrozenTrial) -> frozenset[str] | None:
    """Return the free auxiliaries proposed for ``trial`` while it runs, else None.

    A running trial may have suggested only some of its flags: its proposal is its set.  A
    finished trial's flags are all there, and they are what it trained (a flag fixed by hand,
    an objective that suggests only some), so for it this returns None and its flags count.
    """
    stored = trial.system_attrs.get(PROPOSAL_ATTR)
    if trial.state != TrialState.RUNNING or stored is None:
        return None
    return frozenset(stored)


def check_sampler_arguments(
    sampler: str,
    *,
    target: str,
    candidates: Sequence[str],
    include: Sequence[str],
    exclude: Sequence[str],
    min_size: int,
    max_size: int | None,
    counts: dict[str, tuple[Any, bool]],
) -> None:
    """Raise ConfigError, naming the argument and its value, for what ``sampler`` cannot use.

    The bounds of ``counts`` (argument -> (value, whether None is allowed)) are the ones a
    spec's ``sampler.options`` are checked against (:data:`taskgraph.search.samplers._RANGES`),
    so a sampler built by hand refuses what a spec refuses, with the same lowest values.
    """
    from taskgraph.search.samplers import _RANGES  # that module imports the samplers lazily

    if not isinstance(target, str) or not target:
        raise ConfigError(f"`target` must be a task name, but got {target!r}")
    for name, names in (("candidates", candidates), ("include", include), ("exclude", exclude)):
        _check_names(name, names)
    unknown = sorted(set(include) - set(candidates) - {target})
    if unknown:
        raise ConfigError(
            f"`include` names tasks that are not candidates: {', '.join(map(repr, unknown))}"
        )
    sizes: dict[str, tuple[Any, bool]] = {
        "min_size": (min_size, False),
        "max_size": (max_size, True),
    }
    bounds = _RANGES.get(sampler, {})
    for name, (value, optional) in {**sizes, **counts}.items():
        if value is None and optional:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"`{name}` must be an integer, but got {value!r}")
        low = int(bounds.get(name, (0, False))[0])
        if value < low:
            raise ConfigError(f"`{name}` must be >= {low}, but got {value!r}")


def _check_names(name: str, names: Iterable[str]) -> None:
    if isinstance(names, str):
        raise ConfigError(
            f"`{name}` must be a list of task names, but got the string {names!r} "
            f"(pass a list: {name}=[...])"
        )
    for task in names:
        if not isinstance(task, str) or not task:
            raise ConfigError(f"`{name}` must hold task names, but got {task!r}")
