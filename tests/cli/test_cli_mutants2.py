"""What `tasks list` and `bench` promise, pinned where a changed line went unnoticed by the other
tests: `--synthetic` lists the synthetic family, an unreadable task names its first bad file,
`--max-size` reaches the benchmark, `graph_cold` is a search sampler, and a tiny negative
correlation prints as 0.0000."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.cli.bench import _text
from taskgraph.testing import write_sst2_data

runner = CliRunner()


def _synthetic_rows(data_dir: Path, *flags: str) -> list[dict[str, Any]]:
    result = runner.invoke(
        app,
        ["tasks", "list", "--data", str(data_dir), "--type", "token_tagging", "--json", *flags],
    )
    assert result.exit_code == 0, result.output
    return [row for row in json.loads(result.stdout) if row["format"] == "synthetic"]


def test_tasks_list_synthetic_lists_the_synthetic_family(data_dir: Path) -> None:
    rows = _synthetic_rows(data_dir, "--synthetic")
    assert "synth_target" in {row["name"] for row in rows}
    assert _synthetic_rows(data_dir) == []


def test_an_unreadable_task_names_its_first_bad_file(tmp_path: Path) -> None:
    data = write_sst2_data(tmp_path / "data")
    cola = data / "cola"
    cola.mkdir()
    files = {
        "train": "in_domain_train.tsv",
        "dev": "in_domain_dev.tsv",
        "dev_ood": "out_of_domain_dev.tsv",
    }
    for split, name in files.items():
        rows = [f"src\t{i % 2}\t\tSentence {i}." for i in range(8)]
        if split in ("train", "dev"):  # both broken: the error names the first
            rows[2] = "a line without any tab"
        (cola / name).write_text("\n".join(rows) + "\n")
    result = runner.invoke(app, ["tasks", "list", "--data", str(data), "--json"])
    assert result.exit_code == 0, result.output
    (error,) = [row["error"] for row in json.loads(result.stdout) if row["name"] == "cola"]
    assert error.startswith(f"{cola / 'in_domain_train.tsv'}:3: "), error


def _table(tmp_path: Path) -> Path:
    lines = ["target,task_set,split,value,higher_is_better"]
    for target, task_set, value in [
        ("a", "a", 0.7),
        ("b", "b", 0.7),
        ("c", "c", 0.7),
        ("a", "a+b", 0.71),
        ("b", "a+b", 0.69),
        ("a", "a+c", 0.68),
        ("c", "a+c", 0.72),
        ("b", "b+c", 0.73),
        ("c", "b+c", 0.66),
    ]:
        for split in ("val", "test"):
            lines.append(f"{target},{task_set},{split},{value},1")
    path = tmp_path / "table.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bench_max_size_reaches_the_benchmark(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []

    def fake_bench(data: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append(kwargs)
        return {"evaluations": [], "skipped": {}, "notes": []}

    # `taskgraph.app.bench` is also the name of the function the package exports
    module = importlib.import_module("taskgraph.app.bench")
    monkeypatch.setattr(module, "bench", fake_bench)
    result = runner.invoke(app, ["bench", "--table", str(_table(tmp_path)), "--max-size", "1"])
    assert result.exit_code == 0, result.output
    assert len(calls) == 1 and calls[0]["max_size"] == 1


def test_bench_graph_cold_with_no_search_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["bench", "--table", str(_table(tmp_path)), "--samplers", "graph_cold", "--no-search"],
    )
    assert result.exit_code == 2
    assert (
        "chooses the samplers of the search, but --no-search turns the search off" in result.stderr
    ), result.output


def test_a_tiny_negative_value_prints_as_zero() -> None:
    assert _text(-1e-17) == "0.0000"
    assert _text(-0.25) == "-0.2500"
