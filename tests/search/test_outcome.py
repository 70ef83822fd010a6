"""A trial's outcome as the engine keeps it: where each seed trained travels with the run."""

from __future__ import annotations

import socket
from pathlib import Path

from taskgraph.search.outcome import SeedRun, TrialOutcome, utcnow
from taskgraph.search.recording import RecordWriter
from taskgraph.storage import open_repository
from taskgraph.trial import Cost, TrialConfig, TrialResult, TrialStatus


def seed_run(seed: int, host: str | None) -> SeedRun:
    result = TrialResult(
        status=TrialStatus.COMPLETE,
        objective=0.5,
        scores={"tgt": {"dev": {"accuracy": 0.5}}},
        cost=Cost(seconds=0.01),
    )
    now = utcnow()
    return SeedRun(
        config=TrialConfig(target="tgt", seed=seed),
        result=result,
        started_at=now,
        finished_at=now,
        host=host,
    )


def test_a_runs_host_round_trips_and_an_old_saved_run_reads_back_without_one() -> None:
    outcome = TrialOutcome(runs=(seed_run(0, "node-a ray-node:abc"), seed_run(1, None)))
    saved = outcome.to_list()
    assert saved[0]["host"] == "node-a ray-node:abc"
    assert "host" not in saved[1]  # what a run saved before hosts were kept looks like
    assert TrialOutcome.from_list(saved) == outcome


def test_records_name_the_runs_host_else_this_one(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'records.db'}"
    outcome = TrialOutcome(runs=(seed_run(0, "node-a ray-node:abc"), seed_run(1, None)))
    with open_repository(url) as repo:
        RecordWriter(repository=repo, study="hosts", task_defs={}).write(0, outcome)
        hosts = {r.seed: r.host for r in repo.runs(study="hosts")}
    assert hosts == {0: "node-a ray-node:abc", 1: socket.gethostname()}


def test_a_seed_without_an_objective_is_a_failed_run_and_ends_the_trial(tmp_path: Path) -> None:
    """Its record says failed (a complete record would give gains the study's report leaves
    out), and the remaining seeds are not trained."""
    import math

    from taskgraph.search.outcome import NO_OBJECTIVE, run_seeds

    trained: list[int] = []

    def evaluate(config: TrialConfig, callbacks: object) -> TrialResult:
        trained.append(config.seed)
        return TrialResult(
            status=TrialStatus.COMPLETE,
            objective=math.nan,  # the objective metric diverged
            scores={"tgt": {"dev": {"accuracy": math.nan, "f1": 0.9}}},
            cost=Cost(seconds=0.01),
        )

    outcome = run_seeds(TrialConfig(target="tgt"), seeds=[0, 1, 2], evaluate=evaluate)
    assert trained == [0]
    assert outcome.status is TrialStatus.FAILED and outcome.failure_reason == NO_OBJECTIVE
    url = f"sqlite:///{tmp_path / 'records.db'}"
    with open_repository(url) as repo:
        RecordWriter(repository=repo, study="s", task_defs={}).write(0, outcome)
        assert [(r.seed, r.status) for r in repo.runs(study="s")] == [(0, "failed")]
        assert repo.score_records(study="s") == []  # the finite f1 is not a complete record
