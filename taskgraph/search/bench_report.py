"""``taskgraph bench``'s library side: every evaluation a results table supports, in one report.

:func:`run_bench` checks its arguments, picks the fit and score splits (:func:`bench_splits`)
and runs gain prediction, pair gains, source ranking
(:mod:`taskgraph.affinity.evaluation`) and search efficiency
(:func:`~taskgraph.search.benchmarking.search_efficiency`); a :class:`BenchReport` says which
ran, which were skipped and why, and what had to be assumed.  The command
(:mod:`taskgraph.cli.bench`) only parses its options and prints the report.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from taskgraph.affinity.evaluation import MIN_RANKED
from taskgraph.affinity.longtable import MAX_BENCH_VALUE, LongTable, check_magnitudes
from taskgraph.errors import ConfigError, option_name
from taskgraph.search.bench_sections import (
    _folds_used,
    _gain_prediction,
    _no_group_gains,
    _one_target_se,
    _splits_text,
    _undefined,
)
from taskgraph.search.benchmarking import (
    SearchRun,
    search_efficiency,
    search_max_size,
    summarize_runs,
)
from taskgraph.search.samplers import SAMPLERS
from taskgraph.spec.limits import MAX_SEEDS, MAX_TRIALS
from taskgraph.vocabulary import first_names

__all__ = [
    "CLI_SAMPLERS",
    "MAX_BENCH_VALUE",
    "MIN_RANKED",
    "BenchReport",
    "bench_splits",
    "check_magnitudes",
    "run_bench",
]

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
            f"a baseline row of 0 (below 1e-12 in magnitude) for {', '.join(zero)}: a gain "
            "relative to it is undefined, so "
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
        # a target of too few pairs is not ranked at all, one of too few hidden sources gets
        # no Spearman: to the report's reader both are targets the ranking did not score
        if unscored := sorted({*ranking["too_few_pairs"], *ranking["too_few_hidden"]}):
            report.notes.append(
                f"source_ranking: {first_names(unscored)} not scored: with "
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
