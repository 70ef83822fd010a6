"""The affinity graph of a fitted estimator (``taskgraph affinity graph``).

:func:`graph_report` returns the graph (edge s -> t: the predicted gain of t from s, beside
the measured one) with notes on its baselines and the edges left out; :func:`affinity_graph`
returns the graph alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from taskgraph.affinity.gain_queries import GainLookup
from taskgraph.affinity.gains import compute_gains, gain_key
from taskgraph.affinity.graph import affinity_graph as _graph_of
from taskgraph.affinity.records import ScoreRecord
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
    if estimator.gain_kind == "relative" and records and graph.number_of_edges():
        # The measured gain in the metric's units beside the relative one, as `top` gives it:
        # an edge's is a pair's, so only the records of pairs and baselines are read.
        absolute = GainLookup(
            compute_gains(
                _pair_records(records, split=estimator.split, metric=estimator.metric),
                kind="absolute",
                split=estimator.split,
                metric=estimator.metric,
                zero_baselines="leave_out",
            ).gains
        )
        for source, target, data in graph.edges(data=True):
            value = absolute.measured(target, {source})
            if value is not None and math.isfinite(value):
                data[gain_key("measured", "absolute")] = value
    left_out_edges = int(graph.graph.get("left_out_edges", 0))
    if left_out_edges:
        notes.append(
            f"{left_out_edges} edge{'s' if left_out_edges != 1 else ''} left out by "
            f"{option_name('min_evidence', min_evidence)} (backed by fewer runs)"
        )
    return GraphReport(graph=graph, notes=tuple(notes))


def _pair_records(
    records: Iterable[ScoreRecord], *, split: str | None, metric: str | None
) -> Iterator[ScoreRecord]:
    """Return the records that a pair's gain reads (task sets of one or two tasks), in order.

    Each (family, task, split, metric) also keeps the records up to its first that
    :func:`compute_gains` counts, whatever its task set: the gains then come out in the
    order of the whole records' (gains of one pair on several scores are averaged in that
    order, so a pair's measured gain is the same to the last bit).
    """
    counted: set[tuple[str, str, str, str]] = set()
    for record in records:
        key = (record.family, record.task, record.split, record.metric)
        if len(record.task_set) > 2 and key in counted:
            continue
        if (
            (split is None or record.split == split)
            and (metric is None or record.metric == metric)
            and math.isfinite(record.value)
        ):
            counted.add(key)
        yield record
