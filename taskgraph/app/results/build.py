"""Building a study's results table from its stored spec and runs.

:func:`results_table` reads them from the records database, :func:`build_table` takes them as
given; both form the rows (the spec's, or one per configuration), split them by the version of
the target's data, and note what the table leaves out (see :mod:`taskgraph.app.results`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from taskgraph.app.arguments import storage_url
from taskgraph.app.results.table import ResultRow, ResultsTable, _long_csv_rows
from taskgraph.errors import ConfigError, NotFoundError, option_name
from taskgraph.storage.records import RunRecord
from taskgraph.vocabulary import task_set_key

if TYPE_CHECKING:
    from taskgraph.spec.models import StudySpec

__all__ = ["build_table", "results_table"]


def results_table(
    study: str,
    *,
    storage: str | None = None,
    metrics: Sequence[str] | None = None,
    split: str | None = None,
) -> ResultsTable:
    """Return ``study``'s results table from the records at ``storage``.

    ``storage`` defaults like every command's ``--storage``: ``TASKGRAPH_STORAGE``, then the
    local SQLite file.

    ``metrics`` are the target's metrics to show (default: the objective metric; an empty
    list is refused, a metric named twice is shown once); ``split`` the split they are read
    from (default: ``test`` where the runs have it, else the objective's split).  A split or
    metric that none of the runs has is a ConfigError listing the ones they have.  Raises
    :class:`~taskgraph.errors.NotFoundError` (as the other study functions do) when the study
    is not in the database.
    """
    from taskgraph.app.arguments import names, study_name
    from taskgraph.storage import SCREEN_MODE, open_repository

    chosen = names(metrics, "metrics")
    if chosen == []:  # an empty list is not the default (the objective metric): None is
        raise ConfigError(
            f"`{option_name('metrics')}` names no metric (got {metrics!r}): give the target's "
            "metrics, "
            "comma-separated, or leave it out for the objective metric"
        )
    study_name(study, "study")

    with open_repository(storage_url(storage), create=False) as repo:
        specs = repo.study_specs()
        if study not in specs:
            known = ", ".join(sorted(specs)) or "(none)"
            raise NotFoundError(f"no study {study!r} in {repo.url}; known studies: {known}")
        # The stored spec first: one that cannot be read is refused before the runs are
        # (which, for a study of ~10^4 runs, take most of a minute).
        spec = _stored_spec(specs[study], source=f"the stored spec of {study!r}")
        # A screen (`study screen`) is a joint run of every candidate, not a row of the table.
        runs = [r for r in repo.runs(study=study) if r.transfer_mode != SCREEN_MODE]
    return _table(study, spec, runs, metrics=chosen, split=split)


def build_table(
    study: str,
    spec_data: Mapping[str, Any],
    runs: Sequence[RunRecord],
    *,
    metrics: Sequence[str] | None = None,
    split: str | None = None,
) -> ResultsTable:
    """Return the table of ``runs`` under the stored spec ``spec_data`` (see the package docstring)."""
    spec = _stored_spec(spec_data, source=f"the stored spec of {study!r}")
    return _table(study, spec, runs, metrics=metrics, split=split)


def _table(
    study: str,
    spec: StudySpec,
    runs: Sequence[RunRecord],
    *,
    metrics: Sequence[str] | None,
    split: str | None,
) -> ResultsTable:
    """Return the table of ``runs`` under ``spec``, the study's stored spec read."""
    target = spec.target
    objective = spec.objective.metric or _primary_metric(target, runs)
    scored = [run.scores.get(target, {}) for run in runs]
    splits = sorted({s for scores in scored for s in scores})
    if split is None:
        # no scores yet (every run failed, or none ran): the objective's split, which the
        # runs are scored on, not a `test` the target may not have
        split = "test" if "test" in splits else spec.objective.split
    if splits and split not in splits:
        raise ConfigError(
            f"`{option_name('split')}` {split!r}: no run of {study!r} has scores of {target!r} "
            f"on it; they have {', '.join(splits)}"
        )
    known = sorted({m for scores in scored for m in scores.get(split, {})})
    unknown = [m for m in metrics or () if known and m not in known]
    if unknown:
        raise ConfigError(
            f"`{option_name('metrics')}`: no run of {study!r} has {target} "
            f"{', '.join(unknown)} on {split}; its metrics there: {', '.join(known)}"
        )
    notes: list[str] = []
    rows = _by_data_version(_rows_of(spec, runs, notes), runs, target)
    latest = next(
        (row.data_version for row in rows if row.data_version and not row.earlier_data), None
    )
    if latest is not None:
        versions = len({row.data_version for row in rows if row.runs})
        notes.append(
            f"The runs trained {target} on {versions} versions of its data (a data file "
            f"changed between runs; `records export -f json` gives each run's "
            f'`task_fingerprints`): rows marked "earlier data" ran on an earlier one than '
            f"the latest ({latest}); a Δ compares runs on one version only, and the long CSV "
            "keeps the latest version's rows."
        )
    reference = rows[0].name if rows else None
    for row in rows:
        # One data version: a row without a reference run has an empty Δ, as ever.
        if (
            row.data_version is not None
            and row.name != reference
            and row.complete
            and not any(
                r.name == reference and r.data_version == row.data_version and r.complete
                for r in rows
            )
        ):
            notes.append(
                f"Row {row.title} has no Δ: {reference} has no complete run on its version "
                f"({row.data_version}) of {target}'s data, and a difference never compares "
                "two versions."
            )
    kept = _long_csv_rows(rows)
    for row in rows:
        # What long_rows leaves out: a row with complete runs whose task set another row has.
        first = kept.get(task_set_key(row.task_set))
        if first is not None and first is not row and row.complete and not row.earlier_data:
            notes.append(
                f"Row {row.title} has the task set of {first.title}: the long CSV (one score "
                f"per task set) keeps {first.title}."
            )
    return ResultsTable(
        study=study,
        target=target,
        objective_metric=objective,
        metrics=tuple(metrics or (objective,)),
        split=split,
        rows=tuple(rows),
        notes=tuple(notes),
    )


def _stored_spec(spec_data: Mapping[str, Any], *, source: str) -> StudySpec:
    """Return the stored ``spec_data`` validated for reading its records, not for running it.

    A table reads no runner setting, so a runner this process has not registered (a plug-in
    that is not loaded, or no longer installed) is validated as ``local``: the records of a
    plug-in's study are read without importing it.  Anything else wrong with the stored spec
    is the error :func:`~taskgraph.spec.spec_from_dict` gives.
    """
    from taskgraph.registry import RUNNERS
    from taskgraph.spec import spec_from_dict

    data = dict(spec_data)
    runner = data.get("runner")
    name = runner.get("name") if isinstance(runner, Mapping) else runner
    # names(), not `in`: a lookup that misses would load (and could fail on) the plug-ins.
    if isinstance(name, str) and name not in RUNNERS.names():
        data["runner"] = {"name": "local"}
    return spec_from_dict(data, source=source)


def _primary_metric(target: str, runs: Sequence[RunRecord]) -> str:
    from taskgraph.tasks import get_task

    try:
        return get_task(target).primary_metric
    except Exception:  # an inline or unknown task: the first metric its runs report
        for run in runs:
            for metrics in run.scores.get(target, {}).values():
                return sorted(metrics)[0]
    raise ConfigError(f"cannot tell the objective metric of target {target!r}")


def _rows_of(spec: Any, runs: Sequence[RunRecord], notes: list[str]) -> list[ResultRow]:
    if not spec.rows:
        groups: dict[tuple[str, str], list[RunRecord]] = {}
        for run in runs:
            groups.setdefault((run.task_set_key, run.model_config_hash), []).append(run)
        names: dict[str, int] = {}
        rows = []
        for group in groups.values():
            auxiliaries = [t for t in group[0].task_set if t != spec.target]
            name = "+".join(auxiliaries) or "alone"
            names[name] = names.get(name, 0) + 1
            if names[name] > 1:
                name = f"{name} ({names[name]})"
            rows.append(ResultRow(name=name, task_set=group[0].task_set, runs=tuple(group)))
        return rows
    from taskgraph.search.space import SearchSpace

    space = SearchSpace(spec=spec)
    wanted: dict[tuple[str, str], str] = {}
    rows_by_name: dict[str, ResultRow] = {}
    for row in spec.rows:
        config = space.row_config(row)
        # Two rows of one configuration (a spec stored before `study validate` refused them):
        # their runs cannot be told apart, so they are the first row's.
        first = wanted.setdefault((config.task_set_key, config.model_config_hash()), row.name)
        if first != row.name:
            notes.append(
                f"Row {row.name} trains the same configuration as {first}: its runs are shown "
                f"under {first}."
            )
        rows_by_name[row.name] = ResultRow(name=row.name, task_set=tuple(config.task_set))
    members: dict[str, list[RunRecord]] = {name: [] for name in rows_by_name}
    others = 0
    for run in runs:
        owner = wanted.get((run.task_set_key, run.model_config_hash))
        if owner is None:
            others += 1
        else:
            members[owner].append(run)
    if others:
        notes.append(f"{others} runs of the study match none of its rows and are not shown.")
    return [
        ResultRow(name=row.name, task_set=row.task_set, runs=tuple(members[row.name]))
        for row in rows_by_name.values()
    ]


def _by_data_version(
    rows: Sequence[ResultRow], runs: Sequence[RunRecord], target: str
) -> list[ResultRow]:
    """Return ``rows`` with each row's runs split by the version of ``target``'s data they
    trained on, where ``runs`` are on several (else ``rows`` as they are).

    A run's version is its recorded dataset fingerprint of the target, labelled as the
    affinity records label a data version (:func:`data_families`).  Each row keeps the
    latest version's runs (that of the latest complete run; of the latest run where none is
    complete) under its name, followed by a row
    per earlier version (latest first) marked ``earlier_data``; a row without runs is of the
    latest version.
    """
    from taskgraph.storage.score_reads import data_families

    labels = data_families((target, "", run.task_fingerprints.get(target)) for run in runs)
    if not labels:
        return list(rows)

    def version(run: RunRecord) -> str:
        return labels[(target, "", run.task_fingerprints.get(target))].lstrip("/")

    # The latest complete run's version: a failed run on new data (no scores) would make
    # every scored row an earlier version's.
    complete = [run for run in runs if run.status == "complete"] or list(runs)
    latest = version(max(complete, key=lambda run: run.id))
    out: list[ResultRow] = []
    for row in rows:
        groups: dict[str, list[RunRecord]] = {}
        for run in row.runs:
            groups.setdefault(version(run), []).append(run)
        order = sorted(
            groups,
            key=lambda v: (v != latest, -max(run.id for run in groups[v])),
        )
        for v in order or [latest]:
            out.append(
                ResultRow(
                    name=row.name,
                    task_set=row.task_set,
                    runs=tuple(groups.get(v, ())),
                    data_version=v,
                    earlier_data=v != latest,
                )
            )
    return out
