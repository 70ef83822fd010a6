"""``taskgraph db upgrade --revision``: an unknown revision is refused before anything is made."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.errors import ConfigError

runner = CliRunner()


@pytest.mark.parametrize(
    "revision",
    ["bogus", "", "000", "-1", "-2", "+1", "base+1", "head-1", "0001+1", "0001:0002", "a@head"],
)
def test_unknown_revision_creates_no_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, revision: str
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(
        app, ["db", "upgrade", f"--revision={revision}", "--storage", "sqlite:///n.db"]
    )
    assert list(tmp_path.iterdir()) == []  # no empty n.db left behind
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert f"`--revision` {revision!r} is not a revision" in result.stderr
    assert "known: head, base, 0001" in result.stderr


def test_known_revisions_pass_the_check() -> None:
    from taskgraph.storage.migrate import check_revision

    for revision in ("head", "heads", "base", "0001", "0005"):
        check_revision(revision)
    with pytest.raises(ConfigError, match="`revision` 'nope'"):
        check_revision("nope")
    with pytest.raises(ConfigError, match="`revision` '-1'"):
        check_revision("-1")  # Alembic's relative syntax: accepted by it, failing mid-upgrade
