"""The helpers the search benchmarks share: a target's best single source, the start-up order, and
the spread and paired differences of trials to the best set."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from taskgraph.affinity.longtable import LongRow, LongTable
from taskgraph.errors import ConfigError
from taskgraph.search import benchmarking
from taskgraph.search.benchmarking import (
    SearchRun,
    best_single,
    median_interval,
    paired_trials,
    popular_order,
    run_search,
    runs_by_target,
    search_efficiency,
)
from taskgraph.search.samplers import SAMPLERS
from taskgraph.search.space import AUX_PARAM_PREFIX, SUBSET_ATTR


def _table(higher_is_better: bool) -> LongTable:
    values = {
        "a": {"b": 1.3, "c": 1.1, "d": 0.7},
        "b": {"a": 1.0, "c": 1.5, "d": 1.2},
        "c": {"a": 1.2, "b": 0.9, "d": 1.4},
    }
    rows = []
    for target, gains in values.items():
        rows.append(LongRow(target, frozenset({target}), "val", 1.0, higher_is_better))
        rows += [
            LongRow(target, frozenset({target, s}), "val", v, higher_is_better)
            for s, v in gains.items()
        ]
    rows.append(LongRow("a", frozenset({"a", "b", "c"}), "val", 9.0, higher_is_better))
    return LongTable(rows=rows, source="toy")


def test_best_single_follows_the_metric_direction_and_ignores_larger_sets() -> None:
    assert best_single(_table(True), "a") == "b"
    assert best_single(_table(False), "a") == "d"
    with pytest.raises(ConfigError, match=r"no single-auxiliary row of target 'd' on 'val'"):
        best_single(_table(True), "d")


def test_popular_order_ranks_by_the_other_targets_gains() -> None:
    table = _table(True)
    order, prior = popular_order(table, "a", table.to_records(split="val"))
    # Over b and c: d helps both (+0.2, +0.4), c helps b (+0.5), b hurts c (-0.1).
    assert order == ["c", "d", "b"]
    assert prior["c"] > prior["d"] > prior["b"]


def _runs(sampler: str, trials: dict[str, list[int]]) -> list[SearchRun]:
    return [
        SearchRun(sampler, target, seed, n, n, True)
        for target, per_seed in trials.items()
        for seed, n in enumerate(per_seed)
    ]


def test_paired_trials_pairs_by_target_and_seed_and_takes_the_error_over_targets() -> None:
    runs = _runs("graph", {"a": [4, 6], "b": [10, 10], "c": [3, 3]})
    runs += _runs("tpe", {"a": [8, 8], "b": [10, 12, 99], "d": [1]})  # b's seed 2 and d: unpaired
    paired = paired_trials(runs, "graph", "tpe")
    assert paired is not None
    # Per target: a (4-8 + 6-8)/2 = -3, b (0 - 2)/2 = -1; c and d have no common run.
    assert (paired.mean, paired.targets) == (-2.0, 2)
    assert paired.se == pytest.approx(math.sqrt(2.0) / math.sqrt(2.0))  # stdev(-3, -1) / sqrt 2
    assert (paired.better, paired.equal, paired.worse) == (2, 0, 0)
    assert paired.text() == "-2.0 ± 1.0 trials over 2 targets (2 better, 0 equal, 0 worse)"
    assert paired_trials(runs, "graph", "random") is None
    one = paired_trials(_runs("x", {"a": [5]}) + _runs("y", {"a": [5]}), "x", "y")
    assert one is not None and math.isnan(one.se) and one.text().startswith("+0.0 trials over 1")


def test_median_interval_resamples_targets_and_covers_the_median() -> None:
    rng = np.random.default_rng(0)
    # Every run of a target is equal: resampling runs changes nothing, resampling targets does.
    per_target = [[2] * 5, [4] * 5, [30] * 5]
    low, high = median_interval(per_target, rng=rng, resamples=500)
    assert low == 2.0 and high == 30.0
    assert median_interval([[7, 7], [7]], rng=rng, resamples=50) == (7.0, 7.0)
    assert all(math.isnan(v) for v in median_interval([], rng=rng))
    assert runs_by_target(_runs("g", {"a": [3, 4]}) + _runs("h", {"a": [9]}), "g") == {
        "a": {0: 3, 1: 4}
    }


class _Scripted(optuna.samplers.BaseSampler):
    """Proposes the next set of a script for each trial it samples (the baseline is enqueued)."""

    def __init__(self, log: _Log) -> None:
        self.log = log

    def infer_relative_search_space(self, study: Any, trial: Any) -> dict[str, Any]:
        return {}

    def sample_relative(self, study: Any, trial: Any, search_space: Any) -> dict[str, Any]:
        return {}

    def sample_independent(self, study: Any, trial: Any, name: str, distribution: Any) -> Any:
        if name.startswith(AUX_PARAM_PREFIX):
            proposals = self.log.proposals
            if trial.number not in proposals:
                proposals[trial.number] = self.log.script[len(proposals)]
            return name[len(AUX_PARAM_PREFIX) :] in proposals[trial.number]
        return distribution.choices[0]

    def before_trial(self, study: Any, trial: Any) -> None:
        self.log.asks.append(trial.number)

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        self.log.told.append((tuple(trial.user_attrs[SUBSET_ATTR]), state, values))


@dataclass
class _Log:
    script: list[set[str]]
    proposals: dict[int, set[str]] = field(default_factory=dict)
    asks: list[int] = field(default_factory=list)
    told: list[tuple[tuple[str, ...], TrialState, Any]] = field(default_factory=list)


@pytest.fixture
def scripted() -> Iterator[Callable[..., _Log]]:
    """Register ``scripted``, a sampler proposing the sets given, in order."""
    logs: list[_Log] = []

    def factory(spec: Any, *, prior_records: Any = None) -> optuna.samplers.BaseSampler:
        return _Scripted(logs[-1])

    def script(*sets: set[str]) -> _Log:
        logs.append(_Log(script=list(sets)))
        return logs[-1]

    SAMPLERS.register("scripted", factory)
    try:
        yield script
    finally:
        SAMPLERS.unregister("scripted")


def _search_table() -> LongTable:
    """Target t over a, b, c, d (higher is better): {a, b} is best, b the best single; no {d}."""
    values = {(): 1.0, ("a",): 1.1, ("b",): 1.4, ("c",): 1.2, ("a", "b"): 2.0, ("a", "c"): 1.3}
    rows = [LongRow("t", frozenset({"t", *s}), "val", v, True) for s, v in values.items()]
    rows.append(LongRow("t", frozenset({"t", "a", "b", "c", "d"}), "val", 0.5, True))
    return LongTable(rows=rows, source="search")


def test_trials_count_every_ask_and_distinct_the_sets(scripted: Callable[..., _Log]) -> None:
    log = scripted({"a"}, {"a"}, {"a", "b"})
    run = run_search(_search_table(), "t", "scripted", seed=0, max_trials=10)
    # The baseline (enqueued first), a, a again, then the best set.
    assert (run.trials, run.distinct, run.found) == (4, 3, True)
    assert [aux for aux, _, _ in log.told] == [(), ("a",), ("a",)]
    assert log.asks == [0, 1, 2, 3]


def test_a_run_past_the_cap_counts_the_cap(scripted: Callable[..., _Log]) -> None:
    log = scripted({"a"}, {"c"}, {"a", "b"})
    run = run_search(_search_table(), "t", "scripted", seed=0, max_trials=3)
    assert (run.trials, run.distinct, run.found) == (3, 3, False)
    assert log.asks == [0, 1, 2]


def test_a_set_without_a_row_fails_and_rows_give_their_values(
    scripted: Callable[..., _Log],
) -> None:
    log = scripted({"d"}, {"c"}, {"a", "b"})
    run = run_search(_search_table(), "t", "scripted", seed=0, max_trials=10)
    assert (run.trials, run.found) == (4, True)
    assert log.told == [
        ((), TrialState.COMPLETE, [1.0]),
        (("d",), TrialState.FAIL, None),
        (("c",), TrialState.COMPLETE, [1.2]),
    ]


def test_the_best_set_is_the_best_within_max_size(scripted: Callable[..., _Log]) -> None:
    scripted({"a"}, {"b"}, {"c"})
    run = run_search(_search_table(), "t", "scripted", seed=0, max_trials=10, max_size=1)
    assert (run.trials, run.distinct, run.found) == (3, 3, True)


def test_the_graph_search_starts_from_the_other_targets_prior(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = _table(True)
    given: dict[str, dict[str, Any]] = {}

    def spy(table: LongTable, target: str, name: str, **kwargs: Any) -> SearchRun:
        given[name] = dict(kwargs["sampler_options"])
        return SearchRun(name, target, kwargs["seed"], 1, 1, True)

    monkeypatch.setattr(benchmarking, "run_search", spy)
    search_efficiency(table, samplers=("graph", "graph_cold", "tpe"), seeds=(0,), targets=["a"])
    _, prior = popular_order(table, "a", table.to_records(split="val"))
    assert given == {"graph": {"startup_scores": prior}, "graph_cold": {}, "tpe": {}}


def test_the_graph_prior_puts_the_popular_source_first() -> None:
    # Every target gains most from the same source: the prior tries it first for a new target.
    tasks = ["a", "b", "c", "d", "e", "f"]
    rows = []
    for target in tasks:
        rows.append(LongRow(target, frozenset({target}), "val", 1.0, True))
        rows += [
            LongRow(
                target, frozenset({target, s}), "val", 2.0 if s == "f" else 1.0 + 0.01 * i, True
            )
            for i, s in enumerate(tasks)
            if s != target
        ]
    runs = search_efficiency(
        LongTable(rows=rows, source="popular"), samplers=("graph",), seeds=(0, 1, 2),
        targets=["a", "b"], max_trials=20,
    )  # fmt: skip
    assert [(r.trials, r.distinct, r.found) for r in runs] == [(2, 2, True)] * 6
