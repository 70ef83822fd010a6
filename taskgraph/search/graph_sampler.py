"""The graph-guided Optuna sampler: auxiliary subsets from the fitted task-affinity model.

``sampler: graph`` in a study spec.  The subset of auxiliary tasks is encoded as one
categorical parameter ``aux/<task>`` with choices ``[False, True]`` per free candidate
(:mod:`taskgraph.search.space`).  This sampler claims all of them as its relative search
space and proposes them jointly; every other parameter goes to an inner sampler (TPE by
default) through ``sample_independent``.

How a subset is proposed:

1. The study's finished trials become score records of the target (task set from the
   ``auxiliaries`` user attribute or the ``aux/*`` parameters), added to ``prior_records``
   (records of earlier studies: a new study on a known target starts informed), and an
   affinity estimator (``setfn`` by default) is refitted on all of them.  A complete trial
   gives its value.  A pruned trial is evidence too (the pruner stopped it because it trailed
   the others at that step): it gives its *step-matched* value, the baseline trial's final
   value plus the difference between its last intermediate value and the baseline's at the
   same step (its raw last intermediate value when the baseline has no value at that step).
   A failed trial gives no value, but its set counts as proposed.
2. Start-up, while the target has no gain records at all: the empty set (the single-task
   baseline every gain needs), then each candidate alone (pairs identify the per-source
   effects the model generalises from), best prior first (:func:`startup_order`): the
   ``startup_scores`` given (a screen, text-embedding similarity), else each source's mean
   gain for the other targets in ``prior_records`` (the popular-source prior), else a seeded
   random order, never the order the candidates happen to be listed in.  (A study's screens
   also reach the model: :func:`taskgraph.search.samplers.build_sampler` puts their
   lookahead matrices in ``estimator_options``.)
3. Then Thompson sampling (Thompson 1933; Russo et al. 2018): one joint posterior draw of
   the gains of every valid subset not yet proposed, and the subset with the best draw
   (``acquisition="ei"`` ranks by expected improvement over the best gain seen instead).
   With more valid subsets than ``max_enumeration`` they are not enumerated: the subsets
   drawn from are the neighbours of the sets proposed so far (one free candidate added or
   removed, or swapped: one member out and one non-member in, when the result is valid and
   not yet proposed), topped up with random sets (a uniform size, then a uniform subset of
   that size) to ``max_enumeration``.  Swaps keep a local search for ``min_size ==
   max_size``, where no addition or removal is valid.  When the neighbours alone pass
   ``max_enumeration``, those of the best sets come first: proposed sets are ranked by the
   model's posterior mean (ties, and every set before the model exists, by size then names),
   each set's neighbours are taken in turn, and the set that reaches the cap gives a random
   share of its own.
4. A set is proposed again only when every valid set has been proposed: then the draw (or
   expected improvement) chooses among the sets proposed fewer than ``max_repeats`` times
   (default 3), so a repeat goes to the set the model deems worth another configuration of
   the other parameters.  Every trial of the study counts, whatever its state (complete,
   pruned, failed, running): no set is proposed more than ``max_repeats`` times.  A trial
   interrupted by its driver (Ctrl-C, a killed or lost driver) does not count: its retry runs
   the same set and counts once it runs
   (:func:`~taskgraph.search.subset_sampler.counted_trials`).  A running
   trial counts from the moment its set is proposed, before its objective suggests the flags
   (:data:`~taskgraph.search.subset_sampler.PROPOSAL_ATTR`), so this holds for trials run in
   parallel too (``study.optimize(..., n_jobs=4)``).  When every
   valid set has reached the limit, :meth:`GraphGuidedSampler.exhausted` says so and the
   local engine stops the study (reason ``exhausted``); a driver that asks anyway gets the
   least-proposed set, with a warning.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from optuna.samplers import BaseSampler, TPESampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState
from scipy.stats import norm

from taskgraph.affinity.estimators.base import AffinityEstimator, make_estimator
from taskgraph.affinity.gains import compute_gains
from taskgraph.affinity.records import ScoreRecord
from taskgraph.errors import ConfigError
from taskgraph.search.space import AUX_PARAM_PREFIX, SUBSET_ATTR
from taskgraph.search.subset_sampler import (
    SubsetSampler,
    check_sampler_arguments,
    counted_trials,
    proposed_set,
)

__all__ = ["GraphGuidedSampler", "popular_source_scores", "startup_order"]

PriorRecords = Callable[[], Sequence[ScoreRecord]] | Sequence[ScoreRecord] | None
_STUDY_FAMILY = "graph-sampler:study"
_STUDY_SPLIT = "objective"


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


#: ``setfn``'s pooling in the sampler when ``estimator_options`` name none: ``mean``, what the
#: search-efficiency rows were measured and chosen with.  ``bma``, the estimator's own default,
#: was chosen on gain prediction, not on search (docs/affinity.md, "averaging the poolings").
SETFN_POOLING = "mean"


class GraphGuidedSampler(SubsetSampler):
    """Proposes ``aux/<task>`` flags from an affinity estimator; delegates the rest (module docstring)."""

    def __init__(
        self,
        *,
        target: str,
        candidates: Sequence[str],
        estimator: str = "setfn",
        estimator_options: Mapping[str, Any] | None = None,
        min_size: int = 0,
        max_size: int | None = None,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        prior_records: PriorRecords = None,
        n_startup_trials: int | None = None,
        acquisition: str = "thompson",
        max_enumeration: int = 4096,
        max_repeats: int = 3,
        seed: int | None = None,
        independent_sampler: BaseSampler | None = None,
        startup_scores: Mapping[str, float] | None = None,
    ) -> None:
        if acquisition not in ("thompson", "ei"):
            raise ConfigError(f"`acquisition` must be 'thompson' or 'ei', but got {acquisition!r}")
        if isinstance(max_repeats, bool) or not isinstance(max_repeats, int) or max_repeats < 1:
            raise ConfigError(f"`max_repeats` must be an integer >= 1, but got {max_repeats!r}")
        check_sampler_arguments(
            "GraphGuidedSampler", target=target, candidates=candidates, include=include,
            exclude=exclude, min_size=min_size, max_size=max_size,
            counts={"n_startup_trials": (n_startup_trials, True),
                    "max_enumeration": (max_enumeration, False)},
        )  # fmt: skip
        self.target = target
        self.include = tuple(sorted(set(include) - {target}))
        self.free = tuple(sorted(set(candidates) - set(include) - set(exclude) - {target}))
        self.min_size = min_size
        self.max_size = max_size
        low, high = self._free_bounds()
        if low > high:
            raise ConfigError(
                f"no subset fits min_size={min_size}, max_size={max_size} with include={list(self.include)} "
                f"and {len(self.free)} free candidates"
            )
        self.estimator_name = estimator
        self.estimator_options = dict(estimator_options or {})
        if estimator == "setfn":
            self.estimator_options.setdefault("pooling", SETFN_POOLING)
        make_estimator(estimator, **self.estimator_options)  # fail now on a bad name or option
        self._prior = prior_records
        self.n_startup_trials = n_startup_trials
        self.acquisition = acquisition
        self.max_enumeration = max_enumeration
        self.max_repeats = max_repeats
        self._rng = np.random.default_rng(seed)
        self._independent = independent_sampler or TPESampler(seed=seed)
        self.last_estimator: AffinityEstimator | None = None
        self.startup_scores = dict(startup_scores or {})
        self._startup_order: list[str] | None = None  # fixed at the first start-up proposal
        # The last fit and the records it was fitted on: prepare() fits before the proposal
        # lock, and the proposal under it reuses the fit while its records are the same.
        self._fitted: tuple[tuple[ScoreRecord, ...], AffinityEstimator | None] | None = None

    # ------------------------------------------------------------------ Optuna API
    def propose_for(self, study: Study, trial: FrozenTrial) -> frozenset[str]:
        """Return the free auxiliaries of ``trial``'s set (:meth:`propose`)."""
        return self.propose(study, exclude_trial=trial.number)

    def prepare(self, study: Study, trial: FrozenTrial) -> None:
        """Fit the estimator on the study's records as they are now, before the proposal lock
        (:func:`~taskgraph.search.subset_sampler.proposal_lock`): other drivers do not wait on
        the fit.  :meth:`propose`, under the lock, reads the trials again and reuses this fit
        when they give the same records (else it fits again).  Nothing while a start-up set
        is pending (the proposal fits nothing)."""
        study_records, proposed = self._study_records(study, exclude_trial=trial.number)
        prior = self._prior_records()
        informed = self._informed(prior)
        if not informed and self._startup_order is None:
            return  # the first proposal: a start-up set, whose order is fixed under the lock
        if self._pending_startup(set(proposed), informed=informed):
            return
        self._fit(prior + study_records)

    # ------------------------------------------------------------------ proposal
    def _free_bounds(self) -> tuple[int, int]:
        low = max(self.min_size - len(self.include), 0)
        high = (
            len(self.free)
            if self.max_size is None
            else min(self.max_size - len(self.include), len(self.free))
        )
        return low, high

    def _valid(self, subset: frozenset[str]) -> bool:
        low, high = self._free_bounds()
        return low <= len(subset) <= high

    def _prior_records(self) -> list[ScoreRecord]:
        prior = self._prior() if callable(self._prior) else self._prior
        return list(prior or [])

    def _study_records(
        self, study: Study, *, exclude_trial: int | None = None
    ) -> tuple[list[ScoreRecord], Counter[frozenset[str]]]:
        """Return the study's evidence as records and how often each free subset was proposed.

        Records: complete trials with their value, pruned trials with their step-matched value
        (module docstring).  Counts: every trial but ``exclude_trial`` (the one being sampled)
        whatever its state, by the free part of its set (sets without the include tasks, from
        trials enqueued by hand, are not this sampler's to count), except interrupted trials,
        whose retries count instead (:func:`~taskgraph.search.subset_sampler.counted_trials`).
        """
        every = study.get_trials(deepcopy=False)
        trials = [t for t in every if t.number != exclude_trial]
        higher = study.direction == StudyDirection.MAXIMIZE
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        baseline = next(
            (t for t in complete if not self._auxiliaries_of(t) and _finite(t.value)), None
        )
        observed: list[tuple[frozenset[str], float]] = []
        for trial in complete:
            if _finite(trial.value):
                observed.append((self._auxiliaries_of(trial), float(trial.value)))  # type: ignore[arg-type]
        for trial in trials:
            if trial.state == TrialState.PRUNED:
                value = self._pruned_value(trial, baseline)
                if value is not None:
                    observed.append((self._auxiliaries_of(trial), value))
        records = [
            ScoreRecord(task=self.target, task_set=frozenset({self.target}) | aux, value=v,
                        higher_is_better=higher, split=_STUDY_SPLIT, family=_STUDY_FAMILY)
            for aux, v in observed
        ]  # fmt: skip
        if records and all(aux for aux, _ in observed):
            # No baseline trial yet: the median value stands in, so gains keep their order.
            median = float(np.median([v for _, v in observed]))
            records.append(ScoreRecord(task=self.target, task_set=frozenset({self.target}), value=median,
                                       higher_is_better=higher, split=_STUDY_SPLIT, family=_STUDY_FAMILY))  # fmt: skip
        include = set(self.include)
        proposed: Counter[frozenset[str]] = Counter(
            aux - include
            for aux in (
                self._auxiliaries_of(t) for t in counted_trials(every, exclude_trial=exclude_trial)
            )
            if include <= aux
        )
        return records, proposed

    @staticmethod
    def _pruned_value(trial: FrozenTrial, baseline: FrozenTrial | None) -> float | None:
        """Return a pruned trial's step-matched value (module docstring); None without a curve."""
        curve = {step: v for step, v in trial.intermediate_values.items() if _finite(v)}
        if not curve:
            return None
        step = max(curve)
        if baseline is not None and _finite(baseline.intermediate_values.get(step)):
            # The baseline was still improving at that step too: compare like with like.
            return float(baseline.value) + curve[step] - baseline.intermediate_values[step]  # type: ignore[arg-type]
        return curve[step]

    def _auxiliaries_of(self, trial: FrozenTrial) -> frozenset[str]:
        """Return the trial's whole auxiliary set (include tasks too; empty for the baseline trial)."""
        stored = trial.user_attrs.get(SUBSET_ATTR)
        if stored is not None:
            return frozenset(stored) - {self.target}
        proposal = proposed_set(trial)  # a running trial: its flags may not all be there yet
        if proposal is not None:
            return proposal | frozenset(self.include)
        flags = {
            name[len(AUX_PARAM_PREFIX):] for name, value in trial.params.items()
            if name.startswith(AUX_PARAM_PREFIX) and value is True
        }  # fmt: skip
        return frozenset(flags) | frozenset(self.include)

    def _fit(self, records: list[ScoreRecord]) -> AffinityEstimator | None:
        """Return the estimator fitted on ``records`` (the last fit when it had the same)."""
        key = tuple(records)
        fitted = self._fitted
        if fitted is not None and fitted[0] == key:
            return fitted[1]
        estimator = self._fit_new(records)
        self._fitted = (key, estimator)
        return estimator

    def _fit_new(self, records: list[ScoreRecord]) -> AffinityEstimator | None:
        if not any(len(r.task_set) > 1 for r in records):
            return None
        try:
            return make_estimator(self.estimator_name, **self.estimator_options).fit(records)
        except ConfigError:
            # A zero baseline makes relative gains undefined: absolute gains keep the order.
            options = {**self.estimator_options, "gain_kind": "absolute"}
            return make_estimator(self.estimator_name, **options).fit(records)

    def exhausted(self, study: Study) -> bool:
        """Return True when every valid subset has been proposed ``max_repeats`` times."""
        _, proposed = self._study_records(study)
        low, high = self._free_bounds()
        total = sum(math.comb(len(self.free), k) for k in range(low, high + 1))
        full = [s for s, n in proposed.items() if n >= self.max_repeats and self._valid(s)
                and s <= set(self.free)]  # fmt: skip
        return len(full) >= total

    def propose(self, study: Study, *, exclude_trial: int | None = None) -> frozenset[str]:
        """Return the free auxiliaries of the next subset to evaluate (module docstring).

        ``exclude_trial``: the number of the trial being sampled (not yet a proposal).
        """
        study_records, proposed = self._study_records(study, exclude_trial=exclude_trial)
        evaluated = set(proposed)
        prior = self._prior_records()
        pending = self._pending_startup(evaluated, informed=self._informed(prior))
        if pending:
            return pending[0]
        estimator = self._fit(prior + study_records)
        self.last_estimator = estimator
        valid = self._candidate_sets(evaluated, estimator)
        pool = [s for s in valid if s not in evaluated]
        if not pool:
            # Every valid set was proposed: repeat one (the other parameters differ) while it
            # is under the limit, chosen by the model like a new one.
            pool = [s for s in valid if proposed[s] < self.max_repeats]
        if not pool:
            least = min(valid, key=lambda s: (proposed[s], len(s), sorted(s)))
            warnings.warn(
                f"every valid auxiliary set was proposed max_repeats={self.max_repeats} times; "
                f"proposing {sorted(least)} again (every runner stops the study before this)",
                stacklevel=2,
            )
            return least
        if estimator is None:
            return pool[int(self._rng.integers(len(pool)))]
        queries = [(self.target, s | frozenset(self.include)) for s in pool]
        if self.acquisition == "thompson":
            draw = estimator.sample_gains(queries, self._rng, n_samples=1)[0]
            return pool[int(np.argmax(draw))]
        means, stds = estimator.predict_many(self.target, [q[1] for q in queries])
        best = max(
            (estimator.predict(self.target, s | frozenset(self.include))[0] for s in evaluated),
            default=0.0,
        )
        z = (means - best) / np.maximum(stds, 1e-12)
        improvement = (means - best) * norm.cdf(z) + stds * norm.pdf(z)
        return pool[int(np.argmax(improvement))]

    def _informed(self, prior: list[ScoreRecord]) -> bool:
        """Return whether ``prior`` has gain records of the target (no start-up but the
        baseline)."""
        return any(r.task == self.target and len(r.task_set) > 1 for r in prior)

    def _pending_startup(
        self, evaluated: set[frozenset[str]], *, informed: bool
    ) -> list[frozenset[str]]:
        """Return the start-up sets not proposed yet, in their order."""
        startup = self._startup_sets(informed=informed)
        n_startup = (
            len(startup)
            if self.n_startup_trials is None
            else min(self.n_startup_trials, len(startup))
        )
        return [s for s in startup[:n_startup] if s not in evaluated]

    def _startup_sets(self, *, informed: bool) -> list[frozenset[str]]:
        # A target known from earlier studies needs only the baseline of this study.
        sets: list[frozenset[str]] = [frozenset()]
        if not informed:
            if self._startup_order is None:
                self._startup_order = startup_order(
                    self.free, target=self.target, prior_records=self._prior_records(),
                    scores=self.startup_scores, rng=self._rng,
                )  # fmt: skip
            sets += [frozenset({t}) for t in self._startup_order]
        return [s for s in sets if self._valid(s)]

    def _candidate_sets(
        self, evaluated: set[frozenset[str]], estimator: AffinityEstimator | None = None
    ) -> list[frozenset[str]]:
        """Return the valid sets a proposal draws from: all, or at most ``max_enumeration`` (module docstring)."""
        low, high = self._free_bounds()
        n = len(self.free)
        total = sum(math.comb(n, k) for k in range(low, high + 1))
        if total <= self.max_enumeration:
            return [
                frozenset(self.free[i] for i in range(n) if mask >> i & 1)
                for mask in range(1 << n)
                if low <= bin(mask).count("1") <= high
            ]
        sets: set[frozenset[str]] = set()
        for centre in self._ranked(evaluated, estimator):
            fresh = [s for s in self._neighbours(centre) if s not in evaluated and s not in sets]
            room = self.max_enumeration - len(sets)
            if len(fresh) > room:
                # The cap splits this set's neighbours: a random share, not the first by name.
                fresh = [fresh[i] for i in self._rng.choice(len(fresh), size=room, replace=False)]
            sets.update(fresh)
            if len(sets) >= self.max_enumeration:
                break
        # ...plus uniform draws over sizes, then subsets of each size.
        while len(sets) < self.max_enumeration:
            size = int(self._rng.integers(low, high + 1))
            chosen = self._rng.choice(n, size=size, replace=False)
            sets.add(frozenset(self.free[i] for i in chosen))
        return sorted(sets, key=lambda s: (len(s), sorted(s)))

    def _ranked(
        self, evaluated: set[frozenset[str]], estimator: AffinityEstimator | None
    ) -> list[frozenset[str]]:
        """Return the proposed sets of free tasks, best posterior mean first (ties by size, names)."""
        free = set(self.free)
        ranked = sorted((s for s in evaluated if s <= free), key=lambda s: (len(s), sorted(s)))
        if estimator is None or not ranked:
            return ranked
        means, _ = estimator.predict_many(
            self.target, [s | frozenset(self.include) for s in ranked]
        )
        return [ranked[i] for i in np.argsort(-means, kind="stable")]

    def _neighbours(self, subset: frozenset[str]) -> list[frozenset[str]]:
        """Return the valid sets one free task added, removed or swapped away from ``subset``."""
        flips = [subset ^ {task} for task in self.free]
        outside = [t for t in self.free if t not in subset]
        swaps = [(subset - {out}) | {into} for out in sorted(subset) for into in outside]
        return [frozenset(s) for s in flips + swaps if self._valid(s)]


def startup_order(
    free: Sequence[str],
    *,
    target: str,
    prior_records: Sequence[ScoreRecord] = (),
    scores: Mapping[str, float] | None = None,
    rng: np.random.Generator,
) -> list[str]:
    """Return ``free`` in the order the start-up tries each alone: most promising first.

    The prior is the first that exists: ``scores`` (higher is better: a screen, text-embedding
    similarity to the target), else each source's mean relative gain as the only auxiliary of
    the other targets in ``prior_records`` (the popular-source prior; a source never seen
    alone falls back to its mean gain in larger sets).  Tasks without a score follow the
    scored ones; ties and unscored tasks are in a random order drawn from ``rng``, so the
    spec's listing order never decides which candidate is tried first.
    """
    shuffled = [free[i] for i in rng.permutation(len(free))]
    known: dict[str, float] = {t: float(v) for t, v in (scores or {}).items() if math.isfinite(v)}
    if not known and prior_records:
        known = popular_source_scores(free, target=target, prior_records=prior_records)
    # Stable sort of the shuffled list: ties keep the random order.
    return sorted(shuffled, key=lambda t: (t not in known, -known.get(t, 0.0)))


def popular_source_scores(
    free: Sequence[str], *, target: str, prior_records: Sequence[ScoreRecord]
) -> dict[str, float]:
    """Return each task of ``free``'s mean gain for the targets other than ``target``.

    A source's gains as the only auxiliary count; one never seen alone falls back to its
    mean gain in larger sets; a task with neither is left out.
    """
    alone: dict[str, list[float]] = {}
    within: dict[str, list[float]] = {}
    others = [r for r in prior_records if r.task != target]
    try:
        gains = compute_gains(others, kind="relative").gains
    except ConfigError:  # a zero baseline: absolute gains keep each target's order
        gains = compute_gains(others, kind="absolute").gains
    for gain in gains:
        for source in gain.auxiliaries:
            bucket = alone if len(gain.auxiliaries) == 1 else within
            bucket.setdefault(source, []).append(gain.mean)
    return {t: float(np.mean(alone.get(t) or within[t]))
            for t in free if alone.get(t) or within.get(t)}  # fmt: skip
