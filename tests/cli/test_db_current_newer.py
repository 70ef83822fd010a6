"""``db current`` on a database a newer taskgraph wrote says to upgrade taskgraph, not the db."""

from __future__ import annotations

import json

from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.storage import VERSION_TABLE, head_revision, open_repository

runner = CliRunner()


def test_current_on_a_newer_revision_says_upgrade_taskgraph(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    open_repository(url).close()
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    engine.dispose()
    done = runner.invoke(app, ["db", "current", "--storage", url])
    assert done.exit_code == 0, done.output
    assert " ".join(done.stdout.split()) == (  # rich wraps at 80 columns
        f"{url}: revision 9999, head {head_revision()} "
        "(newer than this taskgraph knows: upgrade taskgraph)"
    )
    assert "db upgrade" not in done.stdout
    done = runner.invoke(app, ["db", "current", "--storage", url, "--json"])
    assert json.loads(done.stdout) == {
        "storage": url,
        "current": "9999",
        "head": head_revision(),
        "at_head": False,
        "newer": True,
    }
    # `db check` agrees: the fix is a newer taskgraph.
    done = runner.invoke(app, ["db", "check", "--storage", url])
    assert done.exit_code == 1 and "upgrade taskgraph" in done.stderr


def test_current_behind_head_still_says_db_upgrade(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    runner.invoke(app, ["db", "upgrade", "--storage", url, "--revision", "0002"])
    done = runner.invoke(app, ["db", "current", "--storage", url])
    assert "behind: run `taskgraph db upgrade`" in " ".join(done.stdout.split())
    assert "newer" not in json.loads(
        runner.invoke(app, ["db", "current", "--storage", url, "--json"]).stdout
    )
