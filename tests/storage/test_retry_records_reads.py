"""A PostgreSQL connection lost under one of the records database's *reads* (issue 17).

A server restart breaks the connections it had: a read whose pooled connection passed the
pre-ping and then died under its statement failed at once ("records database ...: consuming
input failed: server closed the connection unexpectedly"), while the writes and Optuna's calls
were retried (:mod:`taskgraph.storage.retry`).  The engine reads the records after each trial
(``trial_fingerprints`` under the family baselines' check, ``runs`` for a repeated
configuration) and when it opens a study, so a restart landing on one of those reads ended
the study.  Here the connection is terminated (``pg_terminate_backend``: what a fast shutdown
does to it) right as the read's statement is sent, which is deterministic where a restart's
timing is not: the read is retried and answers as it would have.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import event

from taskgraph.app.studies.running import build_engine
from taskgraph.app.studies.specs import load_study_spec
from taskgraph.storage import open_repository
from taskgraph.storage.repository import Repository
from taskgraph.storage.testing import PostgresServer
from taskgraph.testing import audit_study
from taskgraph.trial import Cost, LookaheadMatrix, TrialConfig, TrialResult, TrialStatus

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database(f"t_{uuid.uuid4().hex[:16]}")


def _terminate(url: str, pid: int) -> None:
    """End backend ``pid`` as a server's fast shutdown does, and wait until it is gone."""
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        # Autocommit: pg_stat_activity is read once per transaction.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            assert connection.execute(
                sqlalchemy.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}
            ).scalar()
            deadline = time.monotonic() + 10
            alive = sqlalchemy.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
            while connection.execute(alive, {"pid": pid}).scalar():
                assert time.monotonic() < deadline, "pg_terminate_backend did not end the session"
                time.sleep(0.02)
    finally:
        engine.dispose()


class ConnectionKiller:
    """Terminates the connection of ``engine``'s next statement that ``when`` picks, right
    before it is sent (``armed`` says whether it is still to come; ``killed`` counts)."""

    def __init__(self, engine: sqlalchemy.Engine, url: str) -> None:
        self.url = url
        self.when: Callable[[str], bool] | None = None
        self.killed = 0
        event.listen(engine, "before_cursor_execute", self._before)

    @property
    def armed(self) -> bool:
        return self.when is not None

    def arm(self, when: Callable[[str], bool] = lambda statement: True) -> None:
        self.when = when

    def _before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self.when is None or not self.when(statement):
            return
        self.when = None
        self.killed += 1
        _terminate(self.url, cursor.connection.info.backend_pid)


@contextmanager
def repository_with_runs(url: str) -> Iterator[tuple[Repository, ConnectionKiller]]:
    """Yield a repository on ``url`` holding study ``s``'s runs (two trials, a screen), and
    the killer of its connections."""
    with open_repository(url) as repo:
        prints = {"ner": "a" * 64, "pos": "p" * 64}
        result = TrialResult(
            status=TrialStatus.COMPLETE,
            scores={"ner": {"dev": {"f1": 0.5}}, "pos": {"dev": {"f1": 0.7}}},
            objective=0.5,
            cost=Cost(seconds=1.0),
        )
        for number in (0, 1):
            config = TrialConfig(target="ner", auxiliaries=("pos",), seed=number)
            repo.add_run_result(
                study="s", trial_number=number, config=config, result=result,
                task_fingerprints=prints,
            )  # fmt: skip
        repo.ensure_study("s", spec={"name": "s"}, target="ner")
        matrix = LookaheadMatrix(tasks=["ner", "pos"], values=[[0.0, 0.1], [0.2, 0.0]], n_probes=2)
        screen = TrialResult(
            status=TrialStatus.COMPLETE, scores={}, objective=0.5, cost=Cost(seconds=1.0),
            lookahead=matrix,
        )  # fmt: skip
        repo.add_screen(
            study="s", config=TrialConfig(target="ner", auxiliaries=("pos",)), result=screen,
            details={"steps": 1},
        )  # fmt: skip
        yield repo, ConnectionKiller(repo.engine, url)


# Every read of the records that a study makes: at open (the records' identity, whether a
# study opened them, their runs to reconcile, the screens and other studies' records of the
# graph sampler, the data versions the warning compares), and after each trial (the family
# baselines' data versions, a repeated configuration's runs).
STUDY_READS: dict[str, Callable[[Repository], Any]] = {
    "study_identity": lambda repo: repo.study_identity("s"),
    "study_has_spec": lambda repo: repo.study_has_spec("s"),
    "run_keys": lambda repo: repo.run_keys("s"),
    "complete_run_data": lambda repo: repo.complete_run_data("s"),
    "screens": lambda repo: [(s.run_id, list(s.matrix.tasks)) for s in repo.screens("s")],
    "score_records": lambda repo: sorted(
        (r.run_id, r.task, r.value) for r in repo.score_records(split="dev", metric="f1")
    ),
    "study_fingerprints": lambda repo: repo.study_fingerprints("s"),
    "trial_fingerprints": lambda repo: repo.trial_fingerprints("s", "ner"),
    "runs": lambda repo: [
        (r.trial_number, r.seed) for r in repo.runs(study="s", status="complete")
    ],
}


@pytest.mark.parametrize("read", sorted(STUDY_READS))
def test_a_read_rides_out_its_connection_dropping(
    pg_url: str, read: str, caplog: pytest.LogCaptureFixture
) -> None:
    call = STUDY_READS[read]
    with repository_with_runs(pg_url) as (repo, killer):
        expected = call(repo)
        assert expected  # the read has something to answer
        killer.arm()
        with caplog.at_level(logging.WARNING, logger="taskgraph.storage.retry"):
            assert call(repo) == expected
        assert killer.killed == 1
    # One retry, logged under the read's name.
    (retried,) = [r.getMessage() for r in caplog.records]
    assert retried.startswith(f"records {read}: database postgresql+psycopg://"), retried
    assert "unreachable" in retried and "retry 1 in" in retried, retried


@pytest.fixture
def demo(tabular_demo: Path) -> Path:
    return tabular_demo  # tests/conftest.py


def test_a_study_rides_out_a_connection_dropping_under_a_read_after_a_trial(
    pg_url: str, demo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The records read after each trial: the data versions the family baselines' check reads
    # once the trial is told (`trial_fingerprints`, `budget.baselines: per_family`).
    budget = 4
    spec = load_study_spec(
        demo,
        {
            "runner": {"name": "tabular", "table": str(demo.parent / "tab.csv")},
            "budget.trials": budget,
        },
    )
    assert spec.budget.baselines == "per_family"
    engine = build_engine(spec, storage_url=pg_url)
    try:
        engine.open()
        engine.run(max_trials=1)
        killer = ConnectionKiller(engine.repository.engine, pg_url)
        # Repository.trial_fingerprints' one query (after the next trial's tell, before its
        # runs are written).
        killer.arm(lambda s: s.startswith("SELECT tg_runs.trial_number, tg_runs.task_fingerprints"))
        with caplog.at_level(logging.WARNING, logger="taskgraph.storage.retry"):
            summary = engine.run()
        assert killer.killed == 1 and not killer.armed
        assert summary.reason == "budget"
    finally:
        engine.close()
    assert any("records trial_fingerprints" in r.getMessage() for r in caplog.records), [
        r.getMessage() for r in caplog.records
    ]
    audit = audit_study(spec.name, pg_url, seeds=len(spec.seeds))
    assert (audit.lost, audit.duplicated) == (0, 0), audit
    assert audit.counted == budget, audit
