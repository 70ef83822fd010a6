"""``taskgraph bench``: name: value lines or JSON for any long-format table; one-line errors."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from taskgraph.affinity.longtable import LongRow, LongTable, write_long_csv
from taskgraph.cli.app import app

runner = CliRunner()


@pytest.fixture
def table_file(tmp_path: Path) -> Path:
    tasks = ("a", "b", "c", "d", "e")
    rng = np.random.default_rng(0)
    effect = {(t, s): float(rng.normal(0, 0.05)) for t in tasks for s in tasks if s != t}
    rows = []
    for size in range(1, 6):
        for combo in itertools.combinations(tasks, size):
            for t in combo:
                others = [s for s in combo if s != t]
                gain = float(np.mean([effect[(t, s)] for s in others])) if others else 0.0
                rows.append(LongRow(t, frozenset(combo), "val", 0.7 * (1 + gain), True))
                rows.append(
                    LongRow(
                        t, frozenset(combo), "test", 0.7 * (1 + gain + rng.normal(0, 0.01)), True
                    )
                )
    path = tmp_path / "five.csv"
    write_long_csv(LongTable(rows=rows), path)
    return path


def test_json_output(table_file: Path) -> None:
    result = runner.invoke(
        app,
        ["bench", "--table", str(table_file), "--seeds", "2", "--fit-fraction", "0.3", "--json"],
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"spearman", "spearman_hoa", "scored_on", "trials_to_best_graph",
                         "trials_to_best_tpe", "trials_to_best_random"}  # fmt: skip
    assert data["scored_on"] == "test"
    assert all(math.isfinite(data[k]) for k in data if k != "scored_on")
    assert (
        1 <= data["trials_to_best_graph"] <= 16
    )  # 16 auxiliary sets per target, never asked twice


def test_name_value_lines(table_file: Path) -> None:
    result = runner.invoke(
        app, ["bench", "--table", str(table_file), "--seeds", "1", "--no-search"]
    )
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert [line.split(": ")[0] for line in lines] == ["spearman", "spearman_hoa", "scored_on"]
    assert -1.0 <= float(lines[0].split(": ")[1]) <= 1.0


def test_bad_input(tmp_path: Path, table_file: Path) -> None:
    missing = runner.invoke(app, ["bench", "--table", str(tmp_path / "nope.csv")])
    assert missing.exit_code != 0 and missing.stderr.startswith("error: table file does not exist")
    bad = tmp_path / "bad.csv"
    bad.write_text("target,task_set,split,value,higher_is_better\na,a,val,0.5,2\n")
    malformed = runner.invoke(app, ["bench", "--table", str(bad)])
    assert malformed.stderr.strip() == f"error: {bad}:2: expected higher_is_better 1 or 0, got '2'"
    fraction = runner.invoke(app, ["bench", "--table", str(table_file), "--fit-fraction", "2"])
    assert (
        fraction.exit_code != 0
        and "`--fit-fraction` must be in [0, 1], but got 2.0" in fraction.stderr
    )
    trials = runner.invoke(app, ["bench", "--table", str(table_file), "--max-trials", "0"])
    assert trials.exit_code != 0 and trials.stdout == ""
    assert trials.stderr.strip() == "error: `--max-trials` must be >= 1, but got 0"
    assert "--fit-fraction" in runner.invoke(app, ["bench", "--help"]).stdout
