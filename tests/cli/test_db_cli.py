"""``taskgraph db upgrade|current|check``: migrations from the command line."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from taskgraph.cli.app import app

runner = CliRunner()
OLD_SCHEMA = Path(__file__).resolve().parents[1] / "storage" / "data" / "schema_v1.db"


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_upgrade_current_check_on_the_old_schema_file(tmp_path):
    path = tmp_path / "old.db"
    shutil.copy(OLD_SCHEMA, path)
    url = f"sqlite:///{path}"
    code, out, _ = invoke("db", "current", "--storage", url, "--json")
    assert code == 0 and json.loads(out) == {
        "storage": url,
        "current": "0001",
        "head": "0005",
        "at_head": False,
    }
    code, _, err = invoke("db", "check", "--storage", url)
    assert code == 1 and f"run `taskgraph db upgrade --storage {url}`" in err
    code, _, err = invoke("records", "list", "--storage", url)
    assert code == 1 and "taskgraph db upgrade" in err
    code, out, _ = invoke("db", "upgrade", "--storage", url)
    assert code == 0 and "from revision 0001 to 0005" in out
    code, out, _ = invoke("db", "upgrade", "--storage", url)
    assert code == 0 and "already at revision 0005" in out
    code, out, _ = invoke("db", "check", "--storage", url, "--json")
    assert code == 0 and json.loads(out)["ok"] is True
    code, out, _ = invoke("records", "list", "--storage", url, "--json")
    assert code == 0 and len(json.loads(out)) == 3


def test_upgrade_creates_a_new_database_but_current_and_check_do_not(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    code, _, err = invoke("db", "current", "--storage", url)
    assert code == 2 and "no records database" in err and not (tmp_path / "new.db").exists()
    code, out, _ = invoke("db", "upgrade", "--storage", url, "--json")
    assert code == 0 and json.loads(out) == {"storage": url, "before": None, "after": "0005"}
    code, out, _ = invoke("db", "current", "--storage", url)
    assert code == 0 and "(at head)" in out


def test_an_older_revision_is_refused_not_reported_as_reached(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    assert invoke("db", "upgrade", "--storage", url, "--revision", "0002")[0] == 0
    code, out, err = invoke("db", "upgrade", "--storage", url, "--revision", "0001")
    assert code == 2 and out == ""  # the revision asked for is wrong, not the environment
    assert err.strip() == (
        f"error: cannot upgrade {url} to revision 0001: it is at 0002, which is newer "
        "(taskgraph's migrations only go up)"
    )
    code, out, _ = invoke("db", "upgrade", "--storage", url, "--json")
    assert code == 0 and json.loads(out)["before"] == "0002" and json.loads(out)["after"] == "0005"


def test_bad_url_is_one_line_and_masked(tmp_path):
    code, _, err = invoke(
        "db", "upgrade", "--storage", "postgresql+psycopg://u:pw-secret@127.0.0.1:1/x"
    )
    assert code == 1 and "u:***@" in err and "pw-secret" not in err and err.count("\n") == 1
    code, _, err = invoke("db", "upgrade", "--storage", f"sqlite:///{tmp_path}/no/such/x.db")
    assert code == 2 and "does not exist" in err


def test_db_commands_have_help():
    for command in ("upgrade", "current", "check"):
        code, out, _ = invoke("db", command, "--help")
        assert code == 0 and "--storage" in out


def test_base_on_a_database_with_a_schema_is_refused_like_any_older_revision(tmp_path):
    path = tmp_path / "h.db"
    url = f"sqlite:///{path}"
    assert invoke("db", "upgrade", "--storage", url)[0] == 0
    for extra in ((), ("--json",)):
        code, out, err = invoke("db", "upgrade", "--storage", url, "--revision", "base", *extra)
        assert code == 2 and out == ""  # not "already at revision 0005", nor "missing"
        assert err.strip() == (
            f"error: cannot upgrade {url} to revision base: it is at 0005, which is newer "
            "(taskgraph's migrations only go up)"
        )
    code, out, _ = invoke("db", "current", "--storage", url, "--json")
    assert code == 0 and json.loads(out)["current"] == "0005"  # untouched


def test_base_on_a_file_without_a_schema_or_no_file_does_nothing(tmp_path):
    path = tmp_path / "other.db"
    sqlite3.connect(path).execute("CREATE TABLE x (a)").connection.close()
    url = f"sqlite:///{path}"
    code, out, _ = invoke("db", "upgrade", "--storage", url, "--revision", "base")
    assert code == 0 and out.strip() == f"{url} is already at revision base (no taskgraph tables)"
    code, out, _ = invoke("db", "upgrade", "--storage", url, "--revision", "base", "--json")
    assert code == 0 and json.loads(out) == {"storage": url, "before": None, "after": None}
    missing = f"sqlite:///{tmp_path / 'missing.db'}"
    code, out, _ = invoke("db", "upgrade", "--storage", missing, "--revision", "base", "--json")
    assert code == 0 and json.loads(out)["missing"] is True
    assert not (tmp_path / "missing.db").exists()


def test_check_lists_the_differences_sorted(tmp_path):
    # Alembic finds extra tables by a set difference: the order must not follow the hash seed.
    path = tmp_path / "extra.db"
    url = f"sqlite:///{path}"
    assert invoke("db", "upgrade", "--storage", url)[0] == 0
    connection = sqlite3.connect(path)
    for name in ("tg_extra_e", "tg_extra_c", "tg_extra_a", "tg_extra_d", "tg_extra_b"):
        connection.execute(f"CREATE TABLE {name} (a INTEGER)")
    connection.commit()
    described = [f"the database has a table tg_extra_{x} the schema does not" for x in "abcde"]
    code, out, err = invoke("db", "check", "--storage", url, "--json")
    assert code == 1 and json.loads(out)["differences"] == described
    assert err.strip().endswith(f"(5 differences: {'; '.join(described)})")  # no "more"
    connection.execute("CREATE TABLE tg_extra_0 (a INTEGER)")
    connection.commit()
    connection.close()
    code, _, err = invoke("db", "check", "--storage", url)
    first = "the database has a table tg_extra_0 the schema does not"
    assert code == 1 and err.strip().endswith(
        f"(6 differences: {'; '.join([first, *described[:4]])}; and 1 more (see --json))"
    )
