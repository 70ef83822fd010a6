"""The subset samplers under parallel trials: a set counts as proposed from the moment it is
proposed, not only once the objective has suggested its flags (``study.optimize(...,
n_jobs=4)``, several drivers on one storage)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import optuna
import pytest

from taskgraph.search.bandit_sampler import BanditSampler
from taskgraph.search.graph_sampler import GraphGuidedSampler
from taskgraph.search.subset_sampler import SubsetSampler

CANDIDATES = ["a", "b", "c", "d"]

SAMPLERS: dict[str, Callable[[], SubsetSampler]] = {
    "graph": lambda: GraphGuidedSampler(target="t", candidates=CANDIDATES, max_size=1, seed=0),
    "bandit": lambda: BanditSampler(target="t", candidates=CANDIDATES, max_size=1, seed=0),
}


@pytest.fixture(autouse=True)
def _quiet() -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)


def _flags(trial: optuna.Trial, candidates: list[str] = CANDIDATES) -> frozenset[str]:
    return frozenset(t for t in candidates if trial.suggest_categorical(f"aux/{t}", [False, True]))


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_trials_sampled_before_either_suggests_its_flags_get_different_sets(name: str) -> None:
    # Each trial suggests another parameter first: that samples its set (sample_relative),
    # and the flags come later.  The other trials must see it in between.
    study = optuna.create_study(direction="maximize", sampler=SAMPLERS[name]())
    trials = [study.ask() for _ in range(4)]
    for trial in trials:
        trial.suggest_float("lr", 1e-4, 1e-2, log=True)
    sets = [_flags(trial) for trial in trials]
    assert len(set(sets)) == 4, sets


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_drivers_sharing_one_storage_see_each_others_proposals(name: str, tmp_path) -> None:
    # Two Study objects on one SQLite file stand for two driver processes.
    url = f"sqlite:///{tmp_path / 'study.db'}"
    first = optuna.create_study(
        study_name="s", storage=url, direction="maximize", sampler=SAMPLERS[name]()
    )
    second = optuna.load_study(study_name="s", storage=url, sampler=SAMPLERS[name]())
    one = first.ask()
    one.suggest_float("lr", 1e-4, 1e-2, log=True)  # its set is chosen, no flag stored yet
    two = second.ask()
    assert _flags(two) != _flags(one)


def test_a_trial_enqueued_with_its_flags_counts_as_its_set_before_it_suggests_them() -> None:
    # Start-up order for one task at most: the empty set, then each task alone.
    sampler = GraphGuidedSampler(target="t", candidates=["a", "b"], max_size=1, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.enqueue_trial({"aux/a": False, "aux/b": False})
    fixed = study.ask()
    fixed.suggest_float("lr", 1e-4, 1e-2, log=True)  # running: its flags are fixed, not stored
    other = study.ask()
    assert _flags(other, ["a", "b"]) != frozenset()
    assert _flags(fixed, ["a", "b"]) == frozenset()


@pytest.mark.parametrize("name", ["graph", "bandit"])
def test_parallel_optimize_proposes_every_set_once_before_any_repeat(name: str) -> None:
    # 5 candidates, at most 2: 16 valid sets; 16 trials on 4 threads must try each once.
    candidates = ["a", "b", "c", "d", "e"]
    sampler: SubsetSampler
    if name == "graph":
        sampler = GraphGuidedSampler(
            target="t", candidates=candidates, max_size=2, max_repeats=1, seed=0
        )
    else:
        sampler = BanditSampler(target="t", candidates=candidates, max_size=2, seed=0)

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("lr", 1e-4, 1e-2, log=True)  # samples the set
        time.sleep(0.01)  # the window in which another thread proposes
        chosen = [t for t in candidates if trial.suggest_categorical(f"aux/{t}", [False, True])]
        return 0.5 + 0.05 * len(chosen) - 0.1 * ("e" in chosen)

    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=16, n_jobs=4)
    counts = Counter(
        frozenset(k[4:] for k, v in t.params.items() if k.startswith("aux/") and v)
        for t in study.trials
    )
    assert len(counts) == 16 and set(counts.values()) == {1}, counts
    if isinstance(sampler, GraphGuidedSampler):
        assert sampler.exhausted(study)
