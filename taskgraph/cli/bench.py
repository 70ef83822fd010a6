"""``taskgraph bench``: measure the affinity estimators and samplers on a results table.

The command parses its options and calls :func:`taskgraph.search.bench_report.run_bench`,
which runs every evaluation the table supports (gain prediction on groups of size >= 3,
k-fold pair gains, source ranking, search efficiency of the samplers a study uses) and says
which it skipped and why.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer

from taskgraph.affinity.estimators.base import ESTIMATORS
from taskgraph.cli.options import nonempty_path
from taskgraph.cli.output import emit_json, stderr_console
from taskgraph.errors import ConfigError
from taskgraph.search.bench_report import CLI_SAMPLERS

__all__ = ["bench"]


def bench(
    table: Annotated[
        Path,
        typer.Option(
            "--table",
            parser=nonempty_path("a results table in the long CSV format"),
            help="Results table in the long CSV format (target,task_set,split,value,higher_is_better).",
        ),
    ],
    fit_fraction: Annotated[
        float,
        typer.Option(
            "--fit-fraction",
            help="Fraction of groups larger than pairs the estimators may see (besides all singles and pairs).",
        ),
    ] = 0.1,
    seeds: Annotated[
        int,
        typer.Option(
            "--seeds",
            help="Seeds: fit splits for the Spearman, sampler seeds per target for the search (medians need about 20).",
        ),
    ] = 20,
    method: Annotated[
        str,
        typer.Option(
            "--method",
            help=f"Estimator measured against HOA and the prior: {', '.join(ESTIMATORS.names())}.",
        ),
    ] = "setfn",
    folds: Annotated[
        int,
        typer.Option("--folds", help="k of the k-fold over each target's pairs (pair gains)."),
    ] = 5,
    fit_split: Annotated[
        str | None,
        typer.Option(
            "--fit-split", help="Split to fit on (default val; a one-split table: that split)."
        ),
    ] = None,
    score_split: Annotated[
        str | None,
        typer.Option(
            "--score-split",
            help="Split to score on (default test when there is one, else the fit split).",
        ),
    ] = None,
    max_trials: Annotated[
        int,
        typer.Option(
            "--max-trials", help="Trials per search before giving up (counted as this many)."
        ),
    ] = 300,
    max_size: Annotated[
        int | None,
        typer.Option(
            "--max-size",
            help="Largest auxiliary set a search proposes (default: what the table answers; 1 for pairs only).",
        ),
    ] = None,
    samplers: Annotated[
        str | None,
        typer.Option(
            "--samplers",
            help=f"Comma-separated samplers to compare [default: {','.join(CLI_SAMPLERS)}] "
            "(add gp: about a second per trial; not with --no-search).",
            show_default=False,
        ),
    ] = None,
    search: Annotated[
        bool,
        typer.Option(
            "--search/--no-search", help="Also measure search efficiency (trials to the best set)."
        ),
    ] = True,
    task_metadata: Annotated[
        Path | None,
        typer.Option(
            "--task-metadata",
            parser=nonempty_path("a task-metadata JSON file"),
            help="Task-metadata JSON (texts and numeric features per task; benchmarks/metadata/) for the estimator.",
        ),
    ] = None,
    pooling: Annotated[
        str | None,
        typer.Option(
            "--pooling",
            help="setfn only: how a set's members' effects combine: mean, sum, auto (the one the evidence strongly prefers) or bma (both, weighted by their evidence; the default) (docs/affinity.md).",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of name: value lines.")
    ] = False,
) -> None:
    """Benchmark the affinity estimators and samplers on a long-format results table."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
    )

    from taskgraph.app import arguments
    from taskgraph.app.bench import bench as run
    from taskgraph.app.bench import load_bench_table

    # Checked here to name the options; the Python API's own checks name its keywords.
    if not math.isfinite(fit_fraction):
        raise ConfigError(f"`--fit-fraction` must be in [0, 1], but got {fit_fraction}")
    names = arguments.names(samplers, "--samplers")
    if names and not search and all(_known_sampler(n) for n in names):
        # (An unknown name is the app's one line, naming it.)
        raise ConfigError(
            f"`--samplers` {samplers!r} chooses the samplers of the search, but --no-search "
            "turns the search off: drop one of them"
        )
    # Read and checked before the progress display; the display is off when stderr is not a
    # terminal (its teardown would write a blank line before an error or the report) and with
    # --json, as `study run --json` has none.  Each evaluation's bar appears when it starts
    # (0 done) and moves per fit: one setfn fit of MIMIC-27 takes half a minute.
    data = load_bench_table(table)
    with Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr_console,
        transient=True,
        disable=as_json or not stderr_console.is_terminal,
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def on_step(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = progress.add_task(name, total=total)
            progress.update(tasks[name], completed=done, total=total)

        report = run(
            data, method=method, fit_fraction=fit_fraction, seeds=seeds, folds=folds,
            fit_split=fit_split, score_split=score_split, search=search, samplers=names,
            max_trials=max_trials, max_size=max_size, task_metadata=task_metadata,
            pooling=pooling, on_step=on_step,
        )  # fmt: skip
    if as_json:
        emit_json(report)
        return
    typer.echo(f"evaluations: {', '.join(report['evaluations']) or '(none)'}")
    for name, reason in report["skipped"].items():
        typer.echo(f"skipped_{name}: {reason}")
    for note in report["notes"]:
        typer.echo(f"note: {note}")
    for name, value in report.items():
        if name in ("evaluations", "skipped", "notes"):
            continue
        typer.echo(f"{name}: {_text(value, count=name.startswith(_COUNTS))}")


def _known_sampler(name: str) -> bool:
    from taskgraph.search.samplers import SAMPLERS

    return ("graph" if name == "graph_cold" else name) in SAMPLERS  # as run_bench reads it


#: the search's results that count trials or runs (medians over seeds: whole or halves)
_COUNTS = ("trials_to_best_", "distinct_to_best_", "not_found_")


def _text(value: Any, *, count: bool = False) -> str:
    if value is None:  # a NaN, made JSON-safe by the app
        return "nan"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if count:  # 24, 9.5: a count's digits, not a correlation's four decimals
            return str(int(value)) if value.is_integer() else repr(value)
        text = f"{value:.4f}"
        return "0.0000" if text == "-0.0000" else text  # -1e-17 is no negative correlation
    return str(value)
