"""`taskgraph bench`'s gain-prediction section and the notes its sections print
(:func:`~taskgraph.search.bench_report.run_bench` composes them).

Gain prediction run over the seeds that leave enough gains to score, and the texts the
sections explain themselves with: why gain prediction was skipped, how many folds the pair
gains cut, and why a Spearman or its standard error is undefined.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from taskgraph.affinity.evaluation import MIN_RANKED
from taskgraph.affinity.longtable import LongTable
from taskgraph.errors import ConfigError, option_name
from taskgraph.vocabulary import first_names

if TYPE_CHECKING:
    from taskgraph.search.bench_report import BenchReport


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
