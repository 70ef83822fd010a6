"""Bandit and subset-sampler behaviour that the other tests left unchecked (mutation audit)."""

from __future__ import annotations

import functools
from typing import Any, Literal

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution

from taskgraph.search.bandit_sampler import BanditSampler
from taskgraph.search.progress import FAILURE_ATTR, INTERRUPTED_ATTR
from taskgraph.search.space import BASELINE_ROLE, ROLE_ATTR
from taskgraph.search.subset_sampler import PROPOSAL_ATTR, counted_trials
from taskgraph.testing.queueing import finished_subset_trial
from tests.search.test_graph_sampler import ask_subset

optuna.logging.set_verbosity(optuna.logging.WARNING)
# complete trials over candidates a, b, c, d
_done = functools.partial(finished_subset_trial, flags="abcd")


def test_excluded_candidates_and_the_target_are_never_arms() -> None:
    sampler = BanditSampler(target="t", candidates=["t", "a", "b", "c"], exclude=["c"], seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for value in range(4):  # every valid set: {}, {a}, {b}, {a, b}
        trial, _ = ask_subset(study, ["a", "b"])
        study.tell(trial, float(value))
    space = sampler.infer_relative_search_space(study, study.trials[0])
    assert set(space) == {"aux/a", "aux/b"}
    counts, evaluated = sampler.posterior(study)
    assert set(counts) == {"a", "b"}
    assert evaluated == {frozenset(), frozenset("a"), frozenset("b"), frozenset("ab")}


def test_the_bandit_gives_a_target_named_in_include_no_room_in_max_size() -> None:
    # The target trains anyway: include=[target, a] with max_size 1 leaves room for {a}.
    sampler = BanditSampler(target="t", candidates=["a", "b"], include=["t", "a"], max_size=1,
                            seed=0)  # fmt: skip
    assert sampler.include == ("a",)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    _, chosen = ask_subset(study, ["b"])
    assert chosen == frozenset()


def test_min_size_equal_to_max_size_proposes_sets_of_that_size() -> None:
    sampler = BanditSampler(target="t", candidates=list("abcd"), min_size=2, max_size=2, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for value in range(6):  # the six pairs, none twice
        trial, chosen = ask_subset(study, list("abcd"))
        assert len(chosen) == 2
        study.tell(trial, float(value))
    assert len(sampler.posterior(study)[1]) == 6


def test_before_any_baseline_the_reference_is_the_median_not_the_mean() -> None:
    sampler = BanditSampler(target="t", candidates=list("abcd"), seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for task, value in zip("abcd", (0.0, 0.2, 0.3, 1.0), strict=True):
        study.add_trial(_done([task], value))
    counts, _ = sampler.posterior(study)
    # median 0.25 (the mean, 0.375, would make c a loss)
    assert counts == {"a": (1.0, 2.0), "b": (1.0, 2.0), "c": (2.0, 1.0), "d": (2.0, 1.0)}


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_a_tie_with_the_baseline_is_a_loss(direction: Literal["minimize", "maximize"]) -> None:
    sampler = BanditSampler(target="t", candidates=list("abcd"), seed=0)
    study = optuna.create_study(direction=direction, sampler=sampler)
    study.add_trial(_done([], 0.5, **{ROLE_ATTR: BASELINE_ROLE}))
    study.add_trial(_done(["a"], 0.5))
    assert sampler.posterior(study)[0]["a"] == (1.0, 2.0)


def test_the_prior_is_the_given_alpha_and_beta() -> None:
    sampler = BanditSampler(target="t", candidates=list("abcd"), alpha=2.0, beta=5.0, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.add_trial(_done([], 0.5, **{ROLE_ATTR: BASELINE_ROLE}))
    study.add_trial(_done(["a"], 0.7))
    counts, _ = sampler.posterior(study)
    assert counts["a"] == (3.0, 5.0)
    assert counts["b"] == (2.0, 5.0)


def test_a_complete_trial_without_flags_is_seen() -> None:
    # A baseline recorded with no flags at all (the target alone) still answers the empty set.
    sampler = BanditSampler(target="t", candidates=list("abcd"), seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.add_trial(
        optuna.trial.create_trial(
            value=0.5,
            user_attrs={ROLE_ATTR: BASELINE_ROLE},
            state=optuna.trial.TrialState.COMPLETE,
        )
    )
    assert sampler.posterior(study)[1] == {frozenset()}


def test_the_random_fallback_reaches_the_largest_size(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every draw gives the (seen) empty set and the sets are too many to list: only a random
    # set of every size from min_size to max_size finds {a, b, c}, the one left.
    sampler = BanditSampler(target="t", candidates=list("abc"), max_enumeration=1, seed=0)
    left = frozenset("abc")
    seen = {frozenset(s) for s in ("", "a", "b", "c", "ab", "ac", "bc")}
    losing = {t: (1.0, 1000.0) for t in "abc"}
    monkeypatch.setattr(sampler, "posterior", lambda study, **_: (losing, seen))
    assert sampler.propose(optuna.create_study()) == left


def test_a_draw_just_above_one_half_is_taken() -> None:
    sampler = BanditSampler(target="t", candidates=list("abcd"), seed=0)
    assert sampler._from_draw(np.array([0.55, 0.45, 0.1, 0.9])) == {"a", "d"}


def test_a_stored_set_naming_the_target_is_the_target_alone() -> None:
    sampler = BanditSampler(target="t", candidates=list("abcd"), seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.add_trial(_done(["t"], 0.1))  # the reference: the median (0.5) would make b a loss
    study.add_trial(_done(["a"], 0.6))
    study.add_trial(_done(["b"], 0.4))
    counts, _ = sampler.posterior(study)
    assert counts["a"] == counts["b"] == (2.0, 1.0)


def _flags_only(flags: dict[str, bool], state: optuna.trial.TrialState) -> Any:
    """Return a trial of ``flags`` over a and b with no stored set (its flags tell the set)."""
    dist = CategoricalDistribution([False, True])
    return optuna.trial.create_trial(
        params={f"aux/{t}": v for t, v in flags.items()},
        distributions={f"aux/{t}": dist for t in flags},
        value=0.5 if state == optuna.trial.TrialState.COMPLETE else None,
        state=state,
    )


def test_sets_with_include_tasks_are_seen_running_and_finished() -> None:
    sampler = BanditSampler(target="t", candidates=["a", "b", "x"], include=["x"], seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.add_trial(_flags_only({"a": True, "b": False}, optuna.trial.TrialState.COMPLETE))
    _, running = ask_subset(study, ["a", "b"])  # proposed, still running
    assert running != frozenset("a")
    assert sampler.posterior(study)[1] == {frozenset("a"), running}


def test_a_multi_objective_study_leaves_the_flags_to_the_inner_sampler() -> None:
    sampler = BanditSampler(target="t", candidates=["a", "b"], seed=0)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    for _ in range(3):
        trial, _ = ask_subset(study, ["a", "b"])
        study.tell(trial, [0.5, 0.5])
    assert len(study.trials) == 3
    assert sampler.infer_relative_search_space(study, study.trials[0]) == {}


@pytest.mark.parametrize("seed", range(4))
def test_a_partly_fixed_trial_is_not_its_own_seen_set(seed: int) -> None:
    # a is fixed True, b is proposed: {a} is the one valid set left (max_size 1), so b must be
    # False; counting the trial's own half-made set as seen makes it a repeat, maybe {a, b}.
    sampler = BanditSampler(target="t", candidates=["a", "b"], max_size=1, seed=seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for flags in ({"a": False, "b": False}, {"a": False, "b": True}):
        study.add_trial(_flags_only(flags, optuna.trial.TrialState.COMPLETE))
    study.enqueue_trial({"aux/a": True})
    trial = study.ask()
    assert trial.suggest_categorical("aux/a", [False, True]) is True
    assert trial.suggest_categorical("aux/b", [False, True]) is False


def test_a_failure_of_its_own_counts_though_marked_interrupted() -> None:
    # A reason of its own says the set itself failed: re-asking it would fail again.
    sampler = BanditSampler(target="t", candidates=["a", "b"], seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    failed = _flags_only({"a": True, "b": False}, optuna.trial.TrialState.FAIL)
    failed.user_attrs.update({INTERRUPTED_ATTR: True, FAILURE_ATTR: "out of memory"})
    study.add_trial(failed)
    assert sampler.posterior(study)[1] == {frozenset("a")}


def test_a_finished_trial_counts_its_flags_not_its_proposal() -> None:
    sampler = BanditSampler(target="t", candidates=["a", "b"], seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    done = _flags_only({"a": False, "b": True}, optuna.trial.TrialState.COMPLETE)
    done.system_attrs[PROPOSAL_ATTR] = ["a"]  # a flag set by hand won over the proposal
    study.add_trial(done)
    assert sampler.posterior(study)[1] == {frozenset("b")}


def test_reseeding_reseeds_the_inner_sampler_too(monkeypatch: pytest.MonkeyPatch) -> None:
    # Optuna reseeds a sampler per worker; an inner sampler left alone gives every worker the
    # same hyperparameters.
    inner = optuna.samplers.RandomSampler(seed=0)
    calls: list[None] = []
    monkeypatch.setattr(inner, "reseed_rng", lambda: calls.append(None))
    sampler = BanditSampler(target="t", candidates=["a", "b"], seed=0, independent_sampler=inner)
    sampler.reseed_rng()
    assert calls == [None]


def test_counted_trials_leaves_out_the_trial_being_sampled() -> None:
    sampler = BanditSampler(target="t", candidates=["a", "b"], seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for flags in ({"a": True, "b": False}, {"a": False, "b": True}):
        study.add_trial(_flags_only(flags, optuna.trial.TrialState.COMPLETE))
    trials = study.get_trials(deepcopy=False)
    assert [t.number for t in counted_trials(trials, exclude_trial=1)] == [0]
