"""The subset samplers built by hand check their arguments as a spec's options are checked:
one ConfigError naming the argument and its value, not a crash inside the first trial."""

from __future__ import annotations

from typing import Any

import optuna
import pytest

from taskgraph.errors import ConfigError
from taskgraph.search.bandit_sampler import BanditSampler
from taskgraph.search.graph_sampler import GraphGuidedSampler

BASE: dict[str, Any] = {"target": "t", "candidates": ["a", "b", "c"], "seed": 0}

SHARED = [
    ({"min_size": -1}, "`min_size` must be >= 0, but got -1"),
    ({"max_size": -1}, "`max_size` must be >= 0, but got -1"),
    ({"min_size": 1.5}, "`min_size` must be an integer, but got 1.5"),
    ({"max_enumeration": 0}, "`max_enumeration` must be >= 1, but got 0"),
    ({"max_enumeration": True}, "`max_enumeration` must be an integer, but got True"),
    (
        {"candidates": "ab,cd"},
        "`candidates` must be a list of task names, but got the string 'ab,cd'",
    ),
    ({"include": "a"}, "`include` must be a list of task names, but got the string 'a'"),
    ({"exclude": "a"}, "`exclude` must be a list of task names, but got the string 'a'"),
    ({"candidates": ["a", 3]}, "`candidates` must hold task names, but got 3"),
    ({"include": ["z"]}, "`include` names tasks that are not candidates: 'z'"),
    ({"target": ""}, "`target` must be a task name, but got ''"),
]


@pytest.mark.parametrize(("cls"), [GraphGuidedSampler, BanditSampler])
@pytest.mark.parametrize(("update", "message"), SHARED)
def test_bad_arguments_are_refused_by_name(cls: type, update: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        cls(**{**BASE, **update})
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"n_startup_trials": -1}, "`n_startup_trials` must be >= 0, but got -1"),
        ({"n_startup_trials": "2"}, "`n_startup_trials` must be an integer, but got '2'"),
    ],
)
def test_graph_sampler_checks_its_own_counts(update: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        GraphGuidedSampler(**{**BASE, **update})


def test_bandit_sampler_checks_max_redraws() -> None:
    with pytest.raises(ConfigError, match="`max_redraws` must be >= 0, but got -1"):
        BanditSampler(**{**BASE, "max_redraws": -1})


@pytest.mark.parametrize("cls", [GraphGuidedSampler, BanditSampler])
def test_the_lowest_allowed_values_still_run_a_study(cls: type) -> None:
    # max_enumeration=1 (the bound a spec allows too), an included task, the target listed.
    options: dict[str, Any] = {
        "candidates": ["a", "b", "c", "t"],
        "include": ["a"],
        "min_size": 0,
        "max_enumeration": 1,
    }
    if cls is GraphGuidedSampler:
        options["n_startup_trials"] = 0
    sampler = cls(**{**BASE, **options})
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="maximize", sampler=sampler)

    def objective(trial: optuna.Trial) -> float:
        return float(sum(trial.suggest_categorical(f"aux/{t}", [False, True]) for t in "bc"))

    study.optimize(objective, n_trials=4)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
