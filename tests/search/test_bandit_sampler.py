"""The AutoSeM-style bandit: Beta-Bernoulli posteriors from trials, proposals within the constraints."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import optuna
import pytest

from taskgraph.errors import ConfigError
from taskgraph.search.bandit_sampler import BanditSampler
from taskgraph.search.benchmarking import run_search
from taskgraph.search.space import BASELINE_ROLE, ROLE_ATTR
from taskgraph.testing.queueing import finished_subset_trial
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


def test_a_non_finite_value_is_no_win_and_no_loss() -> None:
    sampler = BanditSampler(target="t", candidates=["a", "b", "c"], seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.add_trial(finished_subset_trial([], 0.5, **{ROLE_ATTR: BASELINE_ROLE}))
    study.add_trial(finished_subset_trial(["a"], math.inf))
    study.add_trial(finished_subset_trial(["b"], -math.inf))
    study.add_trial(finished_subset_trial(["c"], 0.6))
    counts, evaluated = sampler.posterior(study)
    assert counts == {"a": (1.0, 1.0), "b": (1.0, 1.0), "c": (2.0, 1.0)}
    assert evaluated == {frozenset(), frozenset("a"), frozenset("b"), frozenset("c")}


def test_the_first_baseline_trial_is_the_reference() -> None:
    sampler = BanditSampler(target="t", candidates=["a", "b", "c"], seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.add_trial(finished_subset_trial([], 0.5, **{ROLE_ATTR: BASELINE_ROLE}))
    study.add_trial(finished_subset_trial(["a"], 0.7))
    study.add_trial(
        finished_subset_trial([], 0.9)
    )  # the target alone again (another configuration)
    counts, _ = sampler.posterior(study)
    assert counts["a"] == (2.0, 1.0)  # 0.7 beat the first baseline's 0.5


def test_a_draw_takes_the_largest_thetas_first() -> None:
    tasks = ["t0", "t1", "t2", "t3"]

    def draw(theta: list[float], *, min_size: int = 0, max_size: int | None = None) -> Any:
        sampler = BanditSampler(target="t", candidates=tasks, min_size=min_size,
                                max_size=max_size, seed=0)  # fmt: skip
        return sampler._from_draw(np.array(theta))

    # Three draws above 1/2, room for two: the two largest.
    assert draw([0.9, 0.8, 0.6, 0.1], max_size=2) == {"t0", "t1"}
    # One above 1/2, three needed: filled with the next largest, t3 then t1.
    assert draw([0.9, 0.2, 0.1, 0.4], min_size=3) == {"t0", "t3", "t1"}
    # One arm per trial: the largest draw, whatever its value.
    assert draw([0.2, 0.1, 0.4, 0.3], max_size=1) == {"t2"}


def test_past_the_redraws_one_arm_is_the_best_posterior_mean_not_yet_tried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sampler = BanditSampler(target="t", candidates=["a", "b", "c"], max_size=1, max_redraws=0,
                            seed=0)  # fmt: skip
    counts = {"a": (1.0, 5.0), "b": (5.0, 1.0), "c": (3.0, 3.0)}
    monkeypatch.setattr(sampler, "posterior", lambda study, **_: (counts, set()))
    assert sampler.propose(optuna.create_study()) == {"b"}
    monkeypatch.setattr(sampler, "posterior", lambda study, **_: (counts, {frozenset("b")}))
    assert sampler.propose(optuna.create_study()) == {"c"}


def test_past_the_redraws_a_set_left_is_chosen_at_random(monkeypatch: pytest.MonkeyPatch) -> None:
    uniform = {t: (1.0, 1.0) for t in "abc"}
    chosen = set()
    for seed in range(8):
        sampler = BanditSampler(target="t", candidates=["a", "b", "c"], max_redraws=0, seed=seed)
        monkeypatch.setattr(sampler, "posterior", lambda study, **_: (uniform, set()))
        chosen.add(sampler.propose(optuna.create_study()))
    assert len(chosen) > 1  # not the first set left (the empty one) for every seed
