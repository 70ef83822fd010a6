"""The affinity graph of a fitted estimator (``taskgraph affinity graph``).

:func:`graph_report` returns the graph (edge s -> t: the predicted gain of t from s, beside
the measured one) with notes on its baselines and the edges left out; :func:`affinity_graph`
returns the graph alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from taskgraph.affinity.gains import compute_gains, gain_key, measured_gain
from taskgraph.affinity.graph import affinity_graph as _graph_of
from taskgraph.app.affinity.fitting import (
    _baseline_notes,
    _families_note,
    fit_estimator,
)
from taskgraph.app.affinity.records import PathLike
from taskgraph.app.arguments import integer
from taskgraph.errors import option_name

__all__ = ["GraphReport", "affinity_graph", "graph_report"]


@dataclass(frozen=True)
class GraphReport:
    """The affinity graph (a networkx ``DiGraph``) and caveats to print beside it."""

    graph: Any
    notes: tuple[str, ...] = ()


def affinity_graph(
    *,
    storage: str | None = None,
    table: PathLike | None = None,
    min_evidence: int = 0,
    method: str = "setfn",
    split: str | None = None,
    metric: str | None = None,
    text_embeddings: bool = False,
    hyperprior: bool | None = None,
    pooling: str | None = None,
) -> Any:
    """Return the affinity graph (a networkx ``DiGraph``; edge s -> t: gain of t from s).

    Write it with :func:`taskgraph.affinity.graph.write_graph` (GraphML, JSON, DOT, PNG).
    ``min_evidence`` leaves out edges backed by fewer runs.  :func:`graph_report`'s graph
    (same arguments, same errors).
    """
    return graph_report(
        storage=storage, table=table, min_evidence=min_evidence, method=method, split=split,
        metric=metric, text_embeddings=text_embeddings, hyperprior=hyperprior, pooling=pooling,
    ).graph  # fmt: skip


def graph_report(
    *,
    storage: str | None = None,
    table: PathLike | None = None,
    min_evidence: int = 0,
    method: str = "setfn",
    split: str | None = None,
    metric: str | None = None,
    text_embeddings: bool = False,
    hyperprior: bool | None = None,
    pooling: str | None = None,
) -> GraphReport:
    """Return the affinity graph with notes (what ``taskgraph affinity graph`` writes and says).

    ``min_evidence`` leaves out edges backed by fewer runs.  Node baselines are of one model
    family per task (:meth:`~taskgraph.affinity.gains.GainTable.baseline_value`; a note says so
    when the records hold several; a note names the targets without a baseline, which no edge
    points to).  Raises what :func:`fit_estimator` raises.
    """
    min_evidence = integer(min_evidence, "min_evidence", minimum=0)
    estimator, records = fit_estimator(
        method=method, storage=storage, table=table, split=split, metric=metric,
        text_embeddings=text_embeddings, hyperprior=hyperprior, pooling=pooling,
    )  # fmt: skip
    notes = _baseline_notes(estimator, estimator.tasks, records, "no edge points to them")
    counts = estimator.table.family_records
    main = estimator.table.main_family()
    if len(counts) > 1 and main is not None:
        notes.append(
            _families_note(
                len(counts),
                "each node's baseline is its single-task score in one family, the one with the "
                f"most records among those with its baseline (family {main}: {counts[main]} of "
                f"{sum(counts.values())} records), as scores of different families are not "
                "comparable; the gains pool the families",
            )
        )
    graph = _graph_of(estimator, min_evidence=min_evidence)
    if estimator.gain_kind == "relative" and records:
        # The measured gain in the metric's units beside the relative one, as `top` gives it.
        absolute = compute_gains(
            records,
            kind="absolute",
            split=estimator.split,
            metric=estimator.metric,
            zero_baselines="leave_out",
        ).gains
        for source, target, data in graph.edges(data=True):
            value = measured_gain(absolute, target, {source})
            if value is not None and math.isfinite(value):
                data[gain_key("measured", "absolute")] = value
    left_out_edges = int(graph.graph.get("left_out_edges", 0))
    if left_out_edges:
        notes.append(
            f"{left_out_edges} edge{'s' if left_out_edges != 1 else ''} left out by "
            f"{option_name('min_evidence', min_evidence)} (backed by fewer runs)"
        )
    return GraphReport(graph=graph, notes=tuple(notes))
