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

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna

from taskgraph.affinity.longtable import LongTable
from taskgraph.affinity.records import ScoreRecord
from taskgraph.errors import ConfigError
from taskgraph.search.heartbeat import quiet_optuna
from taskgraph.search.samplers import SAMPLERS, build_sampler
from taskgraph.search.space import SearchSpace
from taskgraph.spec.loading import spec_from_dict
from taskgraph.spec.models import StudySpec

__all__ = [
    "BENCH_SAMPLERS",
    "SearchRun",
    "benchmark_spec",
    "run_search",
    "search_candidates",
    "search_efficiency",
    "search_max_size",
    "summarize_runs",
]

#: What :func:`search_efficiency` compares by default: ``graph`` starts from the other targets'
#: rows (earlier studies in the same domain), ``graph_cold`` from nothing.
BENCH_SAMPLERS = ("graph", "graph_cold", "tpe", "gp", "random", "bandit")


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


def search_max_size(table: LongTable, target: str, *, split: str = "val") -> int | None:
    """Return the largest auxiliary set the table lets a search of ``target`` propose.

    ``None`` (no bound) when every subset of the candidates has a row; 1 when not (only
    single auxiliaries are searched, so every proposal has an answer); ``None`` again when
    not even the singles are there (proposals without a row fail).
    """
    candidates = search_candidates(table, target, split=split)
    answered = {s - {target} for s in table.task_sets(target, split=split)}
    if len(answered) >= 2 ** len(candidates):
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
    """Return the study spec of one benchmark search (tabular runner, the sampler by name)."""
    rows = [r for r in table if r.target == target and r.split == split]
    if not rows:
        raise ConfigError(f"table {table.source!r} has no {split!r} rows for target {target!r}")
    name = "graph" if sampler == "graph_cold" else sampler
    if name not in SAMPLERS:
        raise ConfigError(f"unknown sampler {sampler!r}; known: {', '.join(SAMPLERS.names())}")
    return spec_from_dict(
        {
            "name": f"bench-{target}",
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
    with quiet_optuna():
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
    target.  ``graph`` gets the other targets' ``split`` rows as records of earlier studies;
    ``graph_cold`` and the rest get none.
    """
    runs: list[SearchRun] = []
    records = table.to_records(split=split)
    for name in samplers:
        for target in targets if targets is not None else table.targets:
            bound = max_size if max_size is not None else search_max_size(table, target, split=split)
            prior = [r for r in records if r.task != target] if name == "graph" else None
            for seed in seeds:
                run = run_search(
                    table, target, name, seed=seed, split=split, max_trials=max_trials,
                    max_size=bound, prior_records=prior,
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


def ratio(numerator: float, denominator: float) -> float:
    """Return ``numerator / denominator`` (NaN for a zero denominator)."""
    return numerator / denominator if denominator else math.nan
