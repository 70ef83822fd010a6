"""``taskgraph records export``: the matching records as CSV, JSON, Parquet or the long table."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Annotated

import typer

from taskgraph.cli.options import StorageOption
from taskgraph.cli.output import print_line, resolve_output, write_output
from taskgraph.cli.records._common import (
    NO_MATCH,
    ContainsOption,
    FamilyOption,
    ModelOption,
    PretrainingOption,
    StatusOption,
    StudyOption,
    TargetOption,
    TaskSetOption,
    _filtered,
)
from taskgraph.errors import ConfigError
from taskgraph.storage import open_repository, resolve_storage_url
from taskgraph.storage.export import EXPORT_FORMATS
from taskgraph.storage.repository import check_run_filters


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
            "(default: the output file's extension, .csv, .json or .parquet; csv for '-' or "
            "a name without one; another extension needs --format).  Filters that match no run "
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
    if export_format is None:
        export_format = _format_from_suffix(output, storage=storage)
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


#: `records export --format long`: the long CSV of `bench --table` / `affinity --table`
LONG_FORMAT = "long"


def _format_from_suffix(output: str, *, storage: str | None) -> str:
    """Return the export format that ``output``'s suffix names: csv for ``-`` or no suffix.

    `-o runs.parquet` means Parquet, not CSV in a .parquet file; and `-o runs.xlsx` is
    refused rather than given CSV under a name that promises something else.
    """
    suffix = Path(output).suffix.lower()
    if output == "-" or not suffix:
        return "csv"
    if suffix.removeprefix(".") in EXPORT_FORMATS:
        return suffix.removeprefix(".")
    # What `-o` names is refused as such first: `-o taskgraph.db` is the records database,
    # which matters more than its suffix.
    resolve_output(output, storage=resolve_storage_url(storage))
    raise ConfigError(
        f"`--output` {output!r} ends in {suffix}, which names no export format: give "
        f"`--format` ({', '.join([*EXPORT_FORMATS, LONG_FORMAT])}) or a file ending in "
        f"{', '.join('.' + name for name in EXPORT_FORMATS[:-1])} or .{EXPORT_FORMATS[-1]}"
    )


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
