"""benchmarks/search_variants.py: runs on the 5-task Taskonomy table, the paired summary, and
where each start-up order puts the best source (a toy table)."""

from __future__ import annotations

import json
import types
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="module")
def module(benchmark_script: Callable[[str], ModuleType]) -> ModuleType:
    return benchmark_script("search_variants.py")


def test_runs_every_variant_and_summarizes_paired(
    module: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "runs.jsonl"
    module.main(
        [
            "--table",
            "taskonomy5",
            "--seeds",
            "100",
            "--targets",
            "taskonomy0,taskonomy1",
            "--out",
            str(out),
        ]
    )
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert {(r["variant"], r["target"]) for r in lines} == {
        (v, t)
        for v in ("sourcerank", "graph", "graph_bma", "bandit")
        for t in ("taskonomy0", "taskonomy1")
    }
    assert all(1 <= r["trials"] <= 64 for r in lines)
    printed = capsys.readouterr().out
    assert "taskonomy5_trials_to_best_sourcerank:" in printed and "vs graph" in printed
    # The summary alone, from the file, gives the same lines.
    module.main(["--table", "taskonomy5", "--summary-of", str(out)])
    again = capsys.readouterr().out
    assert again.strip().splitlines() == [
        line for line in printed.strip().splitlines() if "_trials_to_best_" in line
    ]


def test_graph_bma_is_the_graph_sampler_with_bma_pooling(
    module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = {}

    def fake_run_search(table, target, sampler, **kwargs):
        seen[sampler] = kwargs["sampler_options"]
        return types.SimpleNamespace(trials=3)

    monkeypatch.setattr(module, "run_search", fake_run_search)
    table = module.convert("taskonomy5")
    records = table.to_records(split="val")
    for variant in ("graph", "graph_bma"):
        seen.clear()
        module.run_variant(table, "taskonomy0", variant, seed=0, cap=10, records=records)
        assert list(seen) == ["graph"]
        options = seen["graph"]
        assert options.get("estimator_options") == (
            {"pooling": "bma"} if variant == "graph_bma" else None
        )
        assert "startup_scores" in options


def test_summary_counts_the_paired_difference(module: ModuleType) -> None:
    lines = [
        {"variant": "graph", "target": "a", "seed": 1, "trials": 10},
        {"variant": "graph", "target": "b", "seed": 1, "trials": 4},
        {"variant": "x", "target": "a", "seed": 1, "trials": 6},
        {"variant": "x", "target": "b", "seed": 1, "trials": 4},
    ]
    summary = module.summarize(lines)
    paired = summary["x"]["vs_graph"]
    assert (paired.mean, paired.targets) == (-2.0, 2)
    assert (paired.better, paired.equal, paired.worse) == (1, 1, 0)
    assert summary["graph"]["median_trials"] == 7.0 and summary["graph"]["vs_graph"] is None


def test_best_source_places_put_the_family_first_or_last(module: ModuleType) -> None:
    from taskgraph.affinity.longtable import LongRow, LongTable

    # Target t_a's best single source is its family member t_b; the prior (the other targets'
    # gains) prefers x_c, whose gain for t_b is large.
    rows = []
    for target, gains in {
        "t_a": {"t_b": 1.3, "x_c": 1.1},
        "t_b": {"t_a": 1.0, "x_c": 1.5},
        "x_c": {"t_a": 1.2, "t_b": 0.9},
    }.items():
        rows.append(LongRow(target, frozenset({target}), "val", 1.0, True))
        for source, value in gains.items():
            rows.append(LongRow(target, frozenset({target, source}), "val", value, True))
    places = module.best_source_places(LongTable(rows=rows, source="toy"), "val")
    # t_a: popular puts x_c (mean gain 0.5 over t_b) before t_b (-0.1 over x_c) -> best at 2
    assert places["popular"][0] == 2
    assert places["family_first"][0] == 1 and places["family_last"][0] == 2
