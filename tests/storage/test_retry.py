"""Bounded retry of lost database connections (:mod:`taskgraph.storage.retry`), without a server:
which errors are retried, the bound, the log and the one-line error past it."""

from __future__ import annotations

import itertools
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from taskgraph.errors import ConfigError, StorageError, command_line_wording
from taskgraph.storage import retry
from taskgraph.storage.retry import (
    DB_RETRY_ENV,
    DatabaseUnavailableError,
    is_connection_error,
    retry_window_s,
    with_connection_retry,
)

URL = "postgresql+psycopg://tg:s3cret@db.example:5432/records"


@pytest.fixture(autouse=True)
def _no_database_given_up() -> Iterator[None]:
    retry._given_up.clear()
    yield
    retry._given_up.clear()


def refused() -> OperationalError:
    orig = psycopg.OperationalError(
        'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
        "Connection refused\n\tIs the server running on that host?"
    )
    return OperationalError("SELECT 1", {}, orig)


def test_lost_and_refused_connections_are_connection_errors() -> None:
    assert is_connection_error(refused())
    closed = psycopg.OperationalError("server closed the connection unexpectedly")
    assert is_connection_error(closed)
    # Wrapped as Optuna wraps it (StorageInternalError from the SQLAlchemy error).
    try:
        try:
            raise refused()
        except OperationalError as error:
            raise RuntimeError("An exception is raised during the commit.") from error
    except RuntimeError as wrapped:
        assert is_connection_error(wrapped)


def test_errors_that_would_fail_again_are_not_connection_errors() -> None:
    full = OperationalError("INSERT", {}, sqlite3.OperationalError("database or disk is full"))
    assert not is_connection_error(full)
    duplicate = IntegrityError("INSERT", {}, psycopg.errors.UniqueViolation("duplicate key"))
    assert not is_connection_error(duplicate)
    assert not is_connection_error(ValueError("no"))


def test_a_call_is_retried_until_the_server_answers(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(retry.time, "sleep", lambda seconds: None)
    calls = []

    def call() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise refused()
        return "written"

    with caplog.at_level(logging.WARNING, logger="taskgraph.storage.retry"):
        assert with_connection_retry(call, url=URL, what="records write", window_s=60) == "written"
    assert len(calls) == 4
    retries = [r.getMessage() for r in caplog.records]
    assert len(retries) == 3
    assert all("records write: database" in m and "Connection refused" in m for m in retries)
    assert all("s3cret" not in m and "tg:***@db.example" in m for m in retries)


def test_past_the_bound_one_line_names_the_database_and_the_resume_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [0.0]
    monkeypatch.setattr(retry.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(
        retry.time, "sleep", lambda seconds: clock.__setitem__(0, clock[0] + seconds)
    )
    # The jitter's middle (factor 1): without it the gaps are random and the last one is cut
    # to what is left of the bound, so comparing two of them would be a coin toss.
    monkeypatch.setattr(retry.random, "random", lambda: 0.5)
    calls = []

    def call() -> None:
        calls.append(clock[0])
        raise refused()

    with pytest.raises(DatabaseUnavailableError) as caught:
        with_connection_retry(call, url=URL, what="records write", window_s=10)
    assert isinstance(caught.value, StorageError)
    # Doubling from 0.25 s, then the last attempt made at the bound (10 - 7.75 s left).
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert gaps == pytest.approx([0.25, 0.5, 1.0, 2.0, 4.0, 2.25])
    assert calls[-1] == pytest.approx(10.0)
    with command_line_wording():
        message = str(caught.value.for_study("ner"))
    assert "\n" not in message and "s3cret" not in message
    assert message.startswith("database postgresql+psycopg://tg:***@db.example:5432/records ")
    assert "Connection refused" in message
    # The command names the database (as printed it would otherwise target the default one).
    assert message.endswith(
        "`taskgraph study resume ner --storage "
        "'postgresql+psycopg://tg:***@db.example:5432/records'` "
        f"(password masked; retry bound: {DB_RETRY_ENV})"
    )
    # From Python, the call that continues it.
    assert str(caught.value.for_study("ner")).endswith(
        "`taskgraph.resume_study('ner', "
        "storage='postgresql+psycopg://tg:***@db.example:5432/records')` "
        f"(password masked; retry bound: {DB_RETRY_ENV})"
    )


def test_other_errors_are_raised_at_once() -> None:
    calls = []

    def call() -> None:
        calls.append(1)
        raise OperationalError("INSERT", {}, sqlite3.OperationalError("disk I/O error"))

    with pytest.raises(OperationalError):
        with_connection_retry(call, url="sqlite:///x.db", what="records write", window_s=60)
    assert len(calls) == 1


def test_the_bound_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DB_RETRY_ENV, raising=False)
    assert retry_window_s() == 60
    monkeypatch.setenv(DB_RETRY_ENV, "2.5")
    assert retry_window_s() == 2.5
    monkeypatch.setenv(DB_RETRY_ENV, "0")
    calls = []

    def call() -> None:
        calls.append(1)
        raise refused()

    with pytest.raises(DatabaseUnavailableError):
        with_connection_retry(call, url=URL, what="records write")
    assert len(calls) == 1  # 0 turns the retry off
    for bad in ("soon", "-1", "inf", "nan"):
        monkeypatch.setenv(DB_RETRY_ENV, bad)
        with pytest.raises(ConfigError, match=f"`{DB_RETRY_ENV}` must be a number of seconds"):
            retry_window_s()


def test_a_retried_call_inside_another_is_retried_once_by_the_outer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(retry.time, "sleep", lambda seconds: None)
    inner_calls = []

    def inner() -> None:
        inner_calls.append(1)
        raise refused()

    def outer() -> None:
        with_connection_retry(inner, url=URL, what="inner", window_s=60)

    clock = [0.0]

    def tick() -> float:
        clock[0] += 1.0
        return clock[0]

    monkeypatch.setattr(retry.time, "monotonic", tick)
    with pytest.raises(DatabaseUnavailableError):
        with_connection_retry(outer, url=URL, what="outer", window_s=5)
    # The inner call did not retry on its own (60 s): the outer bound (5 s) decided.
    assert len(inner_calls) <= 5


def test_optuna_storage_retries_and_a_tell_whose_answer_was_lost_counts_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import optuna

    from taskgraph.storage.optuna_rdb import RetryingRDBStorage

    monkeypatch.setattr(retry.time, "sleep", lambda seconds: None)
    storage = RetryingRDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")
    study = optuna.create_study(study_name="s", storage=storage)
    trial = study.ask()
    original = optuna.storages.RDBStorage.set_trial_state_values
    tells = []

    def committed_then_lost(self: Any, trial_id: int, state: Any, values: Any = None) -> bool:
        tells.append(state)
        done = original(self, trial_id, state, values)
        if len(tells) == 1:
            raise refused()  # the commit happened; its answer was lost with the connection
        return done

    monkeypatch.setattr(optuna.storages.RDBStorage, "set_trial_state_values", committed_then_lost)
    study.tell(trial, 0.5)
    assert len(tells) == 1  # the retry found the trial told, and did not tell it again
    (frozen,) = study.get_trials()
    assert frozen.state.name == "COMPLETE" and frozen.value == 0.5


def test_after_giving_up_later_calls_try_once_until_one_succeeds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [0.0]
    monkeypatch.setattr(retry.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(retry.time, "sleep", lambda s: clock.__setitem__(0, clock[0] + s))
    calls = []

    def down() -> None:
        calls.append(1)
        raise refused()

    with pytest.raises(DatabaseUnavailableError):
        with_connection_retry(down, url=URL, what="write", window_s=10)
    calls.clear()
    # The study stopping after the error: each call tries once, no second wait of 10 s.
    clock[0] += 2
    with pytest.raises(DatabaseUnavailableError, match="unreachable for 12 s"):
        with_connection_retry(down, url=URL, what="cleanup", window_s=10)
    assert len(calls) == 1
    # The server is back: a call succeeds, and the next outage is retried again.
    assert with_connection_retry(lambda: "ok", url=URL, what="write", window_s=10) == "ok"
    calls.clear()
    with pytest.raises(DatabaseUnavailableError):
        with_connection_retry(down, url=URL, what="write", window_s=10)
    assert len(calls) > 1
