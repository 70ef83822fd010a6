"""Task groupings under an inference budget: Standley et al. 2020's network-selection problem.

Given a score for every task in every candidate network (a task set trained together), choose
networks whose total cost fits the budget so that every task is served by one chosen network
that contains it, and the sum of the tasks' scores is best (Standley et al. 2020, ICML,
section 3.3).  Each task is served by the best chosen network for it.

* **Exact** (up to :data:`EXACT_MAX_CANDIDATES` candidate networks): a mixed-integer program
  solved by HiGHS through :func:`scipy.optimize.milp`: binary ``x_S`` (train network S),
  ``y_{t,S}`` (task t served by S), ``sum_S y_{t,S} = 1``, ``y_{t,S} <= x_S``,
  ``sum_S cost_S x_S <= budget``.  For fixed ``x`` the best ``y`` is an assignment, so ``y``
  may stay continuous.  HiGHS runs to a relative MIP gap of 0 (its default, 1e-4, stops at a
  grouping up to 0.01 % worse than the best and would still be called exact).
* **Heuristic** beyond that: the candidates are cut to the singles, the
  :data:`HEURISTIC_POOL` networks with the best average per-task improvement over the
  singles, the network of every task (when it is a candidate) and a greedy disjoint cover
  (largest networks first, by improvement): with every subset of up to k tasks a candidate
  (what ``affinity groups`` builds) that cover uses ``ceil(n / k)`` networks, so the pool
  holds a grouping within any budget the coverage check lets through; with other candidate
  lists a greedy cover can miss one (a budget the candidates meet only with a particular
  disjoint cover), and the error says the pool was searched, not that no grouping exists.
  The same program is solved exactly on the pool: exact for the pool, not for every network.

The budget is compared with a relative tolerance of :data:`BUDGET_RTOL` (``budget`` networks
of cost 1 buy ``floor(budget * (1 + BUDGET_RTOL))`` of them: 0.9999999999 buys none).  HiGHS
accepts a constraint broken by up to its feasibility tolerance (about 1e-6): a choice it
returns that costs more than that is cut off and the program solved again.

Scores come from measurements or from an estimator (:func:`predicted_network_scores`).
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_matrix, lil_matrix, vstack

from taskgraph.affinity.estimators.base import AffinityEstimator
from taskgraph.errors import ConfigError, TaskgraphError
from taskgraph.vocabulary import task_set_key

__all__ = [
    "BUDGET_RTOL",
    "EXACT_MAX_CANDIDATES",
    "HEURISTIC_POOL",
    "Grouping",
    "affordable_networks",
    "brute_force_networks",
    "candidate_task_sets",
    "predicted_network_scores",
    "select_networks",
]

EXACT_MAX_CANDIDATES = 1023  # every subset of 10 tasks
HEURISTIC_POOL = 400
#: relative tolerance of the budget: float noise (3 * 0.1 * 10) buys what it meant, no more
BUDGET_RTOL = 1e-12

NetworkScores = Mapping[frozenset[str], Mapping[str, float]]


@dataclass(frozen=True)
class Grouping:
    """Chosen networks, which network serves each task, and the total score."""

    networks: tuple[frozenset[str], ...]
    assignment: Mapping[str, frozenset[str]]
    total: float
    cost: float
    exact: bool
    method: str

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-ready dict (sets as sorted lists)."""
        return {
            "networks": [sorted(n) for n in self.networks],
            "assignment": {t: sorted(n) for t, n in sorted(self.assignment.items())},
            "total": self.total,
            "cost": self.cost,
            "exact": self.exact,
            "method": self.method,
        }


#: how many times a choice HiGHS returns over the budget (by its feasibility tolerance) is
#: cut off before the search gives up
_MAX_BUDGET_CUTS = 100


def _check_budget(budget: float) -> None:
    # NaN would reach HiGHS as a "model error"; infinity would overflow the count of networks.
    if not (budget > 0 and math.isfinite(budget)):
        raise ConfigError(f"`budget` must be a finite number > 0, but got {budget}")


def _budget_limit(budget: float) -> float:
    """Return ``budget`` plus its tolerance (:data:`BUDGET_RTOL`, relative, at least absolute)."""
    return budget + BUDGET_RTOL * max(1.0, abs(budget))


def affordable_networks(budget: float) -> int:
    """Return how many networks of cost 1 ``budget`` buys (:data:`BUDGET_RTOL`)."""
    _check_budget(budget)
    return math.floor(_budget_limit(budget))


def _validate(
    scores: NetworkScores,
    tasks: Sequence[str],
    budget: float,
    costs: Mapping[frozenset[str], float] | None,
) -> None:
    _check_budget(budget)
    for network, per_task in scores.items():
        missing = set(network) - set(per_task)
        if missing:
            raise ConfigError(f"network {task_set_key(network)} has no score for {sorted(missing)}")
        for task in sorted(set(network) & set(tasks)):  # only the scores a grouping sums
            if not math.isfinite(float(per_task[task])):
                raise ConfigError(
                    f"network {task_set_key(network)}: the score of {task} is "
                    f"{per_task[task]}, not a finite number"
                )
    for network, cost in (costs or {}).items():
        if not (isinstance(cost, numbers.Real) and math.isfinite(float(cost)) and cost >= 0):
            raise ConfigError(
                f"`costs`: network {task_set_key(network)} costs {cost}, not a finite number >= 0"
            )
    uncovered = set(tasks) - {t for network in scores for t in network}
    if uncovered:
        raise ConfigError(f"no candidate network contains {sorted(uncovered)}")


def select_networks(
    scores: NetworkScores,
    *,
    budget: float,
    tasks: Sequence[str] | None = None,
    costs: Mapping[frozenset[str], float] | None = None,
    higher_is_better: bool = False,
) -> Grouping:
    """Return the best grouping of ``tasks`` under ``budget`` (module docstring); cost 1 per network by default."""
    task_list = sorted(set(tasks) if tasks is not None else {t for n in scores for t in n})
    candidates = {n: s for n, s in scores.items() if set(n) & set(task_list)}
    _validate(candidates, task_list, budget, costs)
    n_candidates = len(candidates)
    exact = n_candidates <= EXACT_MAX_CANDIDATES

    def cost_of(network: frozenset[str]) -> float:
        return float((costs or {}).get(network, 1.0))

    if not exact:
        candidates = _heuristic_pool(candidates, task_list, higher_is_better, cost_of=cost_of)
    networks = list(candidates)
    cost = np.array([cost_of(n) for n in networks])
    limit = _budget_limit(budget)
    if all(float(c).is_integer() for c in cost):
        # Integral costs spend an integral budget: HiGHS's feasibility tolerance (about 1e-6)
        # would otherwise let a network costing 1 into a budget of 0.9999999999.
        limit = float(math.floor(limit))
    sign = -1.0 if higher_is_better else 1.0
    pairs = [(j, t) for j, n in enumerate(networks) for t in sorted(n) if t in task_list]
    n_x, n_y = len(networks), len(pairs)
    objective = np.concatenate(
        [np.zeros(n_x), [sign * float(candidates[networks[j]][t]) for j, t in pairs]]
    )
    matrix = lil_matrix((len(task_list) + n_y + 1, n_x + n_y))
    row_of_task = {t: i for i, t in enumerate(task_list)}
    for k, (j, t) in enumerate(pairs):
        matrix[row_of_task[t], n_x + k] = 1.0
        matrix[len(task_list) + k, n_x + k] = 1.0
        matrix[len(task_list) + k, j] = -1.0
    matrix[len(task_list) + n_y, :n_x] = cost
    lower = np.concatenate([np.ones(len(task_list)), np.full(n_y, -np.inf), [-np.inf]])
    upper = np.concatenate([np.ones(len(task_list)), np.zeros(n_y), [limit]])
    cuts: list[list[int]] = []
    while True:
        cut_rows = lil_matrix((len(cuts), n_x + n_y))
        for row, picked in enumerate(cuts):
            cut_rows[row, picked] = 1.0  # not all of these networks again
        result = milp(
            objective,
            constraints=LinearConstraint(
                vstack([matrix.tocsr(), csr_matrix(cut_rows)]).tocsr(),
                np.concatenate([lower, np.full(len(cuts), -np.inf)]),
                np.concatenate([upper, [len(cut) - 1.0 for cut in cuts]]),
            ),
            integrality=np.concatenate([np.ones(n_x), np.zeros(n_y)]),
            bounds=Bounds(0, 1),
            # Gap 0: "exact" is the best grouping, not one within HiGHS's default gap of 1e-4.
            options={"mip_rel_gap": 0.0},
        )
        if result.x is None:
            break
        picked = [j for j in range(n_x) if result.x[j] > 0.5]
        if float(cost[picked].sum()) <= limit:
            break
        if len(cuts) == _MAX_BUDGET_CUTS:
            raise TaskgraphError(
                f"HiGHS kept returning groupings above budget {budget:g} (within its "
                f"feasibility tolerance): {len(cuts)} cut off"
            )
        # Only the paid networks: free ones switched on beside them change no cost, and a cut
        # naming them would let HiGHS return the same paid networks with other free ones.
        cuts.append([j for j in picked if cost[j] > 0])
    if result.x is None and not exact:
        # The pool holds a disjoint cover of the tasks, so this is a budget that no disjoint
        # grouping meets (or HiGHS failed): not proof that no grouping of all candidates fits.
        raise TaskgraphError(
            f"the heuristic found no grouping of {len(task_list)} tasks within budget "
            f"{budget:g} among its {len(networks)} of {n_candidates} candidate networks "
            f"(the exact search is limited to {EXACT_MAX_CANDIDATES}): {result.message}"
        )
    if result.x is None:
        raise ConfigError(
            f"no grouping of {len(task_list)} tasks fits budget {budget}: {result.message}"
        )
    chosen = [networks[j] for j in range(n_x) if result.x[j] > 0.5]

    return _grouping(candidates, chosen, task_list, cost_of=cost_of,
                     higher_is_better=higher_is_better, exact=exact,
                     method="milp" if exact else f"milp-on-top-{HEURISTIC_POOL}")  # fmt: skip


def _grouping(
    scores: NetworkScores,
    chosen: Iterable[frozenset[str]],
    tasks: Sequence[str],
    *,
    cost_of: Callable[[frozenset[str]], float],
    higher_is_better: bool,
    exact: bool,
    method: str,
) -> Grouping:
    chosen = list(chosen)
    sign = 1.0 if higher_is_better else -1.0
    assignment: dict[str, frozenset[str]] = {}
    for task in tasks:
        serving = [n for n in chosen if task in n]
        assignment[task] = max(serving, key=lambda n, task=task: sign * scores[n][task])  # type: ignore[misc]
    # Networks that serve no task are dropped (they cost without helping).
    used = tuple(sorted({n for n in assignment.values()}, key=lambda n: (len(n), sorted(n))))
    total = float(sum(scores[assignment[t]][t] for t in tasks))
    cost = float(sum(cost_of(n) for n in used))
    return Grouping(
        networks=used, assignment=assignment, total=total, cost=cost, exact=exact, method=method
    )


def _heuristic_pool(
    scores: NetworkScores,
    tasks: Sequence[str],
    higher_is_better: bool,
    *,
    cost_of: Callable[[frozenset[str]], float] = lambda n: 1.0,
) -> dict[frozenset[str], Mapping[str, float]]:
    sign = 1.0 if higher_is_better else -1.0
    singles = {frozenset({t}): scores[frozenset({t})] for t in tasks if frozenset({t}) in scores}

    def improvement(network: frozenset[str]) -> float:
        gains = [
            sign * (scores[network][t] - singles[frozenset({t})][t])
            for t in sorted(network)  # name order: the mean must not follow the hash seed
            if frozenset({t}) in singles
        ]
        return float(np.mean(gains)) if gains else -math.inf

    others = sorted((n for n in scores if len(n) > 1), key=improvement, reverse=True)[
        :HEURISTIC_POOL
    ]
    pool = dict(singles)
    pool.update({n: scores[n] for n in others})
    everything = frozenset(tasks)
    if everything in scores:
        pool[everything] = scores[everything]
    pool.update({n: scores[n] for n in _greedy_cover(scores, tasks, improvement, cost_of)})
    return pool


def _greedy_cover(
    scores: NetworkScores,
    tasks: Sequence[str],
    improvement: Callable[[frozenset[str]], float],
    cost_of: Callable[[frozenset[str]], float],
) -> list[frozenset[str]]:
    """Return disjoint networks covering ``tasks``: most tasks per cost first, then the best
    improvement (so ``ceil(n / k)`` networks when every set of up to ``k`` tasks is a candidate)."""
    wanted = set(tasks)

    def key(network: frozenset[str]) -> tuple[float, float, list[str]]:
        cost = cost_of(network)
        per_cost = len(network & wanted) / cost if cost > 0 else math.inf
        return (-per_cost, -improvement(network), sorted(network))

    uncovered = set(wanted)
    cover: list[frozenset[str]] = []
    for network in sorted(scores, key=key):
        served = network & wanted
        if served and served <= uncovered:
            cover.append(network)
            uncovered -= served
            if not uncovered:
                break
    return cover


def brute_force_networks(
    scores: NetworkScores,
    *,
    budget: float,
    tasks: Sequence[str] | None = None,
    higher_is_better: bool = False,
) -> Grouping:
    """Return the best grouping by enumerating every combination of networks (tests; tiny inputs)."""
    task_list = sorted(set(tasks) if tasks is not None else {t for n in scores for t in n})
    networks = list(scores)
    best: tuple[float, tuple[frozenset[str], ...]] | None = None
    sign = -1.0 if higher_is_better else 1.0
    for size in range(1, affordable_networks(budget) + 1):
        for combo in itertools.combinations(networks, size):
            if set(task_list) - {t for n in combo for t in n}:
                continue
            total = sum(min(sign * scores[n][t] for n in combo if t in n) for t in task_list)
            if best is None or total < best[0] - 1e-12:
                best = (total, combo)
    if best is None:
        raise ConfigError(f"no grouping fits budget {budget}")
    return _grouping(scores, best[1], task_list, cost_of=lambda n: 1.0, higher_is_better=higher_is_better,
                     exact=True, method="brute-force")  # fmt: skip


def candidate_task_sets(
    tasks: Sequence[str], *, max_size: int | None = None
) -> list[frozenset[str]]:
    """Return every non-empty subset of ``tasks`` up to ``max_size`` members."""
    top = len(tasks) if max_size is None else min(max_size, len(tasks))
    return [
        frozenset(c)
        for size in range(1, top + 1)
        for c in itertools.combinations(sorted(tasks), size)
    ]


def predicted_network_scores(
    estimator: AffinityEstimator,
    baselines: Mapping[str, float],
    *,
    networks: Iterable[frozenset[str]],
    higher_is_better: Mapping[str, bool],
    measured: NetworkScores | None = None,
) -> dict[frozenset[str], dict[str, float]]:
    """Return per-task scores of ``networks``: measured where given, else baseline turned by the predicted gain.

    A network with measured scores of some of its members keeps those and predicts the others.

    A relative gain ``g`` turns baseline ``b`` into ``b + sign * g * |b|`` (``sign`` = +1 when
    higher is better), an absolute gain into ``b + sign * g``.
    """
    measured = measured or {}
    result: dict[frozenset[str], dict[str, float]] = {}
    relative = estimator.gain_kind == "relative"
    for network in networks:
        known = measured.get(network, {})
        per_task: dict[str, float] = {}
        for task in network:
            if task in known:
                per_task[task] = float(known[task])
                continue
            base = baselines[task]
            gain = estimator.predict(task, network)[0] if len(network) > 1 else 0.0
            sign = 1.0 if higher_is_better[task] else -1.0
            per_task[task] = base + sign * gain * (abs(base) if relative else 1.0)
        result[network] = per_task
    return result
