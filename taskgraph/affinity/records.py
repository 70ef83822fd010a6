"""The plain record the affinity code learns from (storage converts rows into these).

One :class:`ScoreRecord` is the score of one task ``task`` after training on ``task_set``
(which contains ``task``) under one model family and seed.  ``task_set == {task}`` is a
single-task baseline.  Published tables (the tabular benchmarks) produce the same records.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ScoreRecord"]


@dataclass(frozen=True, slots=True)
class ScoreRecord:
    """The score of ``task`` when trained with ``task_set`` (a run's score for one task)."""

    task: str
    task_set: frozenset[str]
    value: float
    higher_is_better: bool = True
    split: str = "dev"
    metric: str = ""
    family: str = ""  # TrialConfig.family_key(): gains compare records of one family
    seed: int = 0
    study: str | None = None
    run_id: int | None = None
    #: which data the other members of the task set were trained on: a short hash of their
    #: dataset fingerprints ("" where the run recorded none, e.g. a published table)
    partner_data: str = ""
    #: the run's settings that change how ``task`` trains alone, outside its family
    #: (``TrialConfig.alone_settings``) as sorted (name, JSON value) pairs; () where unknown
    #: (a published table): gains say when a set's runs and its baseline's differ in them
    settings: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.task not in self.task_set:
            raise ValueError(f"task {self.task!r} is not in its task set {sorted(self.task_set)}")

    @property
    def is_baseline(self) -> bool:
        """Return True for a single-task record."""
        return len(self.task_set) == 1

    @property
    def auxiliaries(self) -> frozenset[str]:
        """Return the task set without the scored task."""
        return self.task_set - {self.task}
