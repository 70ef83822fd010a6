"""The queue planner: the baselines and spec rows a study enqueues when it opens and as trials end.

A study's queue holds, before anything the sampler proposes, the single-task baseline (every
gain is measured against it), the spec's rows, a baseline of each model family a complete
trial lands in (``budget.baselines``), and a baseline on the target's current data version.
:class:`QueuePlanner` decides what is missing and enqueues it; the engine calls it under the
setup lock, when the study opens (:meth:`QueuePlanner.fill`) and after each trial it finishes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial

from taskgraph.encoder_files import encoder_version
from taskgraph.search.progress import CONFIG_ATTR, retried_numbers, trained_by, trial_state
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
from taskgraph.trial import TrialConfig

if TYPE_CHECKING:
    from taskgraph.search.recording import RecordWriter
    from taskgraph.storage.repository import Repository

__all__ = ["BASELINE_PER_TRIAL_KIND", "DATA_VERSION_ATTR", "QueuePlanner", "family_key"]


def family_key(trial: FrozenTrial) -> str | None:
    """Return the model family (``TrialConfig.family_key``) of ``trial``'s configuration;
    before it has one, that of the family baseline it was enqueued as (``taskgraph:family``,
    without a ``per_setting`` key's settings), else ``None``."""
    if CONFIG_ATTR not in trial.user_attrs:
        family = trial.user_attrs.get(FAMILY_ATTR)
        return family.split("/settings:")[0] if isinstance(family, str) else None
    return TrialConfig.from_dict(trial.user_attrs[CONFIG_ATTR]).family_key()


def _family_now(trial: FrozenTrial) -> str:
    """Return the model family ``trial``'s configuration has when configured now: with its
    encoder directory's files as they are now (``TrialConfig.encoder_version``), so that a
    baseline is trained again once the weights were replaced under the same path."""
    config = TrialConfig.from_dict(trial.user_attrs[CONFIG_ATTR])
    # Also for a baseline configured before versions were recorded: the trials configured
    # now carry one, and so must the baseline they are measured against.
    return replace(config, encoder_version=encoder_version(config.encoder)).family_key()


#: ``budget.baselines`` values that enqueue a baseline for each kind of trial that completes
#: (its model family; with ``per_setting``, its family and alone settings)
BASELINE_PER_TRIAL_KIND = ("per_family", "per_setting")

#: The target's dataset fingerprint (data version) a baseline trial was enqueued to train on,
#: on the baselines enqueued for a family or a new data version (its failures count against
#: the retries of that version's baseline)
DATA_VERSION_ATTR = "taskgraph:data_version"


class QueuePlanner:
    """Enqueues what a study's queue lacks: the baseline, the spec's rows, the family and
    data-version baselines, and the baseline again after it failed.

    ``spec``: the study's (its rows, ``budget`` and ``recovery``); ``space`` builds the
    enqueued parameters; ``repository`` and ``recorder`` tell the data version each trial
    trained on and the target's now.
    """

    def __init__(
        self,
        *,
        spec: StudySpec,
        space: SearchSpace,
        repository: Repository,
        recorder: RecordWriter,
    ) -> None:
        self.spec = spec
        self.space = space
        self.repository = repository
        self.recorder = recorder
        # Per trial number, the family its stored configuration gives (it never changes once
        # set): computed once, not at every new trial over the whole study.
        self._families: dict[int, str] = {}

    def fill(self, study: optuna.Study, trials: list[FrozenTrial]) -> list[FrozenTrial]:
        """Re-queue a failed baseline, enqueue the first trials and the family baselines;
        return the trials as last read (without the last step's new waiting ones).

        Call it under the setup lock: drivers started together would each find no baseline.
        Each step sees what the steps before it enqueued: the trials are read again after a
        step that wrote, and only then.  ``trials``: the study's as read, or as read again
        after a step before this one (re-queuing lost trials) wrote.
        """
        steps: list[Callable[[optuna.Study, Sequence[FrozenTrial]], bool]] = [
            self.requeue_failed_baseline,
            self.enqueue_first_trials,
            self.enqueue_data_baseline,
        ]
        if self.spec.budget.baselines in BASELINE_PER_TRIAL_KIND:
            steps.append(self.enqueue_family_baselines)
        wrote = False
        for step in steps:
            if wrote:
                trials = study.get_trials(deepcopy=False)
            wrote = step(study, trials)
        return trials

    def enqueue_first_trials(self, study: optuna.Study, trials: Sequence[FrozenTrial]) -> bool:
        """Enqueue the baseline, then the spec's other rows in order, each unless it is there
        in ``trials``; return whether anything was enqueued.

        Each is looked for, not only the baseline: a driver killed between enqueuing the
        baseline and the rows would otherwise leave the rows out for good.
        """
        space, rows = self.space, self.spec.rows
        wrote = False
        if not any(ROLE_ATTR in t.user_attrs for t in trials):
            self.enqueue_baseline(study)
            wrote = True
        queued = {t.user_attrs.get(ROW_ATTR) for t in trials}
        for row in rows:
            if row.auxiliaries and row.name not in queued:
                study.enqueue_trial(space.row_params(row), user_attrs=space.row_user_attrs(row))
                wrote = True
        return wrote

    def enqueue_baseline(self, study: optuna.Study) -> None:
        """Enqueue the single-task baseline: the spec's row of the target alone, if it has one."""
        space = self.space
        alone = next((row for row in self.spec.rows if not row.auxiliaries), None)
        if alone is None:
            study.enqueue_trial(space.baseline_params(), user_attrs=space.baseline_user_attrs())
        else:
            study.enqueue_trial(space.row_params(alone), user_attrs=space.row_user_attrs(alone))

    def enqueue_data_baseline(self, study: optuna.Study, trials: Sequence[FrozenTrial]) -> bool:
        """Enqueue the first baseline's configuration again when no baseline of its model
        family is on the target's current data version; return whether it did.  The family is
        the one a trial configured now has: after an encoder directory's weights were
        replaced, the new weights' (``TrialConfig.encoder_version``).

        ``study show`` measures a trial against a baseline on the same version of the
        target's data (its dataset fingerprint): after the target's files are edited between
        runs, every later trial would have no gain.  When the study has a complete first
        baseline but no baseline trial of its model family (``TrialConfig.family_key``) is
        complete on the current version, waiting or running, the first baseline's parameters
        are enqueued as a baseline marked with the version (``taskgraph:data_version``): the
        same configuration, trained afresh (a repeat is one on the same data,
        :meth:`~taskgraph.search.engine.StudyEngine.same_configuration`).  One per data version
        whatever ``budget.baselines``; it counts against ``budget.trials`` like the family
        baselines (none is enqueued while the budget is spent: it would wait for a resume that
        never runs it), and one that fails is enqueued again up to ``recovery.max_retry``
        times.
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
        family = _family_now(first)
        current = self._target_data()
        versions: dict[int, str | None] | None = None
        failures = 0
        for trial in trials:
            if trial.user_attrs.get(ROLE_ATTR) != BASELINE_ROLE:
                continue
            theirs = family_key(trial)
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

    def requeue_failed_baseline(
        self, study: optuna.Study, trials: Sequence[FrozenTrial] | None = None
    ) -> bool:
        """Enqueue the baseline again when every baseline trial so far failed; return whether
        it did.  ``trials``: the study's (read when not given).

        Every gain of the study is measured against it, and no sampler proposes the target
        alone when ``min_size`` >= 1: a baseline that failed once (a transient out-of-memory,
        a lost node) would leave the whole study without gains.  At most
        ``recovery.max_retry`` retries; the sampler chooses the retry's other settings anew
        (the failure may have been theirs).  Interrupted baselines are
        :meth:`~taskgraph.search.recovery.TrialRecovery.requeue_lost`'s.
        """
        if trials is None:
            trials = study.get_trials(deepcopy=False)
        retried = retried_numbers(trials)
        states = [trial_state(t, retried=retried) for t in trials if is_first_baseline(t)]
        failed = bool(states) and all(state == "failed" for state in states)
        if failed and len(states) <= self.spec.recovery.max_retry:
            self.enqueue_baseline(study)
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

    def enqueue_family_baselines(
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
        if self.spec.budget.baselines not in BASELINE_PER_TRIAL_KIND:
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
