"""A trial that ``enqueue_trial`` fixes some auxiliary flags of gets a set around them that fits
the size bounds, so the search space's repair has nothing to trim (or add) and cannot undo a
fixed flag.

Before, the subset samplers proposed as if nothing were fixed and the fixed flags were laid
over the proposal: one fixed task on top of a proposal at ``max_size`` gave a set one too large
(the repair then dropped a task by hash, the fixed one as likely as not), and one task fixed out
of a proposal at ``min_size`` one too small (the repair could add the fixed-out task back).
"""

from __future__ import annotations

from collections.abc import Callable

import optuna
import pytest

from taskgraph.search.bandit_sampler import BanditSampler
from taskgraph.search.graph_sampler import GraphGuidedSampler
from taskgraph.search.subset_sampler import PROPOSAL_ATTR, SubsetSampler

optuna.logging.set_verbosity(optuna.logging.WARNING)
CANDIDATES = ("a", "b", "c", "d")
SEEDS = range(6)

Make = Callable[..., SubsetSampler]


def graph(seed: int, **sizes: int) -> SubsetSampler:
    return GraphGuidedSampler(target="t", candidates=list(CANDIDATES), seed=seed, **sizes)


def bandit(seed: int, **sizes: int) -> SubsetSampler:
    return BanditSampler(target="t", candidates=list(CANDIDATES), seed=seed, **sizes)


def objective(trial: optuna.Trial) -> float:
    chosen = [t for t in CANDIDATES if trial.suggest_categorical(f"aux/{t}", [False, True])]
    return float(len(chosen)) + 0.1 * ("b" in chosen)


def sampled_sets(make: Make, fixed: dict[str, bool], **sizes: int) -> list[frozenset[str]]:
    """Return, per seed, the set sampled for a trial enqueued with ``fixed`` after 6 trials
    the sampler proposed itself."""
    sets = []
    for seed in SEEDS:
        study = optuna.create_study(direction="maximize", sampler=make(seed, **sizes))
        study.optimize(objective, n_trials=6)
        study.enqueue_trial(fixed)
        study.optimize(objective, n_trials=1)
        last = study.trials[-1]
        chosen = frozenset(t for t in CANDIDATES if last.params[f"aux/{t}"])
        assert last.system_attrs[PROPOSAL_ATTR] == sorted(chosen)  # what it trains is recorded
        sets.append(chosen)
    return sets


@pytest.mark.parametrize("make", [graph, bandit], ids=["graph", "bandit"])
def test_a_task_fixed_in_stays_within_max_size(make: Make) -> None:
    sets = sampled_sets(make, {"aux/c": True}, max_size=2)
    assert all("c" in s and len(s) <= 2 for s in sets), sets


@pytest.mark.parametrize("make", [graph, bandit], ids=["graph", "bandit"])
def test_a_task_fixed_out_still_reaches_min_size(make: Make) -> None:
    sets = sampled_sets(make, {"aux/b": False}, min_size=2, max_size=2)
    assert all("b" not in s and len(s) == 2 for s in sets), sets


@pytest.mark.parametrize("make", [graph, bandit], ids=["graph", "bandit"])
def test_only_flags_not_fixed_are_changed(make: Make) -> None:
    # Two tasks fixed in at max_size 2: the proposal's own tasks all give way to them.
    sets = sampled_sets(make, {"aux/a": True, "aux/d": True}, max_size=2)
    assert sets == [frozenset({"a", "d"})] * len(SEEDS)
