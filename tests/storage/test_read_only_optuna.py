"""Read-only commands on a database with taskgraph's tables only create no Optuna table."""

from __future__ import annotations

from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.storage import mask_url, open_repository
from taskgraph.testing import table_names

runner = CliRunner()


def test_reading_a_database_without_optuna_tables_creates_none(storage_url: str) -> None:
    open_repository(storage_url).close()  # what `taskgraph db upgrade` makes: ours only
    before = table_names(storage_url)
    assert before and "studies" not in before
    for args, code, line in [
        (["study", "list"], 0, f"no studies in {mask_url(storage_url)}"),
        (["study", "list", "--json"], 0, "[]"),
        (["study", "show", "x"], 2, f"error: no study 'x' in {mask_url(storage_url)}"),
        (["study", "status", "x"], 2, f"error: no study 'x' in {mask_url(storage_url)}"),
        (["dashboard", "--port", "0"], 2, f"error: no studies in {mask_url(storage_url)} yet"),
    ]:
        result = runner.invoke(app, [*args, "--storage", storage_url])
        assert result.exit_code == code, (args, result.output)
        text = result.stdout if code == 0 else result.stderr
        assert text.strip().startswith(line), (args, text)
        assert len(text.strip().splitlines()) == 1, (args, text)
        assert table_names(storage_url) == before, args
