"""The graph sampler past ``max_enumeration``: swap neighbours, best sets first, a bounded pool."""

from __future__ import annotations

import numpy as np
import optuna

from taskgraph.affinity.estimators.base import AffinityEstimator
from taskgraph.affinity.gains import GainTable
from taskgraph.affinity.records import ScoreRecord
from taskgraph.search.graph_sampler import GraphGuidedSampler

optuna.logging.set_verbosity(optuna.logging.WARNING)
FREE = [f"c{i:02d}" for i in range(18)]


def swaps_of(subset: frozenset[str]) -> set[frozenset[str]]:
    return {(subset - {out}) | {into} for out in subset for into in set(FREE) - subset}


class AdditiveEstimator(AffinityEstimator):
    """A set's gain is the sum of its tasks' known effects: a model whose ranking is known."""

    def __init__(self, effect: dict[str, float]) -> None:
        super().__init__()
        self.effect = effect

    def _fit(self, table: GainTable) -> None:
        pass

    def _predict(self, target: str, auxiliaries: frozenset[str]) -> tuple[float, float]:
        return sum(self.effect[t] for t in auxiliaries), 0.01


def run_trials(sampler: GraphGuidedSampler, n_trials: int) -> list[frozenset[str]]:
    """Return the sets proposed in ``n_trials`` trials answered by an additive objective."""
    effect = dict(zip(FREE, np.random.default_rng(0).normal(0, 0.05, len(FREE)), strict=True))
    study = optuna.create_study(direction="maximize", sampler=sampler)
    proposed = []
    for _ in range(n_trials):
        trial = study.ask()
        chosen = frozenset(t for t in FREE if trial.suggest_categorical(f"aux/{t}", [False, True]))
        study.tell(trial, 1.0 + sum(effect[t] for t in chosen))
        proposed.append(chosen)
    return proposed


def test_an_exact_size_pool_holds_the_swap_neighbours_of_a_proposed_set() -> None:
    # 3 of 18: 816 sets, past max_enumeration; no addition or removal keeps the size.
    sampler = GraphGuidedSampler(target="t", candidates=FREE, min_size=3, max_size=3,
                                 max_enumeration=200, seed=0)  # fmt: skip
    (first,) = run_trials(sampler, 1)
    pool = set(sampler._candidate_sets({first}))
    assert len(swaps_of(first)) == 45
    assert swaps_of(first) <= pool
    assert len(pool) == 200 and all(len(s) == 3 for s in pool)


def test_the_pool_never_exceeds_max_enumeration() -> None:
    # Sixteen proposed windows {c_i, c_i+1, c_i+2}: more neighbours than the cap of 200, both
    # for sizes 2..4 (18 additions/removals each, plus swaps) and for exactly 3 (45 swaps each).
    windows = [frozenset(FREE[i : i + 3]) for i in range(16)]
    for low, high in ((2, 4), (3, 3)):
        sampler = GraphGuidedSampler(target="t", candidates=FREE, min_size=low, max_size=high,
                                     max_enumeration=200, seed=0)  # fmt: skip
        for n in range(1, len(windows) + 1):
            pool = sampler._candidate_sets(set(windows[:n]))
            assert len(pool) == len(set(pool)) == 200
            assert all(low <= len(s) <= high for s in pool)


def test_past_the_cap_the_best_sets_neighbours_come_first() -> None:
    # Sixteen proposed windows, c10 and c11 far the best tasks: a window with both has the best
    # posterior mean and its neighbours are all kept, though by name the first four windows'
    # neighbours would fill the cap of 200.
    windows = [frozenset(FREE[i : i + 3]) for i in range(16)]
    effect = {t: (0.2 if t in ("c10", "c11") else 0.001 * int(t[1:])) for t in FREE}
    records = [ScoreRecord("t", frozenset({"t"}), 1.0)] + [
        ScoreRecord("t", frozenset({"t"}) | w, 1.0 + sum(effect[t] for t in w)) for w in windows
    ]
    sampler = GraphGuidedSampler(target="t", candidates=FREE, min_size=2, max_size=4,
                                 max_enumeration=200, seed=0)  # fmt: skip
    estimator = AdditiveEstimator(effect).fit(records)
    means, _ = estimator.predict_many("t", windows)
    best = windows[int(np.argmax(means))]
    assert best == windows[10]  # {c10, c11, c12}
    pool = set(sampler._candidate_sets(set(windows), estimator))
    neighbours = {best ^ {t} for t in FREE} | swaps_of(best)
    assert len(pool) == 200
    assert {s for s in neighbours if 2 <= len(s) <= 4} - set(windows) <= pool
    by_name = set(sampler._candidate_sets(set(windows)))
    assert not {s for s in neighbours if 2 <= len(s) <= 4} - set(windows) <= by_name
