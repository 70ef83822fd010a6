"""What `taskgraph db` and `taskgraph bench` promise, pinned where a changed line went unnoticed
by the other tests: `db current` names five of another application's tables and counts the rest,
`db check --json` lists no table differences for a database behind head and one difference is
singular; `bench` names `--fit-fraction` when it is NaN or infinite, names an unknown sampler
among known ones even with `--no-search`, and prints its report as name: value lines (counts
whole, correlations to four places, NaN as nan)."""

from __future__ import annotations

import importlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app

runner = CliRunner()


def _words(text: str) -> str:
    return " ".join(text.split())  # rich wraps at 80 columns


def _sqlite_with_tables(path: Path, *names: str) -> str:
    connection = sqlite3.connect(path)
    for name in names:
        connection.execute(f"CREATE TABLE {name} (a INTEGER)")
    connection.commit()
    connection.close()
    return f"sqlite:///{path}"


def test_current_names_five_other_tables_and_counts_the_rest(tmp_path: Path) -> None:
    url = _sqlite_with_tables(tmp_path / "seven.db", "g", "f", "b", "e", "a", "d", "c")
    result = runner.invoke(app, ["db", "current", "--storage", url])
    assert result.exit_code == 0, result.output
    assert "(no tg_* tables, 7 other tables: a, b, c, d, e and 2 more; is it the" in _words(
        result.stdout
    ), result.output
    result = runner.invoke(app, ["db", "current", "--storage", url, "--json"])
    assert json.loads(result.stdout)["other_tables"] == list("abcdefg")


def test_current_with_exactly_five_other_tables_names_them_all(tmp_path: Path) -> None:
    url = _sqlite_with_tables(tmp_path / "five.db", "e", "d", "c", "b", "a")
    result = runner.invoke(app, ["db", "current", "--storage", url])
    assert result.exit_code == 0, result.output
    assert "(no tg_* tables, 5 other tables: a, b, c, d, e; is it the" in _words(result.stdout)
    assert "more" not in result.stdout


def test_check_json_behind_head_lists_no_table_differences(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgraded = runner.invoke(app, ["db", "upgrade", "--storage", url, "--revision", "0002"])
    assert upgraded.exit_code == 0, upgraded.output
    result = runner.invoke(app, ["db", "check", "--storage", url, "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["current"] == "0002"
    assert report["differences"] == []  # the revision is the problem; tables follow it


def test_check_says_one_difference_in_the_singular(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'one.db'}"
    assert runner.invoke(app, ["db", "upgrade", "--storage", url]).exit_code == 0
    _sqlite_with_tables(tmp_path / "one.db", "tg_extra")
    result = runner.invoke(app, ["db", "check", "--storage", url])
    assert result.exit_code == 1, result.output
    assert _words(result.stderr).endswith(
        "(1 difference: the database has a table tg_extra the schema does not)"
    ), result.stderr


def _bench_table(tmp_path: Path) -> Path:
    lines = ["target,task_set,split,value,higher_is_better"]
    for target, task_set, value in [
        ("a", "a", 0.7),
        ("b", "b", 0.7),
        ("a", "a+b", 0.71),
        ("b", "a+b", 0.69),
    ]:
        lines.append(f"{target},{task_set},val,{value},1")
    path = tmp_path / "table.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bench_refuses_a_fit_fraction_that_is_no_number_naming_the_option(
    tmp_path: Path,
) -> None:
    table = str(_bench_table(tmp_path))
    for value in ("nan", "inf", "-inf"):
        result = runner.invoke(app, ["bench", "--table", table, "--fit-fraction", value])
        assert result.exit_code == 2, result.output
        assert f"`--fit-fraction` must be in [0, 1], but got {value}" in result.stderr, (
            result.stderr
        )


def test_bench_with_no_search_names_an_unknown_sampler_among_known_ones(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "bench", "--table", str(_bench_table(tmp_path)),
            "--samplers", "graph_cold,bogus", "--no-search",
        ],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "unknown sampler 'bogus'" in result.stderr, result.stderr
    assert "--no-search turns the search off" not in result.stderr


_REPORT: dict[str, Any] = {
    "evaluations": [],
    "skipped": {"search": "no study"},
    "notes": ["one note"],
    "trials_to_best_graph": 24.0,
    "distinct_to_best_graph": 9.5,
    "not_found_graph": 2.0,
    "spearman_setfn": None,
    "gain_setfn": float("nan"),
    "ndcg_setfn": 0.12345,
}


def _fake_bench(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `bench` print :data:`_REPORT`, whatever the table."""

    def fake_bench(data: Any, **kwargs: Any) -> dict[str, Any]:
        return dict(_REPORT)

    # `taskgraph.app.bench` is also the name of the function the package exports
    monkeypatch.setattr(importlib.import_module("taskgraph.app.bench"), "bench", fake_bench)


def test_bench_prints_counts_as_counts_and_the_rest_to_four_places(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_bench(monkeypatch)
    result = runner.invoke(app, ["bench", "--table", str(_bench_table(tmp_path))])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "evaluations: (none)",
        "skipped_search: no study",
        "note: one note",
        "trials_to_best_graph: 24",
        "distinct_to_best_graph: 9.5",
        "not_found_graph: 2",
        "spearman_setfn: nan",
        "gain_setfn: nan",
        "ndcg_setfn: 0.1235",
    ]
