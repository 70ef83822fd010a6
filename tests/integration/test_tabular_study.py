"""A benchmark study through the `tabular` runner: the CLI searches a published-style table with
TPE and with the graph-guided sampler, and records every looked-up trial."""

from __future__ import annotations

import itertools
from pathlib import Path
from types import ModuleType

import pytest

from taskgraph.storage import open_repository

CANDIDATES = ["b", "c", "d", "e"]
EFFECT = {"b": 0.10, "c": -0.05, "d": 0.02, "e": -0.20}


def write_table(path: Path) -> dict[frozenset[str], float]:
    """Write every subset's score for target `a` (additive effects) and return the val scores."""
    values: dict[frozenset[str], float] = {}
    lines = ["target,task_set,split,value,higher_is_better"]
    for size in range(len(CANDIDATES) + 1):
        for subset in itertools.combinations(CANDIDATES, size):
            score = 0.5 + sum(EFFECT[t] for t in subset)
            values[frozenset(subset)] = score
            key = "+".join(["a", *subset])
            lines.append(f"a,{key},val,{score:.4f},1")
            lines.append(f"a,{key},test,{score - 0.01:.4f},1")
    path.write_text("\n".join(lines) + "\n")
    return values


@pytest.mark.parametrize("sampler", ["tpe", "graph"])
def test_tabular_benchmark_study(tmp_path: Path, cli: ModuleType, sampler: str) -> None:
    values = write_table(tmp_path / "table.csv")
    spec = tmp_path / "bench.yaml"
    spec.write_text(
        "name: bench\ntarget: a\ncandidates: [b, c, d, e]\n"
        "objective: {metric: score, split: dev, direction: maximize}\n"
        f"sampler: {{name: {sampler}, seed: 0}}\n"
        "budget: {trials: 10}\n"
        "runner: {name: tabular, table: table.csv, split: val}\n"
    )
    storage = f"sqlite:///{tmp_path / 'bench.db'}"
    cli.taskgraph("study", "run", str(spec), "--storage", storage, "--quiet")
    report = cli.show("bench", storage)
    assert report["n_done"] == 10 and report["n_failed"] == 0
    assert report["baseline"]["score"] == pytest.approx(0.5)
    for row in report["gains"]:
        assert row["value"] == pytest.approx(values[frozenset(row["auxiliaries"])], abs=1e-4)
        assert row["measured_absolute_gain"] == pytest.approx(row["value"] - 0.5, abs=1e-9)
    best = report["best"]
    assert best["score"] == max(r["value"] for r in report["gains"])
    with open_repository(storage) as repo:
        runs = repo.runs(study="bench")
    assert sorted(r.trial_number for r in runs) == list(range(10))
    assert all(r.scores["a"]["test"]["score"] is not None for r in runs)
