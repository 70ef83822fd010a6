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
from pathlib import Path
from typing import Any

from taskgraph.affinity.longtable import LongTable, read_long_csv
from taskgraph.errors import ConfigError
from taskgraph.trial import Cost, TrialConfig, TrialResult, TrialStatus
from taskgraph.vocabulary import task_set_key

__all__ = ["TABULAR_METRIC", "TabularEvaluator"]

#: metric name under which tabular scores are reported (the tables publish one number)
TABULAR_METRIC = "score"


class TabularEvaluator:
    """Evaluates a trial by looking ``(config.target, config.task_set)`` up in a long table.

    ``split`` is the table split that answers the objective (``val``); the result holds it
    under the trial's objective split name and the table's ``test`` value under ``test``,
    for every task of the set that has a row (a joint run scores all its tasks).
    """

    def __init__(self, table: LongTable | str | os.PathLike[str], *, split: str = "val") -> None:
        self.table = table if isinstance(table, LongTable) else read_long_csv(Path(table))
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
        metric = config.objective.metric or TABULAR_METRIC
        objective_split = config.objective.split
        scores: dict[str, dict[str, dict[str, float]]] = {}
        for task in sorted(task_set):
            answer = self.table.get(task, task_set, self.split)
            if answer is None:
                continue
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
