"""``taskgraph affinity``: fit the task-affinity graph, recommend auxiliaries, group tasks.

Records come from the records database (``--storage URL``, default ``$TASKGRAPH_STORAGE`` or
the local SQLite file) or, with ``--table FILE``, from a results table in the long CSV format
(no database needed).  ``--text-embeddings`` adds TextEmb task embeddings (Vu et al. 2020:
the mean MiniLM embedding of a task's training text) for tasks in the catalog, which gives
targets without records a prediction from similar tasks.

Which scores: by default the objective of the studies the records come from (its metric and
split, from each study's stored spec); ``--metric`` names another, and ``--metric all`` mixes
every metric on purpose.  Records of studies with different objective metrics are not mixed
unless asked.  Outputs name their gains: ``predicted_relative_gain`` (the estimator's,
shrunk toward what it learned from other sets) beside ``measured_relative_gain`` and
``measured_absolute_gain`` (as measured, in the metric's units, as ``study show`` prints it).
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from taskgraph.affinity.estimators.base import ESTIMATORS
from taskgraph.affinity.graph import GRAPH_FORMATS, write_graph
from taskgraph.app.affinity import (
    fit_and_save,
    graph_report,
    grouping_report,
    recommendation_report,
)
from taskgraph.cli.options import JsonOption, StorageOption, nonempty_path
from taskgraph.cli.output import (
    emit_json,
    emit_rows,
    output_errors,
    resolve_output,
    stderr_console,
    write_output,
)
from taskgraph.errors import ConfigError
from taskgraph.storage.urls import resolve_storage_url

__all__ = ["app"]

app = typer.Typer(
    rich_markup_mode="markdown",
    add_completion=False,
    help="Fit the task-affinity graph; recommend auxiliary tasks and groupings.",
    no_args_is_help=True,
)

TableOption = Annotated[
    Path | None,
    typer.Option(
        "--table",
        parser=nonempty_path("a long-format CSV table"),
        help="Read records from a long-format CSV table instead of the database (not with "
        "--storage).",
    ),
]
SplitOption = Annotated[
    str | None,
    typer.Option(
        "--split",
        help="Split whose scores are used (default: the studies' objective split, else 'dev' or 'val').",
    ),
]
MetricOption = Annotated[
    str | None,
    typer.Option(
        "--metric",
        help="Metric whose scores are used (default: the studies' objective metric; 'all' mixes every metric).",
    ),
]
MethodOption = Annotated[
    str, typer.Option("--method", help=f"Affinity estimator: {', '.join(ESTIMATORS.names())}.")
]
EmbedOption = Annotated[
    bool,
    typer.Option(
        "--text-embeddings/--no-text-embeddings",
        help="Add MiniLM TextEmb embeddings of catalog tasks (cold start for unseen targets); setfn and textemb only (refused with another --method).",
    ),
]
PriorOption = Annotated[
    bool | None,
    typer.Option(
        "--hyperprior/--no-hyperprior",
        help="setfn only (refused with another --method): fit its variances with a weak prior (MAP-II; the default), which keeps predictions from a few records honest; --no-hyperprior is plain evidence maximisation, as the graph-guided sampler fits.",
        show_default=False,
    ),
]

PoolingOption = Annotated[
    str | None,
    typer.Option(
        "--pooling",
        help="setfn only (refused with another --method): a set's gain from the mean of its members' effects (mean), their sum (sum), the one of the two the evidence of the records strongly prefers (auto), or both averaged with their evidence's weights (bma). Default: mean with the hyperprior (the default), bma with --no-hyperprior (docs/affinity.md).",
        show_default=False,
    ),
]


#: the estimators that read TextEmb vectors (``task_embeddings``)
_EMBEDDING_METHODS = ("setfn", "textemb")


def _embeddings_option(method: str, text_embeddings: bool) -> None:
    ESTIMATORS.get(method)  # an unknown method: its own line, listing the known ones
    # Another estimator would load MiniLM and then ignore what it computed.  (Setfn's own
    # options, --pooling and --hyperprior, are checked by the library: from Python too.)
    if text_embeddings and method not in _EMBEDDING_METHODS:
        raise ConfigError(
            f"`--text-embeddings` is an option of {' and '.join(_EMBEDDING_METHODS)}, but "
            f"--method is {method!r}"
        )


def _one_source(storage: str | None, table: Path | None) -> None:
    # --table reads a CSV file and touches no database: a --storage beside it would be ignored.
    if storage is not None and table is not None:
        raise ConfigError(
            "`--table` and `--storage` are two sources of records: give one (--table reads "
            "the CSV file and reads or saves nothing in a database)"
        )


def _at_least(value: int | None, flag: str, minimum: int) -> None:
    # Checked here to name the option; the Python API's own check names its keyword.
    if value is not None and value < minimum:
        raise ConfigError(f"`{flag}` must be >= {minimum}, but got {value}")


@app.command("fit")
def fit(
    method: MethodOption = "setfn",
    storage: StorageOption = None,
    table: TableOption = None,
    split: SplitOption = None,
    metric: MetricOption = None,
    text_embeddings: EmbedOption = False,
    hyperprior: PriorOption = None,
    pooling: PoolingOption = None,
    as_json: JsonOption = False,
) -> None:
    """Fit an estimator on all records and save its edges (source -> target gains) to the database.

    With --table the records come from the CSV file and nothing is saved (`saved: False`).
    """
    _one_source(storage, table)
    _embeddings_option(method, text_embeddings)
    with stderr_console.status(f"fitting {method}"):
        summary = fit_and_save(
            method=method, storage=storage, table=table, split=split, metric=metric,
            text_embeddings=text_embeddings, hyperprior=hyperprior, pooling=pooling,
        )  # fmt: skip
    if as_json:
        emit_json(summary)
        return
    for key, value in summary.items():
        if key == "tau" and isinstance(value, dict):  # setfn's prior variances, by term
            value = ", ".join(f"{_TAU_TERMS.get(k, k)} {v:g}" for k, v in value.items())
        elif isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        typer.echo(f"{key}: {value}")


#: setfn's prior-variance terms (docs/affinity.md, "setfn"): what each letter of `tau` is
_TAU_TERMS = {
    "a": "target offset (a)",
    "b": "source effect (b)",
    "d": "target-specific effect (d)",
    "c": "set size (c)",
}


@app.command("top")
def top(
    target: Annotated[str, typer.Option("--target", help="Task to recommend auxiliary tasks for.")],
    k: Annotated[int, typer.Option("-k", "--k", help="Number of auxiliary sets to list.")] = 5,
    max_size: Annotated[
        int | None, typer.Option("--max-size", help="Largest auxiliary set to consider.")
    ] = None,
    method: MethodOption = "setfn",
    storage: StorageOption = None,
    table: TableOption = None,
    split: SplitOption = None,
    metric: MetricOption = None,
    text_embeddings: EmbedOption = False,
    hyperprior: PriorOption = None,
    pooling: PoolingOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the auxiliary sets with the highest predicted gain for a target, beside the measured gains."""
    _at_least(k, "-k", 1)
    _at_least(max_size, "--max-size", 1)
    _one_source(storage, table)
    _embeddings_option(method, text_embeddings)
    with stderr_console.status(f"fitting {method}"):
        report = recommendation_report(
            target, storage=storage, table=table, k=k, max_size=max_size, method=method,
            split=split, metric=metric, text_embeddings=text_embeddings, hyperprior=hyperprior, pooling=pooling,
        )  # fmt: skip
    if as_json:
        emit_json(report.to_dict())
        _notes(report.notes)  # in the object, and on stderr as without --json
        return
    kind = report.gain_kind
    value = f"predicted {kind} gain" if report.calibrated is not False else "lookahead score"
    # Not "runs": it counts every run behind the prediction, not the runs of the set alone.
    evidence = "lookahead matrices" if method == "lookahead" else "evidence runs"
    # Headers and auxiliaries with spaces wrap in a narrow terminal instead of being cut.
    # A relative gain is shown beside the absolute one; an absolute gain is shown once.
    columns = ["auxiliaries", f"{value} ± std", f"measured {kind} gain"]
    columns += ["measured absolute gain"] if kind != "absolute" else []
    columns += [evidence]
    display = [
        {"auxiliaries": " + ".join(r.auxiliaries),
         f"{value} ± std": f"{r.predicted_gain:+.4f} ± {r.std:.4f}",
         "measured absolute gain": _signed(absolute),
         f"measured {kind} gain": _signed(r.measured_gain),
         evidence: r.evidence_runs}
        for r, absolute in zip(report.recommendations, report.measured_absolute, strict=True)
    ]  # fmt: skip
    emit_rows(display, columns=columns,
              title=f"auxiliary sets for {target} ({report.scored_by}): "
                    f"{_predicted_title(method, kind, report.calibrated)}, beside the gain as "
                    "measured where the set ran (not run: empty)")  # fmt: skip
    _notes(report.notes)


def _predicted_title(method: str, kind: str, calibrated: bool | None) -> str:
    """Return what ``method``'s number in ``affinity top`` is (docs/affinity.md, estimators)."""
    if method == "lookahead":
        if not calibrated:
            return (
                "lookahead's uncalibrated score (the mean relative drop in the target's loss "
                "after a step on a task of the set: a ranking, not a gain)"
            )
        return f"lookahead's score calibrated on the measured single-auxiliary {kind} gains"
    described = {
        "setfn": f"setfn's predicted {kind} gain, shrunk toward what the other sets show",
        "pairwise": f"pairwise's sum of the measured single-auxiliary {kind} gains",
        "hoa": f"hoa's mean of the measured single-auxiliary {kind} gains",
        "sourcerank": f"sourcerank's predicted {kind} gain, learned from the other targets",
        "textemb": f"textemb's {kind} gain from task-text similarity",
    }
    return described.get(method, f"{method}'s predicted {kind} gain")


def _notes(notes: tuple[str, ...]) -> None:
    for note in notes:
        typer.echo(f"note: {note}", err=True)


def _signed(value: float | None) -> str:
    return "" if value is None else f"{value:+.4f}"


@app.command("groups")
def groups(
    budget: Annotated[
        float,
        typer.Option(
            "--budget", help="Inference budget: how many networks may be trained (each costs 1)."
        ),
    ],
    tasks: Annotated[
        str | None,
        typer.Option(
            "--tasks", help="Comma-separated tasks to group (default: every target with records)."
        ),
    ] = None,
    max_size: Annotated[
        int | None,
        typer.Option(
            "--max-size",
            help="Largest network to consider (default: all sizes up to 10 tasks, else 3).",
        ),
    ] = None,
    method: MethodOption = "setfn",
    storage: StorageOption = None,
    table: TableOption = None,
    split: SplitOption = None,
    metric: MetricOption = None,
    text_embeddings: EmbedOption = False,
    hyperprior: PriorOption = None,
    pooling: PoolingOption = None,
    as_json: JsonOption = False,
) -> None:
    """Choose which tasks to train together under an inference budget (measured scores where known)."""
    if not math.isfinite(budget):
        raise ConfigError(f"`--budget` must be a finite number, but got {budget}")
    if budget <= 0:  # checked here to name the option; the Python API names `budget`
        raise ConfigError(f"`--budget` must be > 0, but got {budget:g}")
    _at_least(max_size, "--max-size", 1)
    chosen = None if tasks is None else [t.strip() for t in tasks.split(",") if t.strip()]
    if chosen == []:
        raise ConfigError(
            f"`--tasks` names no task (got {tasks!r}): give comma-separated tasks, or leave "
            "--tasks out to group every target with records"
        )
    _one_source(storage, table)
    _embeddings_option(method, text_embeddings)
    with stderr_console.status(f"fitting {method} and choosing networks"):
        report = grouping_report(
            budget,
            tasks=chosen,
            storage=storage,
            table=table,
            max_size=max_size,
            method=method,
            split=split,
            metric=metric,
            text_embeddings=text_embeddings,
            hyperprior=hyperprior,
            pooling=pooling,
        )
    grouping = report.grouping
    _notes(report.notes)
    if as_json:
        emit_json(report.to_dict())
        return
    rows = []
    for detail in report.to_dict()["network_details"]:
        predicted = ", ".join(detail["predicted"])
        measured = (
            "yes" if detail["measured"]
            else f"partly ({predicted} predicted)" if detail["partly"]
            else "no (predicted)"
        )  # fmt: skip
        rows.append(
            {"network": detail["network"], "serves": detail["serves"], "measured": measured}
        )
    predicted_tasks = report.predicted_tasks
    kind = (
        "" if not predicted_tasks
        else " (predicted)" if len(predicted_tasks) == len(grouping.assignment)
        else " (partly predicted)"
    )  # fmt: skip
    emit_rows(rows, columns=["network", "serves", "measured"],
              title=f"budget {budget:g}: total score {grouping.total:.5g}{kind} ({grouping.method})")  # fmt: skip


@app.command("graph")
def graph(
    output: Annotated[
        Path,
        typer.Option(
            "-o",
            "--output",
            parser=nonempty_path("the file to write, or '-' for stdout"),
            help="File to write, or '-' for stdout.  A new path or a regular file (replaced "
            "atomically); a symlink is written through; a device, FIFO or directory is refused.",
        ),
    ],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help=f"Output format: {', '.join(GRAPH_FORMATS)} (default: the output file's "
            "suffix; needed with '-o -').",
            show_default=False,
        ),
    ] = None,
    min_evidence: Annotated[
        int,
        typer.Option("--min-evidence", min=0, help="Leave out edges backed by fewer runs."),
    ] = 0,
    method: MethodOption = "setfn",
    storage: StorageOption = None,
    table: TableOption = None,
    split: SplitOption = None,
    metric: MetricOption = None,
    text_embeddings: EmbedOption = False,
    hyperprior: PriorOption = None,
    pooling: PoolingOption = None,
) -> None:
    """Export the affinity graph (edge s -> t: gain of t from s) as GraphML, JSON, DOT or PNG."""
    if fmt is not None and fmt not in GRAPH_FORMATS:
        raise ConfigError(f"`--format` must be one of {list(GRAPH_FORMATS)}, but got {fmt!r}")
    _one_source(storage, table)
    _embeddings_option(method, text_embeddings)
    # Checked before any work: a device, a FIFO or a directory is refused, never replaced.
    # So is the records database it reads (`-o x.db --storage sqlite:///x.db`).
    target = resolve_output(output, storage=None if table else resolve_storage_url(storage))
    if fmt is None:  # after the checks of `-o`: `-o taskgraph.db` is refused as the database
        fmt = _graph_format_from_suffix(output)
    suffix = output.suffix.lower().removeprefix(".")
    if suffix in GRAPH_FORMATS and suffix != fmt:  # `--format png -o g.json`: likely a slip
        typer.echo(
            f"warning: `--output` {output} ends in .{suffix}, but `--format {fmt}` writes {fmt}",
            err=True,
        )
    with stderr_console.status(f"fitting {method}"):
        report = graph_report(
            storage=storage, table=table, min_evidence=min_evidence, method=method,
            split=split, metric=metric, text_embeddings=text_embeddings, hyperprior=hyperprior,
            pooling=pooling,
        )  # fmt: skip
    graph = report.graph
    _notes(report.notes)
    if fmt == "json":  # the export carries its caveats too (GraphML and DOT hold no lists)
        graph.graph["notes"] = list(report.notes)
    if target is None:  # `-o -`: written to a scratch file, then copied to standard output
        with tempfile.TemporaryDirectory() as scratch:
            written = write_graph(graph, Path(scratch) / f"graph.{fmt}", fmt=fmt)
            write_output(None, written.read_bytes())
        return
    with output_errors(output):
        written = write_graph(graph, target, fmt=fmt)
    # On stderr, as `records export` says it: stdout is for what was asked for.
    typer.echo(f"wrote {output}", err=True)


def _graph_format_from_suffix(output: Path) -> str:
    """Return the graph format that ``output``'s suffix names (``-o g.png``: png)."""
    formats = ", ".join(GRAPH_FORMATS)
    if str(output) == "-":  # standard output has no name to tell the format by
        raise ConfigError(f"`--output -` (standard output) needs `--format` ({formats})")
    suffix = output.suffix.lower()
    if suffix.removeprefix(".") in GRAPH_FORMATS:
        return suffix.removeprefix(".")
    ending = f"{', '.join('.' + name for name in GRAPH_FORMATS[:-1])} or .{GRAPH_FORMATS[-1]}"
    found = f"ends in {suffix}, which names no graph format" if suffix else "has no suffix"
    raise ConfigError(
        f"`--output` {str(output)!r} {found}: give `--format` ({formats}) or a file ending "
        f"in {ending}"
    )
