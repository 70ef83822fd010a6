"""Drawing the task-affinity graph (:mod:`taskgraph.affinity.graph`) with matplotlib: its PNG export.

The PNG is drawn with matplotlib's Agg backend: node circles sized to their labels and kept
apart, each edge's colour on a diverging scale with a colour bar and its width by the size of
the gain, a prediction with no run behind it dashed, and the gain printed on the strongest
edges that have room for it.  matplotlib is imported only when a graph is drawn.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import networkx as nx

from taskgraph.affinity.graph import _edge_label, _keys

__all__ = ["draw_graph"]


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


# Beyond these, a drawing is a hairball: the strongest edges are drawn and printed, and the
# title says how many of how many (every edge is in the GraphML/JSON/DOT exports).
_MAX_DRAWN_EDGES = 60
_MAX_EDGE_LABELS = 24
_CURVE = "arc3,rad=0.2"  # a -> b and b -> a bend to opposite sides: two curves, two labels
_DPI = 120


def _ring(
    nodes: Sequence[Any],
    diameters: Mapping[Any, float],
    gap: float,
    *,
    radius_at_least: float = 0.0,
    start: float = math.pi / 2,
) -> dict[Any, tuple[float, float]]:
    """Return positions (points) on a circle, clockwise from the angle ``start``, wide enough that no two circles come nearer than ``gap``."""
    count = len(nodes)
    if count == 1 and radius_at_least == 0.0:
        return {nodes[0]: (0.0, 0.0)}
    step = 2.0 * math.pi / max(count, 1)
    radius = radius_at_least
    for i in range(count):
        for j in range(i + 1, count):
            needed = (diameters[nodes[i]] + diameters[nodes[j]]) / 2.0 + gap
            radius = max(radius, needed / (2.0 * math.sin(step * (j - i) / 2.0)))
    return {
        v: (radius * math.cos(start - i * step), radius * math.sin(start - i * step))
        for i, v in enumerate(nodes)
    }


def _layout(
    graph: nx.DiGraph, diameters: Mapping[Any, float], *, gap: float
) -> dict[Any, tuple[float, float]]:
    """Return each node's centre in points such that no two node circles overlap.

    One to three targets go in the middle with their sources on a ring around them (space for
    an edge label between the rings); otherwise every task is on one circle.  ``gap`` is the
    least space between two circles.
    """
    targets = [v for v in graph.nodes if graph.in_degree(v) > 0]
    sources = [v for v in graph.nodes if v not in targets]
    if not (targets and sources and len(targets) <= 3):
        return _ring(list(graph.nodes), diameters, gap)
    # Targets are joined both ways: twice the room, for two labels on one short stretch.
    inner = _ring(targets, diameters, 2.0 * gap)
    inner_radius = max(math.hypot(x, y) for x, y in inner.values())
    reach = inner_radius + max(diameters[v] for v in targets) / 2.0
    # Turn the outer ring so that no source lies in line with two targets, where its edge to
    # the farther target would cross the nearer one.
    inner_angles = [math.atan2(y, x) for x, y in inner.values()] if len(targets) > 1 else []
    step = 2.0 * math.pi / len(sources)

    def clearance(start: float) -> float:
        angles = [start - i * step for i in range(len(sources))]
        return min((abs(math.remainder(a - b, math.pi)) for a in angles for b in inner_angles),
                   default=0.0)  # fmt: skip

    start = max((math.pi / 2 - k * step / 8 for k in range(8)), key=clearance)
    outer = _ring(sources, diameters, gap, start=start,
                  radius_at_least=reach + gap + max(diameters[v] for v in sources) / 2.0)  # fmt: skip
    return {**inner, **outer}


def _text_size(figure: Any, text: str, font: float) -> tuple[float, float]:
    """Return the width and height in points of ``text`` drawn centred at ``font`` points."""
    probe = figure.text(0, 0, text, fontsize=font, ha="center", va="center")
    box = probe.get_window_extent(renderer=figure.canvas.get_renderer())
    probe.remove()
    scale = 72.0 / figure.dpi
    return box.width * scale, box.height * scale


def _overlaps(
    box: Any, others: Sequence[Any], circles: Sequence[tuple[Any, float]], pad: float
) -> bool:
    """Return whether the display box ``box`` (grown by ``pad``) meets another box or a circle."""
    x0, y0, x1, y1 = box.x0 - pad, box.y0 - pad, box.x1 + pad, box.y1 + pad
    if any(x0 < o.x1 and o.x0 < x1 and y0 < o.y1 and o.y0 < y1 for o in others):
        return True
    for (cx, cy), radius in circles:
        nearest = (min(max(cx, x0), x1), min(max(cy, y0), y1))
        if math.dist(nearest, (cx, cy)) < radius:
            return True
    return False


def _png(graph: nx.DiGraph, path: Path) -> None:
    import matplotlib.pyplot as plt

    figure = draw_graph(graph)
    figure.savefig(path, dpi=_DPI)
    plt.close(figure)


def draw_graph(graph: nx.DiGraph) -> Any:
    """Return the matplotlib figure of the PNG export (Agg backend; close it when done).

    The drawing's data units are points, so circle sizes (in points) and positions share one
    scale: the layout keeps circles apart and the figure grows with the number of tasks.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LinearSegmentedColormap, TwoSlopeNorm, to_hex
    from matplotlib.lines import Line2D

    predicted, _, measured_key = _keys(graph)
    kind = graph.graph.get("gain_kind", "relative")
    n = graph.number_of_nodes()
    font = 9 if n <= 12 else 8 if n <= 30 else 7
    figure = plt.figure(dpi=_DPI)
    labels = {
        v: _wrap(str(v)) + (f"\nbaseline {d['baseline']:.3f}" if "baseline" in d else "")
        for v, d in graph.nodes(data=True)
    }
    # Each circle's diameter is its label's diagonal plus a margin, so the label fits inside.
    diameters = {v: math.hypot(*_text_size(figure, labels[v], font)) + 2.0 * font for v in graph}
    edge_font = font - 1
    label_width, label_height = _text_size(figure, "+0.00\n(meas. +0.00)", edge_font)
    # Room for a label between two neighbours while few; many tasks on a circle get little
    # room (their edges' labels go inside the circle) so that the figure stays a readable size.
    gap = 1.5 * math.hypot(label_width, label_height) if n <= 12 else 2.0 * font
    layout = _layout(graph, diameters, gap=gap) if n else {}

    # Axes whose data units are points: the figure is as large as the layout plus bands for
    # the title (top), the legend (bottom) and the colour bar (right).
    margin = 2.0 * font
    xs = [layout[v][0] + s * diameters[v] / 2 for v in graph for s in (-1, 1)] or [0.0]
    ys = [layout[v][1] + s * diameters[v] / 2 for v in graph for s in (-1, 1)] or [0.0]
    width = max((max(xs) - min(xs) + 2 * margin) / 72, 7.0)
    height = max((max(ys) - min(ys) + 2 * margin) / 72, 5.0)
    left, right, top, bottom = 0.2, 1.5, 0.9, 0.55
    fig_w, fig_h = left + width + right, bottom + height + top
    figure.set_size_inches(fig_w, fig_h)
    axis = figure.add_axes((left / fig_w, bottom / fig_h, width / fig_w, height / fig_h))
    centre_x, centre_y = (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2
    axis.set_xlim(centre_x - width * 36, centre_x + width * 36)
    axis.set_ylim(centre_y - height * 36, centre_y + height * 36)
    axis.axis("off")

    nodelist = list(graph.nodes)
    node_sizes = [diameters[v] ** 2 for v in nodelist]  # node_size: the marker's area in pt²
    nx.draw_networkx_nodes(graph, layout, ax=axis, nodelist=nodelist, node_color="#dde6f0",
                           edgecolors="#5a6b7d", node_size=node_sizes)  # fmt: skip
    texts = nx.draw_networkx_labels(graph, layout, labels=labels, ax=axis, font_size=font)
    for text in texts.values():
        text.set_zorder(3)

    def strength(edge: tuple[Any, Any, Mapping[str, Any]]) -> tuple[float, str, str]:
        return -abs(float(edge[2][predicted])), str(edge[0]), str(edge[1])

    edges = sorted(graph.edges(data=True), key=strength)  # strongest first, ties by name
    drawn = edges[:_MAX_DRAWN_EDGES]
    top_gain = max((abs(float(d[predicted])) for _, _, d in edges), default=1.0) or 1.0
    norm = TwoSlopeNorm(vmin=-top_gain, vcenter=0.0, vmax=top_gain)
    # RdYlGn with a darker yellow in the middle: its own pale yellow vanishes on white, and a
    # gain near 0 is an edge too.
    ends = plt.get_cmap("RdYlGn")
    cmap = LinearSegmentedColormap.from_list(
        "affinity",
        [to_hex(ends(0.0)), to_hex(ends(0.25)), "#c9a227", to_hex(ends(0.75)), to_hex(ends(1.0))],
    )
    # A prediction with no run behind it (cold start) is dashed and faint; a measured one solid.
    for cold, style, alpha in ((False, "solid", 0.9), (True, "dashed", 0.55)):
        group = [(s, t, d) for s, t, d in drawn if (int(d.get("evidence_runs", 0)) == 0) == cold]
        if not group:
            continue
        patches = nx.draw_networkx_edges(
            graph, layout, ax=axis, edgelist=[(s, t) for s, t, _ in group],
            width=[0.8 + 3.2 * abs(float(d[predicted])) / top_gain for _, _, d in group],
            edge_color=[cmap(norm(float(d[predicted]))) for _, _, d in group],
            style=style, alpha=alpha, node_size=node_sizes, nodelist=nodelist,
            arrows=True, arrowsize=12, connectionstyle=_CURVE,
        )  # fmt: skip
        for (s, t, _), patch in zip(group, patches, strict=True):
            patch.set_gid(f"edge {s} -> {t}")  # which edge a patch draws, for readers and tests

    # Print the gain on the strongest edges, each where its label meets no circle and no other
    # label (the middle of its curve, else nearer either end); an edge with no room goes without.
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    pixels = figure.dpi / 72.0
    circles = [
        (tuple(axis.transData.transform(layout[v])), diameters[v] / 2 * pixels) for v in nodelist
    ]
    placed: list[Any] = []
    for s, t, d in drawn:
        if len(placed) >= _MAX_EDGE_LABELS:
            break
        for position in (0.5, 0.35, 0.65):
            (text,) = nx.draw_networkx_edge_labels(
                graph, layout, ax=axis, font_size=edge_font, label_pos=position, rotate=False,
                edge_labels={(s, t): _edge_label(d, predicted, measured_key, sep="\n")},
                connectionstyle=_CURVE, node_size=node_sizes, nodelist=nodelist,
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85},
            ).values()  # fmt: skip
            box = text.get_window_extent(renderer=renderer)
            if not _overlaps(box, placed, circles, pad=0.2 * edge_font * pixels):
                text.set_zorder(4)  # above the edges and circles
                placed.append(box)
                break
            text.remove()

    mappable = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    bar_height = min(height * 0.6, 4.5)
    bar_axis = figure.add_axes(((left + width + 0.25) / fig_w, (bottom + (height - bar_height) / 2) / fig_h,
                                0.18 / fig_w, bar_height / fig_h))  # fmt: skip
    bar = figure.colorbar(mappable, cax=bar_axis)
    unit = "(score - baseline) / |baseline|" if kind == "relative" else "score - baseline"
    scores = " on ".join(x for x in (graph.graph.get("metric"), graph.graph.get("split")) if x)
    bar.set_label(f"predicted {kind} gain: {unit}" + (f", {scores}" if scores else ""))
    shown = (
        f"every edge drawn; gain printed on {len(placed)} of {len(edges)}"
        if len(drawn) == len(edges)
        else f"the {len(drawn)} edges of largest |gain| drawn, of {len(edges)}; "
        f"gain printed on {len(placed)}"
    )
    left_out = int(graph.graph.get("left_out_edges", 0) or 0)
    if left_out:
        shown += (
            f"; {left_out} edge{'s' if left_out != 1 else ''} with fewer than "
            f"{graph.graph.get('min_evidence')} runs left out (min evidence)"
        )
    method = graph.graph.get("method", "")
    axis.set_title(
        f"task affinity{f' ({method})' if method else ''}: edge s \u2192 t = predicted {kind} gain "
        "of t from training with s\ncolour and width by the gain (green helps, red hurts); "
        f"meas. = measured where the pair ran\n{shown}",
        fontsize=10,
    )
    measured_line = Line2D([], [], color="#555555", linestyle="solid", linewidth=2)
    cold_line = Line2D([], [], color="#555555", linestyle="dashed", linewidth=2, alpha=0.55)
    figure.legend(
        [measured_line, cold_line],
        ["measured: runs of t with s behind the prediction",
         "predicted only: no run of t with s (cold start)"],
        loc="lower center", ncol=2, fontsize=8, frameon=False,
    )  # fmt: skip
    return figure
