"""Network selection: MILP equals brute force; Standley's published optimum and HOA choice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from taskgraph.affinity.converters import standley
from taskgraph.affinity.estimators import make_estimator
from taskgraph.affinity.grouping import (
    brute_force_networks,
    candidate_task_sets,
    predicted_network_scores,
    select_networks,
)
from taskgraph.errors import ConfigError


def random_scores(seed: int, tasks: str = "abcd") -> dict[frozenset[str], dict[str, float]]:
    rng = np.random.default_rng(seed)
    return {
        n: {t: float(rng.uniform(0.5, 1.5)) for t in n} for n in candidate_task_sets(list(tasks))
    }


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("budget", [1, 2, 3])
def test_milp_equals_brute_force(seed: int, budget: int) -> None:
    scores = random_scores(seed)
    for higher in (False, True):
        exact = select_networks(scores, budget=budget, higher_is_better=higher)
        brute = brute_force_networks(scores, budget=budget, higher_is_better=higher)
        assert exact.total == pytest.approx(brute.total)
        assert exact.cost <= budget and exact.exact
        assert set(exact.assignment) == set("abcd")
        assert all(t in n for t, n in exact.assignment.items())


def test_budget_errors_name_the_problem() -> None:
    scores = {frozenset({"a"}): {"a": 1.0}, frozenset({"b"}): {"b": 1.0}}
    with pytest.raises(ConfigError, match="budget 1"):
        select_networks(scores, budget=1)
    with pytest.raises(ConfigError, match="`budget` must be a finite number > 0"):
        select_networks(scores, budget=0)
    with pytest.raises(ConfigError, match="`budget` must be a finite number > 0, but got nan"):
        select_networks(scores, budget=float("nan"))
    with pytest.raises(ConfigError, match=r"no candidate network contains \['c'\]"):
        select_networks(scores, budget=2, tasks=["a", "b", "c"])


def test_heuristic_pool_beyond_the_exact_limit_is_stated() -> None:
    tasks = [f"t{i}" for i in range(13)]  # 1,092 networks of up to 4 tasks > exact limit
    rng = np.random.default_rng(0)
    scores = {
        n: {t: float(rng.uniform(0.5, 1.5)) for t in n}
        for n in candidate_task_sets(tasks, max_size=4)
    }
    scores.update({frozenset(tasks[:k]): {t: 0.4 for t in tasks[:k]} for k in range(5, 14)})
    grouping = select_networks(scores, budget=3)
    assert not grouping.exact and grouping.method.startswith("milp-on-top")
    assert set(grouping.assignment) == set(tasks)
    assert grouping.total == pytest.approx(
        0.4 * len(tasks)
    )  # the all-task network at 0.4 each is best


def test_standley_setting1_optimum_and_hoa_reproduce_the_paper(benchmarks_dir: Path) -> None:
    table = standley(benchmarks_dir, 1)
    val, test = {}, {}
    for row in table:
        (val if row.split == "val" else test).setdefault(row.task_set, {})[row.target] = row.value
    tasks = table.tasks
    chosen = select_networks(val, budget=5)
    assert sum(test[chosen.assignment[t]][t] for t in tasks) == pytest.approx(0.43481, abs=5e-6)
    small = [r for r in table.to_records(split="val") if len(r.task_set) <= 2]
    hoa = make_estimator("hoa").fit(small)
    predicted = predicted_network_scores(
        hoa, {t: val[frozenset({t})][t] for t in tasks}, networks=candidate_task_sets(tasks),
        higher_is_better={t: False for t in tasks}, measured={n: v for n, v in val.items() if len(n) <= 2},
    )  # fmt: skip
    chosen = select_networks(predicted, budget=5)
    assert sum(test[chosen.assignment[t]][t] for t in tasks) == pytest.approx(0.44196, abs=5e-6)
