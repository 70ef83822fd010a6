"""Graph: edges from an estimator; GraphML/JSON round trips; DOT text; PNG file."""

from __future__ import annotations

import re
from pathlib import Path

import networkx as nx
import pytest

from taskgraph.affinity.estimators import HigherOrderEstimator
from taskgraph.affinity.graph import (
    affinity_graph,
    graph_edges,
    graph_from_edges,
    read_graph,
    write_graph,
)
from taskgraph.errors import ConfigError

from .conftest import additive_truth, records_from


@pytest.fixture(scope="module")
def graph() -> nx.DiGraph:
    truth = additive_truth()
    return affinity_graph(HigherOrderEstimator().fit(records_from(truth, lambda t, a: len(a) == 1)))


def test_edges_carry_gain_std_evidence_and_method(graph: nx.DiGraph) -> None:
    truth = additive_truth()
    assert graph.number_of_edges() == 30 and graph.nodes["a"]["baseline"] == pytest.approx(0.8)
    data = graph.edges["b", "a"]
    assert graph.graph["gain_kind"] == "relative"
    assert data["predicted_relative_gain"] == pytest.approx(truth[("a", frozenset({"b"}))])
    assert data["measured_relative_gain"] == pytest.approx(truth[("a", frozenset({"b"}))])
    assert data["evidence_runs"] == 1 and data["method"] == "hoa"
    assert data["predicted_relative_gain_std"] > 0
    rebuilt = graph_from_edges(graph_edges(graph), method="hoa")
    assert nx.utils.edges_equal(rebuilt.edges(data=True), graph.edges(data=True))


@pytest.mark.parametrize("suffix", ["graphml", "json"])
def test_round_trip(graph: nx.DiGraph, tmp_path: Path, suffix: str) -> None:
    path = write_graph(graph, tmp_path / f"g.{suffix}")
    back = read_graph(path)
    assert set(back.edges) == set(graph.edges)
    for s, t, data in graph.edges(data=True):
        edge = back.edges[s, t]
        assert edge["predicted_relative_gain"] == pytest.approx(data["predicted_relative_gain"])
        assert edge["measured_relative_gain"] == pytest.approx(data["measured_relative_gain"])
        assert int(edge["evidence_runs"]) == data["evidence_runs"]


def test_dot_and_png(graph: nx.DiGraph, tmp_path: Path) -> None:
    dot = write_graph(graph, tmp_path / "g.dot").read_text()
    assert dot.startswith("digraph affinity {") and '"b" -> "a"' in dot and "penwidth=" in dot
    assert dot.count("->") == 30
    png = write_graph(graph, tmp_path / "g.out", fmt="png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ConfigError, match="format"):
        write_graph(graph, tmp_path / "g.svg")
    assert not (tmp_path / "g.svg").exists()


def test_png_without_suffix_leaves_sibling_files_alone(graph: nx.DiGraph, tmp_path: Path) -> None:
    sibling = tmp_path / "graph.png"
    sibling.write_text("someone else's picture")
    written = write_graph(graph, tmp_path / "graph", fmt="png")
    assert written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sibling.read_text() == "someone else's picture"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graph", "graph.png"]


def test_failed_write_leaves_no_temporary_file(graph: nx.DiGraph, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()  # the output name is taken by a directory: the rename fails
    with pytest.raises(OSError):
        write_graph(graph, tmp_path / "out", fmt="json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_png_carries_the_gains_a_scale_and_labels_that_fit(tmp_path: Path) -> None:
    import math

    import matplotlib.pyplot as plt

    from taskgraph.affinity.graph_drawing import draw_graph
    from taskgraph.affinity.records import ScoreRecord

    # The demo's shape: one target, long task names, one source measured, one not.
    def record(task_set: set[str], value: float) -> ScoreRecord:
        return ScoreRecord(task="synth_target", task_set=frozenset(task_set), value=value)

    records = [
        record({"synth_target"}, 0.70),
        record({"synth_target", "synth_cls_related"}, 1.00),
        record({"synth_target", "synth_conflict"}, 0.54),
        record({"synth_target", "synth_cls_related", "synth_conflict"}, 0.80),
    ]
    graph = affinity_graph(HigherOrderEstimator().fit(records))
    figure = draw_graph(graph)
    try:
        figure.canvas.draw()
        renderer = figure.canvas.get_renderer()
        axis, bar = figure.axes  # the drawing and its colour bar: the scale
        assert "predicted relative gain" in bar.get_ylabel()
        texts = [t.get_text() for t in axis.texts]
        # The gain on each edge, the measured one beside it.
        assert "+0.43\n(meas. +0.43)" in texts and "-0.23\n(meas. -0.23)" in texts
        # Every label lies inside its node's circle.
        (nodes,) = [c for c in axis.collections if len(c.get_offsets()) == graph.number_of_nodes()]
        radii = [math.sqrt(size) / 2 * figure.dpi / 72 for size in nodes.get_sizes()]
        centres = axis.transData.transform(nodes.get_offsets())
        labels = {
            t.get_text().split("\nbaseline")[0].replace("\n", ""): t
            for t in axis.texts
            if "meas." not in t.get_text()
        }  # the names are wrapped at "_" to fit
        assert sorted(labels) == sorted(graph.nodes)
        assert "baseline 0.700" in labels["synth_target"].get_text()
        for node, radius, centre in zip(graph.nodes, radii, centres, strict=True):
            box = labels[node].get_window_extent(renderer=renderer)
            corners = [(box.x0, box.y0), (box.x0, box.y1), (box.x1, box.y0), (box.x1, box.y1)]
            assert all(math.dist(c, centre) <= radius for c in corners), node
    finally:
        plt.close(figure)
    write_graph(graph, tmp_path / "g.png")


def _dot_values(dot: str) -> list[tuple[str, str]]:
    """Return every ``name=value`` of the attribute lists, values as written."""
    quoted = r'"(?:[^"\\]|\\.)*"'
    return re.findall(rf"(\w+)=({quoted}|[^,\]\s]+)", dot)


def test_dot_values_follow_the_dot_grammar_for_tiny_gains(tmp_path: Path) -> None:
    # repr wrote -1.99e-05, which is no DOT numeral (no exponent): pydot refused the file.
    graph = graph_from_edges(
        [{"source": "b", "target": "a", "predicted_relative_gain": -1.99e-05,
          "predicted_relative_gain_std": 3e-06, "measured_relative_gain": 5e-07,
          "evidence_runs": 1}]
    )  # fmt: skip
    dot = write_graph(graph, tmp_path / "g.dot").read_text()
    numeral = re.compile(r"-?(\.[0-9]+|[0-9]+(\.[0-9]*)?)")
    identifier = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
    values = dict(_dot_values(dot.split("->", 1)[1]))
    for name, value in values.items():
        assert value.startswith('"') or numeral.fullmatch(value) or identifier.fullmatch(value), (
            f"{name}={value}"
        )
    assert float(values["predicted_relative_gain"].strip('"')) == -1.99e-05
    assert float(values["predicted_relative_gain_std"].strip('"')) == 3e-06
    assert float(values["measured_relative_gain"].strip('"')) == 5e-07
