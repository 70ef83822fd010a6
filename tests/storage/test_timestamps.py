"""Run timestamps keep their instant on every backend, whatever zone they were given in."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from taskgraph.storage import open_repository


def test_an_aware_timestamp_in_another_zone_reads_back_as_the_same_instant(storage_url, make_trial):
    cest = timezone(timedelta(hours=2))
    started = datetime(2026, 6, 1, 12, 0, tzinfo=cest)
    finished = datetime(2026, 6, 1, 3, 30, tzinfo=timezone(timedelta(hours=-7)))
    config, result = make_trial("ner")
    with open_repository(storage_url) as repo:
        run_id = repo.add_run_result(
            study="tz",
            trial_number=0,
            config=config,
            result=result,
            started_at=started,
            finished_at=finished,
        )
        run = repo.run(run_id)
    assert run.started_at == started and run.started_at.utcoffset() == timedelta(0)
    assert run.finished_at == finished
    assert run.started_at.isoformat() == "2026-06-01T10:00:00+00:00"


def test_a_naive_timestamp_is_taken_as_utc(storage_url, make_trial):
    naive = datetime(2026, 6, 1, 12, 0)
    config, result = make_trial("ner")
    with open_repository(storage_url) as repo:
        run_id = repo.add_run_result(
            study="tz", trial_number=0, config=config, result=result, started_at=naive
        )
        assert repo.run(run_id).started_at == naive.replace(tzinfo=timezone.utc)


@pytest.mark.postgres
def test_a_naive_timestamp_is_utc_whatever_the_servers_session_zone(postgres_server, make_trial):
    # libpq's options: the session reads naive timestamps in Berlin time unless told UTC.
    url = str(postgres_server.create_database("t_naive_zone"))
    berlin = f"{url}?options=-c%20TimeZone%3DEurope/Berlin"
    naive = datetime(2026, 6, 1, 12, 0)
    config, result = make_trial("ner")
    with open_repository(berlin) as repo:
        run_id = repo.add_run_result(
            study="tz", trial_number=0, config=config, result=result, started_at=naive
        )
    with open_repository(url) as repo:
        assert repo.run(run_id).started_at == naive.replace(tzinfo=timezone.utc)


@pytest.fixture
def kolkata(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run the test with the process's local time zone at +05:30 (restored afterwards)."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        yield
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_naive_timestamp_is_utc_not_the_machines_local_time(storage_url, make_trial, kolkata):
    naive = datetime(2026, 6, 1, 12, 0)
    assert naive.astimezone().utcoffset() == timedelta(hours=5, minutes=30)  # the zone took
    config, result = make_trial("ner")
    with open_repository(storage_url) as repo:
        run_id = repo.add_run_result(
            study="tz", trial_number=0, config=config, result=result, started_at=naive
        )
        run = repo.run(run_id)
    assert run.started_at == naive.replace(tzinfo=timezone.utc)
    assert run.started_at.isoformat() == "2026-06-01T12:00:00+00:00"
