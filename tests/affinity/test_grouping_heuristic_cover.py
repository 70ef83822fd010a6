"""The heuristic grouping (beyond the exact search's candidates) answers every budget that
disjoint networks of the candidates meet: its pool holds a cover of every task.

Before, the pool was the singles plus the networks with the best mean improvement, which can
all share a task: a budget that the coverage check let through (MIMIC-27 at budget 9, 11
tasks at budget 1) was then called infeasible, "no grouping fits", exit 2.  The exact search's
limit and the pool's size are lowered here so that small tables take the heuristic path.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import taskgraph.affinity.grouping as grouping
from taskgraph.affinity.grouping import candidate_task_sets, select_networks
from taskgraph.cli.app import app
from taskgraph.errors import ConfigError, TaskgraphError

runner = CliRunner()


def _scores(tasks: list[str], max_size: int) -> dict[frozenset[str], dict[str, float]]:
    """Lower is better; every network with ``t0`` helps a lot, the others a little, and the
    larger a network the less it helps (so the best-improvement pool is ``t0``'s pairs)."""
    scores: dict[frozenset[str], dict[str, float]] = {}
    for network in candidate_task_sets(tasks, max_size=max_size):
        gain = 0.0 if len(network) == 1 else (0.5 if "t0" in network else 0.1) / len(network)
        scores[network] = {t: 1.0 - gain for t in network}
    return scores


@pytest.fixture
def small_exact_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grouping, "EXACT_MAX_CANDIDATES", 10)
    monkeypatch.setattr(grouping, "HEURISTIC_POOL", 3)


@pytest.mark.usefixtures("small_exact_limit")
def test_one_network_of_every_task_is_in_the_pool() -> None:
    tasks = [f"t{i}" for i in range(6)]
    chosen = select_networks(_scores(tasks, 6), budget=1)
    assert not chosen.exact
    assert chosen.networks == (frozenset(tasks),)
    assert chosen.cost == 1.0


@pytest.mark.usefixtures("small_exact_limit")
def test_disjoint_triples_are_in_the_pool() -> None:
    # The MIMIC-27 shape: networks of at most 3 tasks, a budget of exactly n / 3 of them.
    tasks = [f"t{i}" for i in range(9)]
    chosen = select_networks(_scores(tasks, 3), budget=3)
    assert not chosen.exact
    assert chosen.cost == 3.0 and len(chosen.networks) == 3
    assert sorted(t for n in chosen.networks for t in n) == tasks
    assert all(len(n) == 3 for n in chosen.networks)
    # A larger budget still uses the pool's best networks where they fit.
    roomy = select_networks(_scores(tasks, 3), budget=8)
    assert roomy.total < chosen.total


@pytest.mark.usefixtures("small_exact_limit")
def test_a_pool_without_a_fitting_grouping_is_not_called_infeasible(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # {a,b} + {b,c} fit a budget of 2, but no disjoint cover does, and the pool holds none of
    # the overlapping networks: the heuristic says it failed (exit 1), not that nothing fits.
    monkeypatch.setattr(grouping, "EXACT_MAX_CANDIDATES", 4)
    monkeypatch.setattr(grouping, "HEURISTIC_POOL", 0)
    scores = {
        frozenset({"a"}): {"a": 1.0},
        frozenset({"b"}): {"b": 1.0},
        frozenset({"c"}): {"c": 1.0},
        frozenset({"a", "b"}): {"a": 0.9, "b": 0.9},
        frozenset({"b", "c"}): {"b": 0.9, "c": 0.9},
    }
    costs = {frozenset({t}): 5.0 for t in "abc"}
    with pytest.raises(TaskgraphError) as caught:
        select_networks(scores, budget=2, costs=costs)
    assert not isinstance(caught.value, ConfigError)
    assert caught.value.exit_code == 1
    assert str(caught.value).startswith(
        "the heuristic found no grouping of 3 tasks within budget 2 among its 4 of 5 "
        "candidate networks"
    )


def _table(path: Path, tasks: list[str]) -> Path:
    rows = ["target,task_set,split,value,higher_is_better"]
    for size in range(1, len(tasks) + 1):
        for combo in itertools.combinations(tasks, size):
            for task in combo:
                gain = 0.0 if size == 1 else (0.05 if "t0" in combo else 0.01) / size
                rows.append(f"{task},{'+'.join(combo)},val,{0.5 + gain:.4f},1")
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.usefixtures("small_exact_limit")
def test_groups_answers_a_budget_the_coverage_check_let_through(tmp_path: Path) -> None:
    tasks = [f"t{i}" for i in range(6)]
    table = _table(tmp_path / "all.csv", tasks)
    result = runner.invoke(
        app,
        ["affinity", "groups", "--budget", "1", "--table", str(table), "--method", "hoa",
         "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["networks"] == [tasks]
    assert report["exact"] is False
    result = runner.invoke(
        app,
        ["affinity", "groups", "--budget", "2", "--max-size", "3", "--table", str(table),
         "--method", "hoa", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert sorted(len(n) for n in report["networks"]) == [3, 3]
