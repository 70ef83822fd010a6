"""Affinity: records -> fitted estimator -> recommendations, groupings and the graph.

The composition behind ``taskgraph affinity top/groups/graph``, as a documented Python API
(exported from :mod:`taskgraph`).  Records come from the records database (``storage``, default
``TASKGRAPH_STORAGE`` or the local SQLite file) or, with ``table``, from a results table in the
long CSV format.  Bad input raises :class:`~taskgraph.errors.ConfigError` naming it.

``taskgraph/cli/affinity.py`` parses options, calls one function of this module per command
(:func:`fit_and_save`, :func:`recommendation_report`, :func:`grouping_report`,
:func:`graph_report`) and prints what it returns.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from taskgraph.affinity.estimators.base import ESTIMATORS, AffinityEstimator, make_estimator
from taskgraph.affinity.estimators.setfn import POOLINGS, SMALL_DATA_HYPERPRIOR
from taskgraph.affinity.gains import GainKind, compute_gains, gain_key, measured_gain, seed_mean
from taskgraph.affinity.graph import affinity_graph as _graph_of
from taskgraph.affinity.graph import graph_edges
from taskgraph.affinity.grouping import (
    Grouping,
    affordable_networks,
    candidate_task_sets,
    predicted_network_scores,
    select_networks,
)
from taskgraph.affinity.recommend import Recommendation, rank_auxiliaries
from taskgraph.affinity.records import ScoreRecord
from taskgraph.app.arguments import flag, integer, names, number, registered_name, storage_url
from taskgraph.errors import ConfigError, StorageError, option_name

if TYPE_CHECKING:
    from taskgraph.affinity.longtable import LongTable
    from taskgraph.storage.repository import Repository

__all__ = [
    "ALL_METRICS",
    "GraphReport",
    "GroupingReport",
    "RecommendationReport",
    "affinity_graph",
    "fit_and_save",
    "fit_estimator",
    "fit_records",
    "graph_report",
    "grouping_report",
    "groupings",
    "load_records",
    "lookahead_matrices",
    "measured_scores",
    "recommend",
    "recommendation_report",
    "records_long_table",
    "score_family",
    "scored_by",
]

PathLike = str | os.PathLike[str]
#: ``metric="all"``: every metric, mixed on purpose (the default is the studies' objective)
ALL_METRICS = "all"


@contextmanager
def _records_database(
    storage: str | None, repository: Repository | None = None
) -> Iterator[Repository]:
    """Yield ``repository`` when given, else the records database at ``storage``, opened once
    (without creating it) and closed on the way out."""
    if repository is not None:
        yield repository
        return
    from taskgraph.storage import open_repository

    opened = open_repository(storage_url(storage), create=False)
    try:
        yield opened
    finally:
        opened.close()


def load_records(
    *,
    storage: str | None = None,
    table: PathLike | None = None,
    split: str | None = None,
    metric: str | None = None,
    repository: Repository | None = None,
) -> list[ScoreRecord]:
    """Return the score records from ``table`` (long CSV) or else from the records database.

    From the database, ``metric=None`` means the objective metric (and, with ``split=None``,
    split) of the studies the records come from; ``metric="all"`` keeps every metric.  The
    records returned are of one split.  Raises :class:`ConfigError` when the studies disagree
    on the metric, when no record has it, when several splits remain and none is named, or
    (``metric="all"``) when one task's metrics go in different directions (a loss, an accuracy);
    :class:`~taskgraph.errors.DataFormatError` for a bad table;
    :class:`~taskgraph.errors.StorageError` for a database that cannot be opened.
    ``repository``: an open records database to read instead of opening ``storage``.
    """
    if table is not None:
        from taskgraph.app.bench import load_bench_table

        if metric is not None:
            raise ConfigError(
                f"`{option_name('metric')}` {metric!r} chooses among the metrics of a records "
                f"database, but a {option_name('table')} holds one score per row and names no "
                f"metric: leave {option_name('metric')} out"
            )
        data = load_bench_table(table)
        if split is not None and split not in data.splits:
            raise ConfigError(
                f"`{option_name('split')}` {split!r} is not a split of {table}; it has "
                f"{', '.join(data.splits)}"
            )
        chosen = split or ("val" if "val" in data.splits else data.splits[0])
        return data.to_records(split=chosen)
    named_metric = None if metric in (None, ALL_METRICS) else metric
    with _records_database(storage, repository) as database:
        records = database.score_records(split=split, metric=named_metric)
        if not records and (split is not None or named_metric is not None):
            _no_records_named(database.score_records(), split=split, metric=named_metric)
        specs = database.study_specs() if metric is None else {}
    if metric is None and records:
        chosen_metric, objective_split = _objective(records, specs)
        kept = [r for r in records if r.metric == chosen_metric]
        if not kept:
            raise ConfigError(
                f"no records of the objective metric {chosen_metric!r} (the records have "
                f"{sorted({r.metric for r in records})}); choose one with "
                f"{option_name('metric', metavar='NAME')}"
            )
        records = kept
        if split is None and objective_split is not None:
            split = objective_split
            records = [r for r in records if r.split == split]
    if split is None:
        # Gains of one split are evidence; the same runs scored on dev and test are not two.
        splits = sorted({r.split for r in records})
        preferred = next(
            (s for s in ("dev", "val") if s in splits), splits[0] if len(splits) == 1 else None
        )
        if splits and preferred is None:
            raise ConfigError(
                f"the records have splits {splits}; choose one with {option_name('split')}"
            )
        records = [r for r in records if r.split == preferred]
    if metric == ALL_METRICS:
        _one_direction_per_task(records)
    return records


def _one_direction_per_task(records: Sequence[ScoreRecord]) -> None:
    """Raise a ConfigError when one task's records mix higher- and lower-is-better metrics:
    ``metric="all"`` averages a task's metrics, and a loss and an accuracy make no mean."""
    directions: dict[str, dict[bool, set[str]]] = {}
    for record in records:
        by_direction = directions.setdefault(record.task, {})
        by_direction.setdefault(record.higher_is_better, set()).add(record.metric or "score")
    for task, by_direction in sorted(directions.items()):
        if len(by_direction) > 1:
            raise ConfigError(
                f"{option_name('metric', ALL_METRICS)} would average the metrics of {task!r}, but "
                f"higher is better for {', '.join(sorted(by_direction[True]))} and lower for "
                f"{', '.join(sorted(by_direction[False]))}: choose one with "
                f"{option_name('metric', metavar='NAME')}"
            )


#: the long format's split names for the records' (a trainer's dev split is the table's val)
LONG_SPLITS = {"dev": "val", "val": "val", "test": "test"}


def records_long_table(
    *,
    storage: str | None = None,
    study: str | None = None,
    target: str | None = None,
    task_set: str | Sequence[str] | None = None,
    contains: str | None = None,
    metric: str | None = None,
    pretraining: str | None = None,
    family: str | None = None,
    repository: Repository | None = None,
) -> LongTable:
    """Return the records database as a long table (``target, task_set, split, value``): what
    ``taskgraph bench --table`` and ``affinity ... --table`` read.

    One row per scored task, task set and split: the mean of the complete runs' scores as
    gains take it (:func:`~taskgraph.affinity.gains.seed_mean`: each seed's runs averaged
    first, over the configurations that trained that task set, then the seeds), so the
    table's measured gains are the database's, except where a family holds baselines trained
    with several settings (``budget.baselines: per_setting``, ``ScoreRecord.settings``): the
    database measures each set against the baselines trained as it was, a long table holds
    one pooled value per cell; in ``metric`` (default:
    the studies' objective metric, as :func:`load_records` chooses it).  Splits are named as
    the long format names them (``dev`` -> ``val``; splits other than dev, val and test are
    left out).  Each filter picks runs, and every score of a picked run is kept (its
    auxiliaries' too), as ``records list`` picks them: ``study``: only its runs; ``target``:
    only runs whose target is that task; ``task_set`` (``a+b`` or a list of names): only runs
    on exactly that set; ``contains``: only runs whose set contains that task;
    ``pretraining``: only runs with that pretraining scheme (``none``: without the stage);
    ``family``: only the scores of that model family (its hash or a prefix, as the error below
    lists them).  A study, target, task or scheme no run has is refused with the known names
    (:func:`~taskgraph.app.results.check_record_filters`).  Raises :class:`ConfigError` when
    nothing is left (a ``metric`` the matching runs lack names the ones they have; a
    ``family`` no score has lists the families), when the studies disagree on the metric, or
    when one task set was trained in several model families (encoder, input length, example
    caps, pretraining or data selection), whose scores one row cannot hold: the message names
    each family by its pretraining scheme and data selection and the filter that picks one.
    """
    from taskgraph.affinity.longtable import LongRow, LongTable

    named_metric = None if metric is None else registered_name(metric, "metric")
    if named_metric == ALL_METRICS:
        raise ConfigError(
            f"`{option_name('metric')}` {ALL_METRICS!r} would average different metrics into one "
            "score: a long table holds one metric; name it"
        )
    from taskgraph.app.results import check_record_filters

    if family is not None and (not isinstance(family, str) or not family.strip()):
        raise ConfigError(f"`{option_name('family')}` is empty: give a family hash or its prefix")
    with _records_database(storage, repository) as database:
        check_record_filters(
            database, study=study, target=target, task_set=task_set, contains=contains,
            pretraining=pretraining,
        )  # fmt: skip
        picked = _long_table_runs(
            database, study=study, target=target, task_set=task_set, contains=contains,
            pretraining=pretraining,
        )  # fmt: skip
        records = _of_runs(database.score_records(study=study, metric=named_metric), picked)
        if family is not None:
            records = _of_family(records, family.strip().lower())
        if not records and named_metric is not None:
            _no_scores_in_metric(
                named_metric, _of_runs(database.score_records(study=study), picked)
            )
        specs = database.study_specs()
    if named_metric is None and records:
        try:
            chosen, _ = _objective(records, specs)
        except ConfigError:  # its remedies include mixing the metrics, which one value cannot
            raise ConfigError(
                f"the records have metrics {', '.join(sorted({r.metric for r in records}))} "
                "and their studies name no one objective metric: choose one with "
                f"{option_name('metric', metavar='NAME')}"
            ) from None
        records = [r for r in records if r.metric == chosen]
    records = [r for r in records if r.split in LONG_SPLITS]
    if not records:
        raise ConfigError("no complete run's scores match: nothing to write as a long table")
    cells: dict[tuple[str, frozenset[str], str], list[ScoreRecord]] = {}
    for record in records:
        key = (record.task, record.task_set, LONG_SPLITS[record.split])
        cells.setdefault(key, []).append(record)
    rows = []
    for (task, tasks, split), found in sorted(cells.items(), key=lambda item: (
        item[0][0], len(item[0][1]), sorted(item[0][1]), item[0][2]
    )):  # fmt: skip
        families = {r.family for r in found}
        if len(families) > 1:
            with _records_database(storage, repository) as database:
                _several_families(task, tasks, found, database, study=study)
        # As gains average them: each seed's runs first, then the seeds (a repeated seed is
        # one measurement), so the table's gains are the database's (but for families with
        # baselines of several settings, which one value per cell cannot hold).
        value = seed_mean(found)
        rows.append(LongRow(task, tasks, split, value, found[0].higher_is_better))
    return LongTable(rows=rows, source=study or "")


def _long_table_runs(
    database: Repository,
    *,
    study: str | None,
    target: str | None,
    task_set: str | Sequence[str] | None,
    contains: str | None,
    pretraining: str | None = None,
) -> set[int] | None:
    """Return the ids of the complete runs that ``target``, ``task_set``, ``contains`` and
    ``pretraining`` pick (None: no such filter, every run): the long table picks runs as
    ``records list`` does."""
    if target is None and task_set is None and contains is None and pretraining is None:
        return None
    runs = database.runs(
        study=study, target=target, task_set=task_set, contains=contains, status="complete",
        pretraining=pretraining,
    )  # fmt: skip
    return {run.id for run in runs}


def _of_family(records: Sequence[ScoreRecord], family: str) -> list[ScoreRecord]:
    """Return the ``records`` whose model family starts with ``family``; raise a ConfigError
    listing the records' families when none does."""
    from taskgraph.storage.repository import no_family_error

    kept = [r for r in records if r.family.lower().startswith(family)]
    if records and not kept:
        raise no_family_error(family, {r.family for r in records})
    return kept


#: the characters of a family hash an error names (as `records list` shortens config hashes)
_FAMILY_SHOWN = 12


def _several_families(
    task: str,
    tasks: frozenset[str],
    found: Sequence[ScoreRecord],
    database: Repository,
    *,
    study: str | None,
) -> None:
    """Raise the ConfigError of a task set whose scores ``found`` span several model families:
    each family named by its hash prefix, pretraining scheme and data selection, and the
    filter that picks one (``--pretraining`` where the schemes tell them apart)."""
    ids = {r.run_id for r in found}
    runs = {run.id: run for run in database.runs(study=study, status="complete") if run.id in ids}
    described: dict[str, set[str]] = {}
    schemes: dict[str, set[str]] = {}
    for record in found:
        run = None if record.run_id is None else runs.get(record.run_id)
        if run is None:  # a record read without its run (not from the database)
            continue
        scheme = run.pretraining_scheme
        selection = run.config.get("data_selection") or {}
        label = f"pretraining {scheme}" + (
            f", selection keep {selection.get('keep')}" if selection else ""
        )
        described.setdefault(record.family, set()).add(label)
        schemes.setdefault(record.family, set()).add(scheme)
    families = sorted({r.family for r in found})
    shown = "; ".join(
        f"{name[:_FAMILY_SHOWN]}: {' / '.join(sorted(described.get(name, set()))) or '?'}"
        for name in families
    )
    family_option = option_name("family", metavar="PREFIX")
    per_family = [schemes.get(name, set()) for name in families]
    if all(len(s) == 1 for s in per_family) and len({min(s) for s in per_family}) == len(families):
        names = ", ".join(sorted(min(s) for s in per_family))
        hint = f"{option_name('pretraining', metavar='SCHEME')} ({names}) or {family_option}"
    else:
        hint = family_option
    studies = sorted({r.study for r in found if r.study is not None})
    if len(studies) > 1:  # one study is often one family
        hint = f"{option_name('study', metavar='NAME')} ({', '.join(studies)}), {hint}"
    labels = [frozenset(described.get(name, set())) for name in families]
    if len(set(labels)) < len(families):  # the same scheme and selection: something else differs
        shown += "; encoder, input length, example caps or the task's own data files differ"
    raise ConfigError(
        f"{task} in {'+'.join(sorted(tasks))} was trained in {len(families)} model families "
        f"({shown}): a long table holds one score per task set; pick one family with {hint}"
    )


def _of_runs(records: Sequence[ScoreRecord], run_ids: set[int] | None) -> list[ScoreRecord]:
    """Return the ``records`` of the runs ``run_ids`` (None: every run's)."""
    return [r for r in records if run_ids is None or r.run_id in run_ids]


def _no_scores_in_metric(metric: str, records: Sequence[ScoreRecord]) -> None:
    """Raise a ConfigError naming ``metric`` and the metrics the matching runs' ``records``
    have (nothing when they have no scores at all: the caller says nothing matches)."""
    metrics = sorted({r.metric for r in records if r.metric})
    if metrics:
        raise ConfigError(
            f"`{option_name('metric')}` {metric!r}: the matching runs have no {metric} scores; "
            f"their metrics: {', '.join(metrics)}"
        )


def _target_has_metric(
    target: str,
    metric: str,
    *,
    storage: str | None,
    split: str | None,
    repository: Repository | None = None,
) -> None:
    """Raise a ConfigError when ``target`` has records but none scored by ``metric`` (other
    tasks' may be: the gains of ``target`` would then be fitted from nothing of its own)."""
    with _records_database(storage, repository) as database:
        every = database.score_records(split=split)
    own = [r for r in every if r.task == target]
    metrics = sorted({r.metric for r in own if r.metric})
    # (No record of any task with ``metric``: load_records names the metric and the splits.)
    if own and metric not in metrics and any(r.metric == metric for r in every):
        where = f" on {split}" if split else ""
        raise ConfigError(
            f"`{option_name('target')}` {target!r} has no {metric} scores{where}; its records "
            f"have metrics {', '.join(metrics)}: choose one with "
            f"{option_name('metric', metavar='NAME')}"
        )


def _no_records_named(
    every: Sequence[ScoreRecord], *, split: str | None, metric: str | None
) -> None:
    """Raise a ConfigError naming the ``--split`` / ``--metric`` that matched no record, and
    what the records have (nothing when the database has no records at all)."""
    if not every:
        return
    asked = " and ".join(
        f"{option_name(keyword)} {value!r}"
        for keyword, value in (("split", split), ("metric", metric))
        if value
    )
    splits = ", ".join(sorted({r.split for r in every}))
    metrics = ", ".join(sorted({r.metric for r in every if r.metric}))
    raise ConfigError(
        f"no score records with {asked}; the records have splits {splits} and metrics {metrics}"
    )


def _objective(
    records: Sequence[ScoreRecord], specs: Mapping[str, Mapping[str, Any]]
) -> tuple[str, str | None]:
    """Return the metric (and split, when the studies agree on one) that ``records`` are scored by.

    A run is scored on every metric of its tasks (accuracy, precision, recall, F1, per class):
    averaging them as evidence mixes scales and counts a run once per metric, so the default
    is what the studies optimised.
    """
    metrics = sorted({r.metric for r in records})
    objectives = _study_objectives(records, specs)
    named = sorted({m for m, _ in objectives.values()})
    if len(named) > 1:
        listed = "; ".join(f"{s!r} optimises {m} on {sp}" for s, (m, sp) in objectives.items())
        raise ConfigError(
            f"the records come from studies with different objective metrics ({listed}); "
            f"choose one with {option_name('metric', metavar='NAME')}, or mix them with "
            f"{option_name('metric', ALL_METRICS)}"
        )
    if named:
        splits = {sp for _, sp in objectives.values() if sp}
        return named[0], (next(iter(splits)) if len(splits) == 1 else None)
    if len(metrics) == 1:
        return metrics[0], None
    raise ConfigError(
        f"the records have metrics {metrics} and no study objective names one; choose one "
        f"with {option_name('metric', metavar='NAME')}, or mix them with "
        f"{option_name('metric', ALL_METRICS)}"
    )


def _study_objectives(
    records: Sequence[ScoreRecord], specs: Mapping[str, Mapping[str, Any]]
) -> dict[str, tuple[str, str | None]]:
    """Return each study's objective (metric, split) that its ``records`` are read in by
    default; a study naming no metric whose records lack its target's primary one has none."""
    objectives: dict[str, tuple[str, str | None]] = {}
    for study in sorted({r.study for r in records if r.study}):
        spec = specs.get(study, {})
        objective = spec.get("objective") or {}
        if objective.get("metric"):
            objectives[study] = (str(objective["metric"]), objective.get("split"))
            continue
        # No metric named: the study optimised its target's primary metric (the trainer's
        # default), kept when the study's records have it (a benchmark table's do not).
        primary = _primary_metric(spec)
        if primary is not None and any(r.study == study and r.metric == primary for r in records):
            objectives[study] = (primary, objective.get("split"))
    return objectives


def _target_objectives_differ(target: str, *, storage: str | None, split: str | None) -> None:
    """Raise a ConfigError when the studies with records of ``target`` read them in different
    metrics by default, naming those studies (not other targets') and each one's metric."""
    with _records_database(storage) as database:
        own = [r for r in database.score_records(split=split) if r.task == target]
        specs = database.study_specs()
    objectives = _study_objectives(own, specs)
    read_in: dict[str, str] = {}
    said = []
    for study in sorted({r.study for r in own if r.study}):
        if study in objectives:
            metric, on = objectives[study]
            read_in[study] = metric
            said.append(f"{study!r} optimises {metric}" + (f" on {on}" if on else ""))
            continue
        # No objective metric of its own (a benchmark table's `loss`): its records' metric.
        metrics = sorted({r.metric for r in own if r.study == study and r.metric})
        read_in[study] = " and ".join(metrics)
        said.append(f"{study!r} names none, its records have {read_in[study]}")
    if len(set(read_in.values())) > 1:
        raise ConfigError(
            f"`{option_name('target')}` {target!r} is scored by studies with different "
            f"objective metrics ({'; '.join(said)}); choose one with "
            f"{option_name('metric', metavar='NAME')}, or mix them with "
            f"{option_name('metric', ALL_METRICS)}"
        )


def _primary_metric(spec: Mapping[str, Any]) -> str | None:
    """Return the primary metric of the stored ``spec``'s target task (what its trainer
    optimises without ``objective.metric``), or None when the target cannot be resolved: the
    task of a runner that trains nothing (``runner: tabular``'s published table), a name the
    catalog does not know."""
    from taskgraph.errors import TaskgraphError
    from taskgraph.registry import RUNNERS
    from taskgraph.tasks import define_task, get_task

    target = spec.get("target")
    runner = spec.get("runner")
    runner_name = runner.get("name") if isinstance(runner, Mapping) else runner
    try:
        trains = RUNNERS.get(runner_name).capabilities.trains if runner_name else True
    except TaskgraphError:  # a plug-in runner not loaded here: its target may be a catalog task
        trains = True
    if not isinstance(target, str) or not trains:
        return None
    candidates = spec.get("candidates") or ()
    inline = [t for t in (*candidates, *(spec.get("tasks") or ())) if isinstance(t, Mapping)]
    try:
        definition = next((t for t in inline if t.get("name") == target), None)
        if definition is None:
            return get_task(target).primary_metric
        # How the task is scored, not where its files are (they need not be here any more).
        return define_task(
            target,
            format=definition["format"],
            type=definition["type"],
            label_field=definition["label_field"],
            files={"train": "train"},
            metrics=definition.get("metrics"),
            reader_options=definition.get("reader_options"),
        ).primary_metric
    except (TaskgraphError, KeyError):  # a definition this version cannot read
        return None


def lookahead_matrices(
    storage: str | None, table: PathLike | None, *, repository: Repository | None = None
) -> list[Any]:
    """Return the lookahead-affinity matrices stored in the records database (none for a
    table); ``repository``: an open database to read instead of opening ``storage``."""
    if table is not None:
        return []
    with _records_database(storage, repository) as database:
        return [stored.matrix for stored in database.lookahead_matrices()]


def fit_records(
    method: str,
    records: list[ScoreRecord],
    *,
    lookahead: list[Any],
    embeddings: Mapping[str, np.ndarray],
    hyperprior: bool = True,
    pooling: str = "mean",
    matrices_alone: bool = False,
) -> AffinityEstimator:
    """Return estimator ``method`` fitted on ``records`` (with lookahead matrices and task
    embeddings where the method uses them; ``hyperprior``: setfn's MAP-II variances;
    ``pooling``: how setfn combines a set's members, ``mean``, ``sum`` or ``auto``).

    Raises :class:`ConfigError` when there are no records, or none with a single-task
    baseline of its family to measure a gain against; with ``matrices_alone`` (a ranking,
    ``affinity top``) the ``lookahead`` estimator is fitted on its matrices without any
    (uncalibrated: its ``calibrated`` is False).
    """
    if pooling not in POOLINGS:
        raise ConfigError(
            f"`{option_name('pooling')}` must be mean, sum or auto, but got {pooling!r}"
        )
    # The lookahead estimator ranks from the matrices alone (a screen, no trained trial):
    # uncalibrated, which `affinity top` says.
    alone = matrices_alone and method == "lookahead" and bool(lookahead)
    if not records and not alone:
        raise ConfigError(
            "no score records to fit on (run a study, or pass "
            f"{option_name('table', metavar='FILE')})"
        )
    if method == "lookahead" and not lookahead:
        raise ConfigError(
            "the lookahead estimator needs lookahead-affinity matrices, and there are none: "
            "record them with `training.lookahead_every` in a study or with `taskgraph study "
            f"screen` (a {option_name('table')} holds none)"
        )
    if method == "textemb" and not embeddings:
        raise ConfigError(
            "the textemb estimator needs task text embeddings: add "
            f"{option_name('text_embeddings', True)}"
        )
    options: dict[str, Any] = {}
    if method in ("setfn", "lookahead") and lookahead:
        options["lookahead"] = lookahead
    if method in ("setfn", "textemb") and embeddings:
        options["task_embeddings"] = embeddings
    if method == "setfn":
        options["pooling"] = pooling
    if method == "setfn" and hyperprior:
        # Predictions shown to a user: with one target and a handful of gains, plain evidence
        # maximisation puts everything into noise (every set predicted alike) or fits an
        # overconfident additive model; the weak prior avoids both (docs/affinity.md).
        options["hyperprior"] = SMALL_DATA_HYPERPRIOR
    estimator = make_estimator(method, **options)
    # Not estimator.fit(records), which raises for a task whose single-task score is 0: its
    # relative gains are left out (GainTable.zero_baselines, noted) and the others' kept.
    estimator.fit_gains(
        compute_gains(
            records, kind=estimator.gain_kind, split=estimator.split, metric=estimator.metric,
            zero_baselines="leave_out",
        )
    )  # fmt: skip
    if not estimator.table.gains and method != "textemb" and not alone:
        raise ConfigError(f"no gains to fit: {estimator.table.why_empty()}")
    return estimator


def _zero_baseline_notes(estimator: AffinityEstimator, tasks: Sequence[str]) -> list[str]:
    """Return a note per task of ``tasks`` whose relative gains were left out for a zero baseline."""
    where: dict[str, set[str]] = {}
    for _, task, split_name, metric_name in estimator.table.zero_baselines:
        if task in tasks:
            where.setdefault(task, set()).add(f"{metric_name or 'score'} on {split_name}")
    notes = []
    for task, scores in sorted(where.items()):
        notes.append(
            f"{task!r} has a single-task score of 0 ({', '.join(sorted(scores))}), so its gains "
            "relative to it are undefined and left out; the other targets' gains are unaffected"
        )
    return notes


def _mixed_settings_notes(estimator: AffinityEstimator, tasks: Sequence[str]) -> list[str]:
    """Return a note per task of ``tasks`` with measured gains whose runs and single-task
    baseline were trained with different settings (``GainTable.mixed_settings``)."""
    sets: dict[str, list[str]] = {}
    names: dict[str, set[str]] = {}
    for _, task, auxiliaries, differing in estimator.table.mixed_settings:
        if task in tasks:
            sets.setdefault(task, []).append("+".join(sorted(auxiliaries)))
            names.setdefault(task, set()).update(differing)
    total = {
        task: len({g.auxiliaries for g in estimator.table.gains if g.target == task})
        for task in sets
    }
    if len(sets) > 1:
        count = sum(len(set(mixed)) for mixed in sets.values())
        every = sorted(set().union(*names.values()))
        return [
            f"{count} of the {sum(total.values())} measured gains of {len(sets)} targets "
            f"({', '.join(repr(t) for t in sorted(sets))}) set runs against a single-task "
            f"baseline trained with other settings ({', '.join(every)}; the studies "
            "searched them, or several studies were pooled), so each holds those settings' "
            "effect besides the transfer; `affinity top --target NAME` lists them; fix the "
            "settings in the spec (or train each target alone with each) to measure the "
            "transfer alone"
        ]
    notes = []
    for task, mixed in sorted(sets.items()):
        shown = sorted(set(mixed))
        notes.append(
            f"{len(shown)} of the {total[task]} measured gains of {task!r} set runs against a "
            f"single-task baseline trained with other settings ({', '.join(sorted(names[task]))}"
            "; the study searched them, or several studies were pooled), so each holds those "
            "settings' effect besides the transfer: "
            f"{', '.join(shown[:5])}{', ...' if len(shown) > 5 else ''}; fix them in the spec "
            "(or train the target alone with each) to measure the transfer alone"
        )
    return notes


def _without_baseline(estimator: AffinityEstimator, records: Sequence[ScoreRecord]) -> list[str]:
    """Return the targets of ``records`` that the fitted ``estimator`` has no baseline of, sorted."""
    return sorted({r.task for r in records} - set(estimator.targets))


def _without_baseline_note(tasks: Sequence[str], consequence: str) -> str:
    """Return the note that ``tasks`` have records but no single-task baseline, so ``consequence``."""
    return (
        "targets without a single-task baseline (a task set of the target alone) have no "
        f"measured gains, so {consequence}: {', '.join(repr(t) for t in tasks)}; add their "
        "single-task scores to include them"
    )


def _families_note(n_families: int, compared: str) -> str:
    """Return the note that the records come from ``n_families`` model families, and how
    ``compared`` their scores are (``affinity top`` and ``affinity graph`` say it alike)."""
    return f"the records come from {n_families} model families; {compared}"


#: the estimators that read only a target's gains from single auxiliary tasks (pairs)
_PAIR_METHODS = ("pairwise", "hoa")
#: the estimators whose prediction for a set nothing backs is a placeholder prior
_EVIDENCE_METHODS = (*_PAIR_METHODS, "lookahead")


def _within(records: Sequence[ScoreRecord], tasks: Sequence[str]) -> list[ScoreRecord]:
    return [r for r in records if r.task_set <= set(tasks) and math.isfinite(r.value)]


def score_family(
    records: Sequence[ScoreRecord], tasks: Sequence[str]
) -> tuple[str | None, list[str]]:
    """Return the model family whose measured scores of ``tasks`` are compared, and every family.

    Scores of different families (a small and a large encoder) are not comparable: a mean
    over them is a score no model reached.  The family chosen has a single-task record of
    every task and, among those, the most records of task sets within ``tasks`` (ties by
    name); None when no family has every baseline.
    """
    family, counts = _score_family(_within(records, tasks), tasks)
    return family, sorted(counts)


def _score_family(
    within: Sequence[ScoreRecord], tasks: Sequence[str]
) -> tuple[str | None, dict[str, int]]:
    """Return :func:`score_family`'s family and each family's count of records, over records
    already within ``tasks`` (:func:`_within`)."""
    counts: dict[str, int] = {}
    baselines: dict[str, set[str]] = {}
    for record in within:
        counts[record.family] = counts.get(record.family, 0) + 1
        if record.is_baseline:
            baselines.setdefault(record.family, set()).add(record.task)
    complete = [f for f in counts if baselines.get(f, set()) >= set(tasks)]
    chosen = min(complete, key=lambda f: (-counts[f], f)) if complete else None
    return chosen, counts


def measured_scores(
    records: list[ScoreRecord], tasks: Sequence[str], *, family: str | None = None
) -> tuple[dict[str, float], dict[str, bool], dict[frozenset[str], dict[str, float]]]:
    """Return baselines, directions and measured per-task scores of the task sets within ``tasks``.

    Scores of one model family: ``family``, else :func:`score_family`'s.  A task set with
    records of only some of its members holds those members' scores (partly measured).
    """
    within = _within(records, tasks)
    chosen, counts = _score_family(within, tasks)
    return _measured_scores(
        within, tasks, family=chosen if family is None else family, counts=counts
    )


def _measured_scores(
    within: Sequence[ScoreRecord],
    tasks: Sequence[str],
    *,
    family: str | None,
    counts: Mapping[str, int],
) -> tuple[dict[str, float], dict[str, bool], dict[frozenset[str], dict[str, float]]]:
    """Return :func:`measured_scores` over records already within ``tasks`` (:func:`_within`),
    of ``family`` (None: :func:`_score_family` found none), ``counts`` being its counts."""
    if family is None and len(counts) > 1:
        largest = min(sorted(counts), key=lambda f: (-counts[f], f))
        missing = sorted(
            set(tasks) - {r.task for r in within if r.family == largest and r.is_baseline}
        )
        raise ConfigError(
            f"no single-task score for {missing} in model family {largest} (the one with the "
            f"most records of {len(counts)}), and no family has every task's: a grouping "
            "compares scores within one family"
        )
    values: dict[frozenset[str], dict[str, list[float]]] = {}
    higher: dict[str, bool] = {}
    for record in within:
        if family is None or record.family == family:
            values.setdefault(record.task_set, {}).setdefault(record.task, []).append(record.value)
            higher[record.task] = record.higher_is_better
    # Every member with records, also of a set whose other members have none (partly
    # measured: predicted_network_scores predicts only those others).
    measured = {n: {t: float(np.mean(v)) for t, v in per.items()} for n, per in values.items()}
    baselines = {t: measured[frozenset({t})][t] for t in tasks if frozenset({t}) in measured}
    missing = [t for t in tasks if t not in baselines]
    if missing:
        raise ConfigError(
            f"no single-task score for {missing}: groupings compare every task with its baseline"
        )
    return baselines, higher, measured


def fit_estimator(
    *,
    method: str = "setfn",
    storage: str | None = None,
    table: PathLike | None = None,
    split: str | None = None,
    metric: str | None = None,
    text_embeddings: bool = False,
    hyperprior: bool | None = None,
    pooling: str | None = None,
    repository: Repository | None = None,
    matrices_alone: bool = False,
) -> tuple[AffinityEstimator, list[ScoreRecord]]:
    """Return the estimator ``method`` fitted on the records, and those records.

    ``text_embeddings`` adds TextEmb vectors of catalog tasks (loads MiniLM with torch); a
    ConfigError when no task of the records is one.
    ``hyperprior`` (setfn; default True) fits its variances with a weak prior; ``pooling``
    (setfn; default ``mean``) is how a set's members combine: either given with another
    ``method``, which would ignore it, is refused.  The records database is
    opened once (or ``repository``, an open one, is read).  ``matrices_alone``: see
    :func:`fit_records` (a ranking from lookahead matrices without score records).  Raises
    :class:`~taskgraph.errors.UnknownNameError` for an unknown method (before any work) and
    :class:`~taskgraph.errors.ConfigError` when there is nothing to fit, for a setfn option
    with another method, or for both ``storage`` and ``table``.
    """
    ESTIMATORS.get(registered_name(method, "method"))  # unknown: one line listing the known ones
    prior, pool = _setfn_options(method, hyperprior, pooling)
    flag(text_embeddings, "text_embeddings")
    _one_source(storage, table)
    if table is None and repository is None:
        with _records_database(storage) as database:
            return fit_estimator(
                method=method, storage=storage, split=split, metric=metric,
                text_embeddings=text_embeddings, hyperprior=hyperprior, pooling=pooling, repository=database,
                matrices_alone=matrices_alone,
            )  # fmt: skip
    records = load_records(
        storage=storage, table=table, split=split, metric=metric, repository=repository
    )
    lookahead = (
        lookahead_matrices(storage, table, repository=repository)
        if method in ("setfn", "lookahead")
        else []
    )
    embeddings: dict[str, np.ndarray] = {}
    if text_embeddings:
        from taskgraph.models.task_embeddings import task_text_embeddings

        tasks = sorted({t for r in records for t in r.task_set})
        embeddings = task_text_embeddings(tasks)
        if not embeddings:
            # Refused for setfn too: fitted without the embeddings asked for, its predictions
            # would silently be what they are without the option.
            shown = ", ".join(tasks[:5]) + (", ..." if len(tasks) > 5 else "")
            refusal = (
                f"{option_name('method', 'textemb')} has nothing to use"
                if method == "textemb"
                else f"leave it out to fit {option_name('method', method)} on the gains alone"
            )
            raise ConfigError(
                f"{option_name('text_embeddings', True)} found no task text: it embeds the "
                "training text of catalog tasks whose data is in the data directory, and none "
                f"of the records' {len(tasks)} tasks ({shown}) is one; {refusal}"
            )
    estimator = fit_records(
        method,
        records,
        lookahead=lookahead,
        embeddings=embeddings,
        hyperprior=prior,
        pooling=pool,
        matrices_alone=matrices_alone,
    )
    return estimator, records


def _known_tasks(
    option: str, asked: Sequence[str], *, storage: str | None, table: PathLike | None
) -> None:
    """Raise a ConfigError naming the tasks of ``asked`` that no record (of any metric or
    split) and no lookahead matrix of the source holds; nothing when the source cannot be
    read (its own error is raised by the caller)."""
    try:
        if table is not None:
            known = {t for r in load_records(table=table) for t in r.task_set}
        else:
            with _records_database(storage) as database:
                known = {t for r in database.score_records() for t in r.task_set}
                known |= {t for m in database.lookahead_matrices() for t in m.matrix.tasks}
    except ConfigError:
        return
    unknown = [t for t in dict.fromkeys(asked) if t not in known]
    if not unknown or not known:
        return
    shown = ", ".join(repr(t) for t in unknown)
    raise ConfigError(
        f"`{option}` {shown}: no record holds {'it' if len(unknown) == 1 else 'them'}; known "
        f"tasks: {', '.join(sorted(known))}"
    )


def _setfn_options(method: str, hyperprior: bool | None, pooling: str | None) -> tuple[bool, str]:
    """Return setfn's (hyperprior, pooling), its defaults for None (not given); either given to
    another estimator, which would ignore it, is refused."""
    if hyperprior is not None:
        flag(hyperprior, "hyperprior")
    if pooling is not None:
        registered_name(pooling, "pooling")
    if method != "setfn":
        given = [spelled for spelled, value in (
            (option_name("pooling"), pooling),
            (option_name("hyperprior", hyperprior,
                         flag=None if hyperprior else "--no-hyperprior"), hyperprior),
        ) if value is not None]  # fmt: skip
        if given:
            raise ConfigError(
                f"`{given[0]}` is an option of setfn, but {option_name('method')} is {method!r}"
            )
    return (True if hyperprior is None else hyperprior), (pooling or "mean")


def _one_source(storage: str | None, table: PathLike | None) -> None:
    # A table is read instead of any database: a storage URL beside it would be ignored.
    if storage is not None and table is not None:
        raise ConfigError(
            f"`storage` and `table` are two sources of records, but got both ({table}): pass one"
        )


def scored_by(records: Sequence[ScoreRecord]) -> str:
    """Return which scores the gains compare, e.g. ``f1 on dev``."""
    metrics = sorted({r.metric for r in records if r.metric}) or ["score"]
    splits = sorted({r.split for r in records})
    return f"{', '.join(metrics)} on {', '.join(splits)}"


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
    try:
        estimator, records = fit_estimator(
            method=method,
            storage=storage,
            table=table,
            split=split,
            metric=metric,
            text_embeddings=text_embeddings,
            hyperprior=hyperprior,
            pooling=pooling,
            matrices_alone=True,  # lookahead ranks from a screen alone (uncalibrated, noted)
        )
    except StorageError:
        raise  # an unknown study or a bad URL (also a ConfigError): nothing to add to it
    except ConfigError:
        # A name no record or matrix holds is the first thing wrong, whatever the fit found.
        _known_tasks(option_name("target"), [target], storage=storage, table=table)
        if named:
            _target_has_metric(target, str(metric), storage=storage, split=split)
        if table is None and metric is None:
            _target_objectives_differ(target, storage=storage, split=split)
        raise
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
        left_out = compute_gains(
            [r for r in records if r.task == target], zero_baselines="leave_out"
        ).n_without_baseline
        if left_out:
            notes.append(
                f"{left_out} of {target!r}'s records are of a model family without a "
                f"single-task baseline of {target!r} (another encoder, input length, cap of "
                "the target, pretraining or data selection) and are left out of its gains: "
                "train the target alone in that family to use them"
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
    if table is not None:
        estimator, records = fit_estimator(
            method=method, table=table, split=split, metric=metric,
            text_embeddings=text_embeddings, hyperprior=hyperprior, pooling=pooling,
        )  # fmt: skip
        edges = graph_edges(_graph_of(estimator))
        return {
            **estimator.describe(),
            "records": len(records),
            "edges": len(edges),
            "saved": False,
        }
    with _records_database(storage) as database:  # one connection: read, fit, save
        estimator, records = fit_estimator(
            method=method, storage=storage, split=split, metric=metric,
            text_embeddings=text_embeddings, hyperprior=hyperprior, pooling=pooling, repository=database,
        )  # fmt: skip
        edges = graph_edges(_graph_of(estimator))
        predicted = gain_key("predicted", estimator.gain_kind)
        # The stored edge keeps its columns: gain (the predicted one), std, n_evidence.
        database.save_affinity_edges(
            [{"source": e["source"], "target": e["target"], "gain": e[predicted],
              "std": e[f"{predicted}_std"], "n_evidence": e["evidence_runs"]}
             for e in edges],
            method=method,
        )  # fmt: skip
    saved = True
    return {**estimator.describe(), "records": len(records), "edges": len(edges), "saved": saved}


@dataclass(frozen=True)
class GroupingReport:
    """The grouping chosen under a budget, the scores it was chosen from, and caveats.

    ``scores``: the predicted (or measured) per-task scores of each candidate network;
    ``measured``: the measured ones by network, of one model family (:func:`score_family`),
    a network with records of only some members holding those members' (partly measured).
    """

    grouping: Grouping
    scores: dict[frozenset[str], dict[str, float]]
    measured: dict[frozenset[str], dict[str, float]]
    #: caveats to print beside the grouping (which family's scores, tasks left out)
    notes: tuple[str, ...] = ()

    def measured_members(self, network: frozenset[str]) -> list[str]:
        """Return the members of ``network`` with a measured score, sorted."""
        return sorted(set(network) & set(self.measured.get(network, {})))

    @property
    def predicted_tasks(self) -> list[str]:
        """Return the tasks whose score in the network serving them is predicted, sorted:
        ``grouping.total`` rests on predictions unless this is empty."""
        assignment = self.grouping.assignment
        return sorted(t for t, n in assignment.items() if t not in self.measured.get(n, {}))

    def to_dict(self) -> dict[str, Any]:
        """Return what ``affinity groups --json`` prints: :meth:`Grouping.to_dict` (networks as
        sorted lists), ``scores`` (each task's score in the network serving it),
        ``network_details`` (per network of ``networks``: ``network``, ``serves``, ``measured``
        (every member's score measured), ``partly`` (some but not all) and ``predicted`` (the
        members whose score is predicted)), ``total_measured`` (``total`` is a sum of measured
        scores only; else ``predicted_tasks`` names the tasks whose score is predicted) and
        ``notes``."""
        grouping = self.grouping
        details = []
        for network in grouping.networks:
            known = self.measured_members(network)
            details.append(
                {
                    "network": sorted(network),
                    "serves": sorted(t for t, n in grouping.assignment.items() if n == network),
                    "measured": len(known) == len(network),
                    "partly": 0 < len(known) < len(network),
                    "predicted": sorted(set(network) - set(known)),
                }
            )
        predicted = self.predicted_tasks
        return {
            **grouping.to_dict(),
            "scores": {
                t: self.scores[grouping.assignment[t]][t] for t in sorted(grouping.assignment)
            },
            "network_details": details,
            "total_measured": not predicted,
            "predicted_tasks": predicted,
            "notes": list(self.notes),
        }


def groupings(
    budget: float,
    *,
    tasks: Sequence[str] | None = None,
    storage: str | None = None,
    table: PathLike | None = None,
    max_size: int | None = None,
    method: str = "setfn",
    split: str | None = None,
    metric: str | None = None,
    text_embeddings: bool = False,
    hyperprior: bool | None = None,
    pooling: str | None = None,
) -> tuple[
    Grouping, dict[frozenset[str], dict[str, float]], dict[frozenset[str], dict[str, float]]
]:
    """Choose which tasks to train together under an inference ``budget`` (networks, each 1).

    Returns the grouping, the predicted (or measured) per-task scores of each candidate
    network, and the measured scores by network: :func:`grouping_report` (same arguments,
    same errors) without its notes.
    """
    report = grouping_report(
        budget, tasks=tasks, storage=storage, table=table, max_size=max_size, method=method,
        split=split, metric=metric, text_embeddings=text_embeddings, hyperprior=hyperprior,
        pooling=pooling,
    )  # fmt: skip
    return report.grouping, report.scores, report.measured


def grouping_report(
    budget: float,
    *,
    tasks: Sequence[str] | None = None,
    storage: str | None = None,
    table: PathLike | None = None,
    max_size: int | None = None,
    method: str = "setfn",
    split: str | None = None,
    metric: str | None = None,
    text_embeddings: bool = False,
    hyperprior: bool | None = None,
    pooling: str | None = None,
) -> GroupingReport:
    """Return the grouping of ``tasks`` under an inference ``budget`` (networks, each 1) with
    the scores it compared and notes (what ``taskgraph affinity groups`` prints).

    ``tasks`` defaults to every target with records and a baseline (a note names the others;
    an empty list is refused); ``max_size``
    to all sizes up to 10 tasks, else 3.  Measured scores and baselines are of one model family (:func:`score_family`;
    a note names it when the records hold several).  Raises :class:`ConfigError` for tasks
    without a baseline, tasks whose scores go in different directions, or a budget that
    networks of ``max_size`` tasks cannot cover.
    """
    budget = number(budget, "budget")
    tasks = names(tasks, "tasks")
    if tasks is not None and not tasks:
        # An empty list is not "every target": that is None.
        raise ConfigError("`tasks` names no task; pass None to group every target with records")
    if max_size is not None:
        max_size = integer(max_size, "max_size", minimum=1)
    try:
        estimator, records = fit_estimator(
            method=method,
            storage=storage,
            table=table,
            split=split,
            metric=metric,
            text_embeddings=text_embeddings,
            hyperprior=hyperprior,
            pooling=pooling,
        )
    except StorageError:
        raise
    except ConfigError:
        if tasks:  # a task no record holds is named before what the fit found
            _known_tasks(option_name("tasks"), tasks, storage=storage, table=table)
        raise
    chosen = sorted(set(tasks)) if tasks else estimator.targets
    unknown = [t for t in chosen if t not in estimator.targets]
    if unknown:
        raise ConfigError(
            f"`{option_name('tasks')}` has no baseline records for {unknown}; known targets: "
            f"{', '.join(estimator.targets)}"
        )
    # One pass over the records: the family, the scores and the note share its result.
    within = _within(records, chosen)
    family, counts = _score_family(within, chosen)
    baselines, higher, measured = _measured_scores(within, chosen, family=family, counts=counts)
    notes = _zero_baseline_notes(estimator, chosen) + _mixed_settings_notes(estimator, chosen)
    left_out = [] if tasks else _without_baseline(estimator, records)
    if left_out:
        notes.append(_without_baseline_note(left_out, "the grouping leaves them out"))
    if len(counts) > 1:
        used = counts[family] if family is not None else 0
        notes.append(
            f"the records of these tasks come from {len(counts)} model families; measured "
            f"scores and baselines are those of family {family} ({used} of {len(within)} "
            "records, the most of any family with every task's baseline): scores of different "
            "families are not comparable"
        )
    if len(set(higher.values())) > 1:
        # The grouping sums the tasks' scores: an accuracy and a loss cannot share one total.
        up = sorted(t for t in chosen if higher[t])
        down = sorted(t for t in chosen if not higher[t])
        raise ConfigError(
            f"`{option_name('tasks')}` mix higher-is-better scores {up} with lower-is-better "
            f"scores {down}; a grouping sums scores of one direction: choose tasks of one kind "
            f"with {option_name('tasks')}"
        )
    size = max_size if max_size is not None else (len(chosen) if len(chosen) <= 10 else 3)
    _check_coverage(len(chosen), budget, size, default_size=max_size is None)
    networks = candidate_task_sets(chosen, max_size=size)
    scores = predicted_network_scores(
        estimator, baselines, networks=networks, higher_is_better=higher, measured=measured
    )
    grouping = select_networks(
        scores, budget=budget, tasks=chosen, higher_is_better=all(higher.values())
    )
    report = GroupingReport(grouping=grouping, scores=scores, measured=measured)
    predicted = report.predicted_tasks
    if predicted:
        some = "" if len(predicted) == len(chosen) else f"{len(predicted)} of {len(chosen)} "
        notes.append(
            f"the total score is {'partly ' if some else ''}predicted: the scores of {some}"
            "tasks in the networks "
            f"serving them were never measured and are {method}'s predictions "
            f"({', '.join(predicted)})"
        )
    return GroupingReport(grouping=grouping, scores=scores, measured=measured, notes=tuple(notes))


def _check_coverage(n_tasks: int, budget: float, size: int, *, default_size: bool) -> None:
    """Raise a ConfigError when ``budget`` networks of at most ``size`` tasks cannot serve
    ``n_tasks`` tasks, naming the option that limits them."""
    networks = affordable_networks(budget)  # each network costs 1 (select_networks' tolerance)
    if budget <= 0 or networks * size >= n_tasks:  # a budget <= 0: select_networks says so
        return
    if networks < 1:
        raise ConfigError(
            f"`{option_name('budget')}` {budget:.15g} pays for no network (each costs 1)"
        )
    max_size, budget_name = option_name("max_size"), option_name("budget")
    why = f"{max_size} defaults to 3 above 10 tasks" if default_size else max_size
    raise ConfigError(
        f"no grouping of {n_tasks} tasks fits budget {budget:g}: {networks} networks of at most "
        f"{size} tasks ({why}) serve at most {networks * size}; raise {max_size} to "
        f"{math.ceil(n_tasks / networks)} or {budget_name} to {math.ceil(n_tasks / size)}"
    )


@dataclass(frozen=True)
class GraphReport:
    """The affinity graph (a networkx ``DiGraph``) and caveats to print beside it."""

    graph: Any
    notes: tuple[str, ...] = ()


def affinity_graph(
    *,
    storage: str | None = None,
    table: PathLike | None = None,
    min_evidence: int = 0,
    method: str = "setfn",
    split: str | None = None,
    metric: str | None = None,
    text_embeddings: bool = False,
    hyperprior: bool | None = None,
    pooling: str | None = None,
) -> Any:
    """Return the affinity graph (a networkx ``DiGraph``; edge s -> t: gain of t from s).

    Write it with :func:`taskgraph.affinity.graph.write_graph` (GraphML, JSON, DOT, PNG).
    ``min_evidence`` leaves out edges backed by fewer runs.  :func:`graph_report`'s graph
    (same arguments, same errors).
    """
    return graph_report(
        storage=storage, table=table, min_evidence=min_evidence, method=method, split=split,
        metric=metric, text_embeddings=text_embeddings, hyperprior=hyperprior, pooling=pooling,
    ).graph  # fmt: skip


def graph_report(
    *,
    storage: str | None = None,
    table: PathLike | None = None,
    min_evidence: int = 0,
    method: str = "setfn",
    split: str | None = None,
    metric: str | None = None,
    text_embeddings: bool = False,
    hyperprior: bool | None = None,
    pooling: str | None = None,
) -> GraphReport:
    """Return the affinity graph with notes (what ``taskgraph affinity graph`` writes and says).

    ``min_evidence`` leaves out edges backed by fewer runs.  Node baselines are of one model
    family per task (:meth:`~taskgraph.affinity.gains.GainTable.baseline_value`; a note says so
    when the records hold several; a note names the targets without a baseline, which no edge
    points to).  Raises what :func:`fit_estimator` raises.
    """
    min_evidence = integer(min_evidence, "min_evidence", minimum=0)
    estimator, records = fit_estimator(
        method=method,
        storage=storage,
        table=table,
        split=split,
        metric=metric,
        text_embeddings=text_embeddings,
        hyperprior=hyperprior,
        pooling=pooling,
    )
    notes = _zero_baseline_notes(estimator, estimator.tasks)
    notes.extend(_mixed_settings_notes(estimator, estimator.tasks))
    left_out = _without_baseline(estimator, records)
    if left_out:
        notes.append(_without_baseline_note(left_out, "no edge points to them"))
    counts = estimator.table.family_records
    main = estimator.table.main_family()
    if len(counts) > 1 and main is not None:
        notes.append(
            _families_note(
                len(counts),
                "each node's baseline is its single-task score in one family, the one with the "
                f"most records among those with its baseline (family {main}: {counts[main]} of "
                f"{sum(counts.values())} records), as scores of different families are not "
                "comparable; the gains pool the families",
            )
        )
    graph = _graph_of(estimator, min_evidence=min_evidence)
    if estimator.gain_kind == "relative" and records:
        # The measured gain in the metric's units beside the relative one, as `top` gives it.
        absolute = compute_gains(
            records,
            kind="absolute",
            split=estimator.split,
            metric=estimator.metric,
            zero_baselines="leave_out",
        ).gains
        for source, target, data in graph.edges(data=True):
            value = measured_gain(absolute, target, {source})
            if value is not None and math.isfinite(value):
                data[gain_key("measured", "absolute")] = value
    left_out_edges = int(graph.graph.get("left_out_edges", 0))
    if left_out_edges:
        notes.append(
            f"{left_out_edges} edge{'s' if left_out_edges != 1 else ''} left out by "
            f"{option_name('min_evidence', min_evidence)} (backed by fewer runs)"
        )
    return GraphReport(graph=graph, notes=tuple(notes))
