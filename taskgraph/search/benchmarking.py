"""Search efficiency on a published table, with the samplers and the search space a study uses.

A benchmark search of ``target`` is a study in miniature: a :class:`~taskgraph.spec.models.StudySpec`
(tabular runner, ``sampler.name`` = the sampler measured, ``sampler.seed`` = the run's seed),
its sampler built by :func:`~taskgraph.search.samplers.build_sampler` (the ``SAMPLERS``
registry: "TPE" here is the TPE a study runs), its trials suggested by
:class:`~taskgraph.search.space.SearchSpace` (the ``aux/<task>`` flags and the size repair), the
single-task baseline enqueued first as the engine does, and each trial answered by the table
(a set without a row fails, as a crashed training would).

:func:`run_search` counts two things until the target's best set is proposed: **trials** (every
ask, a repeat of a set already evaluated included: a study pays for it) and **distinct** sets
evaluated.  :func:`search_efficiency` runs every sampler over targets and seeds.

Which sets can be searched is what the table answers (:func:`search_max_size`): a table with
every subset of a target's candidates is searched over all of them; one with the pairs but not
every larger group (pairs-only tables, MIMIC's sampled groups) over single auxiliaries
(``max_size`` 1), so every proposal has an answer.  The best set is the best one the searched
space holds.
"""

from __future__ import annotations

import hashlib
import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from taskgraph.affinity.longtable import LongTable
from taskgraph.affinity.records import ScoreRecord
from taskgraph.errors import ConfigError
from taskgraph.search.graph_sampler import popular_source_scores
from taskgraph.search.heartbeat import optuna_warnings_only, quiet_optuna
from taskgraph.search.samplers import SAMPLERS, build_sampler
from taskgraph.search.space import SearchSpace
from taskgraph.spec.loading import spec_from_dict
from taskgraph.spec.models import StudySpec
from taskgraph.spec.models.study import STUDY_NAME

__all__ = [
    "BENCH_SAMPLERS",
    "SEARCH_TRIAL_CAPS",
    "PairedTrials",
    "SearchRun",
    "benchmark_spec",
    "median_interval",
    "paired_trials",
    "ratio",
    "run_search",
    "runs_by_target",
    "search_candidates",
    "search_efficiency",
    "search_max_size",
    "summarize_runs",
]

#: What :func:`search_efficiency` compares by default: ``graph`` starts from the other targets'
#: rows (earlier studies in the same domain), ``graph_cold`` from nothing.
BENCH_SAMPLERS = ("graph", "graph_cold", "tpe", "gp", "random", "bandit")
#: Trial cap of a benchmark search on each shipped published table (about the number of sets a
#: target has; four times the singles of the singles searches: MIMIC's 26, TaskWeb's 21 and
#: Bingel's 9); a run past the cap counts as the cap.
SEARCH_TRIAL_CAPS = {"ettm1": 150, "taskonomy5": 64, "mimic27": 108, "taskweb": 84, "bingel": 36}


@dataclass(frozen=True, slots=True)
class SearchRun:
    """One benchmark search: trials and distinct sets until the best set was proposed."""

    sampler: str
    target: str
    seed: int
    trials: int  #: asks until the best set was proposed (``max_trials`` when never)
    distinct: int  #: distinct sets evaluated until then, the best included
    found: bool


def search_candidates(table: LongTable, target: str, *, split: str = "val") -> list[str]:
    """Return the tasks that appear with ``target`` in its rows on ``split``, sorted."""
    return sorted({t for s in table.task_sets(target, split=split) for t in s} - {target})


def best_single(table: LongTable, target: str, *, split: str = "val") -> str:
    """Return the auxiliary whose row as ``target``'s only auxiliary is best on ``split``."""
    singles = [r for r in table
               if r.target == target and r.split == split and len(r.auxiliaries) == 1]  # fmt: skip
    if not singles:
        raise ConfigError(
            f"table {table.source!r} has no single-auxiliary row of target {target!r} on {split!r}"
        )
    pick = max if singles[0].higher_is_better else min
    return next(iter(pick(singles, key=lambda r: r.value).auxiliaries))


def popular_order(
    table: LongTable, target: str, records: Sequence[ScoreRecord], *, split: str = "val"
) -> tuple[list[str], dict[str, float]]:
    """Return ``target``'s candidates by the popular-source prior of ``records`` (best first; ties by name), and the prior.

    The order the ``graph`` sampler's start-up tries when ``records`` are the other targets'
    rows (:func:`~taskgraph.search.graph_sampler.startup_order`, without its random ties).
    """
    candidates = search_candidates(table, target, split=split)
    prior = popular_source_scores(candidates, target=target, prior_records=records)
    return sorted(candidates, key=lambda t: -prior.get(t, 0.0)), prior


def search_max_size(table: LongTable, target: str, *, split: str = "val") -> int | None:
    """Return the largest auxiliary set the table lets a search of ``target`` propose.

    ``None`` (no bound) when every non-empty subset of the candidates has a row; 1 when not
    (only single auxiliaries are searched, so every proposal has an answer); ``None`` again
    when not even the singles are there (proposals without a row fail).  The baseline row (the
    empty set) does not decide it: without it the search's first trial, the target alone as a
    study enqueues it, fails whatever the bound.
    """
    candidates = search_candidates(table, target, split=split)
    answered = {s - {target} for s in table.task_sets(target, split=split)} - {frozenset()}
    if len(answered) >= 2 ** len(candidates) - 1:
        return None
    if any(frozenset({c}) in answered for c in candidates):
        return 1
    return None


def benchmark_spec(
    table: LongTable,
    target: str,
    *,
    sampler: str,
    seed: int,
    split: str = "val",
    max_size: int | None = None,
    max_trials: int = 300,
    sampler_options: Mapping[str, Any] | None = None,
) -> StudySpec:
    """Return the study spec of one benchmark search (tabular runner, the sampler by name).

    Its name is ``bench-<target>``, or ``bench-<hash of target>`` when the target's name is not
    a valid study name (a table may name a target ``a,1`` or ``b/x``); the target itself is
    the spec's ``target`` either way.
    """
    rows = [r for r in table if r.target == target and r.split == split]
    if not rows:
        raise ConfigError(f"table {table.source!r} has no {split!r} rows for target {target!r}")
    name = "graph" if sampler == "graph_cold" else sampler
    if name not in SAMPLERS:
        raise ConfigError(f"unknown sampler {sampler!r}; known: {', '.join(SAMPLERS.names())}")
    # The name seeds the sampler (TrialSeededSampler), so a valid one is kept as it was.
    study_name = f"bench-{target}"
    if not STUDY_NAME.match(study_name):
        study_name = f"bench-{hashlib.sha256(target.encode()).hexdigest()[:16]}"
    return spec_from_dict(
        {
            "name": study_name,
            "target": target,
            "candidates": search_candidates(table, target, split=split),
            "objective": {
                "metric": "score",
                "direction": "maximize" if rows[0].higher_is_better else "minimize",
            },
            "runner": {"name": "tabular", "table": table.source or "table", "split": split},
            "sampler": {"name": name, "seed": seed, "options": dict(sampler_options or {})},
            "search": {"auxiliaries": {"max_size": max_size}},
            "budget": {"trials": max_trials},
        },
        source=f"benchmark spec of {target!r}",
    )


def run_search(
    table: LongTable,
    target: str,
    sampler: str,
    *,
    seed: int,
    split: str = "val",
    max_trials: int = 300,
    max_size: int | None = None,
    prior_records: Sequence[ScoreRecord] | None = None,
    sampler_options: Mapping[str, Any] | None = None,
) -> SearchRun:
    """Return how long ``sampler`` (a ``SAMPLERS`` name) takes to propose ``target``'s best set.

    The best set has the best ``split`` value among the target's rows of at most ``max_size``
    auxiliaries (ties: any of them).  ``prior_records`` go to the sampler as a study's records
    of earlier studies would (only ``graph`` uses them).
    """
    if max_trials < 1:
        raise ConfigError(f"`max_trials` must be >= 1, but got {max_trials}")
    spec = benchmark_spec(
        table, target, sampler=sampler, seed=seed, split=split, max_size=max_size,
        max_trials=max_trials, sampler_options=sampler_options,
    )  # fmt: skip
    rows = [
        r for r in table
        if r.target == target and r.split == split
        and (max_size is None or len(r.auxiliaries) <= max_size)
    ]  # fmt: skip
    higher = rows[0].higher_is_better
    best_value = max(r.value for r in rows) if higher else min(r.value for r in rows)
    best_sets = {r.auxiliaries for r in rows if r.value == best_value}
    # The architectures' own ranges do not matter to a table; naming them keeps torch out.
    space = SearchSpace(spec=spec, sharing_spaces={name: {} for name in spec.search.sharing})
    with quiet_optuna(), optuna_warnings_only():
        study = optuna.create_study(
            direction=spec.objective.direction,
            sampler=build_sampler(spec, prior_records=prior_records),
        )
        study.enqueue_trial(space.baseline_params(), user_attrs=space.baseline_user_attrs())
        seen: set[frozenset[str]] = set()
        for number in range(1, max_trials + 1):
            trial = study.ask()
            auxiliaries = frozenset(space.suggest(trial).auxiliaries)
            seen.add(auxiliaries)
            if auxiliaries in best_sets:
                return SearchRun(sampler, target, seed, number, len(seen), True)
            row = table.get(target, auxiliaries, split)
            if row is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, row.value)
    return SearchRun(sampler, target, seed, max_trials, len(seen), False)


def search_efficiency(
    table: LongTable,
    *,
    samplers: Sequence[str] = BENCH_SAMPLERS,
    seeds: Sequence[int] = tuple(range(20)),
    targets: Sequence[str] | None = None,
    split: str = "val",
    max_trials: int = 300,
    max_size: int | None = None,
    on_run: Callable[[SearchRun], None] | None = None,
) -> list[SearchRun]:
    """Return one :class:`SearchRun` per sampler, target and seed.

    ``max_size`` bounds every target's search; ``None`` takes :func:`search_max_size` of each
    target.  ``graph`` orders its start-up by the popular-source prior of the other targets'
    ``split`` rows (earlier studies in the domain:
    :func:`~taskgraph.search.graph_sampler.popular_source_scores`); ``graph_cold`` starts in a
    seeded random order; the other samplers use no prior.
    """
    runs: list[SearchRun] = []
    records = table.to_records(split=split)
    for name in samplers:
        for target in targets if targets is not None else table.targets:
            bound = (
                max_size if max_size is not None else search_max_size(table, target, split=split)
            )
            options: dict[str, Any] = {}
            if name == "graph":
                candidates = search_candidates(table, target, split=split)
                options["startup_scores"] = popular_source_scores(
                    candidates, target=target, prior_records=records
                )
            for seed in seeds:
                run = run_search(
                    table, target, name, seed=seed, split=split, max_trials=max_trials,
                    max_size=bound, sampler_options=options,
                )  # fmt: skip
                runs.append(run)
                if on_run is not None:
                    on_run(run)
    return runs


def summarize_runs(runs: Sequence[SearchRun]) -> dict[str, float]:
    """Return ``trials_to_best_<s>``, ``distinct_to_best_<s>`` (medians) and ``not_found_<s>``."""
    out: dict[str, float] = {}
    for name in dict.fromkeys(r.sampler for r in runs):
        mine = [r for r in runs if r.sampler == name]
        out[f"trials_to_best_{name}"] = float(statistics.median(r.trials for r in mine))
        out[f"distinct_to_best_{name}"] = float(statistics.median(r.distinct for r in mine))
        out[f"not_found_{name}"] = float(sum(not r.found for r in mine))
    return out


def runs_by_target(runs: Sequence[SearchRun], sampler: str) -> dict[str, dict[int, int]]:
    """Return ``sampler``'s trials to the best set as ``{target: {seed: trials}}``."""
    out: dict[str, dict[int, int]] = {}
    for run in runs:
        if run.sampler == sampler:
            out.setdefault(run.target, {})[run.seed] = run.trials
    return out


def median_interval(
    per_target: Iterable[Sequence[int]],
    *,
    rng: np.random.Generator,
    resamples: int = 2000,
    level: float = 0.90,
) -> tuple[float, float]:
    """Return a ``level`` bootstrap interval of the median of every run's trials.

    ``per_target``: each target's runs (its trials per seed).  Resamples targets, then each
    chosen target's runs (seeds are replicates within a target, targets the independent
    units), ``resamples`` times; the ends are percentiles of the resampled medians.
    """
    targets = [list(v) for v in per_target if len(v)]
    if not targets:
        return math.nan, math.nan
    medians = np.empty(resamples)
    for i in range(resamples):
        chosen = rng.integers(len(targets), size=len(targets))
        pooled = np.concatenate([rng.choice(targets[j], size=len(targets[j])) for j in chosen])
        medians[i] = np.median(pooled)
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(medians, [tail, 100.0 - tail])
    return float(low), float(high)


@dataclass(frozen=True, slots=True)
class PairedTrials:
    """``sampler`` minus ``baseline`` in trials to the best set, paired by target and seed.

    Per target, the mean over the seeds both ran of (sampler's trials - baseline's); ``mean``
    and ``se`` are the mean of those and its standard error over targets (the independent
    units: seeds of one target share its table).  Negative is faster.
    """

    mean: float
    se: float  #: NaN with fewer than two targets
    targets: int
    better: int  #: targets where the sampler took fewer trials on average
    equal: int
    worse: int

    def text(self) -> str:
        """Return ``-2.1 ± 0.7 trials over 27 targets (13 better, 9 equal, 5 worse)``."""
        spread = "" if math.isnan(self.se) else f" ± {self.se:.1f}"
        return (
            f"{self.mean:+.1f}{spread} trials over {self.targets} targets "
            f"({self.better} better, {self.equal} equal, {self.worse} worse)"
        )


def paired_trials(runs: Sequence[SearchRun], sampler: str, baseline: str) -> PairedTrials | None:
    """Return ``sampler`` - ``baseline`` paired by target and seed (None without a common run)."""
    mine, theirs = runs_by_target(runs, sampler), runs_by_target(runs, baseline)
    per_target = []
    for target, seeds in mine.items():
        common = sorted(set(seeds) & set(theirs.get(target, {})))
        if common:
            per_target.append(statistics.fmean(seeds[s] - theirs[target][s] for s in common))
    if not per_target:
        return None
    n = len(per_target)
    se = statistics.stdev(per_target) / math.sqrt(n) if n > 1 else math.nan
    return PairedTrials(
        mean=statistics.fmean(per_target), se=se, targets=n,
        better=sum(d < 0 for d in per_target), equal=sum(d == 0 for d in per_target),
        worse=sum(d > 0 for d in per_target),
    )  # fmt: skip


def ratio(numerator: float, denominator: float) -> float:
    """Return ``numerator / denominator`` (NaN for a zero denominator)."""
    return numerator / denominator if denominator else math.nan
