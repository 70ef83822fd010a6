"""`db check --json` when not ok, drift in words, `db upgrade` on a newer database, and
`study list` on a database with Optuna's tables only."""

from __future__ import annotations

import json

import optuna
import pytest
import sqlalchemy
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.storage import VERSION_TABLE, head_revision, open_repository
from taskgraph.testing import table_names

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def execute(url: str, *statements: str) -> None:
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(sqlalchemy.text(statement))
    finally:
        engine.dispose()


def database(tmp_path, name: str, *statements: str) -> str:
    url = f"sqlite:///{tmp_path / name}"
    open_repository(url).close()
    execute(url, *statements)
    return url


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        (f"UPDATE {VERSION_TABLE} SET version_num = '0004'", "this taskgraph needs"),
        (f"UPDATE {VERSION_TABLE} SET version_num = '0099'", "newer than this taskgraph knows"),
        ("ALTER TABLE tg_runs ADD COLUMN extra TEXT", "tables differ"),
    ],
)
def test_check_json_says_ok_false_with_the_reason(tmp_path, statement, reason):
    url = database(tmp_path, "x.db", statement)
    code, out, err = invoke("db", "check", "--storage", url, "--json")
    assert code == 1
    report = json.loads(out)
    assert report["ok"] is False and report["storage"] == url
    assert report["head"] == head_revision() and reason in report["reason"]
    assert err.strip() == f"error: {report['reason']}"


def test_check_json_when_ok_has_the_same_keys_but_reason(tmp_path):
    url = database(tmp_path, "ok.db")
    code, out, _ = invoke("db", "check", "--storage", url, "--json")
    assert code == 0 and json.loads(out) == {
        "storage": url,
        "current": head_revision(),
        "head": head_revision(),
        "ok": True,
        "differences": [],
    }


def test_check_names_every_difference_in_words_on_one_line(tmp_path):
    url = database(
        tmp_path,
        "drift.db",
        "DROP INDEX ix_tg_scores_hot",
        "ALTER TABLE tg_runs ADD COLUMN extra TEXT",
    )
    code, out, err = invoke("db", "check", "--storage", url)
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "(2 differences: " in err
    assert "tg_runs has a column extra the schema does not" in err
    assert "index ix_tg_scores_hot on tg_scores is missing" in err
    assert "remove_column" not in err and "Column(" not in err
    code, out, _ = invoke("db", "check", "--storage", url, "--json")
    assert sorted(json.loads(out)["differences"]) == [
        "index ix_tg_scores_hot on tg_scores is missing",
        "tg_runs has a column extra the schema does not",
    ]


def test_check_caps_the_differences_it_names_and_json_lists_all(tmp_path):
    columns = [f"ALTER TABLE tg_runs ADD COLUMN extra{i} TEXT" for i in range(7)]
    url = database(tmp_path, "many.db", *columns)
    code, _, err = invoke("db", "check", "--storage", url)
    assert code == 1 and err.count("\n") == 1
    assert "(7 differences: " in err and "; and 2 more" in err
    assert sum(f"column extra{i} " in err for i in range(7)) == 5
    code, out, _ = invoke("db", "check", "--storage", url, "--json")
    assert len(json.loads(out)["differences"]) == 7


def test_upgrade_of_a_newer_database_says_upgrade_taskgraph_like_check(tmp_path):
    url = database(tmp_path, "ahead.db", f"UPDATE {VERSION_TABLE} SET version_num = '0099'")
    code, out, err = invoke("db", "upgrade", "--storage", url)
    assert code == 1 and out == ""
    assert err.strip() == (
        f"error: {url} is at schema revision 0099, newer than this taskgraph knows "
        f"(head {head_revision()}): upgrade taskgraph"
    )
    assert err == invoke("db", "check", "--storage", url)[2]
    assert "Can't locate revision" not in err


def test_upgrade_of_a_new_database_says_none_like_current(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    code, out, _ = invoke("db", "upgrade", "--storage", url)
    assert code == 0 and "from revision (none) to" in out and "(empty)" not in out


def test_study_list_lists_plain_optuna_studies_without_creating_tables(tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna_only.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.create_study(storage=url, study_name="plain")
    before = table_names(url)
    assert "studies" in before and not any(name.startswith("tg_") for name in before)
    code, out, err = invoke("study", "list", "--storage", url)
    assert code == 0, err
    assert "plain (not taskgraph's)" in out
    code, out, err = invoke("study", "list", "--storage", url, "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [(row["name"], row["taskgraph"]) for row in rows] == [("plain", False)]
    assert table_names(url) == before
    # A database with neither taskgraph's nor Optuna's tables is still refused.
    url = f"sqlite:///{tmp_path / 'other.db'}"
    execute(url, "CREATE TABLE foo (a INTEGER)")
    code, out, err = invoke("study", "list", "--storage", url)
    assert code == 2 and out == "" and "holds no taskgraph records yet" in err
    assert table_names(url) == {"foo"}
