"""``taskgraph records list`` and ``records studies``: the runs, and the studies, of a database."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from taskgraph.cli.options import CsvOption, JsonOption, StorageOption
from taskgraph.cli.output import emit_rows, print_line
from taskgraph.cli.records._common import (
    NO_MATCH,
    ContainsOption,
    FamilyOption,
    ModelOption,
    PretrainingOption,
    SelectionOption,
    StatusOption,
    StudyOption,
    TargetOption,
    TaskSetOption,
    _filtered,
)
from taskgraph.errors import ConfigError
from taskgraph.storage import RunRecord, open_repository, resolve_storage_url
from taskgraph.storage.repository import check_run_filters

_STATUSES = ("complete", "pruned", "failed")
#: the largest `records list --limit`: a SQL BIGINT, the most a database takes as a LIMIT
_MAX_LIMIT = 2**63 - 1
_SELECTION = {"on": True, "off": False}
_LIST_COLUMNS = (
    "id",
    "study",
    "trial_number",
    "target",
    "task_set",
    "seed",
    "status",
    "objective",
    "pretraining",
    "cost_seconds",
    "finished_at",
)


def _list_row(run: RunRecord, *, table: bool = False) -> dict[str, Any]:
    """Return a run's `records list` row: ``--json`` and ``--csv`` keep the stored times
    (microseconds and all, so ``started_at <= finished_at`` holds); ``table``, the human
    table, shows them to the second."""
    row = run.to_dict()  # trial_number and cost_seconds, as `records export` names them
    row["pretraining"] = run.pretraining_scheme
    if table:
        for key, value in (("started_at", run.started_at), ("finished_at", run.finished_at)):
            row[key] = value.isoformat(timespec="seconds") if value is not None else None
    return row


def list_command(
    storage: StorageOption = None,
    study: StudyOption = None,
    target: TargetOption = None,
    task_set: TaskSetOption = None,
    contains: ContainsOption = None,
    status: StatusOption = None,
    model_config: ModelOption = None,
    selection: SelectionOption = None,
    pretraining: PretrainingOption = None,
    family: FamilyOption = None,
    limit: Annotated[
        int | None,
        # The bound of a SQL integer (SQLite's and PostgreSQL's BIGINT): more is a usage error,
        # not the driver's OverflowError.
        typer.Option(
            "--limit", min=1, max=_MAX_LIMIT, help="Show at most this many runs (newest first)."
        ),
    ] = None,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """List runs (one line each) matching every filter given."""
    from taskgraph.app.results.record_filters import check_record_family, check_record_filters

    check_run_filters(
        status=status, task_set=task_set, model_config=model_config, study=study, target=target
    )
    if selection is not None and selection not in _SELECTION:
        raise ConfigError(f"`--selection` must be one of ['on', 'off'], but got {selection!r}")
    with open_repository(resolve_storage_url(storage), create=False) as repo:
        check_record_filters(
            repo, study=study, target=target, task_set=task_set, contains=contains,
            model_config=model_config, pretraining=pretraining,
        )  # fmt: skip
        data_selection = None if selection is None else _SELECTION[selection]
        runs = repo.runs(
            study=study,
            target=target,
            task_set=task_set,
            contains=contains,
            status=status,
            model_config=model_config,
            limit=limit,
            newest_first=True,
            data_selection=data_selection,
            pretraining=pretraining,
            family=family,
        )
        if not runs and family is not None:  # a family none of the picked runs has: refused
            check_record_family(
                repo, family, study=study, target=target, task_set=task_set, contains=contains,
                status=status, model_config=model_config, data_selection=data_selection,
                pretraining=pretraining,
            )  # fmt: skip
    if not runs and _filtered(study, target, task_set, contains, status, model_config,
                              selection, pretraining, family):  # fmt: skip
        # Every name is some run's (checked above): an empty result, not an error.
        print_line(f"{NO_MATCH}", err=True)
    rows = [_list_row(run, table=not (as_json or as_csv)) for run in runs]
    emit_rows(
        rows, columns=_LIST_COLUMNS, as_json=as_json, as_csv=as_csv, title=f"{len(rows)} runs"
    )


def studies_command(
    storage: StorageOption = None, as_json: JsonOption = False, as_csv: CsvOption = False
) -> None:
    """List the studies with their number of runs per status."""
    url = resolve_storage_url(storage)
    with open_repository(url, create=False) as repo:
        studies = repo.studies()
    if not studies and not (as_json or as_csv):  # as `study list` says it (not an empty table)
        from taskgraph.storage import mask_url

        print_line(f"no studies in {mask_url(url)}")
        return
    rows = [
        {
            "name": study.name,
            "direction": study.direction,
            "target": study.target,
            "runs": study.n_runs,
            **{status: study.counts.get(status, 0) for status in _STATUSES},
            "created_at": study.created_at.isoformat(timespec="seconds"),
        }
        for study in studies
    ]
    columns = ("name", "target", "direction", "runs", *_STATUSES, "created_at")
    emit_rows(rows, columns=columns, as_json=as_json, as_csv=as_csv, title="studies")
