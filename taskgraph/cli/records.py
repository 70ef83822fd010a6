"""``taskgraph records``: list, show and export (task set, model, score) records."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from taskgraph.cli.options import CsvOption, JsonOption, StorageOption, nonempty_path
from taskgraph.cli.output import (
    emit_json,
    emit_rows,
    print_line,
    resolve_output,
    write_output,
)
from taskgraph.errors import ConfigError
from taskgraph.storage import Repository, RunRecord, open_repository, resolve_storage_url
from taskgraph.storage.export import EXPORT_FORMATS
from taskgraph.storage.repository import check_run_filters

__all__ = ["app"]

app = typer.Typer(
    rich_markup_mode="markdown",
    add_completion=False,
    help="List, show, tabulate and export the records database, and list its studies.",
    no_args_is_help=True,
)

StudyOption = Annotated[str | None, typer.Option("--study", help="Only runs of this study.")]
TargetOption = Annotated[
    str | None,
    typer.Option(
        "--target",
        help="Only runs whose target task is this one (with --format long: every score of "
        "those runs, their auxiliaries' included).",
    ),
]
TaskSetOption = Annotated[
    str | None,
    typer.Option(
        "--task-set", help="Only runs on exactly this task set, e.g. 'ner+pos' (any order)."
    ),
]
ContainsOption = Annotated[
    str | None, typer.Option("--contains", help="Only runs whose task set contains this task.")
]
StatusOption = Annotated[
    str | None,
    typer.Option("--status", help="Only runs with this status: complete, pruned or failed."),
]
ModelOption = Annotated[
    str | None,
    typer.Option("--model-config", help="Only runs of this model configuration (hash or prefix)."),
]

SelectionOption = Annotated[
    str | None,
    typer.Option(
        "--selection",
        help="Only runs with example-level data selection on, or off (on, off).",
    ),
]

PretrainingOption = Annotated[
    str | None,
    typer.Option(
        "--pretraining",
        help="Only runs with this pretraining scheme (random, adaptive; none: without the stage); "
        "a scheme no run used is refused, listing the runs' schemes.",
    ),
]

FamilyOption = Annotated[
    str | None,
    typer.Option(
        "--family",
        help="Only the scores of this model family (its hash or a prefix, as `records show` and "
        "the export's family column give it, or as the long format's error on a task set of "
        "several families lists them; HASH/data:VERSION: of that family measured on that data "
        "version, the export's data_version column): export writes the rows of that family "
        "(json: each "
        "run's scores of it), list the runs with a score of it; a prefix that none of the "
        "runs the other filters pick has is refused, listing their families.",
    ),
]

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
#: what `records list` and `records export` say on stderr when known names match no run
NO_MATCH = "no run matches these filters"


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


@app.command("list")
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


@app.command("show")
def show_command(
    run_id: Annotated[int, typer.Argument(help="Id of the run (first column of `records list`).")],
    storage: StorageOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one run: its configuration, status, cost and every score."""
    with open_repository(resolve_storage_url(storage), create=False) as repo:
        run = repo.run(run_id)
        if as_json:
            emit_json(_export_object(repo, run))
            return
    # Stored text (a failure reason quoting a path, a setting) is printed as it is: rich
    # would read "[red]" as a style and fail on "[/data/x.csv]" as a closing tag.
    print_line(
        f"run {run.id}: study {run.study!r}, trial {run.trial_number}, seed {run.seed}, "
        f"target {run.target!r}, task set {run.task_set_key}"
    )
    print_line(
        f"status {run.status}"
        + (f" ({run.failure_reason})" if run.failure_reason else "")
        + f", objective {_objective(run)}, cost {run.cost_seconds:.1f} s on {run.device}, "
        f"model config {run.model_config_hash[:12]} (family {run.family})"
    )
    if run.data_selection is not None:
        print_line(_selection_line(run.data_selection))
    if run.pretraining_report is not None:
        print_line(_pretraining_line(run.pretraining_report))
    settings = [
        {"setting": key, "value": json.dumps(value, sort_keys=True, default=str)}
        for key, value in sorted(run.config.items())
        if value not in (None, {}, [], ())
    ]
    emit_rows(_escaped(settings), columns=("setting", "value"), title="configuration")
    scores = [
        {"task": task, "split": split, "metric": metric, "value": value}
        for task, splits in sorted(run.scores.items())
        for split, metrics in sorted(splits.items())
        for metric, value in sorted(metrics.items())
    ]
    emit_rows(_escaped(scores), columns=("task", "split", "metric", "value"), title="scores")


def _objective(run: RunRecord) -> str:
    """Return the objective as `records show` prints it: "—" with why where there is none."""
    if run.objective is not None:
        return str(run.objective)
    why = {"failed": "the run failed", "pruned": "the run was pruned"}
    return f"— ({why.get(run.status, 'not recorded')})"


def _export_object(repo: Repository, run: RunRecord) -> dict[str, Any]:
    """Return ``run`` as `records export -f json` writes it (``measured_in`` included).

    The export is narrowed to the run's study, target, task set and model configuration (its
    seeds, at most a handful of runs) and the run picked out by its id.
    """
    buffer = io.StringIO()
    repo.export(
        buffer,
        format="json",
        study=run.study,
        target=run.target,
        task_set=run.task_set_key,
        model_config=run.model_config_hash,
        status=run.status,
    )
    found: list[dict[str, Any]] = json.loads(buffer.getvalue())
    # (The run is always among them; its own object, without measured_in, is the fallback.)
    return next((obj for obj in found if obj["id"] == run.id), run.to_dict())


def _escaped(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return table rows whose strings rich's table prints literally (markup escaped)."""
    return [
        {key: escape(value) if isinstance(value, str) else value for key, value in row.items()}
        for row in rows
    ]


def _selection_line(selection: dict[str, Any]) -> str:
    """Return "data selection: keep 0.42 by jsd +0.80, ...; kept bc5cdr_chem 336/800 ..."."""
    weights = ", ".join(f"{k} {v:+.2f}" for k, v in sorted(selection.get("weights", {}).items()))
    kept = ", ".join(
        f"{name} {rec.get('kept')}/{rec.get('pool', rec.get('examples'))}"
        for name, rec in sorted((selection.get("kept") or {}).items())
    )
    keep = selection.get("keep")
    shown = f"{keep:.2f}" if isinstance(keep, float) else str(keep)  # as the weights are
    return (
        f"data selection: keep {shown}"
        + (f" by {weights}" if weights else "")
        + (f"; kept {kept}" if kept else "")
    )


def _pretraining_line(report: dict[str, Any]) -> str:
    """Return "pretraining: adaptive, 200 steps, 37,523 tokens, 49.6 s (ran in this trial);
    masked-token accuracy 0.051 at step 20 -> 0.106 at step 200 (10 points)"."""
    line = (
        f"pretraining: {report.get('scheme')}, {report.get('steps')} steps, "
        f"{int(report.get('tokens', 0)):,} tokens, {float(report.get('seconds', 0.0)):.1f} s "
        + ("(checkpoint from the cache)" if report.get("cached") else "(ran in this trial)")
    )
    # Points are [step, accuracy] (adaptive ones add competence and target quantile).
    curve = [point for point in report.get("curve") or [] if len(point) >= 2]
    if curve:
        (first_step, first), (last_step, last) = curve[0][:2], curve[-1][:2]
        line += (
            f"; masked-token accuracy {first:.3f} at step {int(first_step)} -> {last:.3f} at "
            f"step {int(last_step)} ({len(curve)} points)"
        )
    return line


@app.command("studies")
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


@app.command("export")
def export_command(
    output: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            help="File to write, or '-' for stdout (csv, json).  A new path or a regular file "
            "(replaced atomically); a symlink is written through; a device, FIFO or directory "
            "is refused.",
        ),
    ],
    export_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="csv or parquet: one row per score record; json: one object per run; long: "
            "the long CSV that bench --table and affinity --table read (target,task_set,split,"
            "value,higher_is_better: the mean of each task set's complete runs; its target "
            "column is the scored task, while --target picks the runs) "
            "(default: the output file's extension, else csv).  Filters that match no run "
            "write the header only (long: refused).",
        ),
    ] = None,
    storage: StorageOption = None,
    study: StudyOption = None,
    target: TargetOption = None,
    task_set: TaskSetOption = None,
    contains: ContainsOption = None,
    status: StatusOption = None,
    model_config: ModelOption = None,
    pretraining: PretrainingOption = None,
    family: FamilyOption = None,
    metric: Annotated[
        str | None,
        typer.Option(
            "--metric",
            help="--format long only: the metric of the table's values (default: the studies' "
            "objective metric).",
        ),
    ] = None,
) -> None:
    """Export the matching records as CSV, JSON, Parquet (needs pyarrow) or a long table."""
    from taskgraph.app.results.record_filters import check_record_filters

    check_run_filters(
        status=status, task_set=task_set, model_config=model_config, study=study, target=target
    )
    if export_format is None:  # `-o runs.parquet` means Parquet, not CSV in a .parquet file
        suffix = Path(output).suffix.lstrip(".").lower()
        export_format = suffix if suffix in EXPORT_FORMATS else "csv"
    if export_format not in (*EXPORT_FORMATS, LONG_FORMAT):
        raise ConfigError(
            f"`--format` must be one of {[*EXPORT_FORMATS, LONG_FORMAT]}, but got {export_format!r}"
        )
    if export_format == LONG_FORMAT:
        _export_long(
            output, storage=storage, study=study, target=target, task_set=task_set,
            contains=contains, status=status, model_config=model_config, metric=metric,
            pretraining=pretraining, family=family,
        )  # fmt: skip
        return
    if metric is not None:
        raise ConfigError(
            "`--metric` chooses the values of --format long; the other formats write every metric"
        )
    if output == "-" and export_format == "parquet":
        raise ConfigError("`--format parquet` needs a file: pass --output FILE.parquet")
    # Checked before the database is read: a device or a FIFO is refused, never replaced.
    # ... and so is the records database itself (`-o taskgraph.db`), never overwritten.
    url = resolve_storage_url(storage)
    destination = resolve_output(output, storage=url)
    with open_repository(url, create=False) as repo:
        check_record_filters(
            repo, study=study, target=target, task_set=task_set, contains=contains,
            model_config=model_config, pretraining=pretraining,
        )  # fmt: skip
        count = repo.export(
            sys.stdout if destination is None else destination,
            format=export_format,  # type: ignore[arg-type]
            study=study,
            target=target,
            task_set=task_set,
            contains=contains,
            status=status,
            model_config=model_config,
            pretraining=pretraining,
            family=family,
        )
    unit = "runs" if export_format == "json" else "rows"
    # Known names that match nothing together still write a whole (header-only) file.
    why = f" ({NO_MATCH})" if count == 0 and _filtered(study, target, task_set, contains,
                                                          status, model_config, pretraining,
                                                          family) else ""  # fmt: skip
    print_line(f"wrote {count} {unit} to {'stdout' if output == '-' else output}{why}", err=True)


def _filtered(*filters: object) -> bool:
    """Return whether any filter was given (an empty result then says that none matched)."""
    return any(value is not None for value in filters)


#: `records export --format long`: the long CSV of `bench --table` / `affinity --table`
LONG_FORMAT = "long"


def _export_long(
    output: str,
    *,
    storage: str | None,
    study: str | None,
    target: str | None,
    task_set: str | None,
    contains: str | None,
    status: str | None,
    model_config: str | None,
    metric: str | None,
    pretraining: str | None = None,
    family: str | None = None,
) -> None:
    """Write the records as a long table (:func:`taskgraph.app.affinity.records_long_table`)."""
    from taskgraph.affinity.longtable import write_long_csv
    from taskgraph.app.affinity import records_long_table

    if status not in (None, "complete"):
        raise ConfigError(
            f"`--status` {status!r}: a long table holds the scores of complete runs only"
        )
    if model_config is not None:
        raise ConfigError(
            "`--model-config`: a long table averages a task set's configurations; filter by "
            "--study, --target, --task-set or --contains"
        )
    url = resolve_storage_url(storage)
    destination = resolve_output(output, storage=url)
    notes: list[str] = []
    with open_repository(url, create=False) as repo:
        table = records_long_table(
            study=study, target=target, task_set=task_set, contains=contains, metric=metric,
            pretraining=pretraining, family=family, repository=repo, notes=notes,
        )  # fmt: skip
    text = io.StringIO(newline="")
    count = write_long_csv(table, text)
    write_output(destination, text.getvalue())
    for note in notes:
        print_line(f"warning: {note}", err=True)
    print_line(f"wrote {count} rows to {'stdout' if output == '-' else output}", err=True)


@app.command("table")
def table_command(
    study: Annotated[str, typer.Argument(help="Study whose results table to print.")],
    metrics: Annotated[
        str | None,
        typer.Option(
            "--metrics",
            help="Comma-separated metrics of the target, one column each (default: the "
            "objective metric), e.g. f1_PER,f1_LOC,f1_ORG,f1.",
        ),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(
            "--split",
            help="Split the columns are read from (default: test where the runs have it, else "
            "the objective's split).",
        ),
    ] = None,
    write: Annotated[
        Path | None,
        typer.Option(
            "--write",
            metavar="<path>",
            parser=nonempty_path("a results folder such as docs/results"),
            # Markdown help: a bare <study> or <!-- ... --> would be dropped as HTML.
            help="Results folder (e.g. docs/results): write `STUDY.csv` in the long format of "
            "`taskgraph bench` and the table into the folder's README.md, which must exist and "
            "hold the lines `<!-- results:STUDY -->` and `<!-- /results:STUDY -->`.",
        ),
    ] = None,
    storage: StorageOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print a study's results table: rows = configurations, mean ± 95% t-interval over seeds."""
    from taskgraph.app.results.build import results_table
    from taskgraph.app.results.writing import check_results_folder, write_results

    if write is not None:  # before the table is printed: a folder it cannot go to is the error
        check_results_folder(write, study)
    table = results_table(study, storage=storage, metrics=metrics, split=split)
    if as_json:
        emit_json(table.to_dict())
    else:
        typer.echo(table.to_markdown(), nl=False)
    if write is not None:
        for path in write_results(table, write):
            print_line(f"wrote {path}", err=True)
