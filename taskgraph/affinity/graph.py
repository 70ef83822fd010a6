"""The task-affinity graph: a networkx DiGraph with an edge s -> t for "s helps t", and its exports.

Graph attributes: ``method`` (the estimator) and ``gain_kind`` (``relative`` or ``absolute``).
Edge attributes name what each number is (:func:`taskgraph.affinity.gains.gain_key`), e.g. for
relative gains: ``predicted_relative_gain`` (the estimator's gain of t from training with s
alone) and ``predicted_relative_gain_std``, ``measured_relative_gain`` (only on edges whose
pair was run: the gain as measured), ``evidence_runs`` (runs behind the prediction: runs of
t with s among the auxiliaries), ``pair_runs`` (those of them that trained t with s alone) and
``method``.  Node attributes: ``baseline`` (the single-task score, when known, in the model
family with the most records: a mean over families would be a score no model reached).
Exports:
GraphML and node-link JSON (both read back by networkx), DOT (written here: pydot is
optional) and a PNG (drawn by :mod:`taskgraph.affinity.graph_drawing`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import networkx as nx

from taskgraph.affinity.estimators.base import AffinityEstimator
from taskgraph.affinity.gain_queries import evidence_runs, measured_gain
from taskgraph.affinity.gains import Gain, GainKind, gain_key
from taskgraph.errors import ConfigError
from taskgraph.files import replace_file

__all__ = [
    "GRAPH_FORMATS",
    "affinity_graph",
    "graph_edges",
    "graph_from_edges",
    "read_graph",
    "write_graph",
]

GraphFormat = Literal["graphml", "json", "dot", "png"]
GRAPH_FORMATS: tuple[GraphFormat, ...] = ("graphml", "json", "dot", "png")


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _keys(graph: nx.DiGraph) -> tuple[str, str, str]:
    """Return the names of the predicted gain, its std and the measured gain on ``graph``'s edges."""
    kind: GainKind = graph.graph.get("gain_kind", "relative")
    predicted = gain_key("predicted", kind)
    return predicted, f"{predicted}_std", gain_key("measured", kind)


def affinity_graph(
    estimator: AffinityEstimator,
    *,
    tasks: Sequence[str] | None = None,
    targets: Sequence[str] | None = None,
    min_evidence: int = 0,
) -> nx.DiGraph:
    """Return the graph of ``estimator``'s pair predictions: an edge s -> t for every source and target.

    ``targets`` defaults to the tasks with records, ``tasks`` (sources) to every known task;
    edges backed by fewer than ``min_evidence`` runs are left out, and counted in the graph's
    attributes ``min_evidence`` and ``left_out_edges`` (so an export and its picture say so).
    """
    sources = sorted(tasks if tasks is not None else estimator.tasks)
    target_list = sorted(targets if targets is not None else estimator.targets)
    gains = estimator.table.gains
    # Which scores the gains compare (e.g. accuracy on dev), for the reader of an export.
    graph = nx.DiGraph(method=estimator.name, gain_kind=estimator.gain_kind,
                       metric=", ".join(sorted({g.metric for g in gains if g.metric})),
                       split=", ".join(sorted({g.split for g in gains if g.split})))  # fmt: skip
    predicted, std_key, measured_key = _keys(graph)
    for task in sorted(set(sources) | set(target_list)):
        baseline = estimator.table.baseline_value(task)
        graph.add_node(task, **({"baseline": baseline} if baseline is not None else {}))
    # Runs of the pair alone are disjoint across edges; a group's run is behind several edges,
    # so recommendations count a set's runs from both (recommend.py).
    pair_gains_of: dict[tuple[str, str], list[Gain]] = {}
    for gain in gains:
        if len(gain.auxiliaries) == 1:
            (source,) = gain.auxiliaries
            pair_gains_of.setdefault((gain.target, source), []).append(gain)
    left_out = 0
    for target in target_list:
        others = [s for s in sources if s != target]
        means, stds = estimator.predict_many(target, [{s} for s in others])
        for source, mean, std in zip(others, means, stds, strict=True):
            evidence = estimator.n_evidence(target, {source})
            if evidence < min_evidence:
                left_out += 1
                continue
            # GraphML has no null: an unknown std is -1, an unmeasured pair has no measured key.
            # the pair's own gains (not a scan of every gain, per edge)
            pair = pair_gains_of.get((target, source), [])
            measured = _finite(measured_gain(pair, target, {source}))
            alone = evidence_runs(pair)
            graph.add_edge(source, target, **{predicted: float(mean),
                           std_key: _finite(std) if _finite(std) is not None else -1.0,
                           **({measured_key: measured} if measured is not None else {}),
                           "evidence_runs": int(evidence), "pair_runs": int(alone),
                           "method": estimator.name})  # fmt: skip
    if min_evidence > 0:
        graph.graph.update(min_evidence=int(min_evidence), left_out_edges=left_out)
    return graph


def graph_edges(graph: nx.DiGraph) -> list[dict[str, Any]]:
    """Return the edges as plain dicts: source, target, the predicted gain and its std, the measured gain (None when not measured), evidence_runs, pair_runs (when known), method."""
    predicted, std_key, measured_key = _keys(graph)
    return [
        {"source": s, "target": t, predicted: d[predicted],
         std_key: None if d.get(std_key, -1.0) < 0 else d[std_key],
         measured_key: d.get(measured_key), "evidence_runs": d.get("evidence_runs", 0),
         **({"pair_runs": d["pair_runs"]} if "pair_runs" in d else {}),
         "method": d.get("method", "")}
        for s, t, d in graph.edges(data=True)
    ]  # fmt: skip


def graph_from_edges(
    edges: Iterable[Mapping[str, Any]], *, method: str = "", gain_kind: GainKind = "relative"
) -> nx.DiGraph:
    """Return a graph built from edge dicts: :func:`graph_edges`'s, or stored affinity edges (``gain``, ``std``, ``n_evidence``)."""
    graph = nx.DiGraph(method=method, gain_kind=gain_kind)
    predicted, std_key, measured_key = _keys(graph)
    for edge in edges:
        std = edge.get(std_key, edge.get("std"))
        measured = _finite(edge.get(measured_key))
        graph.add_edge(
            str(edge["source"]), str(edge["target"]),
            **{predicted: float(edge[predicted] if predicted in edge else edge["gain"]),
               std_key: -1.0 if std is None else float(std),
               **({measured_key: measured} if measured is not None else {}),
               "evidence_runs": int(edge.get("evidence_runs", edge.get("n_evidence", 0)) or 0),
               **({"pair_runs": int(edge["pair_runs"])} if edge.get("pair_runs") is not None else {}),
               "method": str(edge.get("method", method))},
        )  # fmt: skip
    return graph


def _dot(graph: nx.DiGraph) -> str:
    def quote(text: object) -> str:
        return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'

    predicted, std_key, measured_key = _keys(graph)
    top = max((abs(d[predicted]) for _, _, d in graph.edges(data=True)), default=1.0) or 1.0
    lines = ["digraph affinity {", "  rankdir=LR;", "  node [shape=box];"]
    left_out = int(graph.graph.get("left_out_edges", 0) or 0)
    if left_out:  # said in the file too: a reader of the DOT alone sees fewer edges
        lines.insert(
            1,
            f"  // {left_out} edges with fewer than {graph.graph.get('min_evidence')} runs "
            "left out (min evidence)",
        )
    for node, data in graph.nodes(data=True):
        # DOT's own line break (a backslash and n) must survive quoting, so it is added after.
        label = (
            quote(node)[:-1]
            + (f"\\nbaseline {data['baseline']:.4g}" if "baseline" in data else "")
            + '"'
        )
        lines.append(f"  {quote(node)} [label={label}];")
    for source, target, data in graph.edges(data=True):
        gain = float(data[predicted])
        width = 0.5 + 4.5 * abs(gain) / top
        colour = "darkgreen" if gain >= 0 else "firebrick"
        label = quote(_edge_label(data, predicted, measured_key))
        measured = data.get(measured_key)
        # Quoted: a DOT numeral has no exponent, and repr writes -1.99e-05 for a small gain.
        attrs = (
            f"label={label}, penwidth={width:.2f}, color={colour}, {predicted}={quote(repr(gain))}, "
            f"{std_key}={quote(repr(float(data.get(std_key, -1.0))))}, "
            + ("" if measured is None else f"{measured_key}={quote(repr(float(measured)))}, ")
            + f"evidence_runs={int(data.get('evidence_runs', 0))}"
        )
        lines.append(f"  {quote(source)} -> {quote(target)} [{attrs}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _edge_label(
    data: Mapping[str, Any], predicted: str, measured_key: str, *, sep: str = " "
) -> str:
    """Return an edge's label: the predicted gain, and the measured one beside it where known."""
    text = f"{float(data[predicted]):+.2f}"
    measured = data.get(measured_key)
    return text if measured is None else f"{text}{sep}(meas. {float(measured):+.2f})"


def write_graph(graph: nx.DiGraph, path: str | os.PathLike[str], *, fmt: str | None = None) -> Path:
    """Write ``graph`` to ``path`` as GraphML, node-link JSON, DOT or PNG (``fmt`` or the suffix)."""
    file = Path(path)
    chosen = (fmt or file.suffix.lstrip(".")).lower()
    if chosen not in GRAPH_FORMATS:
        raise ConfigError(f"`format` must be one of {list(GRAPH_FORMATS)}, but got {chosen!r}")

    def write(tmp: Path) -> None:
        if chosen == "graphml":
            nx.write_graphml(graph, tmp)
        elif chosen == "json":
            tmp.write_text(
                json.dumps(nx.node_link_data(graph, edges="edges"), indent=2), encoding="utf-8"
            )
        elif chosen == "dot":
            tmp.write_text(_dot(graph), encoding="utf-8")
        else:
            # Imported here: the drawing module reads this one's edge keys and labels.
            from taskgraph.affinity.graph_drawing import _png

            _png(graph, tmp)

    # Nothing half-written: the file appears whole or not at all.  matplotlib picks the format
    # from the suffix, so a PNG's temporary name ends in ``.png``.
    replace_file(file, write, suffix=".tmp.png" if chosen == "png" else ".tmp")
    return file


def read_graph(path: str | os.PathLike[str]) -> nx.DiGraph:
    """Return a graph written by :func:`write_graph` as GraphML or JSON."""
    file = Path(path)
    if file.suffix == ".graphml":
        return nx.read_graphml(file)
    if file.suffix == ".json":
        return nx.node_link_graph(json.loads(file.read_text(encoding="utf-8")), edges="edges")
    raise ConfigError(f"can read .graphml or .json graphs, but got {file.name!r}")
