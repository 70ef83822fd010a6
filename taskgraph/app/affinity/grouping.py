"""Which tasks to train together under an inference budget (``taskgraph affinity groups``).

:func:`grouping_report` fits an estimator, predicts the per-task scores of each candidate
network (measured ones where they exist, of one model family) and selects the networks that
serve every task best within the budget; :func:`groupings` returns the same without notes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from taskgraph.affinity.grouping import (
    Grouping,
    affordable_networks,
    candidate_task_sets,
    predicted_network_scores,
    select_networks,
)
from taskgraph.app.affinity.fitting import (
    _baseline_notes,
    _explained,
    fit_estimator,
)
from taskgraph.app.affinity.records import PathLike, _known_tasks
from taskgraph.app.affinity.scores import _measured_scores, _score_family, _within
from taskgraph.app.arguments import integer, names, number
from taskgraph.errors import ConfigError, option_name

__all__ = ["GroupingReport", "grouping_report", "groupings"]


@dataclass(frozen=True)
class GroupingReport:
    """The grouping chosen under a budget, the scores it was chosen from, and caveats.

    ``scores``: the predicted (or measured) per-task scores of each candidate network;
    ``measured``: the measured ones by network, of one model family (:func:`~taskgraph.app.affinity.scores.score_family`),
    a network with records of only some members holding those members' (partly measured).
    """

    grouping: Grouping
    scores: dict[frozenset[str], dict[str, float]]
    measured: dict[frozenset[str], dict[str, float]]
    #: caveats to print beside the grouping (which family's scores, tasks left out)
    notes: tuple[str, ...] = ()

    def measured_members(self, network: frozenset[str]) -> list[str]:
        """Return the members of ``network`` with a measured score, sorted."""
        return sorted(set(network) & set(self.measured.get(network, {})))

    @property
    def predicted_tasks(self) -> list[str]:
        """Return the tasks whose score in the network serving them is predicted, sorted:
        ``grouping.total`` rests on predictions unless this is empty."""
        assignment = self.grouping.assignment
        return sorted(t for t, n in assignment.items() if t not in self.measured.get(n, {}))

    def to_dict(self) -> dict[str, Any]:
        """Return what ``affinity groups --json`` prints: :meth:`Grouping.to_dict` (networks as
        sorted lists), ``scores`` (each task's score in the network serving it),
        ``network_details`` (per network of ``networks``: ``network``, ``serves``, ``measured``
        (every member's score measured), ``partly`` (some but not all) and ``predicted`` (the
        members whose score is predicted)), ``total_measured`` (``total`` is a sum of measured
        scores only; else ``predicted_tasks`` names the tasks whose score is predicted) and
        ``notes``."""
        grouping = self.grouping
        details = []
        for network in grouping.networks:
            known = self.measured_members(network)
            details.append(
                {
                    "network": sorted(network),
                    "serves": sorted(t for t, n in grouping.assignment.items() if n == network),
                    "measured": len(known) == len(network),
                    "partly": 0 < len(known) < len(network),
                    "predicted": sorted(set(network) - set(known)),
                }
            )
        predicted = self.predicted_tasks
        return {
            **grouping.to_dict(),
            "scores": {
                t: self.scores[grouping.assignment[t]][t] for t in sorted(grouping.assignment)
            },
            "network_details": details,
            "total_measured": not predicted,
            "predicted_tasks": predicted,
            "notes": list(self.notes),
        }


def groupings(
    budget: float,
    *,
    tasks: Sequence[str] | None = None,
    storage: str | None = None,
    table: PathLike | None = None,
    max_size: int | None = None,
    method: str = "setfn",
    split: str | None = None,
    metric: str | None = None,
    text_embeddings: bool = False,
    hyperprior: bool | None = None,
    pooling: str | None = None,
) -> tuple[
    Grouping, dict[frozenset[str], dict[str, float]], dict[frozenset[str], dict[str, float]]
]:
    """Choose which tasks to train together under an inference ``budget`` (networks, each 1).

    Returns the grouping, the predicted (or measured) per-task scores of each candidate
    network, and the measured scores by network: :func:`grouping_report` (same arguments,
    same errors) without its notes.
    """
    report = grouping_report(
        budget, tasks=tasks, storage=storage, table=table, max_size=max_size, method=method,
        split=split, metric=metric, text_embeddings=text_embeddings, hyperprior=hyperprior,
        pooling=pooling,
    )  # fmt: skip
    return report.grouping, report.scores, report.measured


def grouping_report(
    budget: float,
    *,
    tasks: Sequence[str] | None = None,
    storage: str | None = None,
    table: PathLike | None = None,
    max_size: int | None = None,
    method: str = "setfn",
    split: str | None = None,
    metric: str | None = None,
    text_embeddings: bool = False,
    hyperprior: bool | None = None,
    pooling: str | None = None,
) -> GroupingReport:
    """Return the grouping of ``tasks`` under an inference ``budget`` (networks, each 1) with
    the scores it compared and notes (what ``taskgraph affinity groups`` prints).

    ``tasks`` defaults to every target with records and a baseline (a note names the others;
    an empty list is refused); ``max_size``
    to all sizes up to 10 tasks, else 3.  Measured scores and baselines are of one model family (:func:`~taskgraph.app.affinity.scores.score_family`;
    a note names it when the records hold several).  Raises :class:`ConfigError` for tasks
    without a baseline, tasks whose scores go in different directions, or a budget that
    networks of ``max_size`` tasks cannot cover.
    """
    budget = number(budget, "budget")
    tasks = names(tasks, "tasks")
    if tasks is not None and not tasks:
        # An empty list is not "every target": that is None.
        raise ConfigError("`tasks` names no task; pass None to group every target with records")
    if max_size is not None:
        max_size = integer(max_size, "max_size", minimum=1)

    def explain() -> None:
        if tasks:  # a task no record holds is named before what the fit found
            _known_tasks(option_name("tasks"), tasks, storage=storage, table=table)

    with _explained(explain):
        estimator, records = fit_estimator(
            method=method, storage=storage, table=table, split=split, metric=metric,
            text_embeddings=text_embeddings, hyperprior=hyperprior, pooling=pooling,
        )  # fmt: skip
    chosen = sorted(set(tasks)) if tasks else estimator.targets
    unknown = [t for t in chosen if t not in estimator.targets]
    if unknown:
        raise ConfigError(
            f"`{option_name('tasks')}` has no baseline records for {unknown}; known targets: "
            f"{', '.join(estimator.targets)}"
        )
    # One pass over the records: the family, the scores and the note share its result.
    within = _within(records, chosen)
    family, counts = _score_family(within, chosen)
    baselines, higher, measured = _measured_scores(within, chosen, family=family, counts=counts)
    # Tasks named: the others are not left out by the grouping, so no note names them.
    unnamed = [] if tasks else records
    notes = _baseline_notes(estimator, chosen, unnamed, "the grouping leaves them out")
    if len(counts) > 1:
        used = counts[family] if family is not None else 0
        notes.append(
            f"the records of these tasks come from {len(counts)} model families; measured "
            f"scores and baselines are those of family {family} ({used} of {len(within)} "
            "records, the most of any family with every task's baseline): scores of different "
            "families are not comparable"
        )
    if len(set(higher.values())) > 1:
        # The grouping sums the tasks' scores: an accuracy and a loss cannot share one total.
        up = sorted(t for t in chosen if higher[t])
        down = sorted(t for t in chosen if not higher[t])
        raise ConfigError(
            f"`{option_name('tasks')}` mix higher-is-better scores {up} with lower-is-better "
            f"scores {down}; a grouping sums scores of one direction: choose tasks of one kind "
            f"with {option_name('tasks')}"
        )
    size = max_size if max_size is not None else (len(chosen) if len(chosen) <= 10 else 3)
    _check_coverage(len(chosen), budget, size, default_size=max_size is None)
    networks = candidate_task_sets(chosen, max_size=size)
    scores = predicted_network_scores(
        estimator, baselines, networks=networks, higher_is_better=higher, measured=measured
    )
    grouping = select_networks(
        scores, budget=budget, tasks=chosen, higher_is_better=all(higher.values())
    )
    report = GroupingReport(grouping=grouping, scores=scores, measured=measured)
    predicted = report.predicted_tasks
    if predicted:
        some = "" if len(predicted) == len(chosen) else f"{len(predicted)} of {len(chosen)} "
        notes.append(
            f"the total score is {'partly ' if some else ''}predicted: the scores of {some}"
            "tasks in the networks "
            f"serving them were never measured and are {method}'s predictions "
            f"({', '.join(predicted)})"
        )
    return GroupingReport(grouping=grouping, scores=scores, measured=measured, notes=tuple(notes))


def _check_coverage(n_tasks: int, budget: float, size: int, *, default_size: bool) -> None:
    """Raise a ConfigError when ``budget`` networks of at most ``size`` tasks cannot serve
    ``n_tasks`` tasks, naming the option that limits them."""
    networks = affordable_networks(budget)  # each network costs 1 (select_networks' tolerance)
    if budget <= 0 or networks * size >= n_tasks:  # a budget <= 0: select_networks says so
        return
    if networks < 1:
        raise ConfigError(
            f"`{option_name('budget')}` {budget:.15g} pays for no network (each costs 1)"
        )
    max_size, budget_name = option_name("max_size"), option_name("budget")
    why = f"{max_size} defaults to 3 above 10 tasks" if default_size else max_size
    raise ConfigError(
        f"no grouping of {n_tasks} tasks fits budget {budget:g}: {networks} networks of at most "
        f"{size} tasks ({why}) serve at most {networks * size}; raise {max_size} to "
        f"{math.ceil(n_tasks / networks)} or {budget_name} to {math.ceil(n_tasks / size)}"
    )
