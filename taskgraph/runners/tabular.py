"""The ``tabular`` runner: answers a trial by looking up a published result.

Like NAS-Bench or HPO-B for architectures and hyperparameters, a published table of task
combinations (the long CSV format of :mod:`taskgraph.affinity.longtable`) lets the search
and the affinity estimators be measured on work nobody here did, in milliseconds per trial.
The trial's target and task set select the row; everything else in the configuration (the
sharing architecture, learning rate...) is ignored because the table was measured with one
fixed model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from taskgraph.affinity.longtable import LongTable, read_long_csv
from taskgraph.errors import ConfigError
from taskgraph.files import read_unchanged
from taskgraph.trial import Cost, TrialConfig, TrialResult, TrialStatus
from taskgraph.vocabulary import direction_mismatch, higher_is_better, task_set_key

__all__ = [
    "TABULAR_LOSS_METRIC",
    "TABULAR_METRIC",
    "TabularEvaluator",
    "check_table_objective",
    "read_table",
]

#: metric names under which tabular scores are reported (the tables publish one number): the
#: records database tells a metric's direction by its name (taskgraph.vocabulary), so a
#: lower-is-better row is a "loss" and a higher-is-better one a "score"
TABULAR_METRIC = "score"
TABULAR_LOSS_METRIC = "loss"


def read_table(path: str | os.PathLike[str]) -> LongTable:
    """Return the long table in ``path``, read once for as long as the file is unchanged.

    A command checks a spec's table (the runner's ``check_spec``) and then answers trials
    from it (``build_evaluator``): the second call is answered from memory
    (:func:`~taskgraph.files.read_unchanged`).  The table returned is shared: do not change it.
    """
    return read_unchanged(path, read_long_csv)


class TabularEvaluator:
    """Evaluates a trial by looking ``(config.target, config.task_set)`` up in a long table.

    ``split`` is the table split that answers the objective (``val``); the result holds it
    under the trial's objective split name and the table's ``test`` value under ``test``,
    for every task of the set that has a row (a joint run scores all its tasks).
    """

    def __init__(self, table: LongTable | str | os.PathLike[str], *, split: str = "val") -> None:
        self.table = table if isinstance(table, LongTable) else read_table(table)
        if split not in self.table.splits:
            raise ConfigError(
                f"`split` must be one of the table's splits {self.table.splits}, but got {split!r}"
            )
        self.split = split

    def evaluate(
        self,
        config: TrialConfig,
        *,
        callbacks: Sequence[Any] = (),
        checkpoint_key: str | None = None,
    ) -> TrialResult:
        """Return the published result of ``config``, or a FAILED result naming the missing row."""
        task_set = frozenset(config.task_set)
        row = self.table.get(config.target, task_set, self.split)
        if row is None:
            return TrialResult.failed(
                f"no published result for target {config.target!r} with task set "
                f"{task_set_key(task_set)} on split {self.split!r} in table {self.table.source!r}"
            )
        objective_split = config.objective.split
        scores: dict[str, dict[str, dict[str, float]]] = {}
        for task in sorted(task_set):
            answer = self.table.get(task, task_set, self.split)
            if answer is None:
                continue
            metric = _metric_name(config.objective.metric, answer.higher_is_better)
            per_split = {objective_split: {metric: answer.value}}
            if self.split != "test":
                test = self.table.get(task, task_set, "test")
                if test is not None:
                    per_split["test"] = {metric: test.value}
            scores[task] = per_split
        return TrialResult(
            status=TrialStatus.COMPLETE,
            scores=scores,
            objective=row.value,
            cost=Cost(seconds=0.0, device="table"),
        )


def _metric_name(objective_metric: str | None, higher: bool) -> str:
    """Return the name a row's score is recorded under: one whose direction is the row's.

    The objective's metric when its name says the row's direction (``check_table_objective``
    makes sure it does for the target), else ``score`` or ``loss``: a name that said the
    other direction would turn every gain of that task around in the records database.
    """
    if objective_metric is not None and higher_is_better(objective_metric) == higher:
        return objective_metric
    return TABULAR_METRIC if higher else TABULAR_LOSS_METRIC


def check_table_objective(
    table: LongTable,
    *,
    target: str,
    metric: str | None,
    direction: str,
    source: str,
    table_name: str | None = None,
) -> None:
    """Raise ``ConfigError`` unless the study's objective goes the way the table's target does.

    A loss table searched with ``direction: maximize`` would look for the worst task set, and
    ``metric: score`` on it would be recorded as higher-is-better (gains with the wrong sign).
    """
    name = table_name or table.source
    first = next((row for row in table if row.target == target), None)
    if first is None:
        raise ConfigError(
            f"{source}: target: {target!r} has no rows in {name}; its targets: "
            f"{', '.join(table.targets)}"
        )
    higher = first.higher_is_better
    wanted = "maximize" if higher else "minimize"
    kind = "higher" if higher else "lower"
    if direction != wanted:
        raise ConfigError(
            direction_mismatch(
                source=source,
                direction=direction,
                wanted=wanted,
                scores=f"{target}'s rows in {name} are",
            )
        )
    if metric is not None and higher_is_better(metric) != higher:
        raise ConfigError(
            f"{source}: objective.metric: {metric!r} reads as "
            f"{'higher' if higher_is_better(metric) else 'lower'}-is-better, but {target}'s rows "
            f"in {name} are {kind}-is-better; leave it out (recorded as "
            f"{_metric_name(None, higher)!r}) or name a {kind}-is-better metric"
        )
