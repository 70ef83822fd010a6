"""``taskgraph db`` and ``taskgraph affinity`` edges the other tests left unpinned: the schema
states `db current|check` tell apart, their --json keys, and what the affinity commands print."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from taskgraph.affinity.longtable import LongTable, write_long_csv
from taskgraph.cli.app import app
from taskgraph.storage.records import RunRecord
from tests.cli.test_affinity_cli import toy_table

runner = CliRunner()
HEAD = "0005"


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def head_database(path: Path) -> str:
    url = f"sqlite:///{path}"
    assert invoke("db", "upgrade", "--storage", url)[0] == 0
    return url


def run_sql(path: Path, *statements: str) -> None:
    connection = sqlite3.connect(path)
    for statement in statements:
        connection.execute(statement)
    connection.commit()
    connection.close()


@pytest.fixture
def table_file(tmp_path: Path) -> Path:
    path = tmp_path / "toy.csv"
    write_long_csv(toy_table(), path)
    return path


# --- db ------------------------------------------------------------------------------------


def test_a_revision_with_branch_syntax_is_refused_before_the_file_is_created(tmp_path):
    path = tmp_path / "new.db"
    code, out, err = invoke(
        "db", "upgrade", "--storage", f"sqlite:///{path}", "--revision", "0003@head"
    )
    assert code == 2 and out == "" and not path.exists()
    assert "'0003@head' is not a revision of taskgraph's migrations" in err


def test_current_on_an_empty_file_is_empty_not_newer(tmp_path):
    # A file holding another application's tables is refused (test_not_a_database.py).
    path = tmp_path / "empty.db"
    path.touch()
    url = f"sqlite:///{path}"
    code, out, _ = invoke("db", "current", "--storage", url, "--json")
    assert code == 0
    assert json.loads(out) == {"storage": url, "current": None, "head": HEAD, "at_head": False}
    code, out, _ = invoke("db", "current", "--storage", url)
    assert code == 0 and out.strip() == (
        f"{url}: revision (none), head {HEAD} (empty: run `taskgraph db upgrade` or a study "
        "to create it)"
    )


def test_a_version_table_without_tables_is_behind_not_empty(tmp_path):
    path = tmp_path / "stamped.db"
    run_sql(
        path,
        "CREATE TABLE tg_alembic_version (version_num VARCHAR(32) PRIMARY KEY)",
        "INSERT INTO tg_alembic_version VALUES ('0004')",
    )
    url = f"sqlite:///{path}"
    code, out, _ = invoke("db", "current", "--storage", url)
    assert code == 0 and out.strip() == (
        f"{url}: revision 0004, head {HEAD} (behind: run `taskgraph db upgrade`)"
    )


def test_check_json_says_newer_for_a_revision_this_taskgraph_does_not_know(tmp_path):
    path = tmp_path / "newer.db"
    url = head_database(path)
    run_sql(path, "UPDATE tg_alembic_version SET version_num = '9999'")
    code, out, err = invoke("db", "check", "--storage", url, "--json")
    report = json.loads(out)
    assert code == 1 and report["newer"] is True and report["ok"] is False
    assert "newer than this taskgraph knows" in err


def test_check_names_tables_without_a_version_table(tmp_path):
    path = tmp_path / "unversioned.db"
    url = head_database(path)
    run_sql(path, "DROP TABLE tg_alembic_version")
    code, _, err = invoke("db", "check", "--storage", url)
    assert code == 1
    assert f"{url} has taskgraph tables but no tg_alembic_version table" in err
    assert "newer" not in err


def test_check_names_a_column_that_allows_null_where_the_schema_does_not(tmp_path):
    path = tmp_path / "nullable.db"
    url = head_database(path)
    connection = sqlite3.connect(path)
    (sql,) = connection.execute(
        "SELECT sql FROM sqlite_master WHERE name = 'tg_affinity_edges'"
    ).fetchone()
    relaxed = sql.replace("gain FLOAT NOT NULL", "gain FLOAT", 1)
    assert relaxed != sql
    connection.execute("DROP TABLE tg_affinity_edges")
    connection.execute(relaxed)
    connection.commit()
    connection.close()
    code, out, err = invoke("db", "check", "--storage", url, "--json")
    assert code == 1
    assert (
        "tg_affinity_edges.gain is nullable, the schema says NOT NULL"
        in json.loads(out)["differences"]
    )
    assert "tg_affinity_edges.gain is nullable, the schema says NOT NULL" in err


# --- affinity -------------------------------------------------------------------------------


def test_top_accepts_one_set_and_sets_of_one_auxiliary(table_file):
    def recommendations(*extra: str) -> list[Any]:
        code, out, err = invoke(
            "affinity", "top", "--table", str(table_file), "--target", "a",
            "--method", "pairwise", "--json", *extra,
        )  # fmt: skip
        assert code == 0, err  # 1 is the least either option takes
        return json.loads(out)["recommendations"]

    singles = recommendations("--max-size", "1")
    assert singles and all(len(r["auxiliaries"]) == 1 for r in singles)
    assert len(recommendations("-k", "1")) == 1


def test_top_prints_measured_gains_signed(table_file):
    code, out, err = invoke(
        "affinity", "top", "--table", str(table_file), "--target", "a", "-k", "1",
        "--method", "pairwise",
    )  # fmt: skip
    assert code == 0, err
    assert "+0.0192" in out  # b + d, measured: a gain is signed, as the predicted one is


def test_groups_title_says_partly_predicted_when_some_tasks_are(tmp_path):
    toy = toy_table()  # without any set holding both a and c: some scores are predicted
    part = LongTable(rows=[r for r in toy.rows if not {"a", "c"} <= r.task_set], source="part")
    path = tmp_path / "part.csv"
    write_long_csv(part, path)
    code, out, err = invoke(
        "affinity", "groups", "--table", str(path), "--budget", "2", "--method", "pairwise"
    )
    assert code == 0, err
    title = " ".join(out.split())
    assert "(partly predicted) (milp)" in title and "0.39509 (predicted)" not in title


def test_graph_json_file_carries_the_notes(table_file, tmp_path):
    path = tmp_path / "g.json"
    code, _, err = invoke(
        "affinity", "graph", "--table", str(table_file), "--format", "json", "-o", str(path),
        "--method", "pairwise",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(path.read_text())["graph"]["notes"] == []


def test_graph_pooling_reaches_the_fit(table_file):
    def gains(*extra: str) -> list[float]:
        code, out, err = invoke(
            "affinity", "graph", "--table", str(table_file), "--format", "json", "-o", "-",
            *extra,
        )  # fmt: skip
        assert code == 0, err
        return [edge["predicted_relative_gain"] for edge in json.loads(out)["edges"]]

    default, summed = gains(), gains("--pooling", "sum")
    assert len(default) == len(summed) > 0 and default != summed


# --- records ---------------------------------------------------------------------------------


def test_trial_result_leaves_null_scores_out():
    record = RunRecord(
        id=1, study="s", trial_number=0, target="a", task_set=("a",), seed=0,
        status="complete", failure_reason=None, objective=0.1, cost_seconds=1.0,
        cost_examples=1, cost_tokens=1, device="cpu", target_steps=1, total_steps=1,
        started_at=None, finished_at=None, created_at=datetime(2026, 1, 1), code_version=None,
        host=None, model_config_hash="h", family="f", transfer_mode="none", config={},
        scores={"a": {"dev": {"loss": 0.1, "f1": None}}},
    )  # fmt: skip
    assert record.trial_result().scores == {"a": {"dev": {"loss": 0.1}}}
