"""``taskgraph bench``: measure the affinity estimators and samplers on a published table.

Two measurements on any table in the long CSV format (:mod:`taskgraph.affinity.longtable`):

* gain prediction: Spearman between predicted and true per-task gains on groups of size >= 3,
  fitted on the validation rows of every single and pair plus ``--fit-fraction`` of the
  larger groups (seeded), scored on the test rows (``spearman`` beside ``spearman_hoa``);
* search efficiency: trials until each target's best auxiliary set (best validation value)
  is proposed, driving the tabular runner through ``optuna`` ask/tell with the ``aux/<task>``
  encoding: the graph-guided sampler against Optuna's TPE and random sampling (medians over
  seeds and targets; a run that never finds it counts as ``max_trials``).

Values are bounded by :data:`MAX_BENCH_VALUE` in magnitude: gains are differences and the
estimators fit squared errors, so values near the float range (``1e308``) overflow to
``inf``/``nan`` and the Spearman would be ``nan``; such a table, and a run where no seed gives
a finite Spearman, is one ``error:`` line and a non-zero exit.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import optuna
import typer

from taskgraph.affinity.evaluation import evaluate_gain_prediction
from taskgraph.affinity.longtable import LongTable, read_long_csv
from taskgraph.cli.output import emit_json, stderr_console
from taskgraph.errors import ConfigError, DataFormatError
from taskgraph.runners.tabular import TabularEvaluator
from taskgraph.search.graph_sampler import GraphGuidedSampler
from taskgraph.trial import TrialConfig, TrialStatus

__all__ = ["MAX_BENCH_VALUE", "SAMPLER_FACTORIES", "bench", "search_candidates", "trials_to_best"]

#: Largest magnitude of a table value: squares of differences of such values stay finite.
MAX_BENCH_VALUE = 1e100

SamplerFactory = Callable[[str, Sequence[str], int], optuna.samplers.BaseSampler]

#: The samplers compared by ``trials_to_best``: (target, candidates, seed) -> sampler.
SAMPLER_FACTORIES: dict[str, SamplerFactory] = {
    "graph": lambda target, candidates, seed: GraphGuidedSampler(
        target=target, candidates=candidates, seed=seed
    ),
    "tpe": lambda target, candidates, seed: optuna.samplers.TPESampler(
        seed=seed, multivariate=True
    ),
    "random": lambda target, candidates, seed: optuna.samplers.RandomSampler(seed=seed),
}


def search_candidates(table: LongTable, target: str, *, split: str = "val") -> list[str]:
    """Return the tasks that appear with ``target`` in its rows on ``split``, sorted."""
    return sorted({t for s in table.task_sets(target, split=split) for t in s} - {target})


def trials_to_best(
    table: LongTable,
    target: str,
    sampler: optuna.samplers.BaseSampler,
    *,
    split: str = "val",
    max_trials: int = 300,
) -> int:
    """Return the number of trials ``sampler`` needs to propose ``target``'s best auxiliary set.

    The best set has the best ``split`` value among the target's rows (ties: any of them).
    Returns ``max_trials`` when it is never proposed.
    """
    rows = [r for r in table if r.target == target and r.split == split]
    if not rows:
        raise ConfigError(f"table {table.source!r} has no {split!r} rows for target {target!r}")
    higher = rows[0].higher_is_better
    best_value = max(r.value for r in rows) if higher else min(r.value for r in rows)
    best_sets = {r.auxiliaries for r in rows if r.value == best_value}
    candidates = search_candidates(table, target, split=split)
    evaluator = TabularEvaluator(table, split=split)
    study = optuna.create_study(direction="maximize" if higher else "minimize", sampler=sampler)
    for number in range(1, max_trials + 1):
        trial = study.ask()
        auxiliaries = tuple(
            t for t in candidates if trial.suggest_categorical(f"aux/{t}", [False, True])
        )
        if frozenset(auxiliaries) in best_sets:
            return number
        result = evaluator.evaluate(TrialConfig(target=target, auxiliaries=auxiliaries))
        if result.status is TrialStatus.COMPLETE and result.objective is not None:
            study.tell(trial, result.objective)
        else:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
    return max_trials


def _search_efficiency(
    table: LongTable, *, seeds: int, samplers: Sequence[str], max_trials: int, progress: Any
) -> dict[str, float]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    targets = table.targets
    counts: dict[str, list[int]] = {name: [] for name in samplers}
    task = progress.add_task("search efficiency", total=len(samplers) * len(targets) * seeds)
    for name in samplers:
        for target in targets:
            candidates = search_candidates(table, target)
            for seed in range(seeds):
                sampler = SAMPLER_FACTORIES[name](target, candidates, seed)
                counts[name].append(trials_to_best(table, target, sampler, max_trials=max_trials))
                progress.advance(task)
    return {name: float(statistics.median(values)) for name, values in counts.items()}


def bench(
    table: Annotated[
        Path,
        typer.Option(
            "--table",
            help="Results table in the long CSV format (target,task_set,split,value,higher_is_better).",
        ),
    ],
    fit_fraction: Annotated[
        float,
        typer.Option(
            "--fit-fraction",
            help="Fraction of groups larger than pairs the estimators may see (besides all singles and pairs).",
        ),
    ] = 0.1,
    seeds: Annotated[
        int,
        typer.Option(
            "--seeds",
            help="Seeds: fit splits for the Spearman, sampler seeds per target for the search (medians need about 20).",
        ),
    ] = 20,
    method: Annotated[
        str, typer.Option("--method", help="Estimator measured against HOA.")
    ] = "setfn",
    max_trials: Annotated[
        int,
        typer.Option(
            "--max-trials", help="Trials per search before giving up (counted as this many)."
        ),
    ] = 300,
    search: Annotated[
        bool,
        typer.Option(
            "--search/--no-search", help="Also measure search efficiency (trials to the best set)."
        ),
    ] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of name: value lines.")
    ] = False,
) -> None:
    """Benchmark the affinity estimators and samplers on a long-format results table."""
    from rich.progress import Progress

    if seeds < 1:
        raise ConfigError(f"`--seeds` must be >= 1, but got {seeds}")
    if max_trials < 1:  # 0 would report every sampler as finding the best set at once
        raise ConfigError(f"`--max-trials` must be >= 1, but got {max_trials}")
    if not 0.0 <= fit_fraction <= 1.0:
        raise ConfigError(f"`--fit-fraction` must be in [0, 1], but got {fit_fraction}")
    data = read_long_csv(table)
    _check_magnitudes(data, table)
    results: dict[str, Any] = {}
    with Progress(console=stderr_console, transient=True) as progress:
        task = progress.add_task("gain prediction", total=seeds)
        per_seed: dict[str, list[float]] = {method: [], "hoa": []}
        scored_on = "test"
        for seed in range(seeds):
            outcome = evaluate_gain_prediction(
                data, [method, "hoa"], fit_fraction=fit_fraction, seed=seed
            )
            scored_on = outcome["scored_on"]
            for name in per_seed:
                per_seed[name].append(outcome[name]["spearman"])
            progress.advance(task)
    results["spearman"] = _mean(per_seed[method])
    results["spearman_hoa"] = _mean(per_seed["hoa"])
    for name, key in ((method, "spearman"), ("hoa", "spearman_hoa")):
        if math.isnan(results[key]):
            raise ConfigError(
                f"`{key}` is undefined: no seed of {seeds} gave {name} a finite Spearman "
                f"correlation on {table} (its predicted or the true gains are constant on "
                "every scored group)"
            )
    results["scored_on"] = scored_on
    with Progress(console=stderr_console, transient=True) as progress:
        if search:
            efficiency = _search_efficiency(
                data,
                seeds=seeds,
                samplers=("graph", "tpe", "random"),
                max_trials=max_trials,
                progress=progress,
            )
            for name, value in efficiency.items():
                results[f"trials_to_best_{name}"] = value
    if as_json:
        emit_json(results)
        return
    for name, value in results.items():
        typer.echo(f"{name}: {value:.4f}" if isinstance(value, float) else f"{name}: {value}")


def _check_magnitudes(table: LongTable, path: Path) -> None:
    for row in table:
        if abs(row.value) > MAX_BENCH_VALUE:
            raise DataFormatError(
                path,
                None,
                f"values of magnitude at most {MAX_BENCH_VALUE:g} (larger ones overflow the "
                "gains and the estimators' fits; rescale the table)",
                f"{row.value:g} for target {row.target!r}, task set {row.task_set_key}, "
                f"split {row.split}",
            )


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan
