"""One trial's outcome: a configuration trained once per seed, summarised as one state and value.

A study's objective for a configuration is the mean of its seeds' objectives; every seed's run
is its own record.  The trial's true state is FAILED if any seed failed, else PRUNED if the
pruner stopped it, else COMPLETE.  Nothing here knows Optuna or Ray, so the local engine and
the Ray trainable share it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from taskgraph.trial import TrialConfig, TrialResult, TrialStatus

__all__ = ["Evaluate", "SeedRun", "TrialOutcome", "run_seeds", "utcnow"]

#: why a run that completed without a finite objective value failed
NO_OBJECTIVE = "training finished without an objective value (no evaluation of the target)"

#: ``evaluate(config, callbacks) -> TrialResult`` (an evaluator's bound method)
Evaluate = Callable[[TrialConfig, Sequence[Any]], TrialResult]


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class SeedRun:
    """One seed of one configuration: what was trained, what came out, when, and where.

    ``host`` is where it trained when that is not the process writing the record (a Ray
    worker's host and node id); ``None``: this process's host.
    """

    config: TrialConfig
    result: TrialResult
    started_at: datetime
    finished_at: datetime
    host: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (kept in the Optuna trial so a lost write can be redone)."""
        data: dict[str, Any] = {
            "config": self.config.to_dict(),
            "result": self.result.to_dict(),
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
        }
        if self.host is not None:
            data["host"] = self.host
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SeedRun:
        """Rebuild a run saved by :meth:`to_dict`."""
        return cls(
            config=TrialConfig.from_dict(data["config"]),
            result=TrialResult.from_dict(data["result"]),
            started_at=datetime.fromisoformat(data["started_at"]),
            finished_at=datetime.fromisoformat(data["finished_at"]),
            host=data.get("host"),
        )


@dataclass(frozen=True)
class TrialOutcome:
    """The seeds' runs of one trial and what they add up to."""

    runs: tuple[SeedRun, ...] = field(default_factory=tuple)

    @property
    def status(self) -> TrialStatus:
        """Return FAILED if a seed failed (or gave no objective), else PRUNED if one was pruned."""
        if not self.runs:
            return TrialStatus.FAILED
        statuses = [run.result.status for run in self.runs]
        if TrialStatus.FAILED in statuses or self._missing_objective():
            return TrialStatus.FAILED
        if TrialStatus.PRUNED in statuses:
            return TrialStatus.PRUNED
        return TrialStatus.COMPLETE

    def _missing_objective(self) -> bool:
        return any(_lacks_objective(run.result) for run in self.runs)

    @property
    def value(self) -> float | None:
        """Return the mean objective over the seeds (``None`` unless COMPLETE)."""
        if self.status is not TrialStatus.COMPLETE:
            return None
        values = [run.result.objective for run in self.runs]
        return sum(v for v in values if v is not None) / len(values)

    @property
    def last_intermediate(self) -> float | None:
        """Return the last objective value the pruner saw (a pruned trial's value)."""
        for run in reversed(self.runs):
            if run.result.intermediate:
                return run.result.intermediate[-1][1]
        return None

    @property
    def failure_reason(self) -> str | None:
        """Return why the trial failed (``None`` unless FAILED)."""
        if self.status is not TrialStatus.FAILED:
            return None
        for run in self.runs:
            if run.result.status is TrialStatus.FAILED:
                return run.result.failure_reason or "failed without a reason"
        if not self.runs:
            return "no run was made"
        return NO_OBJECTIVE

    def to_list(self) -> list[dict[str, Any]]:
        """Return the runs as JSON-ready dicts."""
        return [run.to_dict() for run in self.runs]

    @classmethod
    def from_list(cls, data: Sequence[Mapping[str, Any]]) -> TrialOutcome:
        """Rebuild an outcome saved by :meth:`to_list`."""
        return cls(runs=tuple(SeedRun.from_dict(item) for item in data))


def run_seeds(
    config: TrialConfig,
    *,
    seeds: Sequence[int],
    evaluate: Evaluate,
    first_seed_callbacks: Sequence[Any] = (),
) -> TrialOutcome:
    """Return the outcome of training ``config`` once per seed, stopping at the first bad seed.

    Only the first seed's run gets ``first_seed_callbacks`` (the pruner's reporter): pruning
    decisions compare one learning curve per trial, the same as in every other trial.
    """
    runs: list[SeedRun] = []
    for index, seed in enumerate(seeds):
        seeded = config.with_seed(seed)
        started = utcnow()
        result = _without_objective_failed(
            evaluate(seeded, first_seed_callbacks if index == 0 else ())
        )
        runs.append(SeedRun(config=seeded, result=result, started_at=started, finished_at=utcnow()))
        if result.status is not TrialStatus.COMPLETE:
            break  # a pruned or failed seed decides the trial; the rest would be wasted
    return TrialOutcome(runs=tuple(runs))


def _without_objective_failed(result: TrialResult) -> TrialResult:
    """Return ``result``, FAILED when it completed without a finite objective.

    Such a run fails its trial (:attr:`TrialOutcome.status`), so its record says so too: a
    run recorded ``complete`` would give gains that the study's own report leaves out.
    """
    if _lacks_objective(result):
        return replace(result, status=TrialStatus.FAILED, failure_reason=NO_OBJECTIVE)
    return result


def _lacks_objective(result: TrialResult) -> bool:
    """Return whether ``result`` completed without a finite objective value."""
    return result.status is TrialStatus.COMPLETE and (
        result.objective is None or not math.isfinite(result.objective)
    )
