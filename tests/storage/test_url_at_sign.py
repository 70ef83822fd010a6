"""A password with an unencoded '@': refused in one line that never shows any of it."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.errors import StorageError
from taskgraph.storage import mask_secrets, mask_url, parse_storage_url

PASSWORD = "p@ss:w/rd%#?&x"
PIECES = ("p@ss", "ss:w", "w/rd", "rd%", "#?&x")
URL = f"postgresql+psycopg://odd:{PASSWORD}@127.0.0.1:1/tg"
MASKED = "postgresql+psycopg://odd:***@127.0.0.1:1/tg"


@pytest.mark.parametrize(
    "url",
    [URL, "postgresql://u:p@ss@db/tg", "postgresql://u:p@ss/w@db/tg"],
)
def test_more_than_one_at_sign_is_refused_with_the_fix(url):
    with pytest.raises(
        StorageError, match=r"percent-encode every '@' but the one before the host .*'%40'"
    ) as error:
        parse_storage_url(url)
    text = str(error.value)
    assert "***@" in text and "\n" not in text
    assert not any(piece in text for piece in ("p@ss", "ss@", "ss/w", *PIECES))


def test_the_command_line_says_it_in_one_error_line():
    result = CliRunner().invoke(app, ["db", "upgrade", "--storage", URL])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "%40" in result.stderr and MASKED in result.stderr
    assert not any(piece in result.stderr for piece in PIECES)


def test_masking_runs_to_the_last_at_sign():
    assert mask_url(URL) == MASKED
    assert mask_url("postgresql://u:p@ss@db/tg") == "postgresql://u:***@db/tg"
    text = f"connection to {URL} failed (and again: {URL})"
    assert mask_secrets(text) == f"connection to {MASKED} failed (and again: {MASKED})"
    assert mask_secrets(text, URL) == mask_secrets(text)


def test_a_percent_encoded_password_and_an_at_sign_in_a_sqlite_path_are_fine(tmp_path):
    parsed = parse_storage_url("postgresql://u:p%40ss@db/tg")
    assert parsed.password == "p@ss" and parsed.host == "db"
    assert mask_url("postgresql://u:p%40ss@db/tg") == "postgresql://u:***@db/tg"
    folder = tmp_path / "a@b"
    folder.mkdir()
    assert parse_storage_url(f"sqlite:///{folder}/x@y.db").database == f"{folder}/x@y.db"
