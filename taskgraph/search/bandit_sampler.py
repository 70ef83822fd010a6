"""An AutoSeM-style bandit over auxiliary tasks: a baseline for the graph-guided sampler.

``sampler: bandit`` in a study spec.  AutoSeM (Guo, Pasunuru and Bansal, NAACL 2019, stage 1)
treats every auxiliary task as the arm of a Beta-Bernoulli bandit and picks arms by Thompson
sampling: each arm ``i`` holds ``Beta(alpha_i, beta_i)``; a draw ``theta_i`` per arm chooses
what to train with; the reward is 1 when the primary task's validation score improved, else 0.

Here one trial is one pull:

* the reward of a finished trial is 1 when its objective beats the target's single-task
  baseline trial (the study's enqueued baseline; before it finishes, the median of the values
  seen stands in), else 0, and it updates every free auxiliary of the trial's set; the
  baseline (the target alone) is the reference, not an arm: with ``include`` it is not a valid
  set, and the include-only set (no free auxiliary) is one to propose like any other;
* the proposal is the arm with the largest draw when at most one free auxiliary fits
  (``max_size`` 1: exactly AutoSeM's choice of one arm); otherwise every task whose draw
  exceeds 1/2 (the posterior says "more likely to help than not"), trimmed to ``max_size`` and
  filled to ``min_size`` by draw;
* a set the study has already tried, in any state (complete, pruned, failed, running: from
  the moment it was proposed, so trials run in parallel see each other's sets; not a trial
  interrupted by its driver, whose retry runs the set and counts once it runs), is
  redrawn (up to ``max_redraws`` draws; then the
  not yet evaluated arm with the best posterior mean, or a random unevaluated set: up to
  ``max_redraws`` uniform draws, then one chosen uniformly from the list of those left when
  the valid sets number at most ``max_enumeration``), so the bandit is not charged for
  re-asking what a deterministic benchmark already answered.  A set is repeated only when
  every valid set has been evaluated (or, past ``max_enumeration``, no draw found a new one).

Like :class:`~taskgraph.search.graph_sampler.GraphGuidedSampler` it claims the ``aux/<task>``
flags as its relative search space and hands every other parameter to an inner sampler.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
from optuna.samplers import BaseSampler, TPESampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from taskgraph.errors import ConfigError
from taskgraph.search.space import AUX_PARAM_PREFIX, BASELINE_ROLE, ROLE_ATTR, SUBSET_ATTR
from taskgraph.search.subset_sampler import (
    SubsetSampler,
    check_sampler_arguments,
    counted_trials,
    proposed_set,
)

__all__ = ["BanditSampler"]


class BanditSampler(SubsetSampler):
    """Beta-Bernoulli Thompson sampling over auxiliary tasks (module docstring)."""

    def __init__(
        self,
        *,
        target: str,
        candidates: Sequence[str],
        min_size: int = 0,
        max_size: int | None = None,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        alpha: float = 1.0,
        beta: float = 1.0,
        max_redraws: int = 32,
        max_enumeration: int = 4096,
        seed: int | None = None,
        independent_sampler: BaseSampler | None = None,
    ) -> None:
        if alpha <= 0 or beta <= 0:
            raise ConfigError(f"`alpha` and `beta` must be > 0, but got {alpha} and {beta}")
        check_sampler_arguments(
            "BanditSampler", target=target, candidates=candidates, include=include,
            exclude=exclude, min_size=min_size, max_size=max_size,
            counts={"max_redraws": (max_redraws, False), "max_enumeration": (max_enumeration, False)},
        )  # fmt: skip
        self.target = target
        self.include = tuple(sorted(set(include) - {target}))
        self.free = tuple(sorted(set(candidates) - set(include) - set(exclude) - {target}))
        self.low = max(min_size - len(self.include), 0)
        # Not clamped at 0: more include tasks than max_size leave no subset, refused below
        # as a spec refuses it (clamped, the include-only set was proposed above max_size).
        self.high = (
            len(self.free)
            if max_size is None
            else min(max_size - len(self.include), len(self.free))
        )
        if self.low > self.high:
            raise ConfigError(
                f"no subset fits min_size={min_size}, max_size={max_size} with "
                f"include={list(self.include)} and {len(self.free)} free candidates"
            )
        self.alpha = alpha
        self.beta = beta
        self.max_redraws = max_redraws
        self.max_enumeration = max_enumeration
        self._rng = np.random.default_rng(seed)
        self._independent = independent_sampler or TPESampler(seed=seed)

    # ------------------------------------------------------------------ Optuna API
    def _free_bounds(self) -> tuple[int, int]:
        return self.low, self.high

    def propose_for(self, study: Study, trial: FrozenTrial) -> frozenset[str]:
        """Return the free auxiliaries of ``trial``'s set (:meth:`propose`)."""
        return self.propose(study, exclude_trial=trial.number)

    # ------------------------------------------------------------------ bandit
    def posterior(
        self, study: Study, *, exclude_trial: int | None = None
    ) -> tuple[dict[str, tuple[float, float]], set[frozenset[str]]]:
        """Return each free task's ``(alpha, beta)`` and the free parts of the sets seen.

        Rewards come from complete trials.  Seen are the sets of every trial but
        ``exclude_trial`` (the one being sampled) whatever its state: a pruned, failed or
        still running set is not proposed again while an unseen one is left.  An interrupted
        trial is not seen: its retry runs the set
        (:func:`~taskgraph.search.subset_sampler.counted_trials`).
        """
        study_trials = study.get_trials(deepcopy=False)
        every = [t for t in study_trials if t.number != exclude_trial]
        trials = [t for t in every if t.state == TrialState.COMPLETE]
        # (free part, value, whether the trial is the target alone: the reference, no arm)
        observed: list[tuple[frozenset[str], float, bool]] = []
        for trial in trials:
            if trial.value is None or not math.isfinite(trial.value):
                continue
            alone = not self._auxiliaries_of(trial)  # the baseline's set is empty too
            observed.append((self._free_part(trial), float(trial.value), alone))
        higher = study.direction == StudyDirection.MAXIMIZE
        references = [v for _, v, alone in observed if alone]
        if references:
            reference = references[0]
        elif observed:
            reference = float(np.median([v for _, v, _ in observed]))
        else:
            reference = math.nan
        counts = {t: [self.alpha, self.beta] for t in self.free}
        for subset, value, alone in observed:
            if alone:
                continue
            won = value > reference if higher else value < reference
            for task in subset:
                counts[task][0 if won else 1] += 1.0
        # Seen are the valid sets tried: a set without every include task (the baseline, the
        # target alone, when include is set) is not one, though its free part may look like
        # one (the include-only set's free part is empty too).
        include = frozenset(self.include)
        counted = {t.number for t in counted_trials(study_trials, exclude_trial=exclude_trial)}
        evaluated = {
            self._free_part(t)
            for t in every
            if (t.number in counted or t.state == TrialState.COMPLETE)
            and include <= self._auxiliaries_of(t)
        }
        return {t: (a, b) for t, (a, b) in counts.items()}, evaluated

    def propose(self, study: Study, *, exclude_trial: int | None = None) -> frozenset[str]:
        """Return the free auxiliaries of the next set (module docstring)."""
        counts, evaluated = self.posterior(study, exclude_trial=exclude_trial)
        if not self.free:
            return frozenset()
        a = np.array([counts[t][0] for t in self.free])
        b = np.array([counts[t][1] for t in self.free])
        for _ in range(self.max_redraws):
            subset = self._from_draw(self._rng.beta(a, b))
            if subset not in evaluated:
                return subset
        if self.high == 1:
            fresh = [i for i, t in enumerate(self.free) if frozenset({t}) not in evaluated]
            if fresh:
                means = a / (a + b)
                return frozenset({self.free[max(fresh, key=lambda i: means[i])]})
        for _ in range(self.max_redraws):
            size = int(self._rng.integers(self.low, self.high + 1))
            picked = self._rng.choice(len(self.free), size=size, replace=False)
            subset = frozenset(self.free[i] for i in picked)
            if subset not in evaluated:
                return subset
        # The random draws keep hitting evaluated sets: list those left, when they can be.
        remaining = self._unevaluated_sets(evaluated)
        if remaining:
            return remaining[int(self._rng.integers(len(remaining)))]
        return self._from_draw(self._rng.beta(a, b))  # everything seen: a repeat costs a trial

    def _unevaluated_sets(self, evaluated: set[frozenset[str]]) -> list[frozenset[str]]:
        """Return the valid sets not in ``evaluated``, smallest first; none when the valid sets
        outnumber ``max_enumeration`` (then they are not listed)."""
        sizes = range(self.low, self.high + 1)
        if sum(math.comb(len(self.free), k) for k in sizes) > self.max_enumeration:
            return []
        every = (frozenset(c) for k in sizes for c in itertools.combinations(self.free, k))
        return [subset for subset in every if subset not in evaluated]

    def _from_draw(self, theta: np.ndarray) -> frozenset[str]:
        order = np.argsort(-theta, kind="stable")
        if self.high == 1:
            return frozenset({self.free[int(order[0])]})
        chosen = [int(i) for i in order if theta[i] > 0.5][: self.high]
        for i in order:  # fill to min_size with the next best draws
            if len(chosen) >= self.low:
                break
            if int(i) not in chosen:
                chosen.append(int(i))
        return frozenset(self.free[i] for i in chosen)

    def _auxiliaries_of(self, trial: FrozenTrial) -> frozenset[str]:
        """Return the trial's whole auxiliary set (include tasks too; empty for the baseline)."""
        stored = trial.user_attrs.get(SUBSET_ATTR)
        if stored is not None:
            return frozenset(stored) - {self.target}
        if trial.user_attrs.get(ROLE_ATTR) == BASELINE_ROLE:
            return frozenset()
        proposal = proposed_set(trial)  # a running trial: its flags may not all be there yet
        if proposal is not None:
            return proposal | frozenset(self.include)
        flags = frozenset(
            name[len(AUX_PARAM_PREFIX) :] for name, value in trial.params.items()
            if name.startswith(AUX_PARAM_PREFIX) and value is True
        )  # fmt: skip
        return flags | frozenset(self.include)

    def _free_part(self, trial: FrozenTrial) -> frozenset[str]:
        return self._auxiliaries_of(trial) & frozenset(self.free)
