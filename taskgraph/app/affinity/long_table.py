"""The records database as a long table (``target, task_set, split, value``).

:func:`records_long_table` is what ``taskgraph records export --format long`` writes and
``taskgraph bench --table`` reads: one seed-averaged score per task, task set and split, of
one model family per task set (the error names the families and the filter that picks one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from taskgraph.affinity.gains import seed_mean
from taskgraph.affinity.records import ScoreRecord
from taskgraph.app.affinity.objectives import ALL_METRICS, _objective
from taskgraph.app.affinity.records import _records_database
from taskgraph.app.arguments import registered_name
from taskgraph.errors import ConfigError, option_name
from taskgraph.storage.export import DATA_MARK, SHOWN_CHARS, family_parts, in_family, shown_family

if TYPE_CHECKING:
    from taskgraph.affinity.longtable import LongTable
    from taskgraph.storage.repository import Repository

__all__ = ["LONG_SPLITS", "records_long_table"]


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
    notes: list[str] | None = None,
) -> LongTable:
    """Return the records database as a long table (``target, task_set, split, value``): what
    ``taskgraph bench --table`` and ``affinity ... --table`` read.

    One row per scored task, task set and split: the mean of the complete runs' scores as
    gains take it (:func:`~taskgraph.affinity.gains.seed_mean`: each seed's runs averaged
    first, over the configurations that trained that task set, then the seeds), so the
    table's measured gains are the database's, except where a family holds baselines trained
    with several settings (``budget.baselines: per_setting``, ``ScoreRecord.settings``): the
    database measures each set against the baselines trained as it was, a long table holds
    one pooled value per cell (``notes``, a list given: a line per such cell's target is
    appended, what ``records export -f long`` prints as a warning); in ``metric`` (default:
    the studies' objective metric, as :func:`~taskgraph.app.affinity.records.load_records` chooses it).  Splits are named as
    the long format names them (``dev`` -> ``val``; splits other than dev, val and test are
    left out).  Each filter picks runs, and every score of a picked run is kept (its
    auxiliaries' too), as ``records list`` picks them: ``study``: only its runs; ``target``:
    only runs whose target is that task; ``task_set`` (``a+b`` or a list of names): only runs
    on exactly that set; ``contains``: only runs whose set contains that task;
    ``pretraining``: only runs with that pretraining scheme (``none``: without the stage);
    ``family``: only the scores of that model family (its hash or a prefix, as the error below
    lists them; ``HASH/data:VERSION``: of that family measured on that data version, a
    prefix of the scored task's dataset fingerprint, as a family whose task's data changed
    is listed).  A study, target, task or scheme no run has is refused with the known names
    (:func:`~taskgraph.app.results.record_filters.check_record_filters`).  Raises
    :class:`ConfigError` when nothing is left (a ``metric`` the matching runs lack names the
    ones they have; a ``family`` no score has lists the families), when the studies disagree
    on the metric, or when one task set was trained in several model families (encoder,
    input length, example caps, pretraining or data selection), whose scores one row cannot
    hold: the message names each family by its pretraining scheme and data selection and the filter that picks one;
    or when a task's scores were measured on several versions of its data, in one task set or
    across them (a gain would set one version against the other): the message names each as
    ``HASH/data:VERSION``, the ``family`` that picks it.
    """
    from taskgraph.affinity.longtable import LongRow, LongTable

    named_metric = None if metric is None else registered_name(metric, "metric")
    if named_metric == ALL_METRICS:
        raise ConfigError(
            f"`{option_name('metric')}` {ALL_METRICS!r} would average different metrics into one "
            "score: a long table holds one metric; name it"
        )
    from taskgraph.app.results.record_filters import check_record_filters

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
            records = _records_of_family(records, family.strip().lower(), database, study=study)
        if not records and named_metric is not None:
            _no_scores_in_metric(
                named_metric, _of_runs(database.score_records(study=study), picked)
            )
        specs = database.study_specs()
        prints = _run_fingerprints(database, records, study=study)
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
    pooled: set[str] = set()
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
        if len(tasks) == 1 and len({r.settings for r in found if r.settings}) > 1:
            pooled.add(task)
    _one_family_per_task(cells, storage, repository, study=study)
    _one_data_version(records, prints)
    if pooled and notes is not None:
        names = ", ".join(sorted(pooled))
        notes.append(
            f"the baselines of {names} were trained with several settings (budget.baselines: "
            "per_setting): the database measures each task set against the baselines trained "
            "as it was, a long table holds one baseline per cell, pooling those settings, so "
            "its measured gains differ from the database's; run `taskgraph affinity ...` on "
            "the database for them"
        )
    return LongTable(rows=rows, source=study or "")


def _run_fingerprints(
    database: Repository, records: Sequence[ScoreRecord], *, study: str | None
) -> dict[int, dict[str, str]]:
    """Return run id -> its task fingerprints (the data each task was read from), for the
    runs of ``records``."""
    ids = {r.run_id for r in records if r.run_id is not None}
    if not ids:
        return {}
    return {
        run.id: dict(run.task_fingerprints)
        for run in database.runs(study=study, status="complete")
        if run.id in ids
    }


def _one_data_version(records: Sequence[ScoreRecord], prints: dict[int, dict[str, str]]) -> None:
    """Raise a ConfigError when a task's scores were measured on several versions of its data.

    The cells of one task are compared with each other (a gain sets a task set's value
    against the task's own alone): a task set measured on a task's new data next to the
    task alone on its old data would be a gain the database refuses to measure.  The error
    names each version as ``--family`` takes it (``HASH/data:VERSION``).  Runs recorded
    without a fingerprint have no version (as ``data_families`` treats them).
    """
    versions: dict[str, dict[str, set[str]]] = {}
    for record in records:
        fingerprint = prints.get(record.run_id or -1, {}).get(record.task)
        if not fingerprint:
            continue
        base = record.family.partition(DATA_MARK)[0]
        versions.setdefault(record.task, {}).setdefault(fingerprint[:SHOWN_CHARS], set()).add(base)
    mixed = {task: found for task, found in versions.items() if len(found) > 1}
    if not mixed:
        return
    task = min(mixed)
    shown = ", ".join(
        f"{shown_family(base)}{DATA_MARK}{version}"
        for version, bases in sorted(mixed[task].items())
        for base in sorted(bases)
    )
    others = sorted(mixed)[1:]
    also = f" (and of {', '.join(others)})" if others else ""
    raise ConfigError(
        f"{task}'s scores were measured on {len(mixed[task])} versions of its data{also} "
        f"({shown}): its data files changed between the runs, and a long table setting task "
        "sets on one version against the task's scores on another would measure gains the "
        "database refuses to; pick one version with "
        f"{option_name('family', metavar='HASH/data:VERSION')}"
    )


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


def _records_of_family(
    records: Sequence[ScoreRecord], family: str, database: Repository, *, study: str | None
) -> list[ScoreRecord]:
    """Return the score ``records`` of model family ``family`` (a hash prefix, optionally with
    ``/data:`` and a data version prefix: :func:`~taskgraph.storage.export.in_family`, as the
    storage's ``_of_family`` picks runs); raise a ConfigError listing the records' families
    when none is."""
    from taskgraph.storage.repository import no_family_error

    prints: dict[int, dict[str, str]] = {}
    if family_parts(family)[1] is not None:  # the scored task's data, from its run
        ids = {r.run_id for r in records}
        prints = {
            run.id: run.task_fingerprints
            for run in database.runs(study=study, status="complete")
            if run.id in ids
        }
    kept = [
        r
        for r in records
        if in_family(family, r.family, prints.get(r.run_id or -1, {}).get(r.task))
    ]
    if records and not kept:
        raise no_family_error(family, {r.family for r in records})
    return kept


def _one_family_per_task(
    cells: dict[tuple[str, frozenset[str], str], list[ScoreRecord]],
    storage: str | None,
    repository: Repository | None,
    *,
    study: str | None,
) -> None:
    """Raise the ConfigError of :func:`_several_families` for a task whose task sets were
    trained in different model families (its data versions apart, which
    :func:`_one_data_version` names): each cell holds one family, but a gain sets a task
    set's value against the task's alone, so the table would compare two encoders, input
    lengths, caps, pretraining schemes or selections."""
    by_task: dict[str, list[ScoreRecord]] = {}
    for (task, _, _), found in cells.items():
        by_task.setdefault(task, []).extend(found)
    for task, found in sorted(by_task.items()):
        if len({r.family.partition(DATA_MARK)[0] for r in found}) > 1:
            with _records_database(storage, repository) as database:
                _several_families(task, None, found, database, study=study)


def _several_families(
    task: str,
    tasks: frozenset[str] | None,
    found: Sequence[ScoreRecord],
    database: Repository,
    *,
    study: str | None,
) -> None:
    """Raise the ConfigError of a task set whose scores ``found`` span several model families
    (``tasks`` None: the task's task sets together): each family named by its hash prefix,
    pretraining scheme and data selection, and the filter that picks one (``--pretraining``
    where the schemes tell them apart)."""
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
        f"{shown_family(name)}: {' / '.join(sorted(described.get(name, set()))) or '?'}"
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
    bases = {name: name.partition(DATA_MARK)[0] for name in families}
    if any(DATA_MARK in name for name in families):
        shown += (
            f"; a /data: version is {task}'s data (the first characters of its dataset "
            "fingerprint, the csv export's data_version): its data files changed between the "
            "runs"
        )
    labels: dict[str, frozenset[str]] = {}
    for name in families:  # the families apart from their data versions
        labels[bases[name]] = labels.get(bases[name], frozenset()) | described.get(name, set())
    if len(set(labels.values())) < len(labels):  # the same scheme and selection: else differs
        shown += "; encoder, input length, example caps or the task's own data files differ"
    if tasks is None:
        raise ConfigError(
            f"{task}'s task sets were trained in {len(families)} model families ({shown}): a "
            "long table's gains set each task set against the task alone, which would compare "
            f"the families; pick one family with {hint}"
        )
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
