"""The bandit with ``search.auxiliaries.include``: the include-only set is an arm, not the baseline."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState

from taskgraph.search.bandit_sampler import BanditSampler
from taskgraph.search.space import BASELINE_ROLE, ROLE_ATTR, SUBSET_ATTR
from taskgraph.testing import run_fake_study

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPEC: dict[str, Any] = {
    "name": "bandit_include",
    "target": "tgt",
    "objective": {"metric": "accuracy"},
    "candidates": ["good", "meh", "bad", "worse"],
    "search": {
        "auxiliaries": {"max_size": 2, "include": ["good"], "exclude": ["bad", "worse"]},
    },
    "sampler": {"name": "bandit", "seed": 0},
    "budget": {"trials": 5},
}


def test_the_include_only_set_is_proposed_before_any_repeat(tmp_path: Any) -> None:
    # Valid sets: {good} and {good, meh}; the baseline (the target alone) is neither.
    url = run_fake_study(SPEC, f"sqlite:///{tmp_path / 'records.db'}")
    study = optuna.load_study(study_name="bandit_include", storage=url)
    searched = [
        frozenset(t.user_attrs[SUBSET_ATTR])
        for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
        if t.user_attrs.get(ROLE_ATTR) != BASELINE_ROLE and SUBSET_ATTR in t.user_attrs
    ]
    assert len(searched) >= 2, searched
    assert set(searched[:2]) == {frozenset({"good"}), frozenset({"good", "meh"})}, searched


def test_the_baseline_does_not_mark_the_include_only_set_as_seen() -> None:
    sampler = BanditSampler(target="t", candidates=["i", "a"], include=["i"], seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for subset, value, attrs in (
        ([], 0.5, {ROLE_ATTR: BASELINE_ROLE}),
        (["i", "a"], 0.7, {}),
    ):
        study.add_trial(
            optuna.trial.create_trial(
                params={"aux/a": "a" in subset},
                distributions={
                    "aux/a": optuna.distributions.CategoricalDistribution([False, True])
                },
                value=value,
                user_attrs={SUBSET_ATTR: subset, **attrs},
                state=TrialState.COMPLETE,
            )
        )
    counts, evaluated = sampler.posterior(study)
    # The baseline is the reference: {i, a} beat it, so a won once.
    assert counts == {"a": (2.0, 1.0)}
    assert evaluated == {frozenset({"a"})}
    assert sampler.propose(study) == frozenset()  # {i} alone, not a repeat of {i, a}


def test_the_include_tasks_take_their_room_in_max_size() -> None:
    # max_size 2 with one include task: one free auxiliary at most, whatever the draws.
    sampler = BanditSampler(target="t", candidates=["x", "a", "b", "c", "d"], include=["x"],
                            max_size=2, seed=0)  # fmt: skip
    study = optuna.create_study(direction="maximize", sampler=sampler)
    sizes = {len(sampler.propose(study)) for _ in range(50)}
    assert sizes == {1}
