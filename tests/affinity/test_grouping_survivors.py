"""Groupings under a budget: what a mutation audit of ``grouping.py`` and
``evaluation/grouping.py`` found untested.

Each test names the behaviour it holds; the heuristic tests lower the exact search's limit and
the pool's size so that a few networks take the heuristic path, as
``test_grouping_heuristic_cover.py`` does.  The adaptive design's tests replace its estimator by
a scripted one (:class:`Scripted`) whose posterior draws and predictions they choose, so that
which network each Thompson step measures follows from the draws.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import taskgraph.affinity.evaluation.grouping as evaluation_grouping
import taskgraph.affinity.grouping as grouping
from taskgraph.affinity.converters import convert
from taskgraph.affinity.estimators import make_estimator
from taskgraph.affinity.evaluation import evaluate_grouping
from taskgraph.affinity.grouping import (
    affordable_networks,
    brute_force_networks,
    candidate_task_sets,
    predicted_network_scores,
    select_networks,
)
from taskgraph.affinity.longtable import LongRow, LongTable
from taskgraph.affinity.records import ScoreRecord
from taskgraph.errors import ConfigError

Scores = dict[frozenset[str], dict[str, float]]


def net(key: str) -> frozenset[str]:
    """Return the task set of ``"a+b"``."""
    return frozenset(key.split("+"))


def uniform(values: Mapping[str, float]) -> Scores:
    """Return scores where every member of ``"a+b"`` scores ``values["a+b"]``."""
    return {net(key): dict.fromkeys(net(key), value) for key, value in values.items()}


def heuristic(monkeypatch: pytest.MonkeyPatch, *, exact_limit: int, pool: int) -> None:
    monkeypatch.setattr(grouping, "EXACT_MAX_CANDIDATES", exact_limit)
    monkeypatch.setattr(grouping, "HEURISTIC_POOL", pool)


# --- select_networks: input checks, candidates, costs -----------------------------------------


def test_a_network_without_a_members_score_is_named() -> None:
    scores = {net("a"): {"a": 1.0}, net("b"): {"b": 1.0}, net("a+b"): {"a": 0.5}}
    with pytest.raises(ConfigError, match=r"^network a\+b has no score for \['b'\]$"):
        select_networks(scores, budget=2)


def test_networks_without_a_requested_task_are_no_candidates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # c+d serves none of the requested tasks: it neither counts towards the exact search's
    # limit nor needs a score for every member.
    monkeypatch.setattr(grouping, "EXACT_MAX_CANDIDATES", 3)
    scores = uniform({"a": 1.0, "b": 1.0, "a+b": 0.5, "c": 1.0})
    scores[net("c+d")] = {"c": 0.5}
    chosen = select_networks(scores, budget=1, tasks=["a", "b"])
    assert chosen.exact and chosen.method == "milp"
    assert chosen.networks == (net("a+b"),)


def test_a_task_list_may_leave_out_members_of_a_network() -> None:
    scores = {net("a"): {"a": 1.0}, net("a+b"): {"a": 0.5, "b": 2.0}}
    chosen = select_networks(scores, budget=1, tasks=["a"])
    assert chosen.assignment == {"a": net("a+b")}
    assert chosen.total == 0.5


def test_the_exact_limit_counts_in_its_last_candidate(monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(candidate_task_sets([f"t{i}" for i in range(10)])) == grouping.EXACT_MAX_CANDIDATES
    scores = uniform({"a": 1.0, "b": 1.0, "a+b": 0.5})
    monkeypatch.setattr(grouping, "EXACT_MAX_CANDIDATES", 3)
    assert select_networks(scores, budget=1).exact
    monkeypatch.setattr(grouping, "EXACT_MAX_CANDIDATES", 2)
    assert not select_networks(scores, budget=1).exact


def test_a_fractional_cost_among_integral_ones_keeps_the_budget_fractional() -> None:
    # Only all-integral costs round the budget down: 1 + 0.5 fits a budget of 1.5.
    scores = uniform({"a": 1.0, "b": 1.0, "a+b": 0.9})
    costs = {net("a"): 1.0, net("b"): 0.5, net("a+b"): 2.0}
    chosen = select_networks(scores, budget=1.5, costs=costs)
    assert chosen.networks == (net("a"), net("b"))
    assert chosen.cost == 1.5


def test_the_cost_is_the_sum_of_the_given_costs() -> None:
    scores = uniform({"a": 1.0, "b": 1.0, "a+b": 0.5})
    costs = {net("a"): 0.25, net("b"): 0.25, net("a+b"): 1.5}
    assert select_networks(scores, budget=0.5, costs=costs).cost == 0.5
    assert select_networks(scores, budget=1.5, costs=costs).cost == 1.5


def test_a_roomy_budget_reports_only_the_networks_that_serve() -> None:
    # HiGHS may switch on every network the budget allows (their x costs nothing in the
    # objective); the ones serving no task are no part of the grouping nor of its cost.
    scores = uniform({"a": 1.0, "b": 1.0, "a+b": 0.5})
    chosen = select_networks(scores, budget=3)
    assert chosen.networks == (net("a+b"),)
    assert chosen.cost == 1.0 and chosen.total == 1.0


def test_networks_are_listed_smallest_first_then_by_name() -> None:
    scores = uniform({"a": 1.0, "b": 1.0, "c": 0.1, "a+b": 0.1, "a+c": 1.0, "b+c": 1.0})
    chosen = select_networks(scores, budget=2)
    assert chosen.networks == (net("c"), net("a+b"))
    assert chosen.to_dict()["networks"] == [["c"], ["a", "b"]]


def test_brute_force_prefers_the_fewest_networks_on_a_tie() -> None:
    scores = uniform({"a": 0.5, "b": 0.5, "a+b": 0.5})
    chosen = brute_force_networks(scores, budget=2)
    assert chosen.networks == (net("a+b"),) and chosen.cost == 1.0


# --- the heuristic pool ------------------------------------------------------------------------


def test_the_pool_takes_tasks_without_a_single_task_score(monkeypatch: pytest.MonkeyPatch) -> None:
    heuristic(monkeypatch, exact_limit=2, pool=1)
    scores = uniform({"a": 1.0, "b": 1.0, "a+b+c": 0.9, "b+c": 0.5})  # c alone: no score
    chosen = select_networks(scores, budget=2)
    assert not chosen.exact
    assert chosen.networks == (net("b+c"), net("a+b+c"))
    assert chosen.total == pytest.approx(1.9)


def test_the_pool_keeps_the_pair_of_best_improvement(monkeypatch: pytest.MonkeyPatch) -> None:
    # a+b improves a by 0.8 (mean 0.4); c+d's improvement is unknown (no single-task scores of
    # c, d) and ranks last; the cover is b+c+d and a.  A pool of one keeps a+b, and the best
    # grouping, a+b with b+c+d, is the exact one.
    heuristic(monkeypatch, exact_limit=4, pool=1)
    scores: Scores = {
        net("a"): {"a": 1.0},
        net("b"): {"b": 1.0},
        net("a+b"): {"a": 0.2, "b": 1.0},
        net("c+d"): {"c": 1.1, "d": 1.1},
        net("b+c+d"): {"b": 1.2, "c": 1.0, "d": 1.0},
    }
    chosen = select_networks(scores, budget=2)
    assert not chosen.exact
    assert chosen.networks == (net("a+b"), net("b+c+d"))
    assert chosen.total == pytest.approx(3.2)
    assert chosen.total == pytest.approx(brute_force_networks(scores, budget=2).total)


def test_the_pool_holds_the_all_task_network_the_cover_passes_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # At a cost of 4 the all-task network serves fewer tasks per cost than the singles, so the
    # greedy cover is the singles; it is the best grouping all the same.
    heuristic(monkeypatch, exact_limit=3, pool=0)
    scores = uniform({"a": 1.0, "b": 1.0, "c": 1.0, "a+b+c": 0.1})
    chosen = select_networks(scores, budget=4, costs={net("a+b+c"): 4.0})
    assert not chosen.exact
    assert chosen.networks == (net("a+b+c"),) and chosen.cost == 4.0


def test_the_cover_counts_tasks_per_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    # By size alone the cover would be a+b+c (cost 10) and d, which no budget of 2 buys.
    heuristic(monkeypatch, exact_limit=4, pool=0)
    scores = uniform({"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0, "a+b": 0.9, "c+d": 0.9})
    scores.update(uniform({"a+b+c": 0.8}))
    costs = {**{net(t): 5.0 for t in "abcd"}, net("a+b+c"): 10.0}
    chosen = select_networks(scores, budget=2, costs=costs)
    assert chosen.networks == (net("a+b"), net("c+d")) and chosen.cost == 2.0


def test_the_cover_counts_only_the_requested_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    # a+b+x+y serves two of the requested tasks, a+b+c three: the cover is a+b+c and d.
    heuristic(monkeypatch, exact_limit=4, pool=0)
    scores = uniform({"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0, "a+b+c": 0.5, "a+b+x+y": 0.9})
    scores[net("c+d")] = {"c": 0.9, "d": 1.1}
    chosen = select_networks(scores, budget=2, tasks=list("abcd"))
    assert chosen.networks == (net("d"), net("a+b+c"))
    assert chosen.total == pytest.approx(2.5)


def test_a_network_that_costs_nothing_leads_the_cover(monkeypatch: pytest.MonkeyPatch) -> None:
    heuristic(monkeypatch, exact_limit=2, pool=0)
    scores = uniform({"a": 1.0, "b": 1.0, "a+b": 0.5})
    chosen = select_networks(scores, budget=1, costs={net("a+b"): 0.0})
    assert not chosen.exact
    assert chosen.networks == (net("a+b"),) and chosen.cost == 0.0


def test_the_cover_breaks_ties_by_improvement(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every pair serves two tasks per cost; a+b and c+d improve most, so they make the cover.
    heuristic(monkeypatch, exact_limit=5, pool=0)
    scores = uniform(
        {"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0, "a+b": 0.5, "c+d": 0.5, "a+c": 0.9, "b+d": 0.9}
    )
    chosen = select_networks(scores, budget=2)
    assert chosen.networks == (net("a+b"), net("c+d"))
    assert chosen.total == pytest.approx(2.0)


# --- predicted_network_scores ------------------------------------------------------------------


def test_a_relative_gain_turns_a_negative_baseline_by_its_magnitude() -> None:
    # a's baseline is -2 (higher is better) and a+b scored -1: a relative gain of +0.5, which
    # turns -2 back into -1 (not into -2 + 0.5 * -2 = -3).
    records = [
        ScoreRecord(task="a", task_set=net("a"), value=-2.0, split="val"),
        ScoreRecord(task="a", task_set=net("a+b"), value=-1.0, split="val"),
        ScoreRecord(task="b", task_set=net("b"), value=1.0, split="val"),
        ScoreRecord(task="b", task_set=net("a+b"), value=1.5, split="val"),
    ]
    hoa = make_estimator("hoa").fit(records)
    predicted = predicted_network_scores(
        hoa, {"a": -2.0, "b": 1.0}, networks=[net("a+b")], higher_is_better={"a": True, "b": True}
    )
    assert predicted[net("a+b")] == pytest.approx({"a": -1.0, "b": 1.5})


# --- evaluate_grouping ---------------------------------------------------------------------------

#: three tasks, lower is better: a+b helps, the other sets hurt
THREE = {"a": 1.0, "b": 1.0, "c": 1.0, "a+b": 0.5, "a+c": 1.2, "b+c": 1.2, "a+b+c": 2.0}


def table_of(values: Mapping[str, float], *, test: Mapping[str, float] | None = None) -> LongTable:
    """Return a lower-is-better table where every member of ``"a+b"`` scores ``values["a+b"]``
    on val (and ``test["a+b"]`` on test, else the same)."""
    rows = [
        LongRow(t, net(key), split, value, False)
        for split, table in (("val", values), ("test", test or values))
        for key, value in table.items()
        for t in sorted(net(key))
    ]
    return LongTable(rows=rows, source="made-up")


def every_set_scoring(tasks: str, value: float) -> dict[str, float]:
    """Return ``"a+b" -> value`` for every non-empty subset of ``tasks``."""
    return {"+".join(sorted(n)): value for n in candidate_task_sets(list(tasks))}


def test_a_table_without_some_task_set_is_refused() -> None:
    values = {k: v for k, v in THREE.items() if k != "a+c"}
    with pytest.raises(ConfigError, match="lacks validation rows for 1 task sets"):
        evaluate_grouping(table_of(values), "measured", budgets=[2], strategy="optimum")


def test_val_total_is_the_validation_score_of_the_chosen_grouping() -> None:
    test = {key: 2 * value for key, value in THREE.items()}
    result = evaluate_grouping(
        table_of(THREE, test=test), "measured", budgets=[2], strategy="optimum"
    )
    assert result[2]["networks"] == [["c"], ["a", "b"]]
    assert result[2]["val_total"] == pytest.approx(2.0)
    assert result[2]["total"] == pytest.approx(4.0)


def test_the_optimum_counts_every_task_set_measured_whatever_max_evaluations() -> None:
    result = evaluate_grouping(
        table_of(THREE), "measured", budgets=[2], strategy="optimum", max_evaluations=2
    )
    assert result[2]["n_measured"] == 7


def test_triples_then_the_sets_nearest_in_size_smaller_first() -> None:
    # 4 singles + 4 triples + 1: a pair (size 2) before the all-task set (size 4).
    values = every_set_scoring("abcd", 1.0)
    values["a+b"] = 0.5
    result = evaluate_grouping(
        table_of(values), "measured", budgets=[2], strategy="triples", max_evaluations=9
    )
    assert result[2]["n_measured"] == 9
    assert ["a", "b"] in result[2]["networks"]
    with pytest.raises(ConfigError, match="no grouping of 4 tasks fits budget 1"):
        evaluate_grouping(
            table_of(values), "measured", budgets=[1], strategy="triples", max_evaluations=9
        )


def test_a_budgets_adaptive_result_does_not_depend_on_the_other_budgets(
    benchmarks_dir: Path,
) -> None:
    # Each budget's Thompson steps start from the same seed: asking for budgets 1 and 2 as
    # well does not change what budget 3 measures.
    table = convert("standley_s1", root=benchmarks_dir)
    together = evaluate_grouping(
        table, "hoa", budgets=[1, 2, 3], strategy="adaptive", max_evaluations=7
    )
    alone = evaluate_grouping(table, "hoa", budgets=[3], strategy="adaptive", max_evaluations=7)
    assert together[3] == alone[3]


class Scripted:
    """A fitted estimator whose draws and predictions a test chooses.

    Every draw gives each task of network ``n`` the relative gain ``draws[n]`` (default -0.5:
    the network hurts); a prediction's mean is ``means[n]`` (default -0.1: an unmeasured
    network looks slightly worse than training alone) and its std ``stds[n]`` (default 0.1).
    """

    gain_kind = "relative"

    def __init__(
        self,
        *,
        draws: Mapping[str, float] | None = None,
        means: Mapping[str, float] | None = None,
        stds: Mapping[str, float] | None = None,
    ) -> None:
        self.draws = {net(k): v for k, v in (draws or {}).items()}
        self.means = {net(k): v for k, v in (means or {}).items()}
        self.stds = {net(k): v for k, v in (stds or {}).items()}

    def fit(self, records: Sequence[ScoreRecord]) -> Scripted:
        return self

    def sample_gains(
        self,
        queries: Sequence[tuple[str, Iterable[str]]],
        rng: np.random.Generator,
        *,
        n_samples: int = 1,
    ) -> np.ndarray:
        row = [self.draws.get(frozenset(n), -0.5) for _, n in queries]
        return np.tile(np.asarray(row, dtype=float), (n_samples, 1))

    def predict(self, target: str, task_set: Iterable[str]) -> tuple[float, float]:
        network = frozenset(task_set)
        return self.means.get(network, -0.1), self.stds.get(network, 0.1)


def adaptive(
    monkeypatch: pytest.MonkeyPatch, estimator: Scripted, values: Mapping[str, float], **kwargs: Any
) -> dict[float, dict[str, Any]]:
    monkeypatch.setattr(evaluation_grouping, "_build", lambda method, options: estimator)
    return evaluate_grouping(table_of(values), "scripted", strategy="adaptive", **kwargs)


def test_adaptive_measures_the_network_a_draw_favours(monkeypatch: pytest.MonkeyPatch) -> None:
    # The draws favour a+b (lower is better, so a gain lowers its score): the one step after the
    # singles and the all-task set measures it.  The predictions say a+b hurts, so only its
    # measurement puts it in the grouping; a+c is the least sure, so a step that took no fresh
    # network would measure a+c instead.
    estimator = Scripted(draws={"a+b": 0.5}, means={"a+b": -0.5}, stds={"a+c": 1.0})
    result = adaptive(monkeypatch, estimator, THREE, budgets=[2], max_evaluations=5)
    assert result[2]["n_measured"] == 5
    assert result[2]["networks"] == [["c"], ["a", "b"]]
    assert result[2]["total"] == pytest.approx(2.0)


def test_adaptive_measures_the_largest_fresh_network(monkeypatch: pytest.MonkeyPatch) -> None:
    # The drawn grouping is a+b+c with a+d, both unmeasured: the step measures a+b+c.
    values = every_set_scoring("abcd", 1.0)
    values.update({"a+b+c": 0.5, "a+b+c+d": 2.0})
    estimator = Scripted(draws={"a+b+c": 0.5, "a+d": 0.5})
    result = adaptive(monkeypatch, estimator, values, budgets=[2], max_evaluations=6)
    assert result[2]["networks"] == [["d"], ["a", "b", "c"]]
    assert result[2]["total"] == pytest.approx(2.5)


def test_adaptive_widens_the_evidence_where_it_is_least_sure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every draw makes every unmeasured network hurt, so the drawn grouping (the singles) is
    # measured already: the step measures the least sure network, b+c, which helps.
    values = {**THREE, "a+b": 1.2, "b+c": 0.5}
    estimator = Scripted(stds={"b+c": 1.0})
    result = adaptive(monkeypatch, estimator, values, budgets=[3], max_evaluations=5)
    assert result[3]["networks"] == [["a"], ["b", "c"]]
    assert result[3]["total"] == pytest.approx(2.0)


def test_adaptive_starts_from_the_singles_and_the_all_task_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # max_evaluations = 4 leaves no step: the all-task set, which helps every task, is measured.
    values = {**THREE, "a+b+c": 0.5}
    estimator = Scripted(draws={"a+b": 0.5})
    result = adaptive(monkeypatch, estimator, values, budgets=[2], max_evaluations=4)
    assert result[2]["n_measured"] == 4
    assert result[2]["networks"] == [["a", "b", "c"]]
    assert result[2]["total"] == pytest.approx(1.5)


def test_adaptive_measures_max_evaluations_sets_at_most_every_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = adaptive(monkeypatch, Scripted(), THREE, budgets=[2], max_evaluations=6)
    assert result[2]["n_measured"] == 6
    result = adaptive(monkeypatch, Scripted(), THREE, budgets=[2], max_evaluations=100)
    assert result[2]["n_measured"] == 7


# --- defects the audit found (each test fails on the code before the fix) ------------------


def test_a_choice_over_the_budget_by_highs_tolerance_is_cut_off() -> None:
    # The singles cost 0.5 + 0.5 = 1.0 > 0.999999: HiGHS's feasibility tolerance (about 1e-6)
    # let them in, and the grouping reported cost 1.0 under a budget of 0.999999.
    scores = uniform({"a": 1.0, "b": 1.0, "a+b": 0.5})
    costs = {net("a"): 0.5, net("b"): 0.5, net("a+b"): 10.0}
    with pytest.raises(ConfigError, match=r"no grouping of 2 tasks fits budget 0\.999999"):
        select_networks(scores, budget=0.999999, costs=costs)
    assert select_networks(scores, budget=1.0, costs=costs).cost == 1.0


def test_a_task_named_twice_is_one_task() -> None:
    scores = uniform({"a": 1.0, "b": 1.0, "a+b": 0.5})
    twice = select_networks(scores, budget=2, tasks=["a", "a", "b"])
    assert twice == select_networks(scores, budget=2, tasks=["a", "b"])
    assert brute_force_networks(scores, budget=2, tasks=["b", "a", "b"]).total == twice.total


@pytest.mark.parametrize("budget", [float("inf"), float("nan"), 0.0, -1.0])
def test_a_budget_that_is_no_finite_positive_number_is_refused(budget: float) -> None:
    scores = uniform({"a": 1.0, "b": 1.0, "a+b": 0.5})
    message = "`budget` must be a finite number > 0"
    with pytest.raises(ConfigError, match=message):
        select_networks(scores, budget=budget)
    with pytest.raises(ConfigError, match=message):
        affordable_networks(budget)


@pytest.mark.parametrize("cost", [-1.0, float("nan"), float("inf")])
def test_a_cost_that_is_no_finite_number_at_least_zero_is_refused(cost: float) -> None:
    # A negative cost bought room: budget 1 returned a grouping costing 2.
    scores = uniform({"a": 0.1, "b": 0.1, "a+b": 1.0})
    with pytest.raises(ConfigError, match=r"`costs`: network a\+b costs"):
        select_networks(scores, budget=1, costs={net("a+b"): cost})


def test_a_score_that_is_no_finite_number_is_refused_naming_its_network() -> None:
    scores = {net("a"): {"a": 1.0}, net("b"): {"b": 1.0}, net("a+b"): {"a": float("nan"), "b": 0.5}}
    with pytest.raises(ConfigError, match=r"network a\+b: the score of a is nan"):
        select_networks(scores, budget=2)


class AbsoluteScripted(Scripted):
    """:class:`Scripted` whose gains are absolute (``gain_kind`` absolute)."""

    gain_kind = "absolute"


def test_adaptive_draws_turn_an_absolute_gain_as_predicted_scores_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Baselines of 10, lower is better: an absolute gain of 0.1 is a score of 9.9 (a relative
    # one would be 9.0); the draws took every gain as relative.
    values = {"a": 10.0, "b": 10.0, "c": 10.0, "a+b": 9.0, "a+c": 10.0, "b+c": 10.0, "a+b+c": 12.0}
    seen: list[Mapping[frozenset[str], Mapping[str, float]]] = []
    original = evaluation_grouping.select_networks

    def spy(scores: Any, **kwargs: Any) -> Any:
        seen.append(scores)
        return original(scores, **kwargs)

    monkeypatch.setattr(evaluation_grouping, "select_networks", spy)
    adaptive(monkeypatch, AbsoluteScripted(draws={"a+c": 0.1}), values, budgets=[2],
             max_evaluations=5)  # fmt: skip
    assert seen[0][net("a+c")]["a"] == pytest.approx(9.9)


@pytest.mark.parametrize(("strategy", "first"), [("adaptive", 4), ("pairs", 3), ("triples", 3)])
def test_max_evaluations_below_what_a_design_measures_first_is_refused(
    strategy: str, first: int
) -> None:
    # adaptive measured the 3 singles and the all-task set whatever max_evaluations said.
    with pytest.raises(ConfigError, match=f"`max_evaluations` {first - 1} is below the {first}"):
        evaluate_grouping(table_of(THREE), "hoa", budgets=[2], strategy=strategy,
                          max_evaluations=first - 1)  # fmt: skip
    evaluate_grouping(table_of(THREE), "hoa", budgets=[2], strategy=strategy, max_evaluations=first)


def test_free_networks_beside_paid_ones_over_the_budget_end_in_no_grouping() -> None:
    # a and b cost 0.5 each (1.0 > 0.999999), a+b 10; c..g and their pairs cost nothing.  A cut
    # that named the free networks HiGHS switched on let it return the same paid pair with
    # other free ones, until the cuts ran out (TaskgraphError instead of "no grouping fits").
    scores: dict[frozenset[str], dict[str, float]] = {net(t): {t: 1.0} for t in "abcdefg"}
    costs = {net("a"): 0.5, net("b"): 0.5, net("a+b"): 10.0}
    for x, y in itertools.combinations("cdefg", 2):
        scores[net(f"{x}+{y}")] = {x: 5.0, y: 5.0}
        costs[net(f"{x}+{y}")] = 0.0
    costs.update({net(t): 0.0 for t in "cdefg"})
    scores[net("a+b")] = {"a": 0.9, "b": 0.9}
    with pytest.raises(ConfigError, match=r"no grouping of 7 tasks fits budget 0\.999999"):
        select_networks(scores, budget=0.999999, costs=costs)
    assert select_networks(scores, budget=1.0, costs=costs).cost == 1.0


def test_a_score_no_grouping_sums_may_be_missing_a_number() -> None:
    # b's score in a+b is NaN, but only a is grouped: nothing sums it.
    scores = {net("a"): {"a": 1.0}, net("b"): {"b": 1.0}, net("a+b"): {"a": 0.5, "b": float("nan")}}
    assert select_networks(scores, budget=1, tasks=["a"]).networks == (net("a+b"),)


def test_a_cost_that_is_no_number_is_refused() -> None:
    scores = uniform({"a": 1.0, "b": 1.0, "a+b": 0.5})
    with pytest.raises(ConfigError, match=r"`costs`: network a\+b costs x, not"):
        select_networks(scores, budget=1, costs={net("a+b"): "x"})  # type: ignore[dict-item]
    assert select_networks(scores, budget=1, costs={net("a+b"): np.int64(1)}).cost == 1.0


def test_adaptive_on_one_task_measures_its_one_set() -> None:
    table = table_of({"a": 1.0})
    result = evaluate_grouping(table, "hoa", budgets=[1], strategy="adaptive", max_evaluations=1)
    assert result[1]["n_measured"] == 1
