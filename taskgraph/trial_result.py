"""What a trial gave back: :class:`TrialResult` (scores, cost, status) and the values it holds,
:class:`TrialStatus`, :class:`Cost` and :class:`LookaheadMatrix`.

A runner (local, Ray Tune, tabular) turns a :class:`~taskgraph.trial.TrialConfig` into a
``TrialResult``; storage writes it.  Plain, JSON-serialisable dataclasses: no torch, Optuna or
Ray here, and nothing of the configuration (:mod:`taskgraph.trial` re-exports these names, so
this module must not import it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

__all__ = ["Cost", "LookaheadMatrix", "TrialResult", "TrialStatus"]


class TrialStatus(str, Enum):
    """The true state of a trial (Tune reports ASHA-stopped trials as COMPLETE; we do not)."""

    COMPLETE = "complete"
    PRUNED = "pruned"
    FAILED = "failed"


@dataclass
class Cost:
    """What a trial cost.

    ``total_steps``: optimizer steps of every phase; ``target_steps``: those that trained the
    target (equal for a single-task run; under the target step budget, the same in every
    trial of a study).  ``threads``: torch's intra-op threads it ran with (0 if unknown); the
    device string of a CPU trial names them too (``cpu/2 threads``), so the records database
    keeps them without a column of its own.  ``pretrain_seconds`` / ``pretrain_tokens``: the
    masked-LM pretraining stage, included in ``seconds`` and ``tokens`` when this trial ran it
    (0 seconds when its checkpoint came from the cache; the stage's own cost is then in
    :attr:`TrialResult.pretraining`).
    """

    seconds: float = 0.0
    examples: int = 0
    tokens: int = 0
    device: str = "cpu"
    threads: int = 0
    target_steps: int = 0
    total_steps: int = 0
    pretrain_seconds: float = 0.0
    pretrain_tokens: int = 0

    @staticmethod
    def of_pretraining(report: Mapping[str, Any] | None) -> tuple[float, int]:
        """Return the (seconds, tokens) a trial paid for its pretraining stage, from the
        stage's report: (0, 0) without a stage, or when its checkpoint came from the cache."""
        if report is None or report.get("cached"):
            return 0.0, 0
        return float(report["seconds"]), int(report["tokens"])


@dataclass
class LookaheadMatrix:
    """Lookahead inter-task affinity (Fifty et al. 2021) from one joint run.

    ``values[i][j]`` is Z(tasks[i] -> tasks[j]) = 1 - L_j(after a step on task i) / L_j(before),
    averaged over the probes: positive when a step on task i lowers task j's loss.  An entry
    that was not measured (a screen measures the target's column only) is NaN.
    ``stderr[i][j]`` is the standard error of that mean over the probes (NaN with fewer than
    two probes); ``None`` for matrices stored without it.
    """

    tasks: list[str]
    values: list[list[float]]
    n_probes: int = 0
    stderr: list[list[float]] | None = None


@dataclass
class TrialResult:
    """What a trial produced: scores per task, split and metric, cost, status.

    ``scores[task][split][metric] = value``.  ``objective`` is the target's objective value
    (``None`` when the trial failed before an evaluation).  ``intermediate`` holds
    ``(step, objective)`` pairs reported during training (what pruners saw).
    ``selection`` (with example-level data selection) maps each auxiliary to what was kept:
    ``{"examples": n, "pool": m, "kept": k, "selected": <bitmask>, "sha256": ...}``: k of
    the m pooled (``max_examples``) of the n training examples, the bitmask over the training
    split in file order (``taskgraph.tasks.selection.decode_ids``).
    ``pretraining``: the report of the masked-LM stage (scheme, corpus fingerprint, steps,
    tokens, seconds, masked-token accuracy curve, whether it came from the cache), or ``None``.
    ``data_fingerprints``: each task's dataset fingerprint
    (:func:`taskgraph.tasks.task_fingerprint`) of the files the trainer read, so that the run is
    recorded with the data version it was trained and scored on even when a file changes while
    the study runs; ``None`` when the runner does not say (a published table, a fake, a result
    stored before the field existed): the records then get the fingerprints of the files as they
    are when written.
    """

    status: TrialStatus
    scores: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    objective: float | None = None
    cost: Cost = field(default_factory=Cost)
    lookahead: LookaheadMatrix | None = None
    failure_reason: str | None = None
    intermediate: list[tuple[int, float]] = field(default_factory=list)
    selection: dict[str, dict[str, Any]] | None = None
    pretraining: dict[str, Any] | None = None
    data_fingerprints: dict[str, str] | None = None

    @classmethod
    def failed(cls, reason: str, *, cost: Cost | None = None) -> TrialResult:
        """Return a FAILED result with ``reason`` (NaN loss, out of memory, exception...)."""
        return cls(status=TrialStatus.FAILED, failure_reason=reason, cost=cost or Cost())

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (NaN/inf become ``None``)."""

        def clean(value: Any) -> Any:
            if isinstance(value, float) and not math.isfinite(value):
                return None
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [clean(v) for v in value]
            if isinstance(value, Enum):
                return value.value
            return value

        return clean(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialResult:
        """Rebuild a result from :meth:`to_dict` output."""
        lookahead = data.get("lookahead")
        return cls(
            status=TrialStatus(data["status"]),
            scores={
                t: {s: dict(m) for s, m in sp.items()} for t, sp in data.get("scores", {}).items()
            },
            objective=data.get("objective"),
            cost=Cost(**data.get("cost", {})),
            lookahead=LookaheadMatrix(**lookahead) if lookahead else None,
            failure_reason=data.get("failure_reason"),
            intermediate=[(int(s), float(v)) for s, v in data.get("intermediate", [])],
            selection=data.get("selection"),
            pretraining=data.get("pretraining"),
            data_fingerprints=(
                {str(k): str(v) for k, v in data["data_fingerprints"].items()}
                if data.get("data_fingerprints") is not None
                else None
            ),
        )

    def score(self, task: str, split: str, metric: str) -> float | None:
        """Return one score, or ``None`` when it was not measured."""
        return self.scores.get(task, {}).get(split, {}).get(metric)
