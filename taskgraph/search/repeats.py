"""Repeat detection: whether a configuration or a run was already trained on the same data.

The sampler may propose a configuration the study already trained: on the same data, the same
training would give the same result, so the earlier trial's value is told again
(:class:`RepeatFinder`), and its complete runs are recorded once (:func:`repeat_held`).  On
other data (a task's file edited, another ``--data`` directory) it is a new measurement.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from taskgraph.search.progress import CONFIG_ATTR, STATUS_ATTR, trained_by, trial_results
from taskgraph.trial import TrialConfig, TrialStatus, config_hash
from taskgraph.vocabulary import task_set_key

if TYPE_CHECKING:
    from taskgraph.search.recording import RecordWriter
    from taskgraph.storage.repository import Repository

__all__ = ["RepeatFinder", "repeat_held"]


def repeat_held(
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


class RepeatFinder:
    """Finds the trial of study ``study_name`` that already trained a configuration on the data
    its tasks have now; ``repository`` holds the runs' recorded dataset fingerprints and
    ``recorder`` computes the tasks' fingerprints now."""

    def __init__(self, *, study_name: str, repository: Repository, recorder: RecordWriter) -> None:
        self.study_name = study_name
        self.repository = repository
        self.recorder = recorder
        # Per trial number, the hash of its stored configuration (it never changes once set):
        # computed once, not at every new trial over the whole study.
        self._config_hashes: dict[int, str] = {}

    def same_configuration(
        self, study: optuna.Study, number: int, config: TrialConfig
    ) -> FrozenTrial | None:
        """Return the latest complete trial of ``study`` (not ``number``) that trained ``config``
        on the data its tasks have now, if any.

        The same configuration is the same training only on the same data: a trial whose
        runs recorded other dataset fingerprints of a task of ``config`` (its file edited
        since, or read from another ``--data`` directory) measured something else, and
        ``config`` is trained again.  A repeat's data is that of the trial it repeats.
        """
        wanted = config_hash(config.to_dict())
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
            study=self.study_name,
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
