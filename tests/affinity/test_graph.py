"""Graph: edges from an estimator; GraphML/JSON round trips; DOT text; PNG file."""

from __future__ import annotations

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
    assert data["gain"] == pytest.approx(truth[("a", frozenset({"b"}))])
    assert data["n_evidence"] == 1 and data["method"] == "hoa" and data["std"] > 0
    rebuilt = graph_from_edges(graph_edges(graph), method="hoa")
    assert nx.utils.edges_equal(rebuilt.edges(data=True), graph.edges(data=True))


@pytest.mark.parametrize("suffix", ["graphml", "json"])
def test_round_trip(graph: nx.DiGraph, tmp_path: Path, suffix: str) -> None:
    path = write_graph(graph, tmp_path / f"g.{suffix}")
    back = read_graph(path)
    assert set(back.edges) == set(graph.edges)
    for s, t, data in graph.edges(data=True):
        assert back.edges[s, t]["gain"] == pytest.approx(data["gain"])
        assert int(back.edges[s, t]["n_evidence"]) == data["n_evidence"]


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
