"""``taskgraph study status``, ``study list`` and ``study delete``: the studies in a database."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from taskgraph.cli.options import CsvOption, JsonOption, StorageOption
from taskgraph.cli.output import emit_json, emit_rows, print_line
from taskgraph.cli.study._common import _storage
from taskgraph.errors import ConfigError


def status(
    name: Annotated[str, typer.Argument(help="Study name.")],
    storage: StorageOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show how far a study is: trials done of the budget, running, failed, best so far."""
    from taskgraph.app.studies.stored import study_status

    data = study_status(name, storage=_storage(storage))
    if as_json:
        emit_json(data)
        return
    emit_rows(
        [data],
        columns=[
            "name",
            "n_done",
            "budget",
            "n_complete",
            "n_pruned",
            "n_failed",
            "n_running",
            "n_waiting",
            "best_value",
            "baseline_value",
        ],
    )


def list_studies(
    storage: StorageOption = None,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """List the studies in the database with their progress (a plain Optuna study in the same
    database is marked "not taskgraph's")."""
    from taskgraph.app.studies.stored import list_studies

    url = _storage(storage)
    rows = list_studies(storage=url)
    columns = ["name", "target", "n_done", "budget", "n_failed", "best_value", "baseline_value"]
    if not rows and not (as_json or as_csv):
        from taskgraph.storage import mask_url

        print_line(f"no studies in {mask_url(url)}")
        return
    if as_json or as_csv:
        columns.append("taskgraph")
    else:
        rows = [
            row if row["taskgraph"] else {**row, "name": f"{row['name']} (not taskgraph's)"}
            for row in rows
        ]
    emit_rows(rows, columns=columns, as_json=as_json, as_csv=as_csv)


def _on_terminal() -> bool:
    """Return whether stdin is a terminal (where `study delete` may ask)."""
    return sys.stdin.isatty()


def delete(
    name: Annotated[str, typer.Argument(help="Study name.")],
    storage: StorageOption = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Delete without asking (needed off a terminal).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Delete a study: its Optuna study and trials and every record of it, in one transaction.

    Its runs, scores, screens and lookahead matrices go; other studies, and the tasks, task
    sets and model configurations they share, stay.  Records left by a study deleted with
    `optuna delete-study` are deleted the same way, and so are the study's checkpoints (the
    local runner's folder, the Ray runner's persisted ones).  A study a driver is running
    (every `study run`/`resume` holds the study from start to end; a killed driver holds
    nothing), and an Optuna study taskgraph did not create, are refused.  Without --yes it
    asks first, and refuses when stdin is not a terminal.
    """
    from taskgraph.app.studies.stored import delete_study
    from taskgraph.storage import mask_url

    url = _storage(storage)
    if not yes:
        if not _on_terminal():
            raise ConfigError(
                f"`taskgraph study delete {name}` asks for confirmation, and stdin is not a "
                "terminal: pass --yes to delete the study"
            )
        if not typer.confirm(
            f"Delete study {name!r} and all its records in {mask_url(url)}?", err=True
        ):
            print_line("nothing deleted", err=True)
            raise typer.Exit(1)
    deleted = delete_study(name, storage=url)
    if as_json:
        emit_json(deleted)
        return
    folder = deleted["checkpoints"]
    tune = deleted["tune_checkpoints"]
    print_line(
        f"deleted study {name!r} from {mask_url(url)}: {deleted['optuna_trials']} Optuna "
        f"trial(s), {deleted['runs']} run(s), {deleted['scores']} score(s)"
        + (f", checkpoints {folder}" if folder else "")
        + (f", {len(tune)} Ray checkpoint(s)" if tune else "")
    )
