"""The estimator interface: fit on score records, predict a gain's mean and standard deviation.

Every estimator answers one question: what gain will ``target`` get from training with
``task_set`` (relative to its single-task baseline, sign-normalised, see
:mod:`taskgraph.affinity.gains`)?  ``predict`` returns the mean and the standard deviation of
that gain (the uncertainty about the mean gain, not the seed noise of one run).  Estimators are
looked up by name in :data:`ESTIMATORS`; an unknown name lists the known ones.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np

from taskgraph.affinity.gain_queries import EvidenceIndex
from taskgraph.affinity.gains import GainKind, GainTable, compute_gains
from taskgraph.affinity.records import ScoreRecord
from taskgraph.errors import ConfigError
from taskgraph.registry import Registry

__all__ = [
    "ESTIMATORS",
    "AffinityEstimator",
    "NotFittedError",
    "as_task_set",
    "make_estimator",
    "query_task_sets",
    "task_sets_of",
]

E = TypeVar("E", bound="AffinityEstimator")


def as_task_set(task_set: Iterable[str], what: str) -> frozenset[str]:
    """Return ``task_set`` as a frozenset of task names; a string is refused, not read as letters.

    ``what`` names the argument in the message, e.g. ``"`task_set`"``.
    """
    if isinstance(task_set, str):
        names = [n.strip() for n in task_set.split(",") if n.strip()]
        example = "{" + ", ".join(map(repr, names)) + "}" if names else "a set or list of names"
        raise ConfigError(
            f"{what} must be a collection of task names, not the string {task_set!r}; "
            f"pass {example}"
        )
    return frozenset(task_set)


def task_sets_of(task_sets: Iterable[Iterable[str]]) -> list[frozenset[str]]:
    """Return ``task_sets`` as a list of frozensets, refusing a string for the list or a member."""
    if isinstance(task_sets, str):
        raise ConfigError(
            f"`task_sets` must be a sequence of task sets, not the string {task_sets!r}; "
            f"pass a list of sets such as [{{{task_sets!r}}}]"
        )
    return [as_task_set(s, f"`task_sets[{i}]`") for i, s in enumerate(task_sets)]


def query_task_sets(
    queries: Iterable[tuple[str, Iterable[str]]],
) -> list[tuple[str, frozenset[str]]]:
    """Return ``sample_gains``' queries with each task set a frozenset (a string is refused)."""
    return [
        (target, as_task_set(task_set, f"the task set of `queries[{i}]`"))
        for i, (target, task_set) in enumerate(queries)
    ]


class NotFittedError(ConfigError):
    """``predict`` was called before ``fit``."""


class AffinityEstimator(abc.ABC):
    """Fit on records (``fit``) or gains (``fit_gains``); ``predict(target, task_set) -> (mean, std)``."""

    name: ClassVar[str] = ""

    def __init__(
        self,
        *,
        gain_kind: GainKind = "relative",
        split: str | None = None,
        metric: str | None = None,
    ) -> None:
        self.gain_kind: GainKind = gain_kind
        self.split = split
        self.metric = metric
        self._table: GainTable | None = None
        #: pairs_only -> the fitted table's evidence index (built on first use, once per fit)
        self._evidence: dict[bool, EvidenceIndex] = {}

    def fit(self: E, records: Iterable[ScoreRecord]) -> E:
        """Return ``self`` fitted on the gains computed from ``records``."""
        return self.fit_gains(
            compute_gains(records, kind=self.gain_kind, split=self.split, metric=self.metric)
        )

    def fit_gains(self: E, table: GainTable) -> E:
        """Return ``self`` fitted on an already computed gain table."""
        self._table = table
        self._evidence = {}
        self._fit(table)
        return self

    @abc.abstractmethod
    def _fit(self, table: GainTable) -> None:
        """Fit the estimator's state from ``table``."""

    @abc.abstractmethod
    def _predict(self, target: str, auxiliaries: frozenset[str]) -> tuple[float, float]:
        """Return (mean, std) of the gain of ``target`` from a non-empty auxiliary set."""

    @property
    def table(self) -> GainTable:
        """Return the gain table the estimator was fitted on."""
        if self._table is None:
            raise NotFittedError(
                f"the {self.name or type(self).__name__} estimator is not fitted; call fit() first"
            )
        return self._table

    @property
    def tasks(self) -> list[str]:
        """Return every task the fitted estimator knows, sorted."""
        return self.table.tasks

    @property
    def targets(self) -> list[str]:
        """Return the targets with records, sorted."""
        return self.table.targets

    def predict(self, target: str, task_set: Iterable[str]) -> tuple[float, float]:
        """Return (mean, std) of the gain of ``target`` trained with ``task_set`` (target optional in it)."""
        auxiliaries = as_task_set(task_set, "`task_set`") - {target}
        self.table  # noqa: B018 -- raises NotFittedError before any work
        if not auxiliaries:
            return 0.0, 0.0
        mean, std = self._predict(target, auxiliaries)
        return float(mean), float(std)

    def predict_many(
        self, target: str, task_sets: Sequence[Iterable[str]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return arrays of means and standard deviations for several task sets of ``target``."""
        pairs = [self.predict(target, s) for s in task_sets_of(task_sets)]
        if not pairs:
            return np.zeros(0), np.zeros(0)
        means, stds = zip(*pairs, strict=True)
        return np.asarray(means, dtype=float), np.asarray(stds, dtype=float)

    def sample_gains(
        self,
        queries: Sequence[tuple[str, Iterable[str]]],
        rng: np.random.Generator,
        *,
        n_samples: int = 1,
    ) -> np.ndarray:
        """Return posterior draws of the gains of ``(target, task_set)`` queries, shape (n_samples, len(queries)).

        The default draws each query independently from ``N(mean, std)``; estimators with a joint
        posterior override it so that draws are coherent across queries (Thompson sampling).
        """
        moments = [self.predict(t, s) for t, s in query_task_sets(queries)]
        means = np.array([m for m, _ in moments], dtype=float)
        stds = np.array([s for _, s in moments], dtype=float)
        return means + stds * rng.standard_normal((n_samples, len(queries)))

    def n_evidence(self, target: str, task_set: Iterable[str]) -> int:
        """Return how many runs measured a gain of ``target`` with at least one task of ``task_set``.

        Runs, not records: a run scored on several metrics or splits counts once.
        """
        auxiliaries = as_task_set(task_set, "`task_set`") - {target}
        return self._evidence_index().runs(target, auxiliaries)

    def _evidence_index(self, *, pairs_only: bool = False) -> EvidenceIndex:
        """Return the index of the fitted table's runs by (target, source), built once per fit
        (``pairs_only``: of its single-auxiliary gains alone)."""
        table = self.table  # raises NotFittedError before any work
        index = self._evidence.get(pairs_only)
        if index is None:
            index = self._evidence[pairs_only] = EvidenceIndex(table.gains, pairs_only=pairs_only)
        return index

    def describe(self) -> dict[str, Any]:
        """Return the fitted state in a few JSON-ready numbers (for logs and the CLI)."""
        return {"method": self.name, "gains": len(self.table.gains), "targets": len(self.targets)}


def pooled_std(values: Iterable[float], *, fallback: float = 1.0) -> float:
    """Return the standard deviation of the finite ``values``, or ``fallback`` with fewer than two
    or all equal."""
    finite = [v for v in values if math.isfinite(v)]
    # equal values have no spread, though np.std of three 0.2s is 3.4e-17 (the mean's rounding)
    if len(finite) < 2 or min(finite) == max(finite):
        return fallback
    return float(np.std(finite, ddof=1)) or fallback


#: name -> estimator class (lazily imported)
ESTIMATORS: Registry[type[AffinityEstimator]] = Registry(kind="affinity estimator")
ESTIMATORS.register("pairwise", "taskgraph.affinity.estimators.pairwise:PairwiseEstimator")
ESTIMATORS.register("hoa", "taskgraph.affinity.estimators.pairwise:HigherOrderEstimator")
ESTIMATORS.register("setfn", "taskgraph.affinity.estimators.setfn:SetFunctionEstimator")
ESTIMATORS.register("sourcerank", "taskgraph.affinity.estimators.sourcerank:SourceRankEstimator")
ESTIMATORS.register("lookahead", "taskgraph.affinity.estimators.lookahead:LookaheadEstimator")
ESTIMATORS.register("textemb", "taskgraph.affinity.estimators.similarity:TextEmbEstimator")


def make_estimator(name: str, **options: Any) -> AffinityEstimator:
    """Return a new estimator registered under ``name`` built with ``options``."""
    cls = ESTIMATORS.get(name)
    try:
        return cls(**options)
    except TypeError as error:
        raise ConfigError(f"options of affinity estimator {name!r}: {error}") from None
