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

from taskgraph.affinity.evaluation import MIN_RANKED
from taskgraph.affinity.longtable import MAX_BENCH_VALUE, LongTable, check_magnitudes
from taskgraph.affinity.records import ScoreRecord
from taskgraph.errors import ConfigError, option_name
from taskgraph.search.graph_sampler import popular_source_scores
from taskgraph.search.heartbeat import optuna_warnings_only, quiet_optuna
from taskgraph.search.samplers import SAMPLERS, build_sampler
from taskgraph.search.space import SearchSpace
from taskgraph.spec.limits import MAX_SEEDS, MAX_TRIALS
from taskgraph.spec.loading import spec_from_dict
from taskgraph.spec.models import STUDY_NAME, StudySpec
from taskgraph.vocabulary import first_names

__all__ = [
    "BENCH_SAMPLERS",
    "CLI_SAMPLERS",
    "MAX_BENCH_VALUE",
    "MIN_RANKED",
    "SEARCH_TRIAL_CAPS",
    "BenchReport",
    "PairedTrials",
    "SearchRun",
    "bench_splits",
    "benchmark_spec",
    "check_magnitudes",
    "median_interval",
    "paired_trials",
    "ratio",
    "run_bench",
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


# ---------------------------------------------------------------------------- taskgraph bench
#: Samplers ``taskgraph bench`` compares unless told otherwise (``gp`` refits a Gaussian
#: process per trial, about a second each: name it with ``--samplers`` to include it).
CLI_SAMPLERS = ("graph", "graph_cold", "tpe", "random", "bandit")


@dataclass
class BenchReport:
    """What :func:`run_bench` ran, skipped (with why) and measured, in printing order."""

    evaluations: list[str]
    skipped: dict[str, str]
    notes: list[str]
    results: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """Return the report as one flat mapping (what ``--json`` prints)."""
        return {
            "evaluations": list(self.evaluations),
            "skipped": dict(self.skipped),
            "notes": list(self.notes),
            **self.results,
        }


def bench_splits(
    table: LongTable, *, fit_split: str | None = None, score_split: str | None = None
) -> tuple[str, str]:
    """Return ``(fit split, score split)``: the given ones, else ``val``/``test``, else the one split."""
    splits = table.splits
    for keyword, value in (("fit_split", fit_split), ("score_split", score_split)):
        if value is not None and value not in splits:
            raise ConfigError(
                f"`{option_name(keyword)}` {value!r} is not a split of table {table.source!r}; "
                f"it has {', '.join(splits)}"
            )
    fit = fit_split or ("val" if "val" in splits else splits[0])
    score = score_split or ("test" if "test" in splits and fit != "test" else fit)
    return fit, score


def run_bench(
    table: LongTable,
    *,
    method: str = "setfn",
    fit_fraction: float = 0.1,
    seeds: int = 20,
    folds: int = 5,
    fit_split: str | None = None,
    score_split: str | None = None,
    search: bool = True,
    samplers: Sequence[str] = CLI_SAMPLERS,
    max_trials: int = 300,
    max_size: int | None = None,
    n_observed: int = 3,
    estimator_options: Mapping[str, Any] | None = None,
    on_step: Callable[[str, int, int], None] | None = None,
) -> BenchReport:
    """Run every evaluation ``table`` supports; say which were skipped and why.

    * ``gain_prediction`` (groups of size >= 3): :func:`~taskgraph.affinity.evaluation.evaluate_gain_prediction`
      over the fit seeds that leave :data:`MIN_RANKED` gains to score
      (:func:`~taskgraph.affinity.evaluation.gain_prediction_cells`: unfitted groups of targets
      with a baseline row on both splits), ``method`` beside HOA; scored on the score split
      (``scored_on``); skipped, with the reason, when no seed leaves that many;
    * ``pair_gains`` (pair rows): ``min(folds, pairs)``-fold per target,
      :func:`~taskgraph.affinity.evaluation.evaluate_pair_gains`, beside the popular-source prior;
      scored on the score split (``pair_scored_on``); ``pair_folds`` is the k cut (``min(k,
      pairs)`` when it differs by target);
    * ``source_ranking`` (targets with more than ``n_observed + 1`` pairs and a baseline):
      ``n_observed`` entries of the target known, :func:`~taskgraph.affinity.evaluation.evaluate_source_ranking`;
      fitted and scored on the fit split, its hidden cells (``ranking_scored_on``);
    * ``search``: :func:`search_efficiency` of ``samplers`` (a pairs-only table is searched
      over single auxiliaries; a target without a baseline row is noted: its first trial fails).

    A target whose baseline row is 0 has no relative gains: the affinity evaluations treat
    that row as missing (rank-only, noted); the search answers with it.
    ``estimator_options`` go to ``method`` in every evaluation (e.g. task metadata:
    ``task_embeddings``, ``task_features``).  ``on_step(evaluation, done, total)`` reports
    progress: ``done`` 0 when an evaluation starts, then after each fit (gain prediction),
    fold (pair gains), draw (source ranking) or run (search).  Raises ``ConfigError`` on bad
    arguments (checked before anything runs).
    """
    from taskgraph.affinity.estimators.base import AffinityEstimator
    from taskgraph.affinity.evaluation import (
        evaluate_pair_gains,
        evaluate_source_ranking,
        gain_prediction_cells,
    )

    # Upper bounds as a study's (MAX_SEEDS, MAX_TRIALS): more would run for days, or fail
    # inside with a benchmark spec's field name.
    if not 1 <= seeds <= MAX_SEEDS:
        raise ConfigError(f"`{option_name('seeds')}` must be in [1, {MAX_SEEDS}], but got {seeds}")
    if (
        not 1 <= max_trials <= MAX_TRIALS
    ):  # 0 would report every sampler as finding the best set at once
        raise ConfigError(
            f"`{option_name('max_trials')}` must be in [1, {MAX_TRIALS}], but got {max_trials}"
        )
    if not 0.0 <= fit_fraction <= 1.0:
        raise ConfigError(
            f"`{option_name('fit_fraction')}` must be in [0, 1], but got {fit_fraction}"
        )
    if not 2 <= folds <= MAX_SEEDS:
        raise ConfigError(f"`{option_name('folds')}` must be in [2, {MAX_SEEDS}], but got {folds}")
    if max_size is not None and max_size < 1:
        raise ConfigError(f"`{option_name('max_size')}` must be >= 1, but got {max_size}")
    unknown = [s for s in samplers if (("graph" if s == "graph_cold" else s) not in SAMPLERS)]
    known = ", ".join(sorted({*SAMPLERS.names(), "graph_cold"}))
    if unknown:
        raise ConfigError(
            f"`{option_name('samplers')}`: unknown sampler {unknown[0]!r}; known: {known}"
        )
    if search and not samplers:
        raise ConfigError(
            f"`{option_name('samplers')}` names no sampler: name one or more ({known}), or pass "
            f"{option_name('search', False, flag='--no-search')}"
        )
    check_magnitudes(table)
    options = {method: dict(estimator_options)} if estimator_options else None
    fit, score = bench_splits(table, fit_split=fit_split, score_split=score_split)
    step = on_step or (lambda name, done, total: None)
    report = BenchReport(evaluations=[], skipped={}, notes=[], results={})
    searched = table  # a search is answered by every row, a zero baseline included
    zero = sorted({r.target for r in table if len(r.task_set) == 1 and abs(r.value) < 1e-12})
    if zero:
        # A relative gain divides by the baseline: these targets are ranked by their values,
        # as targets published without a baseline row are, instead of failing every evaluation.
        table = LongTable(
            rows=[r for r in table if not (len(r.task_set) == 1 and abs(r.value) < 1e-12)],
            source=table.source,
        )
        report.notes.append(
            f"a baseline row of 0 for {', '.join(zero)}: a gain relative to it is undefined, so "
            "the affinity evaluations treat those rows as missing (rank-only)"
        )
    fit_rows = [r for r in table if r.split == fit]
    targets = table.targets
    no_baseline = [t for t in targets if table.get(t, (), fit) is None]
    # A gain scored on the score split divides by the baseline there too.
    no_score_baseline = [
        t for t in targets
        if score != fit and t not in no_baseline and table.get(t, (), score) is None
    ]  # fmt: skip
    one_split_at = len(report.notes)  # its note, written once the evaluations have run
    if no_baseline:
        report.notes.append(
            f"no baseline row on {fit!r} for {len(no_baseline)} of {len(targets)} targets "
            f"({', '.join(no_baseline[:5])}{', ...' if len(no_baseline) > 5 else ''}): "
            "rank-only (their pairs scored against their values, fitted against the mean "
            "of their rows as a stand-in baseline; no gains)"
        )
    if no_score_baseline:
        report.notes.append(
            f"no baseline row on {score!r} (the score split) for {len(no_score_baseline)} of "
            f"{len(targets)} targets ({first_names(no_score_baseline)}), though {fit!r} has one: "
            f"their gains on {score!r} are undefined, so they are rank-only in pair_gains "
            f"(their pairs scored against their {score!r} values) and left out of "
            "gain_prediction"
        )
    pair_rows = [r for r in fit_rows if len(r.task_set) == 2]
    # what the pair gains score: a target's pairs on the fit split that the score split has too
    scored_pairs = {
        t: sum(r.target == t and table.get(t, r.task_set, score) is not None for r in pair_rows)
        for t in targets
    }
    # pair gains a fit can learn from (HOA predicts a group from nothing else)
    pair_gains_fitted = any(r.target not in no_baseline for r in pair_rows)

    # -- gain prediction on groups of size >= 3
    n_large = len({r.task_set for r in fit_rows if len(r.task_set) >= 3})
    n_fit = round(fit_fraction * n_large)  # evaluate_gain_prediction's count
    if not n_large:
        report.skipped["gain_prediction"] = "no groups of size >= 3"
    elif n_fit >= n_large:
        report.skipped["gain_prediction"] = (
            f"`{option_name('fit_fraction')}` {fit_fraction:g} fits all {n_large} groups of size "
            ">= 3: none is left to score"
        )
    else:
        # What each seed will score: gains of unfitted groups with a baseline on both splits.
        cells = gain_prediction_cells(
            table, fit_fraction=fit_fraction, seeds=range(seeds), fit_split=fit, score_split=score
        )
        scored_seeds = [seed for seed, scored in cells.items() if len(scored) >= MIN_RANKED]
        if not scored_seeds:
            report.skipped["gain_prediction"] = _no_group_gains(
                table, fit=fit, score=score, fit_fraction=fit_fraction, n_fit=n_fit,
                n_large=n_large, most=max(len(scored) for scored in cells.values()),
            )  # fmt: skip
        elif not pair_gains_fitted and not n_fit:
            report.skipped["gain_prediction"] = (
                f"nothing to learn a gain from: no pair row on {fit!r} of a target with a "
                f"baseline there, and `{option_name('fit_fraction')}` {fit_fraction:g} fits "
                f"none of the {n_large} groups of size >= 3"
            )
        else:
            _gain_prediction(
                report, table, method=method, seeds=scored_seeds, n_seeds=seeds,
                fit_fraction=fit_fraction, fit=fit, score=score, options=options, step=step,
                hoa_without_pairs=not pair_gains_fitted,
            )  # fmt: skip

    # -- single-auxiliary gains, k-fold per target
    pair_targets = {r.target for r in pair_rows}
    folds_text = f"{folds}-fold"
    if not pair_rows:
        report.skipped["pair_gains"] = "no pair rows (target + one auxiliary)"
    elif not any(sum(r.target == t for r in pair_rows) >= 2 for t in pair_targets):
        report.skipped["pair_gains"] = "no target has two pair rows"
    elif max(scored_pairs.values()) < MIN_RANKED:
        report.skipped["pair_gains"] = (
            f"no target has {MIN_RANKED} pair rows on {_splits_text(fit, score)}; a Spearman of "
            "two is +-1 whatever the predictions"
        )
    else:
        report.evaluations.append("pair_gains")
        if len(pair_targets) < 2:
            report.notes.append(
                "pair_gains: the popular-source prior is a source's gains for the other "
                f"targets, and only {sorted(pair_targets)[0]!r} has pair rows: no prior (nan)"
            )
        pairs = evaluate_pair_gains(
            table, [method], folds=folds, seed=0, fit_split=fit, score_split=score,
            options=options, on_progress=lambda done, total: step("pair gains", done, total),
        )  # fmt: skip
        if pairs["too_few_pairs"]:
            report.notes.append(
                f"pair_gains: {first_names(pairs['too_few_pairs'])} not scored: a Spearman needs "
                f"{MIN_RANKED} pair rows (of two it is +-1 whatever the predictions)"
            )
        pair_folds, folds_note, folds_text = _folds_used(
            folds, pairs["folds_used"], pairs["n_pairs"]
        )
        if folds_note:
            report.notes.append(folds_note)
        versus = pairs["versus_prior"][method]["spearman"]
        if math.isnan(pairs[method]["spearman"]):
            report.notes.append(_undefined("pair_spearman", method))
        scored_targets = sorted(pair_targets - set(pairs["too_few_pairs"]))
        if note := _one_target_se("pair_spearman_diff_vs_prior", method, versus, scored_targets):
            report.notes.append(note)
        report.results.update({
            "pair_folds": pair_folds,
            "pair_spearman": pairs[method]["spearman"],
            "pair_spearman_prior": pairs["prior"]["spearman"],
            "pair_spearman_diff_vs_prior": versus["diff"],
            "pair_spearman_diff_vs_prior_se": versus["se"],
            "pair_scored_on": pairs["scored_on"],
        })  # fmt: skip

    # -- source ranking with n_observed entries of the target known
    counts = {t: sum(r.target == t for r in pair_rows) for t in targets}
    rankable = [t for t in targets if counts[t] > n_observed + 1]
    # a Spearman of each draw's hidden sources: of two it is +-1 whatever the ranking
    too_few_hidden = [t for t in rankable if counts[t] - n_observed < MIN_RANKED]
    if not rankable:
        report.skipped["source_ranking"] = f"no target has more than {n_observed + 1} pair rows"
    elif len(pair_targets) < 2:
        report.skipped["source_ranking"] = (
            "the ranking learns from the other targets' pair rows, and only "
            f"{sorted(pair_targets)[0]!r} has any"
        )
    elif len(too_few_hidden) == len(rankable):
        report.skipped["source_ranking"] = (
            f"no target has more than {n_observed + MIN_RANKED - 1} pair rows: with "
            f"{n_observed} observed, fewer than {MIN_RANKED} hidden sources are left to rank"
        )
    else:
        report.evaluations.append("source_ranking")
        with_metadata: list[bool] = []  # per fit that weighed feature lists: kept metadata scores

        def collect(_method: str, _target: str, estimator: AffinityEstimator) -> None:
            described = estimator.describe()
            if "cv_by_features" in described:
                with_metadata.append(bool(described["metadata_scores"]))

        ranking = evaluate_source_ranking(
            table, [method], n_observed=n_observed, seeds=range(seeds), split=fit,
            options=options, on_fit=collect, min_ranked=MIN_RANKED,
            on_progress=lambda done, total: step("source ranking", done, total),
        )  # fmt: skip
        if ranking["too_few_hidden"]:
            report.notes.append(
                f"source_ranking: {first_names(ranking['too_few_hidden'])} not scored: with "
                f"{n_observed} observed, fewer than {MIN_RANKED} hidden sources are left (a "
                "Spearman of two is +-1 whatever the ranking)"
            )
        if with_metadata:
            report.notes.append(
                f"source ranking: {method}'s cross-validation added the task-metadata scores in "
                f"{sum(with_metadata)} of {len(with_metadata)} fits"
            )
        versus = ranking["versus_prior"][method]["spearman"]
        if math.isnan(ranking[method]["spearman"]):
            report.notes.append(_undefined("ranking_spearman", method))
        scored_targets = [t for t in rankable if t not in ranking["too_few_hidden"]]
        if note := _one_target_se("ranking_spearman_diff_vs_prior", method, versus, scored_targets):
            report.notes.append(note)
        report.results.update({
            "ranking_spearman": ranking[method]["spearman"],
            "ranking_spearman_prior": ranking["prior"]["spearman"],
            "ranking_spearman_diff_vs_prior": versus["diff"],
            "ranking_spearman_diff_vs_prior_se": versus["se"],
            "ranking_scored_on": ranking["split"],
        })  # fmt: skip
        if ranking["split"] != score:
            # A legitimate protocol (the scored cells are never fitted), but not the score split.
            report.notes.append(
                f"source_ranking is fitted and scored on {ranking['split']!r}: each target's "
                f"hidden pairs of that split, never in its fit; {score!r} is not used by it"
            )

    if fit == score:
        # Only what ran: a table without groups has no held-out groups to speak of.
        cut = {
            "gain_prediction": "held-out groups",
            "pair_gains": f"{folds_text} over each target's pairs",
            "source_ranking": "each target's hidden sources",
        }
        parts = [text for name, text in cut.items() if name in report.evaluations]
        if parts:
            report.notes.insert(
                one_split_at,
                f"one split ({fit!r}): every evaluation fits and scores disjoint cells of it "
                f"({'; '.join(parts)})",
            )

    # -- search efficiency
    searchable = [t for t in searched.targets if len(searched.task_sets(t, split=fit)) >= 2]
    if not search:
        report.skipped["search"] = option_name("search", False, flag="--no-search")
    elif not searchable:
        report.skipped["search"] = "no target has two task sets to choose from"
    else:
        report.evaluations.append("search")
        bounds = {t: max_size or search_max_size(searched, t, split=fit) for t in searchable}
        if max_size is None and any(b == 1 for b in bounds.values()):
            report.notes.append(
                "the table lacks larger groups for some targets: their search proposes single "
                f"auxiliaries ({option_name('max_size', 1)}), so every proposal has an answer"
            )
        alone = [t for t in searchable if searched.get(t, (), fit) is None]
        if alone:
            report.notes.append(
                f"search: no baseline row on {fit!r} for {first_names(alone)}: the first trial of "
                "each of their searches, the target alone as a study enqueues it, has no answer "
                "and counts as a failed trial"
            )
        total = len(samplers) * len(searchable) * seeds
        runs: list[SearchRun] = []

        def advance(run: SearchRun) -> None:
            runs.append(run)
            step("search efficiency", len(runs), total)

        step("search efficiency", 0, total)
        for name in samplers:
            for target in searchable:
                search_efficiency(
                    searched, samplers=[name], seeds=range(seeds), targets=[target], split=fit,
                    max_trials=max_trials, max_size=bounds[target], on_run=advance,
                )  # fmt: skip
        report.results.update(summarize_runs(runs))
    return report


def _gain_prediction(
    report: BenchReport,
    table: LongTable,
    *,
    method: str,
    seeds: Sequence[int],
    n_seeds: int,
    fit_fraction: float,
    fit: str,
    score: str,
    options: Mapping[str, Mapping[str, Any]] | None,
    step: Callable[[str, int, int], None],
    hoa_without_pairs: bool,
) -> None:
    """Add gain prediction's Spearman over ``seeds`` (those leaving enough gains) to ``report``."""
    from taskgraph.affinity.estimators.base import AffinityEstimator
    from taskgraph.affinity.evaluation import evaluate_gain_prediction

    report.evaluations.append("gain_prediction")
    if len(seeds) < n_seeds:
        report.notes.append(
            f"gain_prediction: {n_seeds - len(seeds)} of {n_seeds} seeds fit groups that leave "
            f"fewer than {MIN_RANKED} gains to score (`{option_name('fit_fraction')}` "
            f"{fit_fraction:g}); the Spearman is the mean over the other {len(seeds)}"
        )
    per_seed: dict[str, list[float]] = {method: [], "hoa": []}
    total = 2 * len(seeds)  # method and HOA, fitted once per seed
    fits = 0

    def fitted(_method: str, _estimator: AffinityEstimator) -> None:
        nonlocal fits
        fits += 1
        step("gain prediction", fits, total)

    step("gain prediction", 0, total)
    for seed in seeds:
        outcome = evaluate_gain_prediction(
            table, [method, "hoa"], fit_fraction=fit_fraction, seed=seed, fit_split=fit,
            score_split=score, options=options, on_fit=fitted, min_ranked=MIN_RANKED,
        )  # fmt: skip
        for name in per_seed:
            per_seed[name].append(outcome[name]["spearman"])
    report.results["spearman"] = _mean(per_seed[method])
    report.results["spearman_hoa"] = _mean(per_seed["hoa"])
    for name, key in ((method, "spearman"), ("hoa", "spearman_hoa")):
        if not math.isnan(report.results[key]):
            continue
        if name == "hoa" and hoa_without_pairs:
            report.notes.append(
                f"{key} is undefined (nan): HOA predicts a group's gain from its pairs' gains, "
                f"and no target with a baseline row on {fit!r} has pair rows there"
            )
            continue
        raise ConfigError(
            f"`{key}` is undefined: no seed of {len(seeds)} gave {name} a finite Spearman "
            f"correlation on {table.source} (its predicted or the true gains are "
            "constant on every scored group)"
        )
    report.results["scored_on"] = score


def _no_group_gains(
    table: LongTable,
    *,
    fit: str,
    score: str,
    fit_fraction: float,
    n_fit: int,
    n_large: int,
    most: int,
) -> str:
    """Return why no seed leaves :data:`MIN_RANKED` gains of groups of size >= 3 to score."""
    from taskgraph.affinity.evaluation import gain_prediction_cells

    owners = sorted({r.target for r in table if r.split == fit and len(r.task_set) >= 3})
    with_base = [t for t in owners if table.get(t, (), fit) is not None]
    if not with_base:
        return f"no target with groups of size >= 3 has a baseline row on {fit!r}"
    if all(table.get(t, (), score) is None for t in with_base):
        return (
            f"no target with groups of size >= 3 has a baseline row on {score!r}, the score "
            "split: their gains there are undefined"
        )
    both = "" if fit == score else f" on both {fit!r} and {score!r}"
    # the gains there are before any group is fitted
    there = len(gain_prediction_cells(table, fit_fraction=0.0, fit_split=fit, score_split=score)[0])
    if there < MIN_RANKED:
        return (
            f"{there} gain(s) of groups of size >= 3 with a baseline row{both}; a Spearman "
            f"needs {MIN_RANKED}"
        )
    return (
        f"`{option_name('fit_fraction')}` {fit_fraction:g} fits {n_fit} of the {n_large} groups "
        f"of size >= 3 and leaves at most {most} of their {there} gains with a baseline "
        f"row{both} to score; a Spearman needs {MIN_RANKED}"
    )


def _folds_used(
    folds: int, used: Mapping[str, int], n_pairs: Mapping[str, int]
) -> tuple[int | str, str | None, str]:
    """Return ``pair_folds`` as reported, a note when a target got fewer than ``folds``, and the k's short text.

    ``used``: target -> the folds cut, ``min(folds, n_pairs[target])``.
    """
    fewer = sorted(t for t, k in used.items() if k < folds)
    if not fewer:
        return folds, None, f"{folds}-fold"
    option = f"`{option_name('folds')}` {folds}"
    if len(fewer) == len(used):
        sizes = sorted(set(n_pairs.values()))
        pairs = str(sizes[0]) if len(sizes) == 1 else f"{sizes[0]} to {sizes[-1]}"
        value: int | str = sizes[0] if len(sizes) == 1 else f"min({folds}, pairs)"
        return (
            value,
            f"pair_gains: {option} is more than any target's pairs ({pairs} each): "
            f"min({folds}, pairs) folds per target, leave-one-out for every target here",
            "leave-one-out",
        )
    return (
        f"min({folds}, pairs)",
        f"pair_gains: {option} is more than the pairs of {len(fewer)} of {len(used)} targets "
        f"({first_names(fewer)}): min({folds}, pairs) folds per target, leave-one-out for those, "
        f"{folds} folds for the others",
        f"min({folds}, pairs)-fold",
    )


def _splits_text(fit: str, score: str) -> str:
    return repr(fit) if fit == score else f"both {fit!r} and {score!r}"


def _undefined(key: str, method: str) -> str:
    why = {
        "pairwise": "it predicts measured pairs only",
        "hoa": "it predicts measured pairs only",
        "textemb": "it predicts from the texts of the target and the source, and a pair without "
        "both gets its calibrated mean",
    }
    reason = f" ({why[method]})" if method in why else ""
    return (
        f"{key} is undefined (nan): {method}'s predictions are the same for every held-out "
        f"source of every target{reason}"
    )


def _one_target_se(
    key: str, method: str, versus: Mapping[str, float], scored: Sequence[str]
) -> str | None:
    """Return the note of ``key``'s standard error when it is nan for want of a second target
    (the difference is over targets, and one target scored by ``method`` and the prior has no
    spread), else None; ``scored``: the targets the evaluation scored (named when one)."""
    if not math.isnan(versus["se"]) or math.isnan(versus["diff"]):
        return None
    only = f" ({scored[0]!r})" if len(scored) == 1 else ""
    return (
        f"{key}_se is undefined (nan): a standard error over targets needs two or more targets "
        f"scored by both {method} and the popular-source prior, and only one was{only}"
    )


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(statistics.fmean(finite)) if finite else math.nan
