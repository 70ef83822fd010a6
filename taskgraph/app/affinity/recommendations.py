"""Auxiliary tasks recommended for a target (``taskgraph affinity top``), and saving the fit.

:func:`recommendation_report` ranks auxiliary sets by predicted gain beside their measured
gains, with notes on the evidence; :func:`recommend` returns the ranking alone;
:func:`fit_and_save` stores the fitted estimator's edges in the records database
(``taskgraph affinity fit``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from taskgraph.affinity.estimators.base import ESTIMATORS
from taskgraph.affinity.gain_queries import measured_gain
from taskgraph.affinity.gains import GainKind, compute_gains, gain_key
from taskgraph.affinity.graph import affinity_graph as _graph_of
from taskgraph.affinity.graph import graph_edges
from taskgraph.affinity.recommend import Recommendation, rank_auxiliaries
from taskgraph.app.affinity.fitting import (
    _explained,
    _families_note,
    _mixed_settings_notes,
    _setfn_options,
    _zero_baseline_notes,
    fit_estimator,
)
from taskgraph.app.affinity.objectives import ALL_METRICS
from taskgraph.app.affinity.records import (
    PathLike,
    _known_tasks,
    _one_source,
    _records_database,
    _target_has_metric,
    _target_objectives_differ,
    scored_by,
)
from taskgraph.app.arguments import integer, registered_name
from taskgraph.errors import ConfigError, option_name
from taskgraph.storage.export import DATA_MARK

if TYPE_CHECKING:
    from taskgraph.affinity.records import ScoreRecord

__all__ = ["RecommendationReport", "fit_and_save", "recommend", "recommendation_report"]


#: the estimators that read only a target's gains from single auxiliary tasks (pairs)
_PAIR_METHODS = ("pairwise", "hoa")
#: the estimators whose prediction for a set nothing backs is a placeholder prior
_EVIDENCE_METHODS = (*_PAIR_METHODS, "lookahead")


@dataclass(frozen=True)
class RecommendationReport:
    """The auxiliary sets recommended for a target, with what they are measured against.

    ``recommendations`` are ordered by predicted gain (of kind ``gain_kind``);
    ``measured_absolute[i]`` is the gain of ``recommendations[i]`` in the metric's own units
    (as ``study show`` prints it), ``None`` for a set that never ran.  ``scored_by`` names the
    scores compared (``"f1 on dev"``).
    """

    target: str
    method: str
    gain_kind: GainKind
    scored_by: str
    recommendations: tuple[Recommendation, ...]
    measured_absolute: tuple[float | None, ...]
    #: caveats to print beside the table (a target without a baseline: cold start)
    notes: tuple[str, ...] = ()
    #: lookahead only: whether its scores were calibrated into gains on measured pair gains
    #: (False: the "predicted gain" is a raw lookahead score, a ranking only); None otherwise
    calibrated: bool | None = None

    def to_rows(self) -> list[dict[str, Any]]:
        """Return one JSON-ready dict per set: :meth:`Recommendation.to_dict` plus
        ``measured_absolute_gain``.  For ``lookahead`` the evidence is
        ``evidence_lookahead_matrices`` (matrices, not runs), and uncalibrated predictions are
        ``lookahead_score`` and ``lookahead_score_std`` (not gains)."""
        key = gain_key("measured", "absolute")
        rows = []
        for r, a in zip(self.recommendations, self.measured_absolute, strict=True):
            row = {**r.to_dict(), key: a}
            if self.method == "lookahead":
                renamed = {"evidence_runs": "evidence_lookahead_matrices"}
                if not self.calibrated:
                    predicted = gain_key("predicted", self.gain_kind)
                    renamed[predicted] = "lookahead_score"
                    renamed[f"{predicted}_std"] = "lookahead_score_std"
                row = {renamed.get(name, name): value for name, value in row.items()}
            rows.append(row)
        return rows

    def to_dict(self) -> dict[str, Any]:
        """Return what ``affinity top --json`` prints: the target, method, gain kind, scores
        compared, ``recommendations`` (:meth:`to_rows`) and ``notes``."""
        return {
            "target": self.target,
            "method": self.method,
            "gain_kind": self.gain_kind,
            "scored_by": self.scored_by,
            "recommendations": self.to_rows(),
            "notes": list(self.notes),
            **({} if self.calibrated is None else {"calibrated": self.calibrated}),
        }


def recommendation_report(
    target: str,
    *,
    storage: str | None = None,
    table: PathLike | None = None,
    k: int = 5,
    max_size: int | None = None,
    method: str = "setfn",
    split: str | None = None,
    metric: str | None = None,
    text_embeddings: bool = False,
    hyperprior: bool | None = None,
    pooling: str | None = None,
) -> RecommendationReport:
    """Return the ``k`` auxiliary sets with the highest predicted gain for ``target``, each
    beside its measured gains (what ``taskgraph affinity top`` prints).

    The estimator ``method`` is fitted on every record (:func:`fit_estimator`); predicted gains
    are relative to the target's single-task baseline unless the estimator fell back to
    absolute gains (a zero baseline).  Notes say when the target's gains come from several
    model families, or, for ``pairwise``/``hoa``, when no gain of the target from a single
    auxiliary is measured.  Raises :class:`ConfigError` when ``target`` is not a name or has
    no records, when the studies with its records would be read in different metrics by
    default (naming them), and what :func:`fit_estimator` raises.
    """
    target = registered_name(target, "target")  # None or 3: not "has no records"
    k = integer(k, "k", minimum=1)
    if max_size is not None:
        max_size = integer(max_size, "max_size", minimum=1)
    # A `metric` the target was never scored by leaves it without records of its own: said
    # so (read only where the fit found nothing of the target's, not on every call).
    named = table is None and metric is not None and metric != ALL_METRICS

    def explain() -> None:
        # A name no record or matrix holds is the first thing wrong, whatever the fit found.
        _known_tasks(option_name("target"), [target], storage=storage, table=table)
        if named:
            _target_has_metric(target, str(metric), storage=storage, split=split)
        if table is None and metric is None:
            _target_objectives_differ(target, storage=storage, split=split)

    with _explained(explain):
        estimator, records = fit_estimator(
            method=method, storage=storage, table=table, split=split, metric=metric,
            text_embeddings=text_embeddings, hyperprior=hyperprior, pooling=pooling,
            matrices_alone=True,  # lookahead ranks from a screen alone (uncalibrated, noted)
        )  # fmt: skip
    if named and not any(r.task == target for r in records):
        _target_has_metric(target, str(metric), storage=storage, split=split)
    if target not in estimator.tasks:
        raise ConfigError(
            f"`{option_name('target')}` {target!r} has no records; known tasks: "
            f"{', '.join(estimator.tasks)}"
        )
    zero = [key for key in estimator.table.zero_baselines if key[1] == target]
    has_gains = any(g.target == target for g in estimator.table.gains)
    if zero and not has_gains:
        _, _, split_name, metric_name = zero[0]
        raise ConfigError(
            f"`{option_name('target')}` {target!r} has a single-task score of 0 "
            f"({metric_name or 'score'} on {split_name}), so its gains relative to that baseline are undefined: nothing to "
            "recommend from"
        )
    # Pair methods and lookahead give a set nothing backs a placeholder (their prior):
    # left out rather than ranked as a prediction (docs/affinity.md, "affinity top").
    found, without = rank_auxiliaries(
        estimator, target, k, max_size=max_size, evidence_only=method in _EVIDENCE_METHODS
    )
    recommendations = tuple(found)
    absolute = compute_gains(records, kind="absolute").gains
    notes: list[str] = []
    calibrated = bool(getattr(estimator, "calibrated", False)) if method == "lookahead" else None
    if calibrated is False:
        notes.append(
            "lookahead is uncalibrated: fewer than 3 single-auxiliary gains were measured to "
            "turn its scores into gains, so the values are raw lookahead scores (the mean "
            "relative drop in the target's loss after a step on an auxiliary): a "
            "ranking, not a predicted gain; run the target with one auxiliary at a time to "
            "calibrate it"
        )
    if without:
        unit = "lookahead matrix" if method == "lookahead" else "measured single-auxiliary gain"
        notes.append(
            f"{without} auxiliary set(s) have no evidence for {method} (no {unit} of "
            f"{target!r} with any of their tasks) and are left out: their value would be "
            "the estimator's prior, not a prediction"
        )
    if records and target not in estimator.targets:
        notes.append(
            f"{target!r} has no single-task baseline among the records, so none of its gains "
            "is measured: the predictions come from the other targets' records (cold start)"
        )
    elif records:  # (none: lookahead from the matrices alone, no gain measured)
        own = [r for r in records if r.task == target]
        left_out = compute_gains(own, zero_baselines="leave_out").n_without_baseline
        # A family that is a version of the target's data (`<family>/data:<fingerprint>`,
        # score_reads.data_families) lacks a baseline because the data changed, not the model.
        on_other_data = _records_on_unbaselined_data(own, target)
        if on_other_data:
            notes.append(
                f"{on_other_data} of {target!r}'s records are on another version of "
                f"{target!r}'s data (a data file changed between runs) than its single-task "
                "baselines and are left out of its gains, as a gain never compares two "
                f"versions of the data: train {target!r} alone on that version of its data "
                "to use them"
            )
        if left_out > on_other_data:
            notes.append(
                f"{left_out - on_other_data} of {target!r}'s records are of a model family "
                f"without a single-task baseline of {target!r} (another encoder, input "
                "length, cap of the target, pretraining or data selection) and are left out "
                "of its gains: train the target alone in that family to use them"
            )
    notes.extend(_zero_baseline_notes(estimator, estimator.tasks))
    notes.extend(_mixed_settings_notes(estimator, [target]))
    families = {g.family for g in estimator.table.gains if g.target == target}
    if len(families) > 1:
        notes.append(
            _families_note(
                len(families),
                f"the gains of {target!r} are measured against its single-task score in each "
                "family, and a set's measured gain is their mean over the families that ran "
                "it, as scores of different families are not comparable",
            )
        )
    mixed = sorted(
        "+".join(sorted(aux))
        for _, task, aux in estimator.table.mixed_partner_data
        if task == target
    )
    if mixed:
        notes.append(
            f"{len(mixed)} auxiliary set(s) of {target!r} ran on more than one version of their "
            f"auxiliaries' data (a data file changed between runs), and their measured gains "
            f"pool the versions: {', '.join(mixed[:5])}{', ...' if len(mixed) > 5 else ''}; "
            "each run's `task_fingerprints` (`records export -f json`) tell the versions apart"
        )
    pairs = any(g.target == target and g.size == 1 for g in estimator.table.gains)
    if method in _PAIR_METHODS and not pairs:
        notes.append(
            f"no gain of {target!r} from a single auxiliary task is measured, and {method} "
            "reads only those: no set has evidence, so there is nothing to rank; run the "
            f"target with one auxiliary at a time, or use {option_name('method', 'setfn')}"
        )
    return RecommendationReport(
        target=target,
        method=method,
        gain_kind=estimator.gain_kind,
        scored_by=scored_by(records) if records else "lookahead matrices only",
        calibrated=calibrated,
        recommendations=recommendations,
        measured_absolute=tuple(
            measured_gain(absolute, target, r.auxiliaries) for r in recommendations
        ),
        notes=tuple(notes),
    )


def _records_on_unbaselined_data(records: Sequence[ScoreRecord], target: str) -> int:
    """Return how many of ``target``'s finite ``records`` are in a data-version family
    (``<family>/data:<fingerprint>``) with no single-task record of ``target`` on the same
    split and metric: the part of :attr:`~taskgraph.affinity.gains.GainTable.n_without_baseline` that another version
    of the target's data, not another model, explains."""
    alone = frozenset({target})
    keys = [
        (r.family, r.split, r.metric)
        for r in records
        if r.task == target and math.isfinite(r.value)
    ]
    baselined = {
        (r.family, r.split, r.metric)
        for r in records
        if r.task == target and r.task_set == alone and math.isfinite(r.value)
    }
    return sum(1 for key in keys if key not in baselined and DATA_MARK in key[0])


def recommend(
    target: str,
    *,
    storage: str | None = None,
    table: PathLike | None = None,
    k: int = 5,
    max_size: int | None = None,
    method: str = "setfn",
    split: str | None = None,
    metric: str | None = None,
    text_embeddings: bool = False,
    hyperprior: bool | None = None,
    pooling: str | None = None,
) -> list[Recommendation]:
    """Return the ``k`` auxiliary sets with the highest predicted gain for ``target``.

    The recommendations of :func:`recommendation_report` (same arguments, same errors),
    without the measured absolute gains.
    """
    return list(
        recommendation_report(
            target,
            storage=storage,
            table=table,
            k=k,
            max_size=max_size,
            method=method,
            split=split,
            metric=metric,
            text_embeddings=text_embeddings,
            hyperprior=hyperprior,
            pooling=pooling,
        ).recommendations
    )


def fit_and_save(
    *,
    method: str = "setfn",
    storage: str | None = None,
    table: PathLike | None = None,
    split: str | None = None,
    metric: str | None = None,
    text_embeddings: bool = False,
    hyperprior: bool | None = None,
    pooling: str | None = None,
) -> dict[str, Any]:
    """Fit ``method`` on every record and save its edges (source -> target predicted gains)
    to the records database; return a summary (the estimator's ``describe()`` plus
    ``records``, ``edges`` and ``saved``).

    With ``table`` the records come from a CSV file and nothing is saved (``saved`` is False);
    ``storage`` and ``table`` together are refused.  Raises what :func:`fit_estimator` raises.
    """
    _one_source(storage, table)
    # Checked before the database is opened, as fit_estimator checks them before reading it.
    ESTIMATORS.get(registered_name(method, "method"))
    _setfn_options(method, hyperprior, pooling)
    # A table: no database is opened and nothing saved; else one connection: read, fit, save.
    with nullcontext() if table is not None else _records_database(storage) as database:
        estimator, records = fit_estimator(
            method=method, storage=storage, table=table, split=split, metric=metric,
            text_embeddings=text_embeddings, hyperprior=hyperprior, pooling=pooling,
            repository=database,
        )  # fmt: skip
        edges = graph_edges(_graph_of(estimator))
        if database is not None:
            predicted = gain_key("predicted", estimator.gain_kind)
            # The stored edge keeps its columns: gain (the predicted one), std, n_evidence.
            database.save_affinity_edges(
                [{"source": e["source"], "target": e["target"], "gain": e[predicted],
                  "std": e[f"{predicted}_std"], "n_evidence": e["evidence_runs"]}
                 for e in edges],
                method=method,
            )  # fmt: skip
    saved = database is not None
    return {**estimator.describe(), "records": len(records), "edges": len(edges), "saved": saved}
