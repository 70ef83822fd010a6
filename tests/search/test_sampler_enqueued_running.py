"""A running trial whose every auxiliary flag ``enqueue_trial`` fixed counts as proposing its set
from the moment it is asked, not from its objective's first suggestion.

The engine enqueues such trials (rows, the baseline, requeued, new-data and family baselines)
and asks under its setup lock, but the objective samples later: in between, another thread or
driver proposed without seeing the set.  With ``max_repeats=1`` an enqueued baseline asked but
not yet sampled let the next trial propose the empty set again.
"""

from __future__ import annotations

from collections.abc import Callable

import optuna
import pytest
from optuna.trial import TrialState

from taskgraph.search.bandit_sampler import BanditSampler
from taskgraph.search.graph_sampler import GraphGuidedSampler
from taskgraph.search.samplers import TrialSeededSampler
from taskgraph.search.subset_sampler import (
    PROPOSAL_ATTR,
    SubsetSampler,
    counted_trials,
    has_subset,
    proposed_set,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)
CANDIDATES = ("a", "b")
SEEDS = range(8)

Make = Callable[[int], SubsetSampler]


def graph(seed: int) -> SubsetSampler:
    return GraphGuidedSampler(
        target="t", candidates=list(CANDIDATES), max_size=1, max_repeats=1, seed=seed
    )


def bandit(seed: int) -> SubsetSampler:
    return BanditSampler(target="t", candidates=list(CANDIDATES), max_size=1, seed=seed)


def flags(chosen: frozenset[str]) -> dict[str, bool]:
    return {f"aux/{t}": t in chosen for t in CANDIDATES}


def sample(trial: optuna.Trial) -> frozenset[str]:
    return frozenset(t for t in CANDIDATES if trial.suggest_categorical(f"aux/{t}", [False, True]))


@pytest.mark.parametrize(
    ("make", "fixed"),
    [(graph, frozenset()), (graph, frozenset({"a"})), (bandit, frozenset({"a"}))],
    ids=["graph-baseline", "graph-a", "bandit-a"],
)
def test_an_asked_enqueued_trial_counts_before_it_samples(
    make: Make, fixed: frozenset[str]
) -> None:
    # (The bandit never proposes the empty set with max_size 1: its fixed set is {a}.  On a
    # fresh study it draws {a} for some of these seeds, the graph sampler {} for all.)
    repeated = []
    for seed in SEEDS:
        study = optuna.create_study(direction="maximize", sampler=make(seed))
        study.enqueue_trial(flags(fixed))
        asked = study.ask()  # the engine's ask step: nothing suggested yet
        frozen = study.trials[asked.number]  # as another driver reads it now
        assert frozen.state == TrialState.RUNNING and not frozen.params
        if sample(study.ask()) == fixed:
            repeated.append(seed)
        assert sample(asked) == fixed  # the fixed flags still win
    assert repeated == [], f"seeds {repeated}: the enqueued set was proposed again"
    assert frozen.system_attrs.get(PROPOSAL_ATTR) == sorted(fixed)  # stored, not only cached
    assert has_subset(frozen) and proposed_set(frozen) == fixed
    assert [t.number for t in counted_trials([frozen])] == [frozen.number]


def test_a_seeded_sampler_records_the_enqueued_set_too() -> None:
    sampler = TrialSeededSampler(make=graph, seed=0, study="s")
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.enqueue_trial(flags(frozenset()))
    asked = study.ask()
    assert sample(study.ask()) != frozenset()
    assert study.trials[asked.number].system_attrs.get(PROPOSAL_ATTR) == []


@pytest.mark.parametrize("make", [graph, bandit], ids=["graph", "bandit"])
def test_a_waiting_or_partly_fixed_trial_does_not_count_yet(make: Make) -> None:
    study = optuna.create_study(direction="maximize", sampler=make(0))
    study.enqueue_trial({"aux/a": True})  # aux/b left to the sampler: its set is not known
    study.enqueue_trial(flags(frozenset()))
    partly = study.ask()
    frozen = study.trials[partly.number]
    assert PROPOSAL_ATTR not in frozen.system_attrs and not has_subset(frozen)
    waiting = study.trials[1]
    assert waiting.state == TrialState.WAITING and PROPOSAL_ATTR not in waiting.system_attrs
    assert counted_trials(study.trials) == []
    chosen = sample(partly)
    assert "a" in chosen
    assert study.trials[partly.number].system_attrs[PROPOSAL_ATTR] == sorted(chosen)
