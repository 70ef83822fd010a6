"""Benchmarks: the estimators and samplers measured on a published results table.

:func:`bench` returns what ``taskgraph bench --json`` prints.  The ask/tell search loop and the
sampler factories still live in :mod:`taskgraph.cli.bench` (issue 16 moves them into a
library module); until then this module imports them from there, the one upward import the
layering test lists as a known violation.
"""

from __future__ import annotations

import math
import os
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from taskgraph.errors import ConfigError

__all__ = ["bench"]


def bench(
    table: str | os.PathLike[str],
    *,
    fit_fraction: float = 0.1,
    seeds: int = 20,
    method: str = "setfn",
    max_trials: int = 300,
    search: bool = True,
    samplers: tuple[str, ...] = ("graph", "tpe", "random"),
) -> dict[str, Any]:
    """Measure ``method`` against HOA (Spearman of predicted vs true gains) and the samplers.

    Returns ``spearman``, ``spearman_hoa`` (means over ``seeds`` fit splits), ``scored_on``
    and, with ``search``, ``trials_to_best_<sampler>`` (medians over seeds and targets of the
    trials until each target's best auxiliary set is proposed; ``max_trials`` when never).
    Raises :class:`~taskgraph.errors.ConfigError` for bad arguments or an undefined Spearman,
    :class:`~taskgraph.errors.DataFormatError` for a bad table.
    """
    import optuna

    from taskgraph.affinity.evaluation import evaluate_gain_prediction
    from taskgraph.affinity.longtable import read_long_csv
    from taskgraph.cli.bench import (
        SAMPLER_FACTORIES,
        _check_magnitudes,
        search_candidates,
        trials_to_best,
    )

    if seeds < 1:
        raise ConfigError(f"`--seeds` must be >= 1, but got {seeds}")
    if max_trials < 1:
        raise ConfigError(f"`--max-trials` must be >= 1, but got {max_trials}")
    if not 0.0 <= fit_fraction <= 1.0:
        raise ConfigError(f"`--fit-fraction` must be in [0, 1], but got {fit_fraction}")
    path = Path(table)
    data = read_long_csv(path)
    _check_magnitudes(data, path)
    per_seed: dict[str, list[float]] = {method: [], "hoa": []}
    scored_on = "test"
    for seed in range(seeds):
        outcome = evaluate_gain_prediction(
            data, [method, "hoa"], fit_fraction=fit_fraction, seed=seed
        )
        scored_on = outcome["scored_on"]
        for name in per_seed:
            per_seed[name].append(outcome[name]["spearman"])
    results: dict[str, Any] = {
        "spearman": _mean(per_seed[method]),
        "spearman_hoa": _mean(per_seed["hoa"]),
    }
    for name, key in ((method, "spearman"), ("hoa", "spearman_hoa")):
        if math.isnan(results[key]):
            raise ConfigError(
                f"`{key}` is undefined: no seed of {seeds} gave {name} a finite Spearman "
                f"correlation on {table} (its predicted or the true gains are constant on "
                "every scored group)"
            )
    results["scored_on"] = scored_on
    if search:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        for name in samplers:
            counts = [
                trials_to_best(
                    data,
                    target,
                    SAMPLER_FACTORIES[name](target, search_candidates(data, target), seed),
                    max_trials=max_trials,
                )
                for target in data.targets
                for seed in range(seeds)
            ]
            results[f"trials_to_best_{name}"] = float(statistics.median(counts))
    return results


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan
