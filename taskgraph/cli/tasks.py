"""``taskgraph tasks``: list and inspect the task catalog on a data directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from taskgraph.cli.options import DataOption, JsonOption
from taskgraph.errors import ConfigError, DataFormatError, DataNotFoundError
from taskgraph.tasks import (
    TaskDef,
    TaskType,
    cached_count,
    count_examples,
    describe_split,
    get_task,
    label_vocabulary,
    list_tasks,
    resolve_data_dir,
    split_file,
    task_fingerprint,
)
from taskgraph.tasks.fingerprints import file_sha256
from taskgraph.tasks.loading import split_path, unseen_labels

from .output import emit_json, print_table, stderr_console, stdout_console

app = typer.Typer(
    rich_markup_mode="markdown",
    add_completion=False,
    help="List and inspect the task catalog.",
    no_args_is_help=True,
)


def _synthetic_tasks() -> list[TaskDef]:
    from taskgraph.tasks.catalog import _synthetic_module

    module = _synthetic_module()
    if module is None:
        return []
    return [get_task(name) for name in module.synthetic_task_names()]


def _present(
    tasks: list[TaskDef], data: Path | None
) -> tuple[list[TaskDef], list[tuple[TaskDef, DataNotFoundError]]]:
    """Split ``tasks`` into those whose every split file is in ``data`` and those missing one
    (with the error that names the file).

    A path that is there but is no file (a directory) counts as present: reading it fails,
    and :func:`_counts` reports the task as unreadable rather than as having no data.
    """
    present: list[TaskDef] = []
    missing: list[tuple[TaskDef, DataNotFoundError]] = []
    for task in tasks:
        try:
            for split in task.splits if task.format != "synthetic" else ():
                if split_path(task, split, data_dir=data).exists():
                    continue
                split_file(task, split, data_dir=data)
        except DataNotFoundError as error:
            missing.append((task, error))
        else:
            present.append(task)
    return present, missing


def _unreadable_line(error: Exception) -> str:
    """Return the one line that says why a data file could not be read."""
    if isinstance(error, OSError) and not isinstance(error, DataNotFoundError) and error.filename:
        return f"{error.filename}: {error.strerror or error}"  # e.g. no permission
    return str(error)


def _counts(
    tasks: list[TaskDef], data: Path | None, *, unreadable: dict[str, str] | None = None
) -> dict[str, dict[str, int | None]]:
    """Return split sizes per task, counting the uncached ones under a progress bar.

    Without ``unreadable`` a file that cannot be read raises; with it, such a split's size is
    ``None`` and the first error of each such task is put there, by task name.
    """

    def count(task: TaskDef, split: str) -> int | None:
        try:
            return count_examples(task, split, data_dir=data)
        except (DataFormatError, DataNotFoundError, OSError) as error:
            if unreadable is None:
                raise
            unreadable.setdefault(task.name, _unreadable_line(error))
            return None

    def is_cached(task: TaskDef, split: str) -> bool:
        try:
            return cached_count(task, split, data_dir=data) is not None
        except (DataNotFoundError, OSError):
            return False  # counting it says why

    pending = [
        (task, split)
        for task in tasks
        for split in task.splits
        if task.format != "synthetic" and not is_cached(task, split)
    ]
    sizes: dict[str, dict[str, int | None]] = {task.name: {} for task in tasks}
    if pending:
        columns = (
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(
            *columns,
            console=stderr_console,
            transient=True,
            disable=not stderr_console.is_terminal,
        ) as progress:
            bar = progress.add_task("counting examples", total=len(pending))
            for task, split in pending:
                progress.update(bar, description=f"counting {task.name} {split}")
                sizes[task.name][split] = count(task, split)
                progress.advance(bar)
    return {
        task.name: {
            split: sizes[task.name][split] if split in sizes[task.name] else count(task, split)
            for split in task.splits
        }
        for task in tasks
    }


def _row(task: TaskDef, splits: dict[str, int | None]) -> dict[str, Any]:
    return {
        "name": task.name,
        "type": task.type.value,
        "format": task.format,
        "dataset": task.dataset,
        "splits": splits,
        "metrics": list(task.metrics),
        "label_field": task.label_field,
    }


@app.command("list")
def list_command(
    data: DataOption = None,
    as_json: JsonOption = False,
    task_type: Annotated[
        str | None,
        typer.Option(
            "--type",
            help="Only tasks of this type: " + ", ".join(t.value for t in TaskType) + ".",
            show_default=False,
        ),
    ] = None,
    synthetic: Annotated[
        bool, typer.Option("--synthetic", help="Also list the synthetic task family.")
    ] = False,
) -> None:
    """List the tasks with their type, split sizes and primary metric (--json: every field)."""
    wanted: TaskType | None = None
    if task_type is not None:
        try:
            wanted = TaskType(task_type)
        except ValueError:
            allowed = ", ".join(t.value for t in TaskType)
            raise ConfigError(f"--type must be one of {allowed}, but got {task_type!r}") from None
    directory = resolve_data_dir(data)
    tasks = list_tasks() + (_synthetic_tasks() if synthetic else [])
    tasks = [task for task in tasks if wanted is None or task.type is wanted]
    # A data directory with some of the datasets (a user's own) lists those, and names the rest.
    present, missing = _present(tasks, directory)
    if missing and not present:  # a wrong directory, not a partial one
        raise DataNotFoundError(f"no task has its data in {directory}: {missing[0][1]}")
    # One broken file must not hide the catalog: its task is listed as unreadable (sizes of
    # the splits that could not be read are null) and a note says why; the exit stays 0.
    unreadable: dict[str, str] = {}
    counts = _counts(present, directory, unreadable=unreadable)
    rows = [
        {**_row(task, counts[task.name]), "error": unreadable.get(task.name)} for task in present
    ]
    if missing:
        stderr_console.print(
            f"note: {len(missing)} of {len(tasks)} tasks have no data in {directory}: "
            + ", ".join(task.name for task, _ in missing),
            soft_wrap=True,
            markup=False,
        )
    for name, error in unreadable.items():
        stderr_console.print(
            f"note: task {name} is unreadable: {error}", soft_wrap=True, markup=False
        )
    if as_json:
        emit_json(rows)
        return
    table = Table(title=f"{len(rows)} task{'' if len(rows) == 1 else 's'} in {directory}")
    table.add_column("name", no_wrap=True)
    table.add_column("type")
    table.add_column("splits")
    table.add_column("metric", no_wrap=True)
    for row in rows:
        splits = "  ".join(
            f"{s} {'unreadable' if n is None else f'{n:,}'}" for s, n in row["splits"].items()
        )
        table.add_row(row["name"], row["type"], splits, row["metrics"][0])
    print_table(table)


@app.command("show")
def show_command(
    name: Annotated[str, typer.Argument(help="Task name, e.g. ud_en_ewt_deps or squad2.")],
    data: DataOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one task: files, fingerprints, split sizes and how splits are made, label set."""
    task = get_task(name)
    directory = None if task.format == "synthetic" else resolve_data_dir(data)
    with stderr_console.status(Text(f"reading {task.name}")):
        counts = _counts([task], directory)[task.name]
        splits: dict[str, dict[str, Any]] = {}
        for split, source in task.splits.items():
            entry: dict[str, Any] = {"examples": counts[split], "rule": describe_split(task, split)}
            if task.format != "synthetic":
                path = split_file(task, split, data_dir=directory)
                entry.update(file=source.file, path=str(path), sha256=file_sha256(path))
            splits[split] = entry
        info: dict[str, Any] = {
            **_row(task, {s: e["examples"] for s, e in splits.items()}),
            "description": task.description,
            "reader_options": dict(task.reader_options),
            "fingerprint": task_fingerprint(task, data_dir=directory),
            "labels": label_vocabulary(task, data_dir=directory),
            # Labels of dev/test that no training example has: a model cannot learn them.
            "unseen_labels": unseen_labels(task, data_dir=directory),
        }
        info["splits"] = splits
    if as_json:
        emit_json(info)
        return
    out = stdout_console
    # Descriptions and labels are text, never markup (the consoles read none): `[c(w) >= K/2]`
    # would be a tag.  soft_wrap: a pipe gets whole lines (a long description or path).
    out.print(Text.assemble((task.name, "bold"), "  ", task.description), soft_wrap=True)
    for key in ("type", "format", "dataset", "label_field", "metrics", "fingerprint"):
        value = info[key]
        shown = ", ".join(value) if isinstance(value, list) else str(value)
        out.print(f"  {key}: {shown}", soft_wrap=True)
    if task.reader_options:
        out.print(f"  reader_options: {info['reader_options']}", soft_wrap=True)
    labels = info["labels"]
    listed = " ".join(labels) if labels else "(none)"
    out.print(f"  labels ({len(labels)}): {listed}", soft_wrap=True)
    for split, unseen in info["unseen_labels"].items():
        stderr_console.print(
            f"note: {split} has {len(unseen)} label(s) no training example has, which a model "
            f"cannot learn: {' '.join(unseen)}",
            soft_wrap=True,
            markup=False,
        )
    table = Table(title="splits")
    for column in ("split", "examples", "sha256", "made from"):
        table.add_column(column)
    for split, entry in splits.items():
        table.add_row(split, f"{entry['examples']:,}", entry.get("sha256", "")[:12], entry["rule"])
    print_table(table)
