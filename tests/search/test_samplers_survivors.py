"""The graph-guided and bandit samplers' documented contract, where the other tests left it
open: the target among the candidates or include tasks, running trials with include tasks,
refits, fallbacks, expected improvement, the start-up prior, rewards and seeds."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import optuna
import pytest

from taskgraph.affinity.records import ScoreRecord
from taskgraph.errors import ConfigError
from taskgraph.search.bandit_sampler import BanditSampler
from taskgraph.search.graph_sampler import (
    GraphGuidedSampler,
    popular_source_scores,
    startup_order,
)
from taskgraph.search.space import BASELINE_ROLE, ROLE_ATTR
from taskgraph.testing.queueing import finished_subset_trial
from tests.search.test_graph_sampler import _FixedModel, ask_subset

optuna.logging.set_verbosity(optuna.logging.WARNING)


def drive(sampler: optuna.samplers.BaseSampler, tasks: list[str], n: int) -> list[Any]:
    """Return the sets and learning rates ``n`` trials are given (larger sets score higher)."""
    study = optuna.create_study(direction="maximize", sampler=sampler)
    asked = []
    for _ in range(n):
        trial, chosen = ask_subset(study, tasks)
        lr = trial.suggest_float("lr", 1e-5, 1e-2, log=True)
        asked.append((chosen, lr))
        study.tell(trial, 1.0 + 0.1 * len(chosen) + lr)
    return asked


# ---------------------------------------------------------------- graph: the target itself


def test_the_target_named_in_include_takes_no_room_in_max_size() -> None:
    # The sampler accepts the target in include; it is no auxiliary of itself.
    sampler = GraphGuidedSampler(target="t", candidates=["a", "b"], include=["t"], max_size=1,
                                 seed=0)  # fmt: skip
    study = optuna.create_study(direction="maximize", sampler=sampler)
    seen = []
    for _ in range(3):
        trial, chosen = ask_subset(study, ["a", "b"])
        seen.append(chosen)
        study.tell(trial, 1.0 + 0.1 * len(chosen))
    assert set(seen) == {frozenset(), frozenset("a"), frozenset("b")}


def test_the_target_listed_among_the_candidates_is_never_proposed() -> None:
    sampler = GraphGuidedSampler(target="t", candidates=["a", "b", "t"], max_repeats=1, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    seen = []
    for _ in range(4):
        trial, chosen = ask_subset(study, ["a", "b"])
        seen.append(chosen)
        study.tell(trial, 1.0 + 0.1 * len(chosen))
    # {}, {a}, {b}, {a, b}: each once, then nothing is left.
    assert len(set(seen)) == 4 and sampler.exhausted(study)


# ---------------------------------------------------------------- graph: counting and fits


def test_running_trials_with_include_tasks_count_as_proposed() -> None:
    # Trials run in parallel see each other's sets, include tasks or not.
    sampler = GraphGuidedSampler(target="t", candidates=["x", "a", "b"], include=["x"],
                                 max_repeats=1, seed=0)  # fmt: skip
    study = optuna.create_study(direction="maximize", sampler=sampler)
    running = [ask_subset(study, ["a", "b"])[1] for _ in range(4)]
    assert len(set(running)) == 4, running
    assert sampler.exhausted(study)


def test_the_model_is_refitted_when_a_trial_finishes() -> None:
    sampler = GraphGuidedSampler(target="t", candidates=["a", "b", "c"], n_startup_trials=1,
                                 seed=0)  # fmt: skip
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.add_trial(finished_subset_trial([], 1.0))
    study.add_trial(finished_subset_trial(["a"], 1.1))
    sampler.propose(study)
    first = sampler.last_estimator
    study.add_trial(finished_subset_trial(["b"], 0.5))
    sampler.propose(study)
    assert first is not None and sampler.last_estimator is not first
    # The new trial's evidence reaches the model: b now predicts a loss.
    assert sampler.last_estimator.predict("t", frozenset({"t", "b"}))[0] < 0


def test_a_zero_baseline_falls_back_to_absolute_gains() -> None:
    # Relative gains are undefined over a baseline of 0.0: the model keeps the order instead.
    sampler = GraphGuidedSampler(target="t", candidates=["a", "b", "c"], seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for subset, value in (([], 0.0), (["a"], 0.2), (["b"], -0.2), (["c"], 0.05)):
        study.add_trial(finished_subset_trial(subset, value))
    assert len(sampler.propose(study)) == 2
    assert sampler.last_estimator is not None
    assert sampler.last_estimator.predict("t", frozenset({"t", "a"}))[0] > 0


def test_without_a_model_the_set_is_drawn_at_random() -> None:
    # Only the baseline is known (one start-up trial): no gain to fit, a seeded random set,
    # not the first set listed for every seed.
    chosen = set()
    for seed in range(8):
        sampler = GraphGuidedSampler(target="t", candidates=["a", "b", "c"], n_startup_trials=1,
                                     seed=seed)  # fmt: skip
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.add_trial(finished_subset_trial([], 1.0))
        chosen.add(sampler.propose(study))
        assert sampler.last_estimator is None
    assert len(chosen) > 1


def test_expected_improvement_is_over_the_best_set_seen_not_the_worst(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sampler = GraphGuidedSampler(target="t", candidates=["a", "b", "c"], max_size=1,
                                 acquisition="ei", n_startup_trials=0, seed=0)  # fmt: skip
    model = _FixedModel({
        frozenset(): (0.2, 0.0),
        frozenset({"c"}): (0.6, 0.0),  # the best set seen
        frozenset({"a"}): (0.7, 0.01),  # over 0.6: 0.10 (over the worst, 0.2: 0.50)
        frozenset({"b"}): (0.2, 1.0),  # over 0.6: 0.23 (over 0.2: 0.40)
    })  # fmt: skip
    monkeypatch.setattr(sampler, "_fit", lambda records: model)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.add_trial(finished_subset_trial([], 0.2))
    study.add_trial(finished_subset_trial(["c"], 0.6))
    assert sampler.propose(study) == frozenset({"b"})


# ---------------------------------------------------------------- graph: the start-up prior


def test_records_of_other_targets_do_not_skip_the_start_up_singles() -> None:
    # Only the target's own gain records make it known; other targets' records order the
    # singles (a helped u most, c hurt it) but the target's start-up still tries each alone.
    records = [
        ScoreRecord(task="u", task_set=frozenset(s), value=v, higher_is_better=True, split="val")
        for s, v in (({"u"}, 1.0), ({"u", "a"}, 1.3), ({"u", "b"}, 1.0), ({"u", "c"}, 0.9))
    ]
    sampler = GraphGuidedSampler(target="t", candidates=["a", "b", "c"], prior_records=records,
                                 seed=0)  # fmt: skip
    study = optuna.create_study(direction="maximize", sampler=sampler)
    seen = []
    for _ in range(4):
        trial, chosen = ask_subset(study, ["a", "b", "c"])
        seen.append(chosen)
        study.tell(trial, 1.0)
    assert seen == [frozenset(), frozenset("a"), frozenset("b"), frozenset("c")]
    assert sampler.last_estimator is None  # no model during the start-up


def test_a_score_that_is_not_finite_counts_as_no_score() -> None:
    for seed in range(16):
        order = startup_order(["a", "b", "c"], target="t", scores={"a": math.nan, "b": 1.0},
                              rng=np.random.default_rng(seed))  # fmt: skip
        assert order[0] == "b", order


def test_given_scores_win_over_the_popular_source_prior() -> None:
    records = [
        ScoreRecord(task="u", task_set=frozenset(s), value=v, higher_is_better=True, split="val")
        for s, v in (({"u"}, 1.0), ({"u", "a"}, 1.5), ({"u", "b"}, 0.5))
    ]
    order = startup_order(["a", "b"], target="t", prior_records=records, scores={"b": 1.0},
                          rng=np.random.default_rng(0))  # fmt: skip
    assert order == ["b", "a"]


def test_the_popular_source_prior_leaves_out_the_targets_own_records() -> None:
    records = [
        ScoreRecord(task=o, task_set=frozenset(s), value=v, higher_is_better=True, split="val")
        for o, s, v in (
            ("t", {"t"}, 1.0),
            ("t", {"t", "a"}, 2.0),
            ("u", {"u"}, 1.0),
            ("u", {"u", "b"}, 1.1),
        )
    ]
    scores = popular_source_scores(["a", "b"], target="t", prior_records=records)
    assert scores == {"b": pytest.approx(0.1)}


def test_the_popular_source_prior_is_a_relative_gain() -> None:
    records = [
        ScoreRecord(task="u", task_set=frozenset(s), value=v, higher_is_better=True, split="val")
        for s, v in (({"u"}, 2.0), ({"u", "a"}, 2.2))
    ]
    scores = popular_source_scores(["a"], target="t", prior_records=records)
    assert scores == {"a": pytest.approx(0.1)}  # +10 %, not +0.2


# ---------------------------------------------------------------- seeds


@pytest.mark.parametrize(
    "make",
    [
        lambda seed: GraphGuidedSampler(target="t", candidates=["a", "b", "c", "d"], seed=seed),
        lambda seed: BanditSampler(target="t", candidates=["a", "b", "c", "d"], seed=seed),
    ],
    ids=["graph", "bandit"],
)
def test_one_seed_gives_the_same_sets_and_the_same_other_parameters(make: Any) -> None:
    first = drive(make(3), ["a", "b", "c", "d"], 8)
    assert drive(make(3), ["a", "b", "c", "d"], 8) == first
    assert len({lr for _, lr in first}) > 1


# ---------------------------------------------------------------- bandit


def test_bandit_refuses_a_prior_of_zero() -> None:
    with pytest.raises(ConfigError, match="`alpha` and `beta` must be > 0, but got 0"):
        BanditSampler(target="t", candidates=["a", "b"], alpha=0.0)
    with pytest.raises(ConfigError, match="must be > 0"):
        BanditSampler(target="t", candidates=["a", "b"], beta=0.0)


def test_before_the_baseline_finishes_the_median_is_the_reference() -> None:
    sampler = BanditSampler(target="t", candidates=["a", "b", "c"], seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for subset, value in ((["a"], 0.7), (["b"], 0.5), (["c"], 0.3)):
        study.add_trial(finished_subset_trial(subset, value))
    counts, _ = sampler.posterior(study)
    # The median, 0.5: a beat it; b only matched it; c trailed it.
    assert counts == {"a": (2.0, 1.0), "b": (1.0, 2.0), "c": (1.0, 2.0)}


def test_matching_the_baseline_is_no_win() -> None:
    sampler = BanditSampler(target="t", candidates=["a", "b", "c"], seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.add_trial(finished_subset_trial([], 0.5, **{ROLE_ATTR: BASELINE_ROLE}))
    study.add_trial(finished_subset_trial(["a"], 0.5))
    counts, _ = sampler.posterior(study)
    assert counts["a"] == (1.0, 2.0)


def test_a_lower_value_wins_when_the_study_minimizes() -> None:
    sampler = BanditSampler(target="t", candidates=["a", "b", "c"], seed=0)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    study.add_trial(finished_subset_trial([], 0.5, **{ROLE_ATTR: BASELINE_ROLE}))
    study.add_trial(finished_subset_trial(["a"], 0.4))
    study.add_trial(finished_subset_trial(["b"], 0.6))
    counts, _ = sampler.posterior(study)
    assert counts == {"a": (2.0, 1.0), "b": (1.0, 2.0), "c": (1.0, 1.0)}


@pytest.mark.parametrize("seed", range(6))
def test_with_exactly_max_enumeration_sets_the_last_one_left_is_listed(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Eight valid sets and max_enumeration=8: they are listed, so no repeat while one is left.
    sampler = BanditSampler(target="t", candidates=["a", "b", "c"], max_enumeration=8,
                            max_redraws=0, seed=seed)  # fmt: skip
    left = frozenset({"a", "c"})
    every = {frozenset(s) for s in ([], "a", "b", "c", "ab", "ac", "bc", "abc")}
    uniform = {t: (1.0, 1.0) for t in "abc"}
    monkeypatch.setattr(sampler, "posterior", lambda study, **_: (uniform, every - {left}))
    assert sampler.propose(optuna.create_study()) == left


@pytest.mark.parametrize("seed", range(6))
def test_a_running_baseline_does_not_mark_the_include_only_set_as_seen(seed: int) -> None:
    # The enqueued baseline (the target alone, every flag False) is running: it is the
    # reference, not the include-only set {i}, which is the one valid set not tried yet.
    sampler = BanditSampler(target="t", candidates=["i", "a"], include=["i"], seed=seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.add_trial(finished_subset_trial(["i", "a"], 0.7, flags="a"))
    study.enqueue_trial({"aux/a": False}, user_attrs={ROLE_ATTR: BASELINE_ROLE})
    study.ask()
    _, evaluated = sampler.posterior(study)
    assert evaluated == {frozenset({"a"})}
    assert sampler.propose(study) == frozenset()


def test_bandit_refuses_more_include_tasks_than_max_size() -> None:
    # A spec refuses it ("include lists 1 tasks but max_size is 0"), and so does the graph
    # sampler ("no subset fits ..."); so does the bandit (it once clamped the room left by the
    # include tasks at 0 and proposed {x} under max_size=0).
    with pytest.raises(ConfigError, match="no subset fits"):
        BanditSampler(target="t", candidates=["x", "a"], include=["x"], max_size=0)
