"""The task-affinity graph: a networkx DiGraph with an edge s -> t for "s helps t", and its exports.

Edge attributes: ``gain`` (predicted gain of t from training with s alone), ``std``,
``n_evidence`` (gain records behind it) and ``method`` (the estimator).  Node attributes:
``baseline`` (mean single-task score, when known).  Exports: GraphML and node-link JSON (both
read back by networkx), DOT (written here: pydot is optional) and a PNG drawn with matplotlib's
Agg backend, edge width proportional to the size of the gain, colour by its sign.
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
from taskgraph.errors import ConfigError

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


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def affinity_graph(
    estimator: AffinityEstimator,
    *,
    tasks: Sequence[str] | None = None,
    targets: Sequence[str] | None = None,
    min_evidence: int = 0,
) -> nx.DiGraph:
    """Return the graph of ``estimator``'s pair predictions: an edge s -> t for every source and target.

    ``targets`` defaults to the tasks with records, ``tasks`` (sources) to every known task;
    edges backed by fewer than ``min_evidence`` records are left out.
    """
    sources = sorted(tasks if tasks is not None else estimator.tasks)
    target_list = sorted(targets if targets is not None else estimator.targets)
    graph = nx.DiGraph(method=estimator.name, gain_kind=estimator.gain_kind)
    for task in sorted(set(sources) | set(target_list)):
        baseline = estimator.table.baseline_value(task)
        graph.add_node(task, **({"baseline": baseline} if baseline is not None else {}))
    for target in target_list:
        others = [s for s in sources if s != target]
        means, stds = estimator.predict_many(target, [{s} for s in others])
        for source, mean, std in zip(others, means, stds, strict=True):
            evidence = estimator.n_evidence(target, {source})
            if evidence < min_evidence:
                continue
            graph.add_edge(source, target, gain=float(mean), std=_finite(std) if _finite(std) is not None else -1.0,
                           n_evidence=int(evidence), method=estimator.name)  # fmt: skip
    return graph


def graph_edges(graph: nx.DiGraph) -> list[dict[str, Any]]:
    """Return the edges as plain dicts (source, target, gain, std, n_evidence, method)."""
    return [
        {"source": s, "target": t, "gain": d["gain"], "std": None if d.get("std", -1.0) < 0 else d["std"],
         "n_evidence": d.get("n_evidence", 0), "method": d.get("method", "")}
        for s, t, d in graph.edges(data=True)
    ]  # fmt: skip


def graph_from_edges(edges: Iterable[Mapping[str, Any]], *, method: str = "") -> nx.DiGraph:
    """Return a graph built from edge dicts (e.g. stored affinity edges)."""
    graph = nx.DiGraph(method=method)
    for edge in edges:
        std = edge.get("std")
        graph.add_edge(
            str(edge["source"]), str(edge["target"]), gain=float(edge["gain"]),
            std=-1.0 if std is None else float(std), n_evidence=int(edge.get("n_evidence", 0) or 0),
            method=str(edge.get("method", method)),
        )  # fmt: skip
    return graph


def _dot(graph: nx.DiGraph) -> str:
    def quote(text: object) -> str:
        return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'

    top = max((abs(d["gain"]) for _, _, d in graph.edges(data=True)), default=1.0) or 1.0
    lines = ["digraph affinity {", "  rankdir=LR;", "  node [shape=box];"]
    for node, data in graph.nodes(data=True):
        # DOT's own line break (a backslash and n) must survive quoting, so it is added after.
        label = (
            quote(node)[:-1]
            + (f"\\nbaseline {data['baseline']:.4g}" if "baseline" in data else "")
            + '"'
        )
        lines.append(f"  {quote(node)} [label={label}];")
    for source, target, data in graph.edges(data=True):
        gain = float(data["gain"])
        width = 0.5 + 4.5 * abs(gain) / top
        colour = "darkgreen" if gain >= 0 else "firebrick"
        label = quote(f"{gain:+.3g}")
        attrs = (
            f"label={label}, penwidth={width:.2f}, color={colour}, "
            f"gain={gain!r}, std={float(data.get('std', -1.0))!r}, n_evidence={int(data.get('n_evidence', 0))}"
        )
        lines.append(f"  {quote(source)} -> {quote(target)} [{attrs}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _png(graph: nx.DiGraph, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 8))
    layout = nx.circular_layout(graph)
    gains = [d["gain"] for _, _, d in graph.edges(data=True)]
    top = max((abs(g) for g in gains), default=1.0) or 1.0
    nx.draw_networkx_nodes(graph, layout, ax=axis, node_color="#dde6f0", node_size=900)
    nx.draw_networkx_labels(graph, layout, ax=axis, font_size=8)
    nx.draw_networkx_edges(
        graph, layout, ax=axis, width=[0.3 + 4.0 * abs(g) / top for g in gains],
        edge_color=["#2a7a2a" if g >= 0 else "#b22222" for g in gains],
        arrows=True, arrowsize=10, connectionstyle="arc3,rad=0.08",
    )  # fmt: skip
    axis.set_title(
        f"task affinity ({graph.graph.get('method', '')}): width = |gain|, green helps, red hurts"
    )
    axis.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_graph(graph: nx.DiGraph, path: str | os.PathLike[str], *, fmt: str | None = None) -> Path:
    """Write ``graph`` to ``path`` as GraphML, node-link JSON, DOT or PNG (``fmt`` or the suffix)."""
    file = Path(path)
    chosen = (fmt or file.suffix.lstrip(".")).lower()
    if chosen not in GRAPH_FORMATS:
        raise ConfigError(f"`format` must be one of {list(GRAPH_FORMATS)}, but got {chosen!r}")
    # matplotlib picks the format from the suffix; the temporary name keeps the output's whole
    # name, so no sibling file (``graph.png`` for ``-o graph``) is overwritten.
    tmp = file.with_name(file.name + (".tmp.png" if chosen == "png" else ".tmp"))
    try:
        if chosen == "graphml":
            nx.write_graphml(graph, tmp)
        elif chosen == "json":
            tmp.write_text(
                json.dumps(nx.node_link_data(graph, edges="edges"), indent=2), encoding="utf-8"
            )
        elif chosen == "dot":
            tmp.write_text(_dot(graph), encoding="utf-8")
        else:
            _png(graph, tmp)
        tmp.replace(file)  # nothing half-written: the file appears whole or not at all
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return file


def read_graph(path: str | os.PathLike[str]) -> nx.DiGraph:
    """Return a graph written by :func:`write_graph` as GraphML or JSON."""
    file = Path(path)
    if file.suffix == ".graphml":
        return nx.read_graphml(file)
    if file.suffix == ".json":
        return nx.node_link_graph(json.loads(file.read_text(encoding="utf-8")), edges="edges")
    raise ConfigError(f"can read .graphml or .json graphs, but got {file.name!r}")
