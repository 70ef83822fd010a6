"""``taskgraph bench`` on tables whose numbers overflow: one error line, never ``spearman: nan``."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from typer.testing import CliRunner

from taskgraph.affinity.longtable import LongRow, LongTable, write_long_csv
from taskgraph.cli.app import app
from taskgraph.search.bench_report import MAX_BENCH_VALUE
from taskgraph.search.benchmarking import benchmark_spec

runner = CliRunner()


def table(tmp_path: Path, scale: float) -> Path:
    """Return a four-task table whose values are ``scale`` times ordinary gains."""
    tasks = ("a", "b", "c", "d")
    rows = []
    for size in range(1, 5):
        for combo in itertools.combinations(tasks, size):
            for target in combo:
                # distinct values per set, so the true gains are never constant
                value = (sum(ord(t) * (i + 1) for i, t in enumerate(combo)) % 17) / 17 - 0.5
                for split in ("val", "test"):
                    rows.append(LongRow(target, frozenset(combo), split, 2.0 + scale * value, True))
    path = tmp_path / "t.csv"
    write_long_csv(LongTable(rows=rows), path)
    return path


def test_values_near_the_float_range_are_one_error_line(tmp_path: Path) -> None:
    # 1e308-sized values overflowed to inf/nan in the gains: `spearman: nan` with exit 0.
    path = table(tmp_path, 1.0e308)
    result = runner.invoke(app, ["bench", "--table", str(path), "--seeds", "1", "--no-search"])
    assert result.exit_code != 0
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: {path}: expected values of magnitude at most")
    assert f"{MAX_BENCH_VALUE:g}" in result.stderr


def test_the_same_table_rescaled_gives_a_finite_spearman(tmp_path: Path) -> None:
    path = table(tmp_path, 1.0)
    result = runner.invoke(app, ["bench", "--table", str(path), "--seeds", "1", "--no-search"])
    assert result.exit_code == 0, result.stderr
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    spearman = float(lines["spearman"])
    assert -1.0 <= spearman <= 1.0


def test_an_undefined_spearman_is_an_error_not_nan(tmp_path: Path) -> None:
    # Every value 2.0: every true gain is 0, so no Spearman exists for any seed.
    path = table(tmp_path, 0.0)
    result = runner.invoke(app, ["bench", "--table", str(path), "--seeds", "2", "--no-search"])
    assert result.exit_code != 0
    assert "nan" not in result.stdout
    assert result.stderr.strip().startswith("error: `spearman` is undefined: no seed of 2")


def test_too_few_groups_for_a_spearman_are_skipped_not_an_error(tmp_path: Path) -> None:
    # A results table: one target, its baseline, a pair and two larger groups (0.50 is the
    # baseline; HOA's predictions of the two groups are equal, so no Spearman exists).
    rows = [
        LongRow("a", frozenset(s), split, v, True)
        for s, v in (
            (("a",), 0.5),
            (("a", "b"), 0.6),
            (("a", "b", "c"), 0.7),
            (("a", "b", "c", "d"), 0.65),
        )
        for split in ("val", "test")
    ]
    path = tmp_path / "results.csv"
    write_long_csv(LongTable(rows=rows), path)
    result = runner.invoke(app, ["bench", "--table", str(path), "--seeds", "2", "--no-search"])
    assert result.exit_code == 0, result.stderr
    assert (
        "skipped_gain_prediction: 2 gain(s) of groups of size >= 3 with a baseline row on both "
        "'val' and 'test'; a Spearman needs 3" in result.stdout
    )


def test_a_target_name_that_is_no_study_name_is_still_searched(tmp_path: Path) -> None:
    # The search's study spec was named f"bench-{target}": `a,1` and `b/x` failed its name check
    # after the other evaluations had run, and `--json` printed nothing.
    gains = {"a,1": {"b/x": 0.55, "c": 0.45, "d": 0.60}, "b/x": {"a,1": 0.33, "c": 0.29, "d": 0.35}}
    rows = []
    for target, values in gains.items():
        rows.append(LongRow(target, frozenset({target}), "val", 0.5, True))
        rows += [LongRow(target, frozenset({target, s}), "val", v, True) for s, v in values.items()]
    table_ = LongTable(rows=rows, source="odd")
    path = tmp_path / "odd.csv"
    write_long_csv(table_, path)
    result = runner.invoke(
        app, ["bench", "--table", str(path), "--seeds", "2", "--json", "--samplers", "graph,random"]
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert "search" in data["evaluations"]
    assert data["not_found_graph"] == 0 and data["trials_to_best_random"] >= 1
    spec = benchmark_spec(table_, "b/x", sampler="random", seed=0)
    assert spec.target == "b/x" and spec.name.startswith("bench-") and "/" not in spec.name
    # a valid name is kept: it seeds the sampler, so the published numbers stay the same
    assert benchmark_spec(_plain_table(), "a", sampler="random", seed=0).name == "bench-a"


def _plain_table() -> LongTable:
    rows = [LongRow("a", frozenset({"a"}), "val", 0.5, True)]
    rows += [LongRow("a", frozenset({"a", s}), "val", 0.6, True) for s in ("b", "c")]
    return LongTable(rows=rows)


def test_a_fit_fraction_that_fits_every_group_skips_gain_prediction(tmp_path: Path) -> None:
    # `--fit-fraction 1.0` left no group to score, and the error blamed a constant Spearman.
    path = table(tmp_path, 1.0)
    result = runner.invoke(
        app, ["bench", "--table", str(path), "--seeds", "1", "--no-search", "--fit-fraction", "1.0"]
    )
    assert result.exit_code == 0, result.stderr
    assert (
        "skipped_gain_prediction: `--fit-fraction` 1 fits all 5 groups of size >= 3: none is "
        "left to score" in result.stdout
    )
    assert "evaluations: pair_gains" in result.stdout
