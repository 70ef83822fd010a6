"""The graph-guided sampler where the mutation audit of taskgraph/search/graph_sampler.py found
its contract untested: scores that are not finite, the median stand-in baseline, a stored set
naming the target, a prior without gains, proposed sets among the neighbours, ``max_size``
above the candidates and a zero baseline in the popular-source prior."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from taskgraph.affinity.records import ScoreRecord
from taskgraph.search.graph_sampler import (
    GraphGuidedSampler,
    popular_source_scores,
    startup_order,
)
from taskgraph.testing.queueing import finished_subset_trial
from tests.search.test_graph_sampler import ask_subset

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _values(sampler: GraphGuidedSampler, study: optuna.Study) -> dict[str, float]:
    """Return the study's records as the sampler reads them: task set ("a+t") -> value."""
    records, _ = sampler._study_records(study)
    return {"+".join(sorted(r.task_set)): r.value for r in records}


def test_a_diverged_trial_gives_no_record() -> None:
    # A loss that diverged to inf is no score: in the records it would be the median's too.
    sampler = GraphGuidedSampler(target="t", candidates=["a", "b", "c"], seed=0)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    for subset, value in ((["a"], 1.0), (["b"], math.inf), (["c"], 0.0)):
        study.add_trial(finished_subset_trial(subset, value))
    assert _values(sampler, study) == {"a+t": 1.0, "c+t": 0.0, "t": 0.5}


def test_before_the_baseline_the_median_not_the_mean_stands_in() -> None:
    # One poor set would drag a mean below every other set: they would all look like gains.
    sampler = GraphGuidedSampler(target="t", candidates=["a", "b", "c"], seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for subset, value in ((["a"], 1.0), (["b"], 0.9), (["c"], 0.0)):
        study.add_trial(finished_subset_trial(subset, value))
    assert _values(sampler, study)["t"] == 0.9


def test_a_stored_set_naming_the_target_is_the_baseline() -> None:
    sampler = GraphGuidedSampler(target="t", candidates=["a", "b"], seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.add_trial(finished_subset_trial(["t"], 0.5, flags="ab"))
    assert _values(sampler, study) == {"t": 0.5}
    assert sampler.propose(study) in {frozenset({"a"}), frozenset({"b"})}


def test_a_prior_baseline_without_gains_still_tries_each_candidate_alone() -> None:
    # Only gain records inform the model: a baseline alone leaves nothing to generalise from.
    prior = [ScoreRecord("t", frozenset({"t"}), 0.5, split="val")]
    candidates = ["a", "b", "c"]
    for seed in range(3):
        sampler = GraphGuidedSampler(target="t", candidates=candidates, prior_records=prior,
                                     seed=seed)  # fmt: skip
        study = optuna.create_study(direction="maximize", sampler=sampler)
        seen = []
        for _ in range(4):
            trial, chosen = ask_subset(study, candidates)
            seen.append(chosen)
            study.tell(trial, 0.5 + 0.1 * len(chosen))
        assert seen[0] == frozenset() and sorted(map(sorted, seen[1:])) == [["a"], ["b"], ["c"]]


def test_past_max_enumeration_no_proposed_set_takes_a_place_in_the_pool() -> None:
    # The empty set's neighbours are the singles, all proposed: the pool holds new pairs, and
    # the next proposal (no model: every trial failed) is one of them, not a repeat.
    candidates = [f"c{i}" for i in range(6)]
    sampler = GraphGuidedSampler(target="t", candidates=candidates, max_enumeration=4, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for _ in range(7):  # the start-up: the empty set, then each candidate alone
        trial, _ = ask_subset(study, candidates)
        study.tell(trial, state=TrialState.FAIL)
    _, proposed = sampler._study_records(study)
    pool = sampler._candidate_sets(set(proposed))
    assert len(pool) == 4 and not set(pool) & set(proposed)
    trial, chosen = ask_subset(study, candidates)
    assert len(chosen) == 2


@pytest.mark.parametrize("seed", range(4))
def test_a_max_size_above_the_candidates_draws_sets_of_the_candidates(seed: int) -> None:
    # Four candidates, sets up to ten tasks: the random top-up must cap its draws at four
    # tasks (a draw of more from four raises) and still fill the pool.
    sampler = GraphGuidedSampler(target="t", candidates=list("abcd"), max_size=10,
                                 max_enumeration=12, seed=seed)  # fmt: skip
    proposed = {frozenset(), *(frozenset({t}) for t in "abcd")}
    pool = sampler._candidate_sets(proposed)
    assert len(pool) == 12


def test_a_zero_baseline_in_the_prior_orders_the_start_up_by_absolute_gains() -> None:
    prior = [
        ScoreRecord("u", frozenset(s), v, split="val")
        for s, v in (({"u"}, 0.0), ({"u", "a"}, -0.05), ({"u", "b"}, 0.1))
    ]
    scores = popular_source_scores(["a", "b"], target="t", prior_records=prior)
    assert scores == {"a": pytest.approx(-0.05), "b": pytest.approx(0.1)}
    order = startup_order(["a", "b"], target="t", prior_records=prior,
                          rng=np.random.default_rng(0))  # fmt: skip
    assert order == ["b", "a"]
