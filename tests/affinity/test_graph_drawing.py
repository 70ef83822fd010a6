"""The PNG drawing: circles apart, names inside the figure, few readable edge labels, cold starts dashed."""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterator
from typing import Any

import networkx as nx
import pytest

from taskgraph.affinity.graph import graph_from_edges
from taskgraph.affinity.graph_drawing import draw_graph

EDGE_LABEL = re.compile(r"^[+-]\d")  # an edge's label starts with its signed gain


def _graph(
    targets: list[str], sources: list[str], *, cold: Collection[tuple[str, str]] = ()
) -> nx.DiGraph:
    """Return a graph with an edge s -> t for every source and target, gains spread over [-0.4, 0.4]."""
    pairs = [(s, t) for t in targets for s in [*targets, *sources] if s != t]
    edges = [
        {"source": s, "target": t,
         "predicted_relative_gain": 0.4 * math.sin(1.7 * i + 0.3),
         **({} if (s, t) in cold else {"measured_relative_gain": 0.4 * math.sin(1.7 * i + 0.3)}),
         "evidence_runs": 0 if (s, t) in cold else 2}
        for i, (s, t) in enumerate(pairs)
    ]  # fmt: skip
    graph = graph_from_edges(edges, method="pairwise")
    for node in graph:
        graph.nodes[node]["baseline"] = 0.75
    return graph


MIMIC_LIKE = [
    "mort_24h", "mort_48h", "long_los", "readmission_30", "cmo_24h", "cmo_48h", "dnr_24h",
    "dnr_48h", "disch_24h", "disch_48h", "final_acuity_outcome", "icd_infection",
    "icd_neoplasms", "icd_endocrine", "icd_blood", "icd_mental", "icd_nervous",
    "icd_circulatory", "icd_respiratory", "icd_digestive", "icd_genitourinary",
    "icd_pregnancy", "icd_skin", "icd_musculoskeletal", "icd_congenital", "icd_ill_defined",
    "icd_injury",
]  # fmt: skip


@pytest.fixture
def drawn(request: pytest.FixtureRequest) -> Iterator[tuple[nx.DiGraph, Any]]:
    import matplotlib.pyplot as plt

    graph = request.param
    figure = draw_graph(graph)
    figure.canvas.draw()
    try:
        yield graph, figure
    finally:
        plt.close(figure)


def _circles(graph: nx.DiGraph, figure: Any) -> list[tuple[tuple[float, float], float]]:
    """Return each node circle's centre and radius in display pixels."""
    axis = figure.axes[0]
    (nodes,) = [c for c in axis.collections if len(c.get_offsets()) == graph.number_of_nodes()]
    centres = axis.transData.transform(nodes.get_offsets())
    radii = [math.sqrt(size) / 2 * figure.dpi / 72 for size in nodes.get_sizes()]
    return [((float(x), float(y)), r) for (x, y), r in zip(centres, radii, strict=True)]


def _meets_circle(box: Any, centre: tuple[float, float], radius: float) -> bool:
    nearest = (min(max(centre[0], box.x0), box.x1), min(max(centre[1], box.y0), box.y1))
    return math.dist(nearest, centre) < radius


def _edge_texts(figure: Any) -> list[Any]:
    return [t for t in figure.axes[0].texts if EDGE_LABEL.match(t.get_text())]


SHAPES = {
    "27 tasks, all targets": _graph(MIMIC_LIKE, []),
    "3 tasks, all targets": _graph(["sentiment_polarity", "topic_classification", "ner"], []),
    "2 targets, 4 sources": _graph(["pos_tagging", "chunking"], ["ner", "srl", "lm", "parsing"]),
    "1 target, 12 sources": _graph(["synth_target"], [f"synth_source_{i}" for i in range(12)]),
}


@pytest.mark.parametrize("drawn", SHAPES.values(), ids=SHAPES.keys(), indirect=True)
def test_node_circles_do_not_overlap_and_names_stay_inside_them_and_the_figure(
    drawn: tuple[nx.DiGraph, Any],
) -> None:
    graph, figure = drawn
    renderer = figure.canvas.get_renderer()
    circles = _circles(graph, figure)
    for i, (centre, radius) in enumerate(circles):
        for other, other_radius in circles[i + 1 :]:
            assert math.dist(centre, other) >= radius + other_radius, "two node circles overlap"
    width, height = figure.bbox.width, figure.bbox.height
    names = [t for t in figure.axes[0].texts if not EDGE_LABEL.match(t.get_text())]
    assert len(names) == graph.number_of_nodes()
    for text, (centre, radius) in zip(names, circles, strict=True):
        box = text.get_window_extent(renderer=renderer)
        assert box.x0 >= 0 and box.x1 <= width and box.y0 >= 0 and box.y1 <= height, text
        corners = [(box.x0, box.y0), (box.x0, box.y1), (box.x1, box.y0), (box.x1, box.y1)]
        assert all(math.dist(c, centre) <= radius for c in corners), text.get_text()


@pytest.mark.parametrize("drawn", SHAPES.values(), ids=SHAPES.keys(), indirect=True)
def test_edge_labels_cover_no_node_and_no_other_edge_label(drawn: tuple[nx.DiGraph, Any]) -> None:
    graph, figure = drawn
    renderer = figure.canvas.get_renderer()
    circles = _circles(graph, figure)
    boxes = [t.get_window_extent(renderer=renderer) for t in _edge_texts(figure)]
    assert boxes, "no edge is labelled"
    for i, box in enumerate(boxes):
        assert not any(_meets_circle(box, c, r) for c, r in circles), "an edge label covers a node"
        for other in boxes[i + 1 :]:
            assert not box.overlaps(other), "two edge labels overlap"


@pytest.mark.parametrize("drawn", [SHAPES["27 tasks, all targets"]], indirect=True)
def test_many_edges_draw_and_label_only_the_strongest_and_say_so(
    drawn: tuple[nx.DiGraph, Any],
) -> None:
    graph, figure = drawn
    axis = figure.axes[0]
    assert graph.number_of_edges() == 27 * 26
    strongest = sorted(graph.edges(data=True), key=lambda e: -abs(e[2]["predicted_relative_gain"]))
    assert len(axis.patches) == 60  # one arrow per drawn edge
    arrows = [p.get_gid() for p in axis.patches if (p.get_gid() or "").startswith("edge ")]
    assert sorted(arrows) == sorted(f"edge {s} -> {t}" for s, t, _ in strongest[:60])
    labelled = len(_edge_texts(figure))
    assert 0 < labelled <= 24
    title = axis.get_title()
    assert (
        f"the 60 edges of largest |gain| drawn, of {27 * 26}; gain printed on {labelled}" in title
    )


COLD = {("ner", "sentiment_polarity"), ("topic_classification", "ner")}


@pytest.mark.parametrize(
    "drawn", [_graph(["sentiment_polarity", "topic_classification", "ner"], [], cold=COLD)],
    indirect=True,
)  # fmt: skip
def test_cold_start_edges_are_dashed_and_faint_and_the_legend_says_so(
    drawn: tuple[nx.DiGraph, Any],
) -> None:
    graph, figure = drawn
    patches = figure.axes[0].patches
    assert sum(p.get_linestyle() in ("--", "dashed") for p in patches) == len(COLD)
    arrows = {p.get_gid(): p for p in patches if p.get_gid()}
    assert len(arrows) == graph.number_of_edges() == 6
    for s, t in graph.edges:
        patch = arrows[f"edge {s} -> {t}"]
        dashed = patch.get_linestyle() in ("--", "dashed")
        assert dashed == ((s, t) in COLD), (s, t)
        alpha = patch.get_edgecolor()[3]  # networkx folds the alpha into the colour
        assert alpha < 0.7 if (s, t) in COLD else alpha >= 0.7, (s, t)
    (legend,) = figure.legends
    entries = [t.get_text() for t in legend.get_texts()]
    assert any("predicted only" in e and "cold start" in e for e in entries)
    assert any(e.startswith("measured") for e in entries)
    styles = [line.get_linestyle() for line in legend.get_lines()]
    assert styles == ["-", "--"]


def test_layout_keeps_circles_apart_whatever_their_sizes() -> None:
    from taskgraph.affinity.graph_drawing import _layout

    graph = _graph(["t1", "t2", "t3"], [f"s{i}" for i in range(9)])
    diameters = {v: 40.0 + 37.0 * (i % 4) for i, v in enumerate(graph)}
    layout = _layout(graph, diameters, gap=10.0)
    nodes = list(graph)
    for i, v in enumerate(nodes):
        for w in nodes[i + 1 :]:
            assert (
                math.dist(layout[v], layout[w]) >= (diameters[v] + diameters[w]) / 2 + 10.0 - 1e-9
            )
    everything = _graph(MIMIC_LIKE[:9], [])
    layout = _layout(everything, dict.fromkeys(everything, 80.0), gap=5.0)
    assert all(
        math.dist(p, q) >= 85.0 - 1e-9 for p in layout.values() for q in layout.values() if p != q
    )
