"""Passwords stay out of the database and out of messages (issue 10, item 4).

A spec's ``storage`` URL may carry a password; the spec is stored in the Optuna study's
``taskgraph:spec`` attribute (served by optuna-dashboard's /api/studies) and in
``tg_studies.spec``.  Both must hold the masked URL.  Masking replaces URL fields, never
substrings, so a one-letter password cannot garble a message.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from taskgraph.app.studies.running import run_spec as run_study
from taskgraph.search.progress import SPEC_ATTR
from taskgraph.spec import load_spec
from taskgraph.storage import mask_secrets, mask_url, open_repository, storable_spec
from taskgraph.storage.engine import describe_error
from taskgraph.storage.schema import StudyRow

SECRET = "Sup3rSecretPw"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (
            f"postgresql+psycopg://alice@db/tg?password={SECRET}",
            "postgresql+psycopg://alice@db/tg?password=***",
        ),
        (
            f"postgresql+psycopg://alice:p@db/tg?sslmode=require&PASSWORD={SECRET}",
            "postgresql+psycopg://alice:***@db/tg?PASSWORD=***&sslmode=require",
        ),
        ("not a url://bob:hunter2@host?password=x y", "not a url://bob:***@host?password=*** y"),
    ],
)
def test_a_password_in_the_query_string_is_masked(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_a_one_letter_password_does_not_garble_the_message() -> None:
    url = make_url("postgresql+psycopg://u:p@127.0.0.1:1/db")
    message = 'connection to server at "127.0.0.1", port 1 failed: Connection refused'
    error = OperationalError("connect", {}, Exception(message))
    assert describe_error(error, url) == message


def test_driver_messages_lose_every_password_field() -> None:
    url = make_url(f"postgresql+psycopg://u:{SECRET}@h/db?password={SECRET}")
    text = (
        f"could not parse postgresql+psycopg://u:{SECRET}@h/db?password={SECRET}, "
        f"conninfo \"host=h password='{SECRET}' port=x\" or password={SECRET}"
    )
    masked = mask_secrets(text, url)
    assert SECRET not in masked
    assert "port=x" in masked and "conninfo" in masked


def test_storable_spec_masks_only_the_storage_url() -> None:
    spec = {"name": "s", "storage": f"postgresql://u:{SECRET}@h/db", "target": "p"}
    stored = storable_spec(spec)
    assert stored == {"name": "s", "storage": "postgresql://u:***@h/db", "target": "p"}
    assert spec["storage"] == f"postgresql://u:{SECRET}@h/db"  # the caller's copy is untouched


def _with_password(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return url
    # The test server trusts local connections: a password in the URL is accepted, unused.
    return parsed.set(password=SECRET).render_as_string(hide_password=False)


def test_the_stored_spec_holds_no_password(
    storage_url: str, tabular_spec: Callable[..., Path]
) -> None:
    url = _with_password(storage_url)
    spec_storage = url if url != storage_url else f"postgresql+psycopg://u:{SECRET}@db:5432/tg"
    spec = load_spec(tabular_spec(trials=2, storage=spec_storage))
    assert spec.storage is not None and SECRET in spec.storage
    run_study(spec, storage_url=url)

    # What optuna-dashboard's /api/studies serves: every study's user attributes.
    storage = optuna.storages.RDBStorage(url)
    try:
        for study in storage.get_all_studies():
            attrs = json.dumps(study.user_attrs)
            assert SECRET not in attrs
            assert study.user_attrs[SPEC_ATTR]["storage"] == mask_url(spec_storage)
    finally:
        storage.engine.dispose()
    with open_repository(url, create=False) as repo, repo.engine.connect() as connection:
        stored = connection.execute(select(StudyRow.spec)).scalars().all()
    assert stored and all(SECRET not in json.dumps(spec) for spec in stored)
    assert stored[0]["storage"] == mask_url(spec_storage)


def test_a_resume_hint_for_a_password_url_from_the_environment_can_be_pasted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The hint masks the password: from $TASKGRAPH_STORAGE it leaves --storage out (the
    variable gives the URL again, unmasked); given another way it names it, masked."""
    from taskgraph.errors import command_line_wording
    from taskgraph.storage.urls import ResolvedURL, resolve_storage_url, resume_command

    url = "postgresql+psycopg://me:s3cret@127.0.0.1:5432/records"
    monkeypatch.setenv("TASKGRAPH_STORAGE", url)
    resolved = resolve_storage_url(None)
    assert resolved.origin == "env"
    with command_line_wording():
        assert resume_command("demo", resolved) == "taskgraph study resume demo"
        given = resume_command("demo", ResolvedURL(url, origin="option"))
        assert "s3cret" not in given and "--storage" in given
        plain = "sqlite:////tmp/records.db"  # no password: the URL is named, whatever its origin
        assert resume_command("demo", ResolvedURL(plain, origin="env")).endswith(plain)
    assert resume_command("demo", resolved) == "taskgraph.resume_study('demo')"
