"""Which metric (and split) score records are read in by default: the studies' objective.

A run is scored on every metric of its tasks; gains mix nothing, so records are read in what
the studies optimised (their ``objective``, else their target's primary metric), or in every
metric with ``metric="all"`` (:data:`ALL_METRICS`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from taskgraph.affinity.records import ScoreRecord
from taskgraph.errors import ConfigError, option_name

__all__ = ["ALL_METRICS"]


#: ``metric="all"``: every metric, mixed on purpose (the default is the studies' objective)
ALL_METRICS = "all"


def _objective(
    records: Sequence[ScoreRecord], specs: Mapping[str, Mapping[str, Any]]
) -> tuple[str, str | None]:
    """Return the metric (and split, when the studies agree on one) that ``records`` are scored by.

    A run is scored on every metric of its tasks (accuracy, precision, recall, F1, per class):
    averaging them as evidence mixes scales and counts a run once per metric, so the default
    is what the studies optimised.
    """
    metrics = sorted({r.metric for r in records})
    objectives = _study_objectives(records, specs)
    named = sorted({m for m, _ in objectives.values()})
    if len(named) > 1:
        listed = "; ".join(f"{s!r} optimises {m} on {sp}" for s, (m, sp) in objectives.items())
        raise ConfigError(
            f"the records come from studies with different objective metrics ({listed}); "
            f"choose one with {option_name('metric', metavar='NAME')}, or mix them with "
            f"{option_name('metric', ALL_METRICS)}"
        )
    if named:
        splits = {sp for _, sp in objectives.values() if sp}
        return named[0], (next(iter(splits)) if len(splits) == 1 else None)
    if len(metrics) == 1:
        return metrics[0], None
    raise ConfigError(
        f"the records have metrics {metrics} and no study objective names one; choose one "
        f"with {option_name('metric', metavar='NAME')}, or mix them with "
        f"{option_name('metric', ALL_METRICS)}"
    )


def _study_objectives(
    records: Sequence[ScoreRecord], specs: Mapping[str, Mapping[str, Any]]
) -> dict[str, tuple[str, str | None]]:
    """Return each study's objective (metric, split) that its ``records`` are read in by
    default; a study naming no metric whose records lack its target's primary one has none."""
    objectives: dict[str, tuple[str, str | None]] = {}
    for study in sorted({r.study for r in records if r.study}):
        spec = specs.get(study, {})
        objective = spec.get("objective") or {}
        if objective.get("metric"):
            objectives[study] = (str(objective["metric"]), objective.get("split"))
            continue
        # No metric named: the study optimised its target's primary metric (the trainer's
        # default), kept when the study's records have it (a benchmark table's do not).
        primary = _primary_metric(spec)
        if primary is not None and any(r.study == study and r.metric == primary for r in records):
            objectives[study] = (primary, objective.get("split"))
    return objectives


def _primary_metric(spec: Mapping[str, Any]) -> str | None:
    """Return the primary metric of the stored ``spec``'s target task (what its trainer
    optimises without ``objective.metric``), or None when the target cannot be resolved: the
    task of a runner that trains nothing (``runner: tabular``'s published table), a name the
    catalog does not know."""
    from taskgraph.errors import TaskgraphError
    from taskgraph.registry import RUNNERS
    from taskgraph.tasks import define_task, get_task

    target = spec.get("target")
    runner = spec.get("runner")
    runner_name = runner.get("name") if isinstance(runner, Mapping) else runner
    try:
        trains = RUNNERS.get(runner_name).capabilities.trains if runner_name else True
    except TaskgraphError:  # a plug-in runner not loaded here: its target may be a catalog task
        trains = True
    if not isinstance(target, str) or not trains:
        return None
    candidates = spec.get("candidates") or ()
    inline = [t for t in (*candidates, *(spec.get("tasks") or ())) if isinstance(t, Mapping)]
    try:
        definition = next((t for t in inline if t.get("name") == target), None)
        if definition is None:
            return get_task(target).primary_metric
        # How the task is scored, not where its files are (they need not be here any more).
        return define_task(
            target,
            format=definition["format"],
            type=definition["type"],
            label_field=definition["label_field"],
            files={"train": "train"},
            metrics=definition.get("metrics"),
            reader_options=definition.get("reader_options"),
        ).primary_metric
    except (TaskgraphError, KeyError):  # a definition this version cannot read
        return None
