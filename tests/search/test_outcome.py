"""A trial's outcome as the engine keeps it: where each seed trained travels with the run."""

from __future__ import annotations

import math
import socket
from pathlib import Path

import pytest

from taskgraph.search.outcome import NO_OBJECTIVE, SeedRun, TrialOutcome, run_seeds, utcnow
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


def _result(
    status: TrialStatus,
    objective: float | None,
    intermediate: list[tuple[int, float]] | None = None,
) -> TrialResult:
    return TrialResult(
        status=status, objective=objective, cost=Cost(seconds=0.01), intermediate=intermediate or []
    )


def _outcome(*results: TrialResult) -> TrialOutcome:
    now = utcnow()
    return TrialOutcome(
        runs=tuple(
            SeedRun(
                config=TrialConfig(target="tgt", seed=seed),
                result=result,
                started_at=now,
                finished_at=now,
            )
            for seed, result in enumerate(results)
        )
    )


def test_a_pruned_first_seed_ends_the_trial() -> None:
    """The pruner's verdict on the first seed decides the trial: no further seed is trained."""
    trained: list[int] = []

    def evaluate(config: TrialConfig, callbacks: object) -> TrialResult:
        trained.append(config.seed)
        if config.seed == 0:
            return _result(TrialStatus.PRUNED, None, intermediate=[(10, 0.3)])
        return _result(TrialStatus.COMPLETE, 0.8)

    outcome = run_seeds(TrialConfig(target="tgt"), seeds=[0, 1, 2], evaluate=evaluate)
    assert trained == [0]
    assert [run.config.seed for run in outcome.runs] == [0]
    assert outcome.status is TrialStatus.PRUNED
    assert outcome.value is None and outcome.last_intermediate == 0.3


def test_a_complete_seed_without_an_objective_fails_the_trial() -> None:
    """Even when the run itself says complete (an outcome saved before such runs were marked
    failed): a trial value from the other seeds alone would not be the configuration's."""
    for missing in (None, math.nan):
        outcome = _outcome(
            _result(TrialStatus.COMPLETE, 0.7), _result(TrialStatus.COMPLETE, missing)
        )
        assert outcome.status is TrialStatus.FAILED
        assert outcome.value is None and outcome.failure_reason == NO_OBJECTIVE
        # a pruned seed does not hide it either: failure wins over pruning
        pruned = _outcome(_result(TrialStatus.COMPLETE, missing), _result(TrialStatus.PRUNED, None))
        assert pruned.status is TrialStatus.FAILED and pruned.failure_reason == NO_OBJECTIVE


def test_a_failed_seed_outranks_a_pruned_one() -> None:
    outcome = _outcome(
        _result(TrialStatus.PRUNED, None),
        TrialResult.failed("CUDA out of memory"),
    )
    assert outcome.status is TrialStatus.FAILED
    assert outcome.failure_reason == "CUDA out of memory" and outcome.value is None
    silent = _outcome(TrialResult(status=TrialStatus.FAILED))
    assert silent.failure_reason == "failed without a reason"


def test_a_pruned_trial_has_no_value_only_its_last_intermediate() -> None:
    """A pruned trial's value is the last objective the pruner saw, not a mean objective."""
    outcome = _outcome(
        _result(TrialStatus.COMPLETE, 0.9, intermediate=[(10, 0.5), (20, 0.9)]),
        _result(TrialStatus.PRUNED, 0.2, intermediate=[(10, 0.1), (20, 0.2)]),
    )
    assert outcome.status is TrialStatus.PRUNED
    assert outcome.value is None
    assert outcome.failure_reason is None
    assert outcome.last_intermediate == 0.2
    complete = _outcome(_result(TrialStatus.COMPLETE, 0.9), _result(TrialStatus.COMPLETE, 0.5))
    assert complete.status is TrialStatus.COMPLETE and complete.value == pytest.approx(0.7)


def test_an_outcome_without_runs_failed_because_no_run_was_made() -> None:
    outcome = TrialOutcome()
    assert outcome.status is TrialStatus.FAILED
    assert outcome.value is None and outcome.last_intermediate is None
    assert outcome.failure_reason == "no run was made"
