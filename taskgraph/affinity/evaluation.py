"""Benchmark protocols on published tables: what ``taskgraph bench`` and ``benchmarks/`` measure.

Validation numbers are used for fitting and choosing; test numbers only for scoring (tables
with a single split are scored on it, and the result says so).

* :func:`evaluate_gain_prediction`: fit on every single and pair plus a seeded fraction of
  the larger groups; Spearman between predicted and true per-task gains on the other groups
  of size >= 3, pooled over targets (MTG-Net's protocol).
* :func:`evaluate_source_ranking`: for each target, all other targets' rows plus 3 random
  entries of its own row are known (its baseline, those pairs and its groups of only those
  sources); rank its remaining sources (Spearman, NDCG, Regret@3), beside the popular-source
  prior (a source's mean gain over the other targets).  Fitted and scored on one split: the
  scored cells are the hidden pairs of that split.
* :func:`evaluate_pair_gains`: k-fold over each target's pair rows: fit on every other row,
  predict the held-out pairs' gains; per-target Spearman beside the popular-source prior.
* :func:`evaluate_grouping`: choose a grouping under an inference budget with at most
  ``max_evaluations`` measured task sets; total test score of the chosen grouping.

Targets without a baseline row are *rank-only* in the source ranking and the pair gains:
scored against their values (sign-normalised), whose order is their gains' order whatever the
baseline, and fitted with a stand-in baseline, the mean of their fitted rows
(:func:`with_stand_in_baselines`), so the estimators see the order of their rows and a level
the target offset absorbs.  A target with one fitted row gets no stand-in (its one gain would
be 0 by construction): it adds nothing to the fit nor to the other targets' prior.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import spearmanr

from taskgraph.affinity.estimators.base import AffinityEstimator, make_estimator
from taskgraph.affinity.gains import compute_gains
from taskgraph.affinity.grouping import (
    candidate_task_sets,
    predicted_network_scores,
    select_networks,
)
from taskgraph.affinity.longtable import LongTable
from taskgraph.affinity.records import ScoreRecord
from taskgraph.errors import ConfigError

__all__ = [
    "MIN_RANKED",
    "evaluate_gain_prediction",
    "evaluate_grouping",
    "evaluate_pair_gains",
    "evaluate_source_ranking",
    "gain_prediction_cells",
    "ndcg",
    "regret_at_k",
    "spearman",
    "with_stand_in_baselines",
]


#: the fewest items a per-target rank correlation (Spearman) is computed on: over two it is
#: +-1 (or undefined) whatever the predictions, not a measurement
MIN_RANKED = 3


def spearman(predicted: ArrayLike, truth: ArrayLike) -> float:
    """Return Spearman's rank correlation (NaN when either side is constant or too short)."""
    a, b = np.asarray(predicted, dtype=float), np.asarray(truth, dtype=float)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(spearmanr(a, b).statistic)


def ndcg(predicted: ArrayLike, truth: ArrayLike) -> float:
    """Return NDCG of the ranking by ``predicted``, relevance = true gain minus the smallest one."""
    a, b = np.asarray(predicted, dtype=float), np.asarray(truth, dtype=float)
    relevance = b - b.min()
    discounts = 1.0 / np.log2(np.arange(2, len(b) + 2))
    ideal = float(np.sort(relevance)[::-1] @ discounts)
    if ideal == 0:
        return math.nan
    return float(relevance[np.argsort(-a, kind="stable")] @ discounts) / ideal


def regret_at_k(predicted: ArrayLike, truth: ArrayLike, k: int = 3) -> float:
    """Return the best true gain minus the best true gain among the top ``k`` predicted."""
    a, b = np.asarray(predicted, dtype=float), np.asarray(truth, dtype=float)
    top = np.argsort(-a, kind="stable")[:k]
    return float(b.max() - b[top].max())


def _score_split(table: LongTable) -> str:
    return "test" if "test" in table.splits else table.splits[0]


def _gain_lookup(table: LongTable, split: str) -> dict[tuple[str, frozenset[str]], float]:
    gains = compute_gains(table.to_records(split=split), kind="relative")
    return {(g.target, g.auxiliaries): g.mean for g in gains.gains}


def with_stand_in_baselines(records: Sequence[ScoreRecord]) -> list[ScoreRecord]:
    """Return ``records`` plus a stand-in baseline for each target that has none.

    The stand-in of a (family, target, split, metric) without a single-task record is the mean
    of its records' values (their largest magnitude when that mean is 0, as a relative gain
    divides by it): its gains are then in the order of its values, which is all a rank-only
    target can be scored on.  Targets with a baseline are left as they are, and so is a target
    with a single record: its stand-in would equal that record, a gain of exactly 0 made up by
    the stand-in, which would then count as evidence (and in the popular-source prior of the
    other targets); without a baseline its record gives no gain at all.
    """
    grouped: dict[tuple[str, str, str, str], list[ScoreRecord]] = defaultdict(list)
    for record in records:
        if math.isfinite(record.value):
            grouped[(record.family, record.task, record.split, record.metric)].append(record)
    added = []
    for (family, task, split, metric), rows in grouped.items():
        if len(rows) < 2 or any(r.is_baseline for r in rows):
            continue
        values = [r.value for r in rows]
        level = float(np.mean(values))
        if abs(level) < 1e-12:
            level = max(abs(v) for v in values) or 1.0
        added.append(
            ScoreRecord(
                task=task, task_set=frozenset({task}), value=level,
                higher_is_better=rows[0].higher_is_better, split=split, metric=metric,
                family=family,
            )
        )  # fmt: skip
    return [*records, *added]


def _pair_truth(
    table: LongTable, split: str, *, by_value: Collection[str] = ()
) -> dict[tuple[str, str], float]:
    """Return (target, source) -> the pair's gain on ``split``, or its sign-normalised value
    (rank-only) for a target without a baseline row there or named in ``by_value``."""
    gains = _gain_lookup(table, split)
    truth = {}
    for target in table.targets:
        ranked_by_gain = target not in by_value and table.get(target, (), split) is not None
        for task_set in table.task_sets(target, split=split):
            if len(task_set) != 2:
                continue
            source = next(iter(task_set - {target}))
            row = table.get(target, task_set, split)
            assert row is not None
            gain = gains.get((target, frozenset({source})))
            if ranked_by_gain and gain is not None:
                truth[(target, source)] = gain
            else:
                truth[(target, source)] = row.value if row.higher_is_better else -row.value
    return truth


def _build(method: str, options: Mapping[str, Any] | None) -> AffinityEstimator:
    return make_estimator(method, **dict(options or {}))


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


def _popular_prior(
    records: Sequence[ScoreRecord], target: str, sources: Sequence[str]
) -> np.ndarray:
    gains = compute_gains(records, kind="relative")
    per_source: dict[str, list[float]] = defaultdict(list)
    for gain in gains.gains:
        if gain.target != target and len(gain.auxiliaries) == 1:
            per_source[next(iter(gain.auxiliaries))].append(gain.mean)
    return np.array([np.mean(per_source[s]) if per_source[s] else 0.0 for s in sources])


def evaluate_source_ranking(
    table: LongTable,
    methods: Sequence[str],
    *,
    n_observed: int = 3,
    seeds: Sequence[int] = tuple(range(5)),
    k: int = 3,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    exhaustive: bool = False,
    on_fit: Callable[[str, str, AffinityEstimator], None] | None = None,
    split: str | None = None,
    min_ranked: int = 2,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Return per-target Spearman, NDCG and Regret@k of each method and of the popular-source prior, with spreads.

    The fit holds every other target's rows and the target's rows whose auxiliaries are all
    observed (a group with a hidden source would reveal that source's effect).
    Draws: one random subset of ``n_observed`` entries per target and seed, or with
    ``exhaustive`` every subset of every target (``seeds`` ignored).  ``result[name][metric]``
    is the mean over targets of the mean over draws; ``result["spread"][name][metric]`` holds
    ``sd_over_seeds`` (of the across-target mean; NaN when exhaustive or with one seed) and
    ``sd_within_target`` (draw to draw, averaged over targets); ``result["versus_prior"][method]
    [metric]`` holds the paired per-target difference ``diff`` (method minus prior), its
    standard error over targets ``se`` and how many targets are ``better`` / ``worse``.
    ``on_fit(method, target, estimator)`` is called after every fit (to collect diagnostics).
    ``split``: the one split fitted and scored (default ``val``, else the table's only one).
    A target without a baseline row is ranked against its values (``result["rank_only"]``).
    ``min_ranked``: the fewest hidden sources a target's Spearman is computed on (default 2:
    every target ranked; ``taskgraph bench`` passes :data:`MIN_RANKED`, as a Spearman of two is
    +-1 whatever the predictions); a target with fewer keeps its NDCG and regret, and
    ``result["too_few_hidden"]`` names it.  ``on_progress(done, total)`` is called before
    the first draw and after every draw (its fits done).
    """
    split = split or ("val" if "val" in table.splits else table.splits[0])
    records = table.to_records(split=split)
    truth = _pair_truth(table, split)
    pair_rows: dict[str, list[str]] = defaultdict(list)
    for target, source in truth:
        pair_rows[target].append(source)
    rank_only = [t for t in sorted(pair_rows) if table.get(t, (), split) is None]
    names = ["prior", *methods]
    metrics = ("spearman", "ndcg", f"regret@{k}")
    # name -> metric -> target -> scores in draw order (draw i of every target = seed i)
    scores: dict[str, dict[str, dict[str, list[float]]]] = {
        m: {metric: defaultdict(list) for metric in metrics} for m in names
    }
    rankable = [t for t in sorted(pair_rows) if len(pair_rows[t]) > n_observed + 1]
    draws: dict[str, list[set[str]]] = defaultdict(list)
    if exhaustive:
        for target in rankable:
            draws[target] = [
                set(c) for c in itertools.combinations(sorted(pair_rows[target]), n_observed)
            ]
    else:
        for seed in (
            seeds
        ):  # one generator per seed, targets in order: draws stay comparable across versions
            rng = np.random.default_rng(seed)
            for target in rankable:
                draws[target].append(
                    set(
                        rng.choice(
                            sorted(pair_rows[target]), size=n_observed, replace=False
                        ).tolist()
                    )
                )
    total = sum(len(draws[t]) for t in rankable)
    done = 0
    if on_progress is not None:
        on_progress(done, total)
    for target in rankable:
        sources = sorted(pair_rows[target])
        for observed in draws[target]:
            hidden = [s for s in sources if s not in observed]
            # The target's rows of observed sources only: a group {target, observed, hidden}
            # carries a hidden source's effect into the fit (the pair gains' rule, below).
            fit = with_stand_in_baselines(
                [r for r in records if r.task != target or r.auxiliaries <= observed]
            )
            true = np.array([truth[(target, s)] for s in hidden])
            predictions = {"prior": _popular_prior(fit, target, hidden)}
            for method in methods:
                estimator = _build(method, (options or {}).get(method)).fit(fit)
                predictions[method] = estimator.predict_many(target, [{s} for s in hidden])[0]
                if on_fit is not None:
                    on_fit(method, target, estimator)
            for name, predicted in predictions.items():
                per = scores[name]
                if len(hidden) >= min_ranked:
                    per["spearman"][target].append(spearman(predicted, true))
                per["ndcg"][target].append(ndcg(predicted, true))
                per[f"regret@{k}"][target].append(regret_at_k(predicted, true, k))
            done += 1
            if on_progress is not None:
                on_progress(done, total)
    result: dict[str, Any] = {
        "split": split, "n_targets": len(pair_rows), "exhaustive": exhaustive,
        "rank_only": [t for t in rank_only if t in rankable],
        "too_few_hidden": [t for t in rankable if len(pair_rows[t]) - n_observed < min_ranked],
    }  # fmt: skip
    result["n_draws"] = sum(len(v) for v in scores["prior"]["ndcg"].values())
    result.update({name: {m: _target_mean(scores[name][m]) for m in metrics} for name in names})
    result["spread"] = {
        name: {m: {"sd_over_seeds": math.nan if exhaustive else _sd_over_seeds(scores[name][m]),
                   "sd_within_target": _sd_within_target(scores[name][m])} for m in metrics}
        for name in names
    }  # fmt: skip
    result["versus_prior"] = {
        method: {m: _paired(scores[method][m], scores["prior"][m], lower_is_better=m.startswith("regret"))
                 for m in metrics}
        for method in methods
    }  # fmt: skip
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


def _target_mean(per_target: Mapping[str, Sequence[float]]) -> float:
    means = [float(np.nanmean(v)) for v in per_target.values() if np.isfinite(v).any()]
    return float(np.mean(means)) if means else math.nan


def _sd_over_seeds(per_target: Mapping[str, Sequence[float]]) -> float:
    rows = np.array(list(per_target.values()), dtype=float)  # targets x seeds
    if rows.ndim != 2 or rows.shape[1] < 2:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a seed where every target is NaN
        return float(np.nanstd(np.nanmean(rows, axis=0), ddof=1))


def _sd_within_target(per_target: Mapping[str, Sequence[float]]) -> float:
    spreads = [
        float(np.nanstd(v, ddof=1)) for v in per_target.values() if np.isfinite(v).sum() >= 2
    ]
    return float(np.mean(spreads)) if spreads else math.nan


def _paired(
    method: Mapping[str, Sequence[float]],
    prior: Mapping[str, Sequence[float]],
    *,
    lower_is_better: bool,
) -> dict[str, float]:
    diffs = np.array([
        float(np.nanmean(method[t])) - float(np.nanmean(prior[t]))
        for t in method if np.isfinite(method[t]).any() and np.isfinite(prior[t]).any()
    ])  # fmt: skip
    better = diffs < 0 if lower_is_better else diffs > 0
    worse = diffs > 0 if lower_is_better else diffs < 0
    se = float(diffs.std(ddof=1) / math.sqrt(len(diffs))) if len(diffs) > 1 else math.nan
    return {
        "diff": float(diffs.mean()) if len(diffs) else math.nan,
        "se": se,
        "better": int(better.sum()),
        "worse": int(worse.sum()),
    }


def evaluate_grouping(
    table: LongTable,
    method: str,
    *,
    budgets: Sequence[float] = (1, 2, 3, 4, 5),
    max_evaluations: int = 15,
    strategy: str = "pairs",
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
) -> dict[float, dict[str, Any]]:
    """Return, per budget, the scored-split total of the grouping chosen with at most ``max_evaluations`` measured sets.

    ``strategy``: ``pairs`` measures every single and then pairs (Standley's HOA protocol);
    ``triples`` every single and then triples (a design to compare with it);
    ``adaptive`` measures the singles and the all-task set, then repeatedly measures an
    unmeasured network of the grouping chosen under a posterior draw (Thompson sampling).
    ``optimum`` measures everything (the reference, ignoring ``max_evaluations``).
    ``method`` ``measured`` chooses among the measured networks only (no estimator); a budget
    they cannot cover raises :class:`ConfigError`.  Per budget the result holds ``total`` (the
    scored split), ``val_total`` (the same grouping on validation, the selection criterion),
    ``networks`` and ``n_measured``.
    """
    val = table.networks("val")
    scored = table.networks(_score_split(table))
    tasks = table.tasks
    hib = {r.target: r.higher_is_better for r in table}
    if len(set(hib.values())) > 1:  # a grouping's total sums the tasks' scores
        raise ConfigError(
            f"table {table.source!r} mixes higher-is-better and lower-is-better targets; "
            "a grouping's total needs scores of one direction"
        )
    higher = all(hib.values())
    if method == "measured" and strategy == "adaptive":
        raise ConfigError("the adaptive strategy needs an estimator; `measured` has none")
    networks = candidate_task_sets(tasks)
    missing = [n for n in networks if n not in val]
    if missing:
        raise ConfigError(
            f"table {table.source!r} lacks validation rows for {len(missing)} task sets"
        )
    results: dict[float, dict[str, Any]] = {}
    for budget in budgets:
        rng = np.random.default_rng(seed)
        if strategy == "optimum":
            measured = set(networks)
        elif strategy in ("pairs", "triples"):
            first = 2 if strategy == "pairs" else 3
            ordered = sorted(
                networks, key=lambda n: (len(n) != 1, abs(len(n) - first), len(n), sorted(n))
            )
            measured = set(ordered[:max_evaluations])
        elif strategy == "adaptive":
            measured = _adaptive_measurements(
                val, tasks, hib, method, budget, max_evaluations, rng, options
            )
        else:
            raise ConfigError(
                f"`strategy` must be pairs, triples, adaptive or optimum, but got {strategy!r}"
            )
        chosen_scores = _predicted(val, measured, tasks, hib, method, options)
        grouping = select_networks(
            chosen_scores, budget=budget, tasks=tasks, higher_is_better=higher
        )
        total = float(sum(scored[grouping.assignment[t]][t] for t in tasks))
        results[budget] = {
            "total": total,
            "val_total": float(sum(val[grouping.assignment[t]][t] for t in tasks)),
            "networks": [sorted(n) for n in grouping.networks],
            "n_measured": len(measured),
        }
    return results


def _records(
    val: Mapping[frozenset[str], Mapping[str, float]],
    measured: set[frozenset[str]],
    hib: Mapping[str, bool],
) -> list[ScoreRecord]:
    return [
        ScoreRecord(task=t, task_set=n, value=v, higher_is_better=hib[t], split="val")
        for n in measured for t, v in val[n].items()
    ]  # fmt: skip


def _predicted(
    val: Mapping[frozenset[str], Mapping[str, float]],
    measured: set[frozenset[str]],
    tasks: Sequence[str],
    hib: Mapping[str, bool],
    method: str,
    options: Mapping[str, Any] | None,
    estimator: AffinityEstimator | None = None,
) -> dict[frozenset[str], dict[str, float]]:
    if method == "measured" and estimator is None:
        return {n: dict(val[n]) for n in measured}
    if estimator is None:
        estimator = _build(method, options).fit(_records(val, measured, hib))
    baselines = {t: val[frozenset({t})][t] for t in tasks}
    return predicted_network_scores(
        estimator, baselines, networks=candidate_task_sets(tasks), higher_is_better=hib,
        measured={n: val[n] for n in measured},
    )  # fmt: skip


def _adaptive_measurements(
    val: Mapping[frozenset[str], Mapping[str, float]],
    tasks: Sequence[str],
    hib: Mapping[str, bool],
    method: str,
    budget: float,
    max_evaluations: int,
    rng: np.random.Generator,
    options: Mapping[str, Any] | None,
) -> set[frozenset[str]]:
    measured = {frozenset({t}) for t in tasks} | {frozenset(tasks)}
    networks = candidate_task_sets(tasks)
    higher = all(hib.values())
    baselines = {t: val[frozenset({t})][t] for t in tasks}
    while len(measured) < min(max_evaluations, len(networks)):
        estimator = _build(method, options).fit(_records(val, measured, hib))
        open_sets = [n for n in networks if n not in measured]
        queries = [(t, n) for n in open_sets for t in sorted(n)]
        pick: frozenset[str] | None = None
        for draw in estimator.sample_gains(queries, rng, n_samples=8):
            sampled = {n: dict(val[n]) for n in measured}
            for (t, n), gain in zip(queries, draw, strict=True):
                sign = 1.0 if hib[t] else -1.0
                sampled.setdefault(n, {})[t] = baselines[t] + sign * gain * abs(baselines[t])
            grouping = select_networks(sampled, budget=budget, tasks=tasks, higher_is_better=higher)
            fresh = [n for n in grouping.networks if n not in measured]
            if fresh:
                pick = max(fresh, key=len)
                break
        if pick is None:  # every draw already measured its grouping: widen the evidence
            stds = [estimator.predict(t, n)[1] for t, n in queries]
            pick = queries[int(np.argmax(stds))][1]
        measured.add(pick)
    return measured
