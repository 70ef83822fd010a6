"""The AutoSeM-style bandit: Beta-Bernoulli posteriors from trials, proposals within the constraints."""

from __future__ import annotations

import itertools

import numpy as np
import optuna
import pytest

from taskgraph.errors import ConfigError
from taskgraph.search.bandit_sampler import BanditSampler
from taskgraph.search.benchmarking import run_search
from taskgraph.search.space import BASELINE_ROLE, ROLE_ATTR
from tests.search.test_graph_sampler import SOURCES, additive_table, ask_subset

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_rewards_are_wins_over_the_baseline_trial() -> None:
    sampler = BanditSampler(target="t", candidates=["a", "b", "c"], seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.enqueue_trial({"aux/a": False, "aux/b": False, "aux/c": False},
                        user_attrs={ROLE_ATTR: BASELINE_ROLE})  # fmt: skip
    trial, _ = ask_subset(study, ["a", "b", "c"])
    study.tell(trial, 0.5)
    for flags, value in (((True, True, False), 0.7), ((True, False, False), 0.6),
                         ((False, True, True), 0.4)):  # fmt: skip
        study.enqueue_trial({f"aux/{t}": f for t, f in zip("abc", flags, strict=True)})
        trial, _ = ask_subset(study, ["a", "b", "c"])
        study.tell(trial, value)
    counts, evaluated = sampler.posterior(study)
    # a won twice; b won once and lost once; c lost once (prior Beta(1, 1))
    assert counts == {"a": (3.0, 1.0), "b": (2.0, 2.0), "c": (1.0, 2.0)}
    assert evaluated == {frozenset(), frozenset("ab"), frozenset("a"), frozenset("bc")}


def test_proposals_respect_size_bounds_and_are_not_repeated() -> None:
    sampler = BanditSampler(target="t", candidates=list("abcde"), min_size=2, max_size=3, seed=0)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    rng = np.random.default_rng(0)
    seen = []
    for _ in range(12):
        trial, chosen = ask_subset(study, list("abcde"))
        assert 2 <= len(chosen) <= 3
        seen.append(chosen)
        study.tell(trial, float(rng.normal()))
    assert len(set(seen)) == len(seen)
    with pytest.raises(ConfigError, match="no subset fits"):
        BanditSampler(target="t", candidates=["a"], min_size=2)


def test_one_arm_per_trial_with_max_size_one_finds_every_single() -> None:
    table = additive_table(seed=2)
    runs = [run_search(table, "t", "bandit", seed=s, max_size=1) for s in range(4)]
    # 5 singles plus the baseline: the best single is reached within them, never asked twice
    assert all(r.found and r.trials == r.distinct <= 1 + len(SOURCES) for r in runs)


@pytest.mark.parametrize("seed", range(5))
def test_the_last_unevaluated_set_is_proposed_before_any_repeat(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    free = [f"c{i}" for i in range(10)]
    every = {frozenset(c) for k in range(len(free) + 1) for c in itertools.combinations(free, k)}
    left = frozenset({"c1", "c4", "c6"})
    sampler = BanditSampler(target="t", candidates=free, min_size=1, seed=seed)
    seen = every - {left, frozenset()}
    # 1022 of the 1023 valid sets evaluated: random draws all but never find the last one.
    uniform = {t: (1.0, 1.0) for t in free}
    monkeypatch.setattr(sampler, "posterior", lambda study, **_: (uniform, seen))
    assert sampler.propose(optuna.create_study()) == left
    # Once every valid set is evaluated, a repeat is all there is.
    everything = every - {frozenset()}
    monkeypatch.setattr(sampler, "posterior", lambda study, **_: (uniform, everything))
    assert sampler.propose(optuna.create_study()) in everything


def test_pruned_failed_and_running_sets_are_not_proposed_again() -> None:
    # A set the study has tried in any state is seen: proposing a pruned one again while
    # unseen ones remain spends a trial on an answer the study already has.
    sampler = BanditSampler(target="t", candidates=["a", "b", "c"], max_size=1, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    states = {
        "a": optuna.trial.TrialState.PRUNED,
        "b": optuna.trial.TrialState.FAIL,
        "c": None,  # still running
    }
    for task, state in states.items():
        study.enqueue_trial({f"aux/{t}": t == task for t in "abc"})
        trial, _ = ask_subset(study, ["a", "b", "c"])
        if state is not None:
            study.tell(trial, state=state)
    _, seen = sampler.posterior(study)
    assert seen == {frozenset("a"), frozenset("b"), frozenset("c")}
    # Every single has been tried: the empty set is the one valid set not seen yet.
    _, chosen = ask_subset(study, ["a", "b", "c"])
    assert set(chosen) == set(), chosen
