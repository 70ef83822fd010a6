"""The plain, frozen records the repository returns (no SQLAlchemy objects leak out).

:class:`RunRecord` is one run with its scores; :class:`StudySummary` a study with its counts per
status; :class:`StoredLookahead` a lookahead matrix with the run it came from;
:class:`AffinityEdgeRecord` one fitted edge.  Score records for the affinity code are
:class:`taskgraph.affinity.records.ScoreRecord`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from taskgraph.trial import Cost, LookaheadMatrix, TrialConfig, TrialResult, TrialStatus
from taskgraph.vocabulary import higher_is_better, task_set_key

if TYPE_CHECKING:
    from taskgraph.affinity.records import ScoreRecord

__all__ = [
    "NO_PRETRAINING",
    "AffinityEdgeRecord",
    "RecordColumns",
    "RunRecord",
    "StoredLookahead",
    "StoredScreen",
    "StudySummary",
    "TaskSetRecord",
    "TaskSetRecords",
    "higher_is_better",
]

Scores = dict[str, dict[str, dict[str, float | None]]]
#: the pretraining scheme of a run trained without the masked-LM stage
#: (:attr:`RunRecord.pretraining_scheme`, ``records --pretraining none``)
NO_PRETRAINING = "none"


@dataclass(frozen=True)
class RunRecord:
    """One stored run: what was trained (config), on which task set, and what came out."""

    id: int
    study: str
    trial_number: int
    target: str
    task_set: tuple[str, ...]
    seed: int
    status: str
    failure_reason: str | None
    objective: float | None
    cost_seconds: float
    cost_examples: int
    cost_tokens: int
    device: str
    #: optimizer steps that trained the target / all of them (``None``: written before 0004)
    target_steps: int | None
    total_steps: int | None
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime
    code_version: str | None
    host: str | None
    model_config_hash: str
    family: str
    transfer_mode: str
    config: dict[str, Any]
    scores: Scores = field(default_factory=dict)
    task_fingerprints: dict[str, str] = field(default_factory=dict)
    intermediate: list[tuple[int, float]] = field(default_factory=list)
    lookahead: LookaheadMatrix | None = None

    @property
    def task_set_key(self) -> str:
        """Return the canonical task set key (sorted names joined by ``+``)."""
        return task_set_key(self.task_set)

    def trial_config(self) -> TrialConfig:
        """Return the :class:`TrialConfig` this run trained."""
        return TrialConfig.from_dict(self.config)

    @property
    def data_selection(self) -> dict[str, Any] | None:
        """Return the run's example-level data selection (features, weights, keep), or ``None``.

        Its ``kept`` entry, when the run trained auxiliaries, maps each auxiliary to what it
        kept (``TrialResult.selection``: counts, the ids as a bitmask, their sha256).
        """
        selection = self.config.get("data_selection")
        return dict(selection) if isinstance(selection, Mapping) else None

    @property
    def pretraining_scheme(self) -> str:
        """Return the masked-LM pretraining scheme the run trained with (:data:`NO_PRETRAINING`:
        without the stage): what ``records --pretraining`` filters by."""
        stage = self.config.get("pretraining")
        scheme = stage.get("scheme") if isinstance(stage, Mapping) else None
        return str(scheme or NO_PRETRAINING)

    @property
    def pretraining_report(self) -> dict[str, Any] | None:
        """Return the report of the run's masked-LM pretraining stage, or ``None``.

        Scheme, steps, tokens, seconds, the masked-token accuracy curve (``[[step, accuracy],
        ...]``) and ``cached`` (the weights came from the checkpoint cache; the stage's own
        cost is still given).  ``None`` for a run without the stage, or one that failed before
        the stage finished.
        """
        stage = self.config.get("pretraining")
        report = stage.get("report") if isinstance(stage, Mapping) else None
        return dict(report) if isinstance(report, Mapping) else None

    def trial_result(self) -> TrialResult:
        """Return the run's outcome as a :class:`TrialResult` (NULL scores left out)."""
        scores = {
            task: {
                split: {m: v for m, v in metrics.items() if v is not None}
                for split, metrics in splits.items()
            }
            for task, splits in self.scores.items()
        }
        report = self.pretraining_report
        ran_stage = report is not None and not report.get("cached")
        return TrialResult(
            status=TrialStatus(self.status),
            scores=scores,
            objective=self.objective,
            cost=Cost(
                seconds=self.cost_seconds,
                examples=self.cost_examples,
                tokens=self.cost_tokens,
                device=self.device,
                target_steps=self.target_steps or 0,
                total_steps=self.total_steps or 0,
                pretrain_seconds=float(report["seconds"]) if ran_stage and report else 0.0,
                pretrain_tokens=int(report["tokens"]) if ran_stage and report else 0,
            ),
            lookahead=self.lookahead,
            failure_reason=self.failure_reason,
            intermediate=list(self.intermediate),
            selection=(self.data_selection or {}).get("kept"),
            pretraining=report,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (timestamps as ISO 8601 strings).

        The fields in order, as ``dataclasses.asdict`` gives them (a fresh copy of every
        container, the lookahead matrix as a dict), without its ``deepcopy`` of every leaf:
        that was most of ``records export -f json``'s time.
        """
        data = {f.name: _plain(getattr(self, f.name)) for f in _RUN_FIELDS}
        data["task_set"] = list(self.task_set)
        data["task_set_key"] = self.task_set_key
        for key in ("started_at", "finished_at", "created_at"):
            value = data[key]
            data[key] = value.isoformat() if value is not None else None
        return data


_RUN_FIELDS = fields(RunRecord)
#: values that ``copy.deepcopy`` returns as they are (no copy to make)
_ATOMIC = (str, int, float, bool, type(None), datetime)


def _plain(value: Any) -> Any:
    """Return ``value`` as ``dataclasses.asdict`` copies a field: dataclasses as dicts, each
    dict, list and tuple a new one of its type, anything else deep-copied (JSON scalars and
    datetimes, immutable, as they are)."""
    kind = type(value)
    if kind in _ATOMIC:
        return value
    if kind is dict:
        return {_plain(key): _plain(item) for key, item in value.items()}
    if kind is list:
        return [_plain(item) for item in value]
    if kind is tuple:
        return tuple(_plain(item) for item in value)
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    return copy.deepcopy(value)


class TaskSetRecord(NamedTuple):
    """One record of the hot query ``records_containing``: a run's score of one task."""

    run_id: int
    task: str
    split: str
    metric: str
    value: float
    family: str
    seed: int
    study: str | None

    def score_record(self, task_set: frozenset[str] | str) -> ScoreRecord:
        """Return this record as a ScoreRecord of ``task_set`` (a key ``a+b`` or names)."""
        # Imported here: taskgraph.affinity's package imports numpy and scipy, which the
        # records commands do not need (and whose objects slow every GC pass).
        from taskgraph.affinity.records import ScoreRecord

        members = frozenset(task_set.split("+")) if isinstance(task_set, str) else task_set
        return ScoreRecord(
            task=self.task,
            task_set=members,
            value=self.value,
            higher_is_better=higher_is_better(self.metric),
            split=self.split,
            metric=self.metric,
            family=self.family,
            seed=self.seed,
            study=self.study,
            run_id=self.run_id,
        )


@dataclass(frozen=True)
class RecordColumns:
    """The hot query's result by column, shared by every :class:`TaskSetRecords` of it.

    A column given as a single string (``task``, ``split``, ``metric``) was fixed by the
    query and is the same for every record.
    """

    run_ids: tuple[int, ...]
    tasks: tuple[str, ...] | str
    splits: tuple[str, ...] | str
    metrics: tuple[str, ...] | str
    values: tuple[float, ...]
    families: tuple[str, ...]
    seeds: tuple[int, ...]
    studies: tuple[str | None, ...]


class TaskSetRecords:
    """Every record of one task set, by column (one tuple per field, in run order).

    A view on rows ``start:stop`` of the query's :class:`RecordColumns`: the hot query builds
    no object per record and no tuple per group until a column is asked for (at ~10^4 records
    those allocations, and the garbage-collector passes they trigger, were most of its
    latency).  ``np.asarray(group.values)`` gets the values; iterating yields
    :class:`TaskSetRecord` named tuples; ``score_records()`` the affinity code's records.
    """

    __slots__ = ("_columns", "_start", "_stop", "task_set")

    def __init__(self, task_set: str, columns: RecordColumns, start: int, stop: int) -> None:
        self.task_set = task_set  # canonical key, e.g. "ner+pos"
        self._columns = columns
        self._start = start
        self._stop = stop

    def _column(self, column: tuple[Any, ...] | str) -> tuple[Any, ...]:
        if isinstance(column, str):
            return (column,) * (self._stop - self._start)
        return column[self._start : self._stop]

    @property
    def run_ids(self) -> tuple[int, ...]:
        """Return the run ids."""
        return self._column(self._columns.run_ids)

    @property
    def tasks(self) -> tuple[str, ...]:
        """Return the scored tasks."""
        return self._column(self._columns.tasks)

    @property
    def splits(self) -> tuple[str, ...]:
        """Return the splits."""
        return self._column(self._columns.splits)

    @property
    def metrics(self) -> tuple[str, ...]:
        """Return the metrics."""
        return self._column(self._columns.metrics)

    @property
    def values(self) -> tuple[float, ...]:
        """Return the score values."""
        return self._column(self._columns.values)

    @property
    def families(self) -> tuple[str, ...]:
        """Return each record's model family (``TrialConfig.family_key()`` of its task)."""
        return self._column(self._columns.families)

    @property
    def seeds(self) -> tuple[int, ...]:
        """Return the seeds."""
        return self._column(self._columns.seeds)

    @property
    def studies(self) -> tuple[str | None, ...]:
        """Return the study names."""
        return self._column(self._columns.studies)

    def __len__(self) -> int:
        return self._stop - self._start

    def __iter__(self) -> Iterator[TaskSetRecord]:
        columns = (self.run_ids, self.tasks, self.splits, self.metrics, self.values)
        rest = (self.families, self.seeds, self.studies)
        return map(TaskSetRecord._make, zip(*columns, *rest, strict=True))

    def __getitem__(self, index: int) -> TaskSetRecord:
        return list(self)[index]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TaskSetRecords):
            return NotImplemented
        return self.task_set == other.task_set and list(self) == list(other)

    def __hash__(self) -> int:
        return hash((self.task_set, len(self)))

    def __repr__(self) -> str:
        return f"TaskSetRecords({self.task_set!r}, {len(self)} records)"

    def score_records(self) -> list[ScoreRecord]:
        """Return the records as the affinity code's ScoreRecords (without ``settings``, which
        :meth:`Repository.score_records` reads from the runs' configurations)."""
        members = frozenset(self.task_set.split("+"))
        return [record.score_record(members) for record in self]


@dataclass(frozen=True)
class StudySummary:
    """A study with how many runs it has in each status."""

    name: str
    direction: str
    target: str | None
    created_at: datetime
    counts: Mapping[str, int]

    @property
    def n_runs(self) -> int:
        """Return the number of runs in every status."""
        return sum(self.counts.values())


@dataclass(frozen=True)
class StoredLookahead:
    """A lookahead affinity matrix and the run that measured it."""

    run_id: int
    study: str
    task_set: tuple[str, ...]
    matrix: LookaheadMatrix


@dataclass(frozen=True)
class StoredScreen:
    """One screen of a study (:mod:`taskgraph.search.screening`): the joint run's lookahead
    matrix (with standard errors), its cost and its settings.

    Stored as a run with ``transfer_mode = "screen"``, a negative trial number (-1, -2, ... for
    each screen of the study) and no score rows, so gains and prior records never see it; the
    lookahead matrix is an ordinary one (the affinity fit uses it).  ``details`` is what the
    screen kept under ``screen`` in the run's config (steps, probes, the target's score).
    """

    run_id: int
    study: str
    number: int
    target: str
    created_at: datetime
    matrix: LookaheadMatrix
    cost_seconds: float
    total_steps: int | None
    config: Mapping[str, Any]
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AffinityEdgeRecord:
    """One fitted affinity edge ``source -> target`` from one fit of one method."""

    source: str
    target: str
    gain: float
    std: float | None
    n_evidence: int
    method: str
    fitted_at: datetime
    details: Mapping[str, Any] = field(default_factory=dict)
