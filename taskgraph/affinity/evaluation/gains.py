"""Gain protocols: predicted against true gains of held-out groups (size >= 3) and held-out pairs.

* :func:`evaluate_gain_prediction` (and :func:`gain_prediction_cells`, the gains it scores):
  fit on every single and pair plus a seeded fraction of the larger groups, pooled Spearman on
  the other groups (MTG-Net's protocol).
* :func:`evaluate_pair_gains`: k-fold over each target's pair rows, per-target Spearman beside
  the popular-source prior.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import numpy as np

from taskgraph.affinity.estimators.base import AffinityEstimator
from taskgraph.affinity.evaluation._tables import (
    _build,
    _gain_lookup,
    _pair_truth,
    _popular_prior,
    _score_split,
    with_stand_in_baselines,
)
from taskgraph.affinity.evaluation.metrics import MIN_RANKED, _paired, _target_mean, spearman
from taskgraph.affinity.longtable import LongTable
from taskgraph.affinity.records import ScoreRecord
from taskgraph.errors import ConfigError


def _large_groups(records: Sequence[ScoreRecord]) -> list[frozenset[str]]:
    """Return the task sets of size >= 3 among ``records``, in a fixed order (the draws' order)."""
    return sorted({r.task_set for r in records if len(r.task_set) >= 3}, key=lambda s: sorted(s))


def _fitted_groups(
    large: Sequence[frozenset[str]], fit_fraction: float, seed: int
) -> set[frozenset[str]]:
    """Return the ``round(fit_fraction * len(large))`` groups seed ``seed`` fits."""
    rng = np.random.default_rng(seed)
    n_fit = round(fit_fraction * len(large))
    return {large[i] for i in rng.choice(len(large), size=n_fit, replace=False)} if n_fit else set()


def _held_out_cells(
    val_truth: Mapping[tuple[str, frozenset[str]], float],
    score_truth: Mapping[tuple[str, frozenset[str]], float],
    fit_sets: Collection[frozenset[str]],
) -> list[tuple[str, frozenset[str]]]:
    """Return the (target, auxiliaries) gains of groups >= 3 outside ``fit_sets`` with a truth on both splits."""
    return [
        key
        for key in val_truth
        if len(key[1]) >= 2 and (key[1] | {key[0]}) not in fit_sets and key in score_truth
    ]


def gain_prediction_cells(
    table: LongTable,
    *,
    fit_fraction: float = 0.1,
    seeds: Sequence[int] = (0,),
    fit_split: str = "val",
    score_split: str | None = None,
) -> dict[int, list[tuple[str, frozenset[str]]]]:
    """Return, per seed, the (target, auxiliaries) gains :func:`evaluate_gain_prediction` scores.

    A gain of a group of size >= 3 is scored when its target has a baseline row on both
    splits, the group has the target's row on both, and the seed does not fit the group: what
    a gate must count before asking for a Spearman (the gains are computed once for all seeds).
    """
    large = _large_groups(table.to_records(split=fit_split))
    val_truth = _gain_lookup(table, fit_split)
    score_truth = _gain_lookup(table, score_split or _score_split(table))
    return {
        seed: _held_out_cells(val_truth, score_truth, _fitted_groups(large, fit_fraction, seed))
        for seed in seeds
    }


def evaluate_gain_prediction(
    table: LongTable,
    methods: Sequence[str],
    *,
    fit_fraction: float = 0.1,
    seed: int = 0,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    fit_split: str = "val",
    score_split: str | None = None,
    on_fit: Callable[[str, AffinityEstimator], None] | None = None,
    keep_predictions: bool = False,
    min_ranked: int = 2,
) -> dict[str, Any]:
    """Return pooled Spearman of each method on held-out groups of size >= 3.

    Fitted on ``fit_split`` (``val``), scored against ``fit_split`` truth (``spearman_val``)
    and ``score_split`` truth (``spearman``; default ``test`` when present, else the one split:
    the scored groups are never in the fit either way).  ``on_fit(method, estimator)`` is
    called after each fit (to collect diagnostics).  ``keep_predictions`` adds the scored
    (target, auxiliaries) pairs (``queries``), their truths (``truth_val``, ``truth``) and each
    method's ``predicted`` gains, for diagnoses that split the score.  ``min_ranked``: the
    fewest scored gains a Spearman is computed on (default 2; ``taskgraph bench`` passes
    :data:`MIN_RANKED`); with fewer, every Spearman is NaN.
    """
    if not 0.0 <= fit_fraction <= 1.0:
        raise ConfigError(f"`fit_fraction` must be in [0, 1], but got {fit_fraction}")
    if fit_split not in table.splits:
        raise ConfigError(f"table {table.source!r} has no {fit_split!r} rows to fit on")
    val_records = table.to_records(split=fit_split)
    large = _large_groups(val_records)
    if not large:
        raise ConfigError(f"table {table.source!r} has no groups of size >= 3 to score on")
    fit_sets = _fitted_groups(large, fit_fraction, seed)
    fit_records = [r for r in val_records if len(r.task_set) <= 2 or r.task_set in fit_sets]
    score_split = score_split or _score_split(table)
    val_truth = _gain_lookup(table, fit_split)
    score_truth = _gain_lookup(table, score_split)
    queries = _held_out_cells(val_truth, score_truth, fit_sets)
    by_target: dict[str, list[int]] = defaultdict(list)
    for i, (target, _) in enumerate(queries):
        by_target[target].append(i)
    result: dict[str, Any] = {
        "scored_on": score_split,
        "n_queries": len(queries),
        "n_fit_groups": len(fit_sets),
        "n_large_groups": len(large),
    }
    truth_val = np.array([val_truth[q] for q in queries])
    truth = np.array([score_truth[q] for q in queries])
    if keep_predictions:
        result.update(queries=queries, truth_val=truth_val, truth=truth)
    for method in methods:
        estimator = _build(method, (options or {}).get(method)).fit(fit_records)
        if on_fit is not None:
            on_fit(method, estimator)
        predicted = np.zeros(len(queries))
        for target, rows in by_target.items():
            predicted[rows] = estimator.predict_many(target, [queries[i][1] for i in rows])[0]
        ranked = len(queries) >= min_ranked  # a Spearman of two is +-1 whatever the predictions
        result[method] = {
            "spearman_val": spearman(predicted, truth_val) if ranked else math.nan,
            "spearman": spearman(predicted, truth) if ranked else math.nan,
        }
        if keep_predictions:
            result[method]["predicted"] = predicted
    return result


def evaluate_pair_gains(
    table: LongTable,
    methods: Sequence[str],
    *,
    folds: int = 5,
    seed: int = 0,
    fit_split: str | None = None,
    score_split: str | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Return per-target Spearman of predicted single-auxiliary gains, k-fold over each target's pairs.

    For every target with at least two pair rows, its sources are shuffled (``seed``) and cut
    into ``min(folds, n)`` folds; each fold's pairs are predicted by an estimator fitted on all
    ``fit_split`` rows except that target's rows containing a held-out source (so a scored cell
    is never fitted, even with one split).  Truth is the ``score_split`` gain; a target without
    a baseline row is scored *rank-only* against its sign-normalised values (the order of its
    gains, whatever its baseline).  ``result[name]["spearman"]`` is the mean over targets;
    ``result["versus_prior"][method]["spearman"]`` the paired difference with its SE.  A target
    with two pair rows is not scored (a Spearman of two is +-1 whatever the predictions:
    :data:`MIN_RANKED`); ``result["too_few_pairs"]`` names such targets.  The folds actually
    cut are ``result["folds_used"]`` (target -> ``min(folds, n)``) beside ``result["n_pairs"]``
    (target -> ``n``); ``on_progress(done, total)`` is called before the first fold and after
    every fold (its fits done).
    """
    if folds < 2:
        raise ConfigError(f"`folds` must be >= 2, but got {folds}")
    fit_split = fit_split or ("val" if "val" in table.splits else table.splits[0])
    score_split = score_split or _score_split(table)
    records = table.to_records(split=fit_split)
    # rank-only: no baseline row on the fit or the score split (scored by its values' order)
    without = {
        t for t in table.targets
        if table.get(t, (), score_split) is None or table.get(t, (), fit_split) is None
    }  # fmt: skip
    score_truth = _pair_truth(table, score_split, by_value=without)
    rng = np.random.default_rng(seed)
    names = ["prior", *methods]
    scores: dict[str, dict[str, list[float]]] = {name: {} for name in names}
    rank_only: list[str] = []
    too_few: list[str] = []
    scored_sources = {
        target: sorted(
            next(iter(s - {target}))
            for s in table.task_sets(target, split=fit_split)
            if len(s) == 2 and table.get(target, s, score_split) is not None
        )
        for target in table.targets
    }
    n_pairs = {t: len(v) for t, v in scored_sources.items() if len(v) >= MIN_RANKED}
    folds_used = {t: min(folds, n) for t, n in n_pairs.items()}
    total, done = sum(folds_used.values()), 0
    if on_progress is not None:
        on_progress(done, total)
    for target in table.targets:
        sources = scored_sources[target]
        if len(sources) < MIN_RANKED:
            if len(sources) >= 2:
                too_few.append(target)
                rng.permutation(len(sources))  # its shuffle as before: the others' folds stay
            continue
        if target in without:
            rank_only.append(target)
        truth = {source: score_truth[(target, source)] for source in sources}
        order = [sources[i] for i in rng.permutation(len(sources))]
        predicted: dict[str, dict[str, float]] = {name: {} for name in names}
        for chunk in np.array_split(np.array(order, dtype=object), folds_used[target]):
            held = [str(s) for s in chunk]
            fit = with_stand_in_baselines(
                [r for r in records if r.task != target or not (r.auxiliaries & set(held))]
            )
            predicted["prior"].update(zip(held, _popular_prior(fit, target, held), strict=True))
            for method in methods:
                estimator = _build(method, (options or {}).get(method)).fit(fit)
                means = estimator.predict_many(target, [{s} for s in held])[0]
                predicted[method].update(zip(held, means, strict=True))
            done += 1
            if on_progress is not None:
                on_progress(done, total)
        true = [truth[s] for s in sources]
        for name in names:
            scores[name][target] = [spearman([predicted[name][s] for s in sources], true)]
    result: dict[str, Any] = {
        "folds": folds,
        "fitted_on": fit_split,
        "scored_on": score_split,
        "n_targets": len(scores["prior"]),
        "rank_only": rank_only,
        "too_few_pairs": too_few,
        "folds_used": folds_used,
        "n_pairs": n_pairs,
    }
    result.update({name: {"spearman": _target_mean(scores[name])} for name in names})
    result["versus_prior"] = {
        method: {"spearman": _paired(scores[method], scores["prior"], lower_is_better=False)}
        for method in methods
    }
    return result
