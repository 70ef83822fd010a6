"""Affinity estimators, groupings and the graph-guided sampler on published results.

Prints ``name: value`` lines, each beside its baseline measured in the same run.  Validation
numbers are used for fitting and choosing, test numbers only for scoring (single-split tables,
TaskWeb and Bingel, are scored on their one split with the target's row held out).

    .venv/bin/python benchmarks/affinity_bench.py            # everything (search: about an hour on 2 shared cores)
    .venv/bin/python benchmarks/affinity_bench.py --quick    # fewer seeds
    .venv/bin/python benchmarks/affinity_bench.py --only ettm1,standley
    .venv/bin/python benchmarks/affinity_bench.py --only search --search-tables taskonomy5
    .venv/bin/python benchmarks/affinity_bench.py --only taskweb,bingel   # source ranking only (5-12 minutes)

Sections run only when named in ``--only``: ``ranking_ablation`` (sourcerank's validation
table), ``ranking_metadata`` (its candidates with task metadata), ``ranking_ceiling`` (how well
one linear weighting of sourcerank's scores ranks the sources when fitted on the answers),
``gain_levels`` (how much of the gain-prediction Spearman is each target's level),
``pooling_aside`` (``setfn``'s default ``pooling="bma"`` and ``auto`` against ``mean`` on the
five tables kept aside for the choice of the default: Taskonomy and Standley's four settings,
20 fit seeds, about 2 minutes on one core).

Sections:

* ``mimic27`` / ``ettm1``: Spearman between predicted and true per-task gains on groups of size
  >= 3, fitted on singles, pairs and 10 % of the larger groups (mean and standard error over fit
  seeds, and the paired ``setfn`` - HOA difference; ``setfn``'s default pooling, ``bma``, and
  its other poolings, ``mean`` (the default until 2026-12-06) and ``auto``, paired against it);
* ``standley``: total test loss of the grouping chosen at budgets 1-5 with at most 15 measured
  subsets (settings 1-3); ``_hoa`` is Standley's protocol, ``_optimum`` measures all 31;
* ``taskweb`` / ``bingel``: per-target Spearman, NDCG and Regret@3 of the source ranking of
  ``sourcerank`` when 3 entries of the target's row are observed, against the popular-source
  prior on the same draws (paired difference with its standard error over targets and their
  ratio, spread over seeds), Bingel also on every subset of 3, and ``setfn`` for reference;
* ``search``: trials (every ask, repeats included) and distinct sets until each target's best
  auxiliary set is proposed, on ETTm1 (64 sets per target), Taskonomy (16), MIMIC-27
  (single auxiliaries: its larger groups are a sample) and the pairs-only TaskWeb and Bingel
  tables (single auxiliaries, their one split): the graph-guided sampler starting from
  the other targets' rows (``graph``) and from nothing (``graph_cold``) against TPE, GP and
  random sampling as ``search/samplers.py`` builds them for a study and an AutoSeM-style bandit
  (:mod:`taskgraph.search.benchmarking`); medians over seeds and targets with a 90 % bootstrap
  interval (``_lo90``/``_hi90``: targets, then seeds, resampled), and the graph-guided
  sampler's paired difference from each baseline (``_trials_paired_graph_vs_<baseline>``, per
  target the mean over common seeds, with ``_se`` over targets; negative is faster).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.stats import spearmanr

from taskgraph.affinity.converters import convert
from taskgraph.affinity.estimators import make_estimator
from taskgraph.affinity.estimators.base import AffinityEstimator
from taskgraph.affinity.estimators.sourcerank import (
    DEFAULT_FEATURES,
    FEATURES,
    RIDGE_GRID,
    SourceRankEstimator,
)
from taskgraph.affinity.evaluation import (
    evaluate_gain_prediction,
    evaluate_grouping,
    evaluate_source_ranking,
)
from taskgraph.cli.scripts import ScriptParser, nonnegative_int, run_script
from taskgraph.search.benchmarking import (
    BENCH_SAMPLERS,
    SEARCH_TRIAL_CAPS,
    SearchRun,
    median_interval,
    paired_trials,
    ratio,
    runs_by_target,
    search_efficiency,
    search_max_size,
    summarize_runs,
)

SECTIONS = ("mimic27", "ettm1", "standley", "taskweb", "bingel", "search")
EXTRA_SECTIONS = (
    "ranking_ablation",
    "ranking_metadata",
    "ranking_ceiling",
    "gain_levels",
    "pooling_aside",
)  # run only when named in --only


def emit(name: str, value: float | int | str) -> None:
    text = f"{value:.5f}" if isinstance(value, float) else str(value)
    print(f"{name}: {text}", flush=True)


def log(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


def gain_prediction(name: str, seeds: int) -> None:
    table = convert(name)
    per: dict[str, list[tuple[float, float]]] = {"setfn": [], "hoa": []}
    start = time.perf_counter()
    weights: list[float] = []  # the default pooling's (bma) weight of summed members per fit

    def sum_weight(method: str, estimator: AffinityEstimator) -> None:
        if method == "setfn":
            weights.append(estimator.describe()["pooling_weights"].get("sum", 0.0))

    for seed in range(seeds):
        result = evaluate_gain_prediction(
            table, ["setfn", "hoa"], fit_fraction=0.1, seed=seed, on_fit=sum_weight
        )
        for method in per:
            per[method].append((result[method]["spearman_val"], result[method]["spearman"]))
    log(
        f"{name}: {seeds} fit seeds in {time.perf_counter() - start:.0f} s, {result['n_queries']} held-out (task, group) pairs"
    )
    setfn, hoa = np.mean(per["setfn"], axis=0), np.mean(per["hoa"], axis=0)
    emit(f"{name}_spearman", float(setfn[1]))
    emit(f"{name}_spearman_hoa", float(hoa[1]))
    emit(f"{name}_spearman_ratio", float(setfn[1] / hoa[1]))
    emit(f"{name}_spearman_val", float(setfn[0]))
    emit(f"{name}_spearman_val_hoa", float(hoa[0]))
    emit(f"{name}_spearman_sd_over_seeds", float(np.std([t for _, t in per["setfn"]])))
    for method in per:  # the goals are stated as means with standard errors over fit seeds
        suffix = "" if method == "setfn" else f"_{method}"
        emit(f"{name}_spearman_se_over_seeds{suffix}", _se([t for _, t in per[method]]))
    diffs = [s[1] - h[1] for s, h in zip(per["setfn"], per["hoa"], strict=True)]
    emit(f"{name}_spearman_diff_vs_hoa", float(np.mean(diffs)))
    emit(f"{name}_spearman_diff_vs_hoa_se_over_seeds", _se(diffs))
    # setfn's default pooling is "bma" (the two poolings averaged by their evidence); the
    # other poolings on the same seeds, paired against it.
    emit(f"{name}_bma_mean_weight_of_sum", float(np.mean(weights)))
    for pooling in ("mean", "auto"):
        other: list[tuple[float, float]] = []
        chosen: list[str] = []
        for seed in range(seeds):
            result = evaluate_gain_prediction(
                table, ["setfn"], fit_fraction=0.1, seed=seed,
                options={"setfn": {"pooling": pooling}},
                on_fit=lambda method, estimator, seen=chosen: seen.append(
                    estimator.describe()["pooling"]),
            )  # fmt: skip
            other.append((result["setfn"]["spearman_val"], result["setfn"]["spearman"]))
        emit(f"{name}_spearman_pooling_{pooling}", float(np.mean([t for _, t in other])))
        emit(f"{name}_spearman_pooling_{pooling}_se_over_seeds", _se([t for _, t in other]))
        emit(f"{name}_spearman_val_pooling_{pooling}", float(np.mean([v for v, _ in other])))
        for column, label in ((0, "val"), (1, "test")):
            paired = [d[column] - o[column] for d, o in zip(per["setfn"], other, strict=True)]
            emit(f"{name}_spearman_{label}_diff_vs_pooling_{pooling}", float(np.mean(paired)))
            emit(f"{name}_spearman_{label}_diff_vs_pooling_{pooling}_se_over_seeds", _se(paired))
        if pooling == "auto":
            emit(f"{name}_pooling_auto_chose_sum", f"{chosen.count('sum')}/{len(chosen)}")


#: The tables kept aside for deciding setfn's default pooling (docs/affinity.md, "strong
#: evidence for summed members"): groups of three or more, not MIMIC-27 or ETTm1.
POOLING_ASIDE_TABLES = ("taskonomy5", "standley_s1", "standley_s2", "standley_s3", "standley_s4")


def pooling_aside(seeds: int) -> None:
    """``setfn``'s default pooling (``bma``) and ``auto``, each minus ``mean``: validation Spearman
    of the held-out groups, paired over fit seeds, on each table kept aside (the rule: no
    table below zero by more than two standard errors, and the mean over tables not below
    zero, for a pooling to be the default; docs/affinity.md)."""
    means: dict[str, list[float]] = {"bma": [], "auto": []}
    for name in POOLING_ASIDE_TABLES:
        table = convert(name)
        paired: dict[str, list[float]] = {"bma": [], "auto": []}
        chosen: list[str] = []
        for seed in range(seeds):
            values = {}
            for pooling in ("mean", "bma", "auto"):
                result = evaluate_gain_prediction(
                    table, ["setfn"], fit_fraction=0.1, seed=seed,
                    options={"setfn": {"pooling": pooling}},
                    on_fit=(lambda m, e, seen=chosen: seen.append(e.describe()["pooling"]))
                    if pooling == "auto" else None,
                )  # fmt: skip
                values[pooling] = result["setfn"]["spearman_val"]
            for pooling in paired:
                paired[pooling].append(values[pooling] - values["mean"])
        for pooling, diffs in paired.items():
            means[pooling].append(float(np.mean(diffs)))
            emit(f"{name}_spearman_val_pooling_{pooling}_diff_vs_mean", means[pooling][-1])
            emit(f"{name}_spearman_val_pooling_{pooling}_diff_vs_mean_se_over_seeds", _se(diffs))
        emit(f"{name}_pooling_auto_chose_sum", f"{chosen.count('sum')}/{len(chosen)}")
    for pooling, values in means.items():
        emit(f"pooling_aside_mean_{pooling}_diff_vs_mean", float(np.mean(values)))


def gain_levels(name: str, seeds: int, refit_per_target: bool = True) -> None:
    """Split ``setfn``'s gain-prediction score into each target's level and its groups' order.

    Same protocol and fit seeds as :func:`gain_prediction`.  Rows: ``setfn``; its level only
    (each target's mean prediction for every one of its groups); the *observed* level (the
    mean of the target's fitted gains of 2+ auxiliaries, ``setfn``'s level where it has none),
    alone and plus ``setfn``'s order within the target; and two oracles scored on test only:
    each target's mean validation truth of the scored groups, and the validation truth itself.

    Candidates (docs/affinity.md, "shrinking ETTm1's levels"): each target's observed level
    shrunk toward ``setfn``'s by a normal-normal empirical-Bayes weight, ``setfn``'s order kept
    (:func:`_eb_offsets`): ``eb_mom`` (setfn's level over the scored groups, pooled within-target
    variance, tau^2 by moments), ``eb_mom_fitted`` (setfn's level at the target's fitted larger
    groups), ``eb_mom_own_var`` (each target's own variance), ``eb_ml`` (tau^2 by marginal
    likelihood); ``eb_mom_level_only`` is ``eb_mom``'s level without the order (a diagnostic).
    Those four shrink toward a level fitted on the same gains, so their weights come out about
    0; two shrink toward a level fitted without them: ``eb_loo`` (a refit without the target's
    own larger groups, one per target: ``refit_per_target``) and ``eb_pairs`` (one refit on
    singles and pairs).  ``_diff_vs_setfn`` lines are paired over fit seeds.
    """
    table = convert(name)
    rows: dict[str, list[tuple[float, float]]] = {}
    fitted: list[AffinityEstimator] = []  # one fit per seed
    weight_means: dict[str, list[float]] = {}
    for seed in range(seeds):
        result = evaluate_gain_prediction(
            table, ["setfn"], fit_fraction=0.1, seed=seed, keep_predictions=True,
            on_fit=lambda method, estimator: fitted.append(estimator),
        )  # fmt: skip
        targets = np.array([target for target, _ in result["queries"]])
        predicted = result["setfn"]["predicted"]
        level, observed, oracle = (np.zeros(len(targets)) for _ in range(3))
        larger = [g for g in fitted[-1].table.gains if len(g.auxiliaries) >= 2]
        seen_by: dict[str, list[float]] = {}
        scored_level: dict[str, float] = {}
        fitted_level: dict[str, float] = {}
        for target in sorted(set(targets)):
            mask = targets == target
            level[mask] = scored_level[target] = predicted[mask].mean()
            groups = [g for g in larger if g.target == target]
            seen_by[target] = [g.mean for g in groups]
            observed[mask] = np.mean(seen_by[target]) if groups else level[mask]
            oracle[mask] = result["truth_val"][mask].mean()
            fitted_level[target] = (
                float(fitted[-1].predict_many(target, [g.auxiliaries for g in groups])[0].mean())
                if groups
                else scored_level[target]
            )
        prior_levels = {"eb_pairs": _refit_levels(fitted[-1], result["queries"], None)}
        if refit_per_target:
            prior_levels["eb_loo"] = {
                target: _refit_levels(fitted[-1], result["queries"], target)[target]
                if seen_by[target]
                else scored_level[target]  # nothing to leave out: the fit itself
                for target in scored_level
            }
        fits = {
            **{variant: _eb_offsets(seen_by, prior) for variant, prior in prior_levels.items()},
            "eb_mom": _eb_offsets(seen_by, scored_level),
            "eb_mom_fitted": _eb_offsets(seen_by, fitted_level),
            "eb_mom_own_var": _eb_offsets(seen_by, scored_level, own_variance=True),
            "eb_ml": _eb_offsets(seen_by, scored_level, tau="ml"),
        }
        shifts = {variant: shift for variant, (shift, _) in fits.items()}
        # The refits' candidates move the level from setfn's to the refit's, then shrink.
        for variant, prior in prior_levels.items():
            shifts[variant] = {t: shifts[variant][t] + prior[t] - scored_level[t] for t in prior}
        for variant, (_, weights) in fits.items():  # the mean weight on the observed level
            weight_means.setdefault(variant, []).append(float(np.mean(list(weights.values()))))
        variants = {
            "setfn": predicted,
            "setfn_level": level,
            "observed_level": observed,
            "observed_level_plus_setfn_order": observed + predicted - level,
            **{
                variant: predicted + np.array([shift[t] for t in targets])
                for variant, shift in shifts.items()
            },
            "eb_mom_level_only": level + np.array([shifts["eb_mom"][t] for t in targets]),
            "oracle_level": oracle,
            "oracle_val_truth": result["truth_val"],
        }
        for variant, values in variants.items():
            rows.setdefault(variant, []).append(
                (spearmanr(values, result["truth_val"])[0], spearmanr(values, result["truth"])[0])
            )
    base = np.array(rows["setfn"])
    for variant, scores in rows.items():
        val, test = np.array(scores).T
        if not variant.startswith("oracle"):  # the oracles are the validation truth
            emit(f"{name}_level_{variant}_val", float(val.mean()))
            emit(f"{name}_level_{variant}_val_se_over_seeds", _se(list(val)))
        emit(f"{name}_level_{variant}", float(test.mean()))
        emit(f"{name}_level_{variant}_se_over_seeds", _se(list(test)))
        if variant.startswith("eb_"):
            for column, label in ((0, "val"), (1, "test")):
                paired = list(np.array(scores)[:, column] - base[:, column])
                emit(f"{name}_level_{variant}_{label}_diff_vs_setfn", float(np.mean(paired)))
                emit(f"{name}_level_{variant}_{label}_diff_vs_setfn_se_over_seeds", _se(paired))
            if variant in weight_means:
                emit(f"{name}_level_{variant}_mean_weight", float(np.mean(weight_means[variant])))


def _refit_levels(
    estimator: AffinityEstimator,
    queries: Sequence[tuple[str, frozenset[str]]],
    left_out: str | None,
) -> dict[str, float]:
    """Refit ``estimator`` without ``left_out``'s gains of 2+ auxiliaries (every target's when
    ``None``) and return each target's mean prediction over its scored groups."""
    table = estimator.table
    kept = [
        g
        for g in table.gains
        if len(g.auxiliaries) < 2 or (left_out is not None and g.target != left_out)
    ]
    refit = make_estimator("setfn").fit_gains(dataclasses.replace(table, gains=kept))
    by_target: dict[str, list[frozenset[str]]] = {}
    for target, auxiliaries in queries:
        by_target.setdefault(target, []).append(auxiliaries)
    return {t: float(refit.predict_many(t, groups)[0].mean()) for t, groups in by_target.items()}


def _eb_offsets(
    observed: Mapping[str, Sequence[float]],
    level: Mapping[str, float],
    *,
    own_variance: bool = False,
    tau: str = "moments",
) -> tuple[dict[str, float], dict[str, float]]:
    """Return each target's shift ``w_t (ybar_t - m_t)`` of ``setfn``'s level ``m_t = level[t]``,
    and its weight ``w_t``.

    The normal-normal model: the mean ``ybar_t`` of the target's ``n_t`` observed gains is
    ``N(theta_t, sigma_t^2 / n_t)`` and its true level ``theta_t ~ N(m_t, tau^2)``; the shift
    moves ``m_t`` to the posterior mean, ``w_t = tau^2 / (tau^2 + sigma_t^2 / n_t)``.
    ``sigma^2`` is the within-target variance pooled over targets, or each target's own
    (``own_variance``; targets with fewer than two gains are not shifted); ``tau^2`` by the
    method of moments (``"moments"``) or the marginal likelihood (``"ml"``), floored at 0
    (then nothing is shifted).  Nothing here is tuned.
    """
    shifts, weights = dict.fromkeys(level, 0.0), dict.fromkeys(level, 0.0)
    seen = {t: np.asarray(observed.get(t, ()), dtype=float) for t in level}
    used = [t for t in level if len(seen[t]) >= (2 if own_variance else 1)]
    if own_variance:
        noise = {t: float(np.var(seen[t], ddof=1)) / len(seen[t]) for t in used}
    else:
        dof = sum(len(seen[t]) for t in used) - len(used)
        if dof < 1:
            return shifts, weights
        pooled = sum(float(((seen[t] - seen[t].mean()) ** 2).sum()) for t in used) / dof
        noise = {t: pooled / len(seen[t]) for t in used}
    if not used:
        return shifts, weights
    resid = np.array([seen[t].mean() - level[t] for t in used])
    v = np.array([noise[t] for t in used])
    if tau == "moments":
        tau2 = max(0.0, float(np.mean(resid**2 - v)))
    else:

        def negative_log_likelihood(t2: float) -> float:
            return float(0.5 * np.sum(np.log(t2 + v) + resid**2 / (t2 + v)))

        upper = float(10 * np.max(resid**2)) + 1e-12
        best = minimize_scalar(negative_log_likelihood, bounds=(0.0, upper), method="bounded")
        tau2 = float(best.x) if best.fun < negative_log_likelihood(0.0) else 0.0
    for t, r, noise_t in zip(used, resid, v, strict=True):
        weights[t] = tau2 / (tau2 + noise_t) if tau2 + noise_t > 0 else 0.0
        shifts[t] = float(weights[t] * r)
    return shifts, weights


def _se(values: Sequence[float]) -> float:
    """Return the standard error of the mean of ``values`` (NaN with fewer than two)."""
    return float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")


def standley(budgets: Sequence[int]) -> None:
    for setting in (1, 2, 3):
        table = convert(f"standley_s{setting}")
        runs = {
            "": evaluate_grouping(table, "setfn", budgets=budgets, strategy="pairs"),
            "_hoa": evaluate_grouping(table, "hoa", budgets=budgets, strategy="pairs"),
            "_adaptive": evaluate_grouping(table, "setfn", budgets=budgets, strategy="adaptive"),
            "_optimum": evaluate_grouping(table, "hoa", budgets=budgets, strategy="optimum"),
        }
        for budget in budgets:
            for suffix, result in runs.items():
                emit(f"standley_s{setting}_budget{budget}_loss{suffix}", result[budget]["total"])


def source_ranking(name: str, seeds: int, setfn_seeds: int, exhaustive: bool) -> None:
    """Print the learned source ranker (``sourcerank``) beside the popular-source prior and ``setfn``."""
    table = convert(name)
    start = time.perf_counter()
    result = evaluate_source_ranking(table, ["sourcerank"], n_observed=3, seeds=range(seeds))
    log(
        f"{name}: {result['n_targets'] - len(result['too_few_pairs'])} targets ranked x {seeds} "
        f"draws (seeds) in {time.perf_counter() - start:.0f} s"
    )
    for metric in ("spearman", "ndcg", "regret@3"):
        key = metric.replace("@", "_at_")
        emit(f"{name}_{key}", result["sourcerank"][metric])
        emit(f"{name}_{key}_prior", result["prior"][metric])
        versus = result["versus_prior"]["sourcerank"][metric]
        emit(f"{name}_{key}_diff_vs_prior", versus["diff"])
        emit(f"{name}_{key}_diff_vs_prior_se_over_targets", versus["se"])
        emit(f"{name}_{key}_diff_vs_prior_in_se", versus["diff"] / versus["se"])
        emit(f"{name}_{key}_targets_better_worse", f"{versus['better']}/{versus['worse']}")
    for who in ("sourcerank", "prior"):
        suffix = "" if who == "sourcerank" else "_prior"
        emit(
            f"{name}_spearman_sd_over_seeds{suffix}",
            result["spread"][who]["spearman"]["sd_over_seeds"],
        )
    if exhaustive:
        start = time.perf_counter()
        full = evaluate_source_ranking(table, ["sourcerank"], n_observed=3, exhaustive=True)
        log(
            f"{name}: every subset of 3 ({full['n_draws']} draws) in {time.perf_counter() - start:.0f} s"
        )
        for metric in ("spearman", "ndcg", "regret@3"):
            key = metric.replace("@", "_at_")
            emit(f"{name}_{key}_all_subsets", full["sourcerank"][metric])
            emit(f"{name}_{key}_all_subsets_prior", full["prior"][metric])
        versus = full["versus_prior"]["sourcerank"]["spearman"]
        emit(f"{name}_spearman_all_subsets_diff_vs_prior", versus["diff"])
        emit(f"{name}_spearman_all_subsets_diff_vs_prior_se_over_targets", versus["se"])
    if setfn_seeds:
        start = time.perf_counter()
        previous = evaluate_source_ranking(table, ["setfn"], n_observed=3, seeds=range(setfn_seeds))
        log(
            f"{name}: setfn on the first {setfn_seeds} draws in {time.perf_counter() - start:.0f} s"
        )
        emit(f"{name}_spearman_setfn", previous["setfn"]["spearman"])
        emit(f"{name}_spearman_setfn_prior_same_draws", previous["prior"]["spearman"])


ABLATION = {
    "popular-source prior (popular only)": {"features": ["popular"]},
    "popular_z only": {"features": ["popular_z"]},
    "popular_rank only": {"features": ["popular_rank"]},
    "profile_knn only": {"features": ["profile_knn"]},
    "eight + observed_gp": {"features": [*DEFAULT_FEATURES, "observed_gp"]},
    "eight + observed_transitive": {"features": [*DEFAULT_FEATURES, "observed_transitive"]},
    "all ten": {"features": list(FEATURES)},
    **{f"all eight, ridge {lam:g}": {"ridge_grid": [lam]} for lam in RIDGE_GRID},
    "all eight, ridge by LOTO (sourcerank)": {},
}


def ranking_ablation(name: str, seeds: int, exhaustive: bool) -> None:
    """Print validation (leave-one-target-out inside each fit) and test Spearman of sourcerank's variants."""
    table = convert(name)
    for label, options in ABLATION.items():
        start = time.perf_counter()
        chosen_cv: list[float] = []

        def collect(method: str, target: str, estimator: AffinityEstimator) -> None:
            cv = estimator.describe()["cv_spearman"]
            ridge = estimator.describe()["ridge"]
            chosen_cv.append(cv[str(ridge)] if ridge is not None else float("nan"))  # noqa: B023

        result = evaluate_source_ranking(
            table, ["sourcerank"], seeds=range(seeds), exhaustive=exhaustive,
            options={"sourcerank": options}, on_fit=collect,
        )  # fmt: skip
        slug = label.split(" (")[0].replace(" + ", "_plus_").replace(" ", "_").replace(",", "")
        emit(f"{name}_ablation_{slug}_val", float(np.nanmean(chosen_cv)))
        emit(f"{name}_ablation_{slug}_test", result["sourcerank"]["spearman"])
        log(
            f"{name} ablation {label!r}: prior {result['prior']['spearman']:.3f}, {time.perf_counter() - start:.0f} s"
        )


#: Task-metadata files (``benchmarks/metadata/``, derived by ``extract.py`` from the authors' repositories).
METADATA_FILES = {"taskweb": "taskweb2023_kim.json", "bingel": "bingel2017_eacl.json"}
CV_CHOICE = "cross-validated choice"
#: sourcerank's metadata candidates: scores added to the eight (those the table's metadata supports).
METADATA_ABLATION = {
    "the eight (default)": (),
    "eight + similarity": ("text_similarity", "feature_similarity"),
    "eight + knn": ("text_knn", "feature_knn"),
    "eight + similarity + knn": (
        "text_similarity",
        "text_knn",
        "feature_similarity",
        "feature_knn",
    ),
    "eight + source features": ("source:*",),
    "eight + all": ("text_similarity", "text_knn", "feature_similarity", "feature_knn", "source:*"),
    # Not a fixed list: each fit keeps the eight or adds the file's scores as its own
    # cross-validation prefers (``metadata_alternatives``; what ``bench --task-metadata`` does).
    CV_CHOICE: (),
}


def metadata_options(name: str) -> dict[str, object]:
    """Return ``sourcerank``'s options for table ``name``'s metadata file, as ``taskgraph bench --task-metadata`` builds them.

    ``task_embeddings`` / ``task_features`` and, under ``alternatives``, the feature lists each
    fit may choose among (the cross-validated choice).
    """
    from taskgraph.app.bench import metadata_options as bench_options

    path = Path(__file__).resolve().parent / "metadata" / METADATA_FILES[name]
    options, _ = bench_options("sourcerank", path)
    return options


def metadata_features(scores: Sequence[str], options: dict[str, object]) -> list[str]:
    """Return the eight plus those of ``scores`` that ``options``' metadata supports (``source:*``: every numeric feature)."""
    texts, numeric = "task_embeddings" in options, options.get("task_features")
    out = list(DEFAULT_FEATURES)
    for score in scores:
        if (score.startswith("text_") and texts) or (score.startswith("feature_") and numeric):
            out.append(score)
        elif score == "source:*" and isinstance(numeric, dict):
            out.extend(f"source:{n}" for n in sorted({k for v in numeric.values() for k in v}))
    return out


def ranking_metadata(name: str, seeds: int, exhaustive: bool, only: Sequence[str] = ()) -> None:
    """Print validation (leave-one-target-out inside each fit) and test Spearman of sourcerank with task metadata."""
    table = convert(name)
    options = metadata_options(name)
    alternatives = options.pop("alternatives")
    seen: set[tuple[str, ...]] = set()
    for label, scores in METADATA_ABLATION.items():
        if only and label not in only:
            continue
        features = metadata_features(scores, options)
        extra: dict[str, object] = {}
        if label == CV_CHOICE:
            extra["alternatives"] = alternatives
        elif tuple(features) in seen:  # nothing in the metadata for these scores: a row above
            log(f"{name} metadata {label!r}: nothing in the metadata for {scores}, skipped")
            continue
        seen.add(tuple(features))
        start = time.perf_counter()
        chosen_cv: list[float] = []
        kept: list[bool] = []

        def collect(method: str, target: str, estimator: AffinityEstimator) -> None:
            described = estimator.describe()
            ridge = described["ridge"]
            cv = described["cv_spearman"][str(ridge)] if ridge is not None else float("nan")
            chosen_cv.append(cv)  # noqa: B023
            kept.append(bool(described["metadata_scores"]))  # noqa: B023

        result = evaluate_source_ranking(
            table, ["sourcerank"], seeds=range(seeds), exhaustive=exhaustive,
            options={"sourcerank": {**options, "features": features, **extra}}, on_fit=collect,
        )  # fmt: skip
        slug = label.split(" (")[0].replace(" + ", "_plus_").replace(" ", "_").replace("-", "_")
        if label == CV_CHOICE:
            emit(f"{name}_metadata_{slug}_fits_with_metadata", f"{sum(kept)}/{len(kept)}")
        versus = result["versus_prior"]["sourcerank"]["spearman"]
        emit(f"{name}_metadata_{slug}_val", float(np.nanmean(chosen_cv)))
        emit(f"{name}_metadata_{slug}_test", result["sourcerank"]["spearman"])
        emit(f"{name}_metadata_{slug}_test_prior", result["prior"]["spearman"])
        emit(f"{name}_metadata_{slug}_test_diff_vs_prior", versus["diff"])
        emit(f"{name}_metadata_{slug}_test_diff_vs_prior_se_over_targets", versus["se"])
        emit(
            f"{name}_metadata_{slug}_targets_better_worse", f"{versus['better']}/{versus['worse']}"
        )
        log(
            f"{name} metadata {label!r}: {len(features)} scores, {time.perf_counter() - start:.0f} s"
        )


#: Feature lists of the ceiling section: the eight, all ten, and the eight with each table's
#: text-knn score (TaskWeb; Bingel has no texts).  Source-identifying scores are left out: fitted
#: on the scored targets' own hidden gains they would memorise them (a per-source intercept).
CEILING_FEATURES = {
    "eight": list(DEFAULT_FEATURES),
    "ten": list(FEATURES),
    "eight_text_knn": [*DEFAULT_FEATURES, "text_knn"],
}


def ranking_ceiling(name: str) -> None:
    """Print how well linear weightings of sourcerank's scores can rank the hidden sources at best.

    ``shared``: one weight vector fitted by least squares on every target's draws (the hidden
    gains the benchmark scores included), which a fitted ``sourcerank`` (never shown those
    gains) is not expected to beat; ``per_target``: each target its own weights fitted on its own hidden gains (an
    upper bound no method without those gains reaches).  Mean per-target Spearman over the draws.
    """
    table = convert(name)
    options = metadata_options(name)
    options.pop("alternatives")
    records = table.to_records(split="val")
    for label, features in CEILING_FEATURES.items():
        if "text_knn" in features and "task_embeddings" not in options:
            continue
        estimator = SourceRankEstimator(features=features, **options).fit(records)
        examples = estimator.training_examples()
        xs = np.concatenate([x.reshape(-1, x.shape[-1]) for x, _ in examples.values()])
        ys = np.concatenate([y.ravel() for _, y in examples.values()])
        shared = np.linalg.lstsq(xs, ys, rcond=None)[0]
        per_shared, per_own = [], []
        for x, y in examples.values():
            own = np.linalg.lstsq(x.reshape(-1, x.shape[-1]), y.ravel(), rcond=None)[0]
            per_shared.append(_mean_row_spearman(x @ shared, y))
            per_own.append(_mean_row_spearman(x @ own, y))
        emit(f"{name}_ceiling_{label}_shared_linear", float(np.mean(per_shared)))
        emit(f"{name}_ceiling_{label}_per_target_linear", float(np.mean(per_own)))
        log(f"{name} ceiling {label!r}: {len(examples)} targets, {len(xs)} (draw, source) examples")


def _mean_row_spearman(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Return the mean over rows (draws) of Spearman's rho between ``predicted`` and ``truth``."""
    rhos = [spearmanr(p, t)[0] for p, t in zip(predicted, truth, strict=True)]
    return float(np.nanmean(rhos))


#: Search tables: name -> (seeds, GP seeds, GP targets); the trial caps are
#: ``SEARCH_TRIAL_CAPS``.  GP refits a Gaussian process per trial (about a second each on this
#: shared machine), so it runs on fewer seeds (and on MIMIC's and TaskWeb's first targets only).
SEARCH_TABLES = {
    "ettm1": (20, 1, None),
    "taskonomy5": (20, 2, None),
    "mimic27": (10, 1, 5),
    "taskweb": (20, 1, 5),
    "bingel": (20, 2, None),
}


def search(quick: bool, first_seed: int = 0, tables: Sequence[str] = tuple(SEARCH_TABLES)) -> None:
    """Trials and distinct sets until each target's best set is proposed, every sampler."""
    try:  # GP's torch: one thread per process on a shared machine
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    for name in tables:
        table = convert(name)
        cap = SEARCH_TRIAL_CAPS[name]
        seeds, gp_seeds, gp_targets = SEARCH_TABLES[name]
        seeds = 2 if quick else seeds
        bounds = {search_max_size(table, t) for t in table.targets}
        log(f"search {name}: {len(table.targets)} targets, max_size {bounds}, cap {cap} trials")
        summary: dict[str, float] = {}
        all_runs: list[SearchRun] = []
        for sampler in BENCH_SAMPLERS:
            start = time.perf_counter()
            n = min(gp_seeds, seeds) if sampler == "gp" else seeds
            targets = table.targets[:gp_targets] if sampler == "gp" else table.targets
            runs = search_efficiency(
                table, samplers=[sampler], seeds=range(first_seed, first_seed + n),
                targets=targets, max_trials=cap,
            )  # fmt: skip
            summary.update(summarize_runs(runs))
            all_runs += runs
            log(f"search {name} {sampler}: {n} seeds x {len(targets)} targets, "
                f"mean trials {np.mean([r.trials for r in runs]):.1f}, "
                f"{sum(not r.found for r in runs)} never found, {time.perf_counter() - start:.0f} s")  # fmt: skip
        rng = np.random.default_rng(0)
        for sampler in BENCH_SAMPLERS:
            emit(f"{name}_trials_to_best_{sampler}", summary[f"trials_to_best_{sampler}"])
            per_target = [list(t.values()) for t in runs_by_target(all_runs, sampler).values()]
            low, high = median_interval(per_target, rng=rng)
            emit(f"{name}_trials_to_best_{sampler}_lo90", low)
            emit(f"{name}_trials_to_best_{sampler}_hi90", high)
            emit(f"{name}_distinct_to_best_{sampler}", summary[f"distinct_to_best_{sampler}"])
        for baseline in BENCH_SAMPLERS[1:]:
            emit(
                f"{name}_trials_to_best_ratio_graph_vs_{baseline}",
                ratio(summary["trials_to_best_graph"], summary[f"trials_to_best_{baseline}"]),
            )
            paired = paired_trials(all_runs, "graph", baseline)
            if paired is not None:  # GP runs on fewer seeds and targets: paired where both ran
                log(f"search {name} graph - {baseline}: {paired.text()}")
                emit(f"{name}_trials_paired_graph_vs_{baseline}", paired.mean)
                emit(f"{name}_trials_paired_graph_vs_{baseline}_se", paired.se)


def main(argv: Sequence[str] | None = None) -> None:
    parser = ScriptParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="fewer seeds (a smoke run, not the reported numbers)"
    )
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections of {SECTIONS + EXTRA_SECTIONS}",
    )
    parser.add_argument(
        "--first-seed",
        type=nonnegative_int,
        default=None,
        help="first sampler seed of the search section (default 0)",
    )
    parser.add_argument(
        "--search-tables",
        default=None,
        help=f"comma-separated tables of the search section, of {tuple(SEARCH_TABLES)} (default all)",
    )
    parser.add_argument(
        "--candidates",
        default="",
        help=f"ranking_metadata: comma-separated candidates of {tuple(METADATA_ABLATION)} (default all)",
    )
    args = parser.parse_args(argv)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    if not only:  # nothing would run, and an exit of 0 would say it all went well
        parser.error(f"--only names no section; known: {', '.join(SECTIONS + EXTRA_SECTIONS)}")
    unknown = only - set(SECTIONS) - set(EXTRA_SECTIONS)
    if unknown:
        parser.error(
            f"unknown sections {sorted(unknown)}; known: {', '.join(SECTIONS + EXTRA_SECTIONS)}"
        )
    candidates = [c.strip() for c in args.candidates.split(",") if c.strip()]
    tables = list(SEARCH_TABLES)
    if args.search_tables is not None:
        if "search" not in only:
            parser.error("--search-tables is an option of --only search")
        tables = [t.strip() for t in args.search_tables.split(",") if t.strip()]
        if not tables:
            parser.error(f"--search-tables names no table; known: {', '.join(SEARCH_TABLES)}")
    if args.first_seed is not None and "search" not in only:
        parser.error("--first-seed is an option of --only search")
    # Checked now, not when the section comes after the others (minutes later).
    unknown_candidates = sorted(set(candidates) - set(METADATA_ABLATION))
    if unknown_candidates:
        parser.error(
            f"--candidates: unknown {unknown_candidates}; known: {', '.join(METADATA_ABLATION)}"
        )
    if candidates and "ranking_metadata" not in only:
        parser.error("--candidates is an option of --only ranking_metadata")
    unknown_tables = sorted(set(tables) - set(SEARCH_TABLES))
    if unknown_tables:
        parser.error(
            f"--search-tables: unknown {unknown_tables}; known: {', '.join(SEARCH_TABLES)}"
        )
    quick = args.quick
    if "mimic27" in only:
        gain_prediction("mimic27", seeds=1 if quick else 5)
    if "ettm1" in only:
        gain_prediction("ettm1", seeds=3 if quick else 20)
    if "standley" in only:
        standley([5] if quick else [1, 2, 3, 4, 5])
    if "taskweb" in only:
        source_ranking(
            "taskweb", seeds=2 if quick else 20, setfn_seeds=1 if quick else 5, exhaustive=False
        )
    if "bingel" in only:
        source_ranking(
            "bingel", seeds=3 if quick else 20, setfn_seeds=3 if quick else 20, exhaustive=not quick
        )
    if "ranking_ablation" in only:
        ranking_ablation("bingel", seeds=3 if quick else 20, exhaustive=not quick)
        ranking_ablation("taskweb", seeds=2 if quick else 5, exhaustive=False)
    if "ranking_metadata" in only:
        ranking_metadata("bingel", seeds=3 if quick else 20, exhaustive=not quick, only=candidates)
        ranking_metadata("taskweb", seeds=2 if quick else 10, exhaustive=False, only=candidates)
    if "ranking_ceiling" in only:
        ranking_ceiling("bingel")
        ranking_ceiling("taskweb")
    if "gain_levels" in only:
        # eb_loo refits once per target: 27 fits of about 30 s per MIMIC-27 seed, so ETTm1 only
        gain_levels("mimic27", seeds=1 if quick else 5, refit_per_target=False)
        gain_levels("ettm1", seeds=3 if quick else 20)
    if "pooling_aside" in only:
        pooling_aside(seeds=3 if quick else 20)
    if "search" in only:
        search(quick, first_seed=args.first_seed or 0, tables=tables)


if __name__ == "__main__":
    raise SystemExit(run_script(main))
