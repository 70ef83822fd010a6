"""Grouping: the scored total of the grouping chosen under a budget from few measured task sets.

:func:`evaluate_grouping` measures task sets by a fixed design (Standley's pairs, triples) or
adaptively (Thompson sampling), or all of them (the optimum).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from taskgraph.affinity.estimators.base import AffinityEstimator
from taskgraph.affinity.evaluation._tables import _build, _score_split
from taskgraph.affinity.grouping import (
    candidate_task_sets,
    predicted_network_scores,
    select_networks,
)
from taskgraph.affinity.longtable import LongTable
from taskgraph.affinity.records import ScoreRecord
from taskgraph.errors import ConfigError


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
    ``optimum`` measures everything (the reference, ignoring ``max_evaluations``).  A
    ``max_evaluations`` below what a design measures first (the singles; adaptive, also the
    all-task set) raises :class:`ConfigError`.
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
    # Every design measures each single (the baselines) first; adaptive the all-task set too.
    initial = len(tasks) + (1 if strategy == "adaptive" and len(tasks) > 1 else 0)
    if strategy != "optimum" and max_evaluations < initial:
        raise ConfigError(
            f"`max_evaluations` {max_evaluations} is below the {initial} task sets the "
            f"{strategy} design measures first (the {len(tasks)} singles"
            + (" and the all-task set)" if strategy == "adaptive" else ")")
        )
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
        # as predicted_network_scores turns a gain into a score: relative or absolute
        relative = estimator.gain_kind == "relative"
        open_sets = [n for n in networks if n not in measured]
        queries = [(t, n) for n in open_sets for t in sorted(n)]
        pick: frozenset[str] | None = None
        for draw in estimator.sample_gains(queries, rng, n_samples=8):
            sampled = {n: dict(val[n]) for n in measured}
            for (t, n), gain in zip(queries, draw, strict=True):
                sign = 1.0 if hib[t] else -1.0
                scale = abs(baselines[t]) if relative else 1.0
                sampled.setdefault(n, {})[t] = baselines[t] + sign * gain * scale
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
