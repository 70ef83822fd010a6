"""Source ranking: each target's hidden sources ranked from a few observed entries of its row.

:func:`evaluate_source_ranking` scores Spearman, NDCG and Regret@k per target, beside the
popular-source prior on the same draws.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from taskgraph.affinity.estimators.base import AffinityEstimator
from taskgraph.affinity.evaluation._tables import (
    _build,
    _pair_truth,
    _popular_prior,
    with_stand_in_baselines,
)
from taskgraph.affinity.evaluation.metrics import (
    _paired,
    _sd_over_seeds,
    _sd_within_target,
    _target_mean,
    ndcg,
    regret_at_k,
    spearman,
)
from taskgraph.affinity.longtable import LongTable


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
    every target ranked; ``taskgraph bench`` passes
    :data:`~taskgraph.affinity.evaluation.metrics.MIN_RANKED`, as a Spearman of two is +-1
    whatever the predictions); a target with fewer keeps its NDCG and regret, and
    ``result["too_few_hidden"]`` names it.  A target with ``n_observed + 1`` pair rows or fewer
    (fewer than two hidden sources) is not ranked at all: ``result["too_few_pairs"]`` names it
    (``result["n_targets"]`` counts every target with pair rows, these included).
    ``on_progress(done, total)`` is called before the first draw and after every draw (its
    fits done).
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
            # carries a hidden source's effect into the fit (the pair gains' rule, in
            # gain_queries.py).
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
        "too_few_pairs": [t for t in sorted(pair_rows) if t not in rankable],
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
