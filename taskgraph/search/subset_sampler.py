"""The Optuna plumbing shared by the samplers that propose auxiliary sets jointly.

:class:`SubsetSampler` claims the ``aux/<task>`` flags of its free candidates as its relative
search space, fills them from :meth:`SubsetSampler.propose_for` (the one method a subclass
writes) and hands every other parameter to an inner sampler (TPE by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from taskgraph.search.space import AUX_PARAM_PREFIX, SUBSET_ATTR

__all__ = ["SubsetSampler", "has_subset"]


class SubsetSampler(BaseSampler):
    """Base of the graph-guided and bandit samplers; subclasses set ``free``, ``_rng``,
    ``_independent`` and implement :meth:`propose_for`."""

    free: Sequence[str]
    _rng: np.random.Generator
    _independent: BaseSampler

    def propose_for(self, study: Study, trial: FrozenTrial) -> frozenset[str]:
        """Return the free auxiliaries of ``trial``'s set."""
        raise NotImplementedError

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
        subset = self.propose_for(study, trial)
        return {name: name[len(AUX_PARAM_PREFIX) :] in subset for name in search_space}

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
        """Let the inner sampler prepare the trial."""
        self._independent.before_trial(study, trial)

    def after_trial(
        self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        """Let the inner sampler record the finished trial."""
        self._independent.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        """Reseed this sampler's generator and the inner sampler's."""
        self._rng = np.random.default_rng()
        self._independent.reseed_rng()


def has_subset(trial: FrozenTrial) -> bool:
    """Return whether ``trial`` has its auxiliary set yet (the subset samplers count it as seen).

    A waiting trial, or a running one between ask and its first suggestion, has none.
    """
    if trial.state == TrialState.WAITING:
        return False
    return SUBSET_ATTR in trial.user_attrs or any(
        name.startswith(AUX_PARAM_PREFIX) for name in trial.params
    )
