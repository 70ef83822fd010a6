"""Checks of a study's tasks, objective and rows.

The target and candidates in the task catalog (or defined inline), the objective's metric,
split and direction, ``training.eval_splits``, a tabular runner's table holding every
candidate, and rows that train distinct configurations.
"""

from __future__ import annotations

from typing import Any

from taskgraph.errors import SpecError, TaskgraphError
from taskgraph.spec.checks import inline_task_defs
from taskgraph.spec.models import RowSpec, StudySpec
from taskgraph.vocabulary import direction_mismatch, metric_direction, unknown_metric


def _check_tasks(spec: StudySpec, source: str) -> None:
    from taskgraph.tasks import get_task

    extra = inline_task_defs(spec, source=source)
    targets: list[tuple[str, str]] = [("target", spec.target)]
    targets += [(f"candidates[{i}]", n) for i, n in enumerate(spec.candidate_names)]
    splits: set[str] = set()
    for where, name in targets:
        try:
            task = get_task(name, extra=extra)
        except TaskgraphError as error:
            raise SpecError(f"{source}: {where}: {error}") from None
        metric = spec.objective.metric
        if where == "target" and metric is not None and metric not in task.metrics:
            raise SpecError(
                unknown_metric(source=source, metric=metric, task=name, allowed=task.metrics)
            )
        if where == "target" and spec.objective.split not in task.splits:
            raise SpecError(
                f"{source}: objective.split: {name} has no split {spec.objective.split!r}; "
                f"allowed: {', '.join(task.splits)}"
            )
        if where == "target":
            _check_direction(spec, source, metric or task.primary_metric)
        splits.update(task.splits)
    # Each task is scored on the splits of `training.eval_splits` it has; one that no task has
    # (a typo) was stored in every run's configuration and scored nowhere.
    unknown = [s for s in spec.training.eval_splits if s not in splits]
    if unknown:
        raise SpecError(
            f"{source}: training.eval_splits: no task of the study has a split {unknown[0]!r} "
            f"(default: dev); their splits: {', '.join(sorted(splits))}"
        )


def _check_direction(spec: StudySpec, source: str, metric: str) -> None:
    # The trainer keeps the weights of the metric's best evaluation by the metric's own
    # direction; a study that optimised the other way would record the worst of the search.
    direction = metric_direction(metric)
    if spec.objective.direction != direction:
        raise SpecError(
            direction_mismatch(
                source=source,
                direction=spec.objective.direction,
                wanted=direction,
                scores=f"{metric} is",
            )
        )


def _row_key(row: RowSpec) -> tuple[frozenset[str], tuple[tuple[str, Any], ...]]:
    """Return what a row fixes when nothing is trained: its auxiliaries and its params."""
    return frozenset(row.auxiliaries), tuple(sorted(row.params.items()))  # scalar values


def _check_distinct_rows(spec: StudySpec, source: str, keys: list[Any]) -> None:
    """Refuse two rows that train one configuration (``keys[i]`` is row ``i``'s).

    Their runs could not be told apart: a results table would give them all to one row and
    show the other "not run".
    """
    first: dict[Any, int] = {}
    for index, key in enumerate(keys):
        earlier = first.setdefault(key, index)
        if earlier != index:
            raise SpecError(
                f"{source}: rows[{index}] ({spec.rows[index].name}) trains the same "
                f"configuration as rows[{earlier}] ({spec.rows[earlier].name}); remove one, or "
                "make their auxiliaries or params differ"
            )


def _check_table_candidates(spec: StudySpec, source: str) -> None:
    """Refuse a candidate with no row of a tabular runner's table for the target.

    Every trial whose task set holds it failed "no published result".  A table that does not
    read, or lacks ``runner.split`` or the target, is the runner's own check
    (``TabularRunner.check_spec``), which runs next: nothing is said here.
    """
    from taskgraph.spec.models import TabularRunnerSpec

    runner = spec.runner
    if not isinstance(runner, TabularRunnerSpec):
        return
    from taskgraph.affinity.longtable import read_long_csv
    from taskgraph.files import read_unchanged

    try:
        table = read_unchanged(runner.table, read_long_csv)  # the runner's read, cached
    except (TaskgraphError, OSError, ValueError):
        return
    sets = table.task_sets(spec.target, split=runner.split)
    if not sets:
        return
    tasks = sorted(set().union(*sets) - {spec.target})
    excluded = set(spec.search.auxiliaries.exclude)  # never drawn
    for index, name in enumerate(spec.candidate_names):
        if name == spec.target or name in excluded or name in tasks:
            continue
        raise SpecError(
            f"{source}: candidates[{index}]: {name!r} has no row in {runner.table} (target "
            f"{spec.target}, split {runner.split}): every trial with it would fail; the "
            f"table's tasks: {', '.join(tasks) or '(none besides the target)'}"
        )
