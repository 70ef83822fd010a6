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
optional) and a PNG drawn with matplotlib's Agg backend: the gain printed on each edge, its
colour on a diverging scale with a colour bar, its width by the size of the gain, and node
circles sized to their labels.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import networkx as nx

from taskgraph.affinity.estimators.base import AffinityEstimator
from taskgraph.affinity.gains import Gain, GainKind, evidence_runs, gain_key, measured_gain
from taskgraph.errors import ConfigError

__all__ = [
    "GRAPH_FORMATS",
    "affinity_graph",
    "draw_graph",
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
    edges backed by fewer than ``min_evidence`` runs are left out.
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
    for target in target_list:
        others = [s for s in sources if s != target]
        means, stds = estimator.predict_many(target, [{s} for s in others])
        for source, mean, std in zip(others, means, stds, strict=True):
            evidence = estimator.n_evidence(target, {source})
            if evidence < min_evidence:
                continue
            # GraphML has no null: an unknown std is -1, an unmeasured pair has no measured key.
            measured = _finite(measured_gain(estimator.table.gains, target, {source}))
            alone = evidence_runs(pair_gains_of.get((target, source), ()))
            graph.add_edge(source, target, **{predicted: float(mean),
                           std_key: _finite(std) if _finite(std) is not None else -1.0,
                           **({measured_key: measured} if measured is not None else {}),
                           "evidence_runs": int(evidence), "pair_runs": int(alone),
                           "method": estimator.name})  # fmt: skip
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


def _wrap(name: str, width: int = 12) -> str:
    """Return ``name`` broken at ``_``, ``-``, ``.`` or ``/`` into lines of about ``width`` characters."""
    parts = re.findall(r"[^_\-./]+[_\-./]?|[_\-./]", name)
    lines: list[str] = []
    for part in parts:
        if lines and len(lines[-1]) + len(part) <= width:
            lines[-1] += part
        else:
            lines.append(part)
    return "\n".join(lines) or name


def _png(graph: nx.DiGraph, path: Path) -> None:
    import matplotlib.pyplot as plt

    figure = draw_graph(graph)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def draw_graph(graph: nx.DiGraph) -> Any:
    """Return the matplotlib figure of the PNG export (Agg backend; close it when done)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm

    predicted, _, measured_key = _keys(graph)
    kind = graph.graph.get("gain_kind", "relative")
    n = graph.number_of_nodes()
    font = 9 if n <= 12 else 7 if n <= 30 else 5
    figure, axis = plt.subplots(figsize=(9, 8), dpi=120)
    targets = [v for v in graph.nodes if graph.in_degree(v) > 0]
    others = [v for v in graph.nodes if v not in targets]
    # One target (or a few) in the middle, the sources around it; otherwise a circle.
    layout = (
        nx.shell_layout(graph, nlist=[targets, others])
        if targets and others and len(targets) <= 3
        else nx.circular_layout(graph)
    )
    labels = {
        v: _wrap(str(v)) + (f"\nbaseline {d['baseline']:.3f}" if "baseline" in d else "")
        for v, d in graph.nodes(data=True)
    }
    texts = nx.draw_networkx_labels(graph, layout, labels=labels, ax=axis, font_size=font)
    # Each circle's diameter is its label's diagonal plus a margin, measured in points, so the
    # label fits inside; node_size is the marker's area in points squared.
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    scale = 72.0 / figure.dpi
    sizes = {}
    for v, text in texts.items():
        box = text.get_window_extent(renderer=renderer)
        sizes[v] = (math.hypot(box.width, box.height) * scale + 2.0 * font) ** 2
    node_sizes = [sizes[v] for v in graph.nodes]
    nx.draw_networkx_nodes(graph, layout, ax=axis, node_color="#dde6f0", edgecolors="#5a6b7d",
                           node_size=node_sizes)  # fmt: skip
    for text in texts.values():
        text.set_zorder(3)
    edges = list(graph.edges(data=True))
    gains = [float(d[predicted]) for _, _, d in edges]
    top = max((abs(g) for g in gains), default=1.0) or 1.0
    norm = TwoSlopeNorm(vmin=-top, vcenter=0.0, vmax=top)
    cmap = plt.get_cmap("RdYlGn")
    style = "arc3,rad=0.08"
    if edges:
        nx.draw_networkx_edges(
            graph, layout, ax=axis, edgelist=[(s, t) for s, t, _ in edges],
            width=[0.8 + 4.0 * abs(g) / top for g in gains],
            edge_color=[cmap(norm(g)) for g in gains], node_size=node_sizes,
            arrows=True, arrowsize=14, connectionstyle=style,
        )  # fmt: skip
        # Two short lines fit a short edge; nearer the source, away from the larger target.
        edge_texts = nx.draw_networkx_edge_labels(
            graph, layout, ax=axis, font_size=font - 1, connectionstyle=style, label_pos=0.4,
            edge_labels={(s, t): _edge_label(d, predicted, measured_key, sep="\n")
                         for s, t, d in edges},
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85},
        )  # fmt: skip
        for text in edge_texts.values():
            text.set_zorder(4)  # above the node circles
    mappable = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    bar = figure.colorbar(mappable, ax=axis, shrink=0.6, pad=0.02)
    unit = "(score - baseline) / |baseline|" if kind == "relative" else "score - baseline"
    scores = " on ".join(x for x in (graph.graph.get("metric"), graph.graph.get("split")) if x)
    bar.set_label(f"predicted {kind} gain: {unit}" + (f", {scores}" if scores else ""))
    axis.set_title(
        f"task affinity ({graph.graph.get('method', '')}): edge s \u2192 t = predicted {kind} gain "
        "of t from training with s\n(meas. = measured gain where the pair was run); "
        "width and colour by the gain, green helps, red hurts",
        fontsize=10,
    )
    axis.margins(0.18)
    axis.axis("off")
    figure.tight_layout()
    return figure


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
