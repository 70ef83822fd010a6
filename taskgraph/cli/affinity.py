"""``taskgraph affinity``: fit the task-affinity graph, recommend auxiliaries, group tasks.

Records come from the records database (``--storage URL``, default ``$TASKGRAPH_STORAGE`` or
the local SQLite file) or, with ``--table FILE``, from a results table in the long CSV format
(no database needed).  ``--text-embeddings`` adds TextEmb task embeddings (Vu et al. 2020:
the mean MiniLM embedding of a task's training text) for tasks in the catalog, which gives
targets without records a prediction from similar tasks.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from taskgraph.affinity.estimators.base import ESTIMATORS, AffinityEstimator, make_estimator
from taskgraph.affinity.estimators.setfn import SMALL_DATA_HYPERPRIOR
from taskgraph.affinity.graph import GRAPH_FORMATS, affinity_graph, graph_edges, write_graph
from taskgraph.affinity.grouping import (
    candidate_task_sets,
    predicted_network_scores,
    select_networks,
)
from taskgraph.affinity.longtable import read_long_csv
from taskgraph.affinity.recommend import recommend_auxiliaries
from taskgraph.affinity.records import ScoreRecord
from taskgraph.cli.options import JsonOption, StorageOption
from taskgraph.cli.output import (
    emit_json,
    emit_rows,
    output_errors,
    resolve_output,
    stderr_console,
    write_output,
)
from taskgraph.errors import ConfigError

__all__ = ["app", "load_records", "task_text_embeddings"]

app = typer.Typer(
    add_completion=False,
    help="Fit the task-affinity graph; recommend auxiliary tasks and groupings.",
    no_args_is_help=True,
)

TableOption = Annotated[
    Path | None,
    typer.Option(
        "--table", help="Read records from a long-format CSV table instead of the database."
    ),
]
SplitOption = Annotated[
    str | None,
    typer.Option(
        "--split", help="Split whose scores are used (default: 'dev' or 'val' when present)."
    ),
]
MetricOption = Annotated[
    str | None, typer.Option("--metric", help="Metric whose scores are used (default: all).")
]
MethodOption = Annotated[
    str, typer.Option("--method", help=f"Affinity estimator: {', '.join(ESTIMATORS.names())}.")
]
EmbedOption = Annotated[
    bool,
    typer.Option(
        "--text-embeddings/--no-text-embeddings",
        help="Add MiniLM TextEmb embeddings of catalog tasks (cold start for unseen targets).",
    ),
]
PriorOption = Annotated[
    bool,
    typer.Option(
        "--hyperprior/--no-hyperprior",
        help="setfn only: fit its variances with a weak prior (MAP-II), which keeps predictions from a few records honest; --no-hyperprior is plain evidence maximisation, as the graph-guided sampler fits.",
    ),
]


def load_records(
    *, storage: str | None, table: Path | None, split: str | None, metric: str | None
) -> list[ScoreRecord]:
    """Return the score records from ``table`` (long CSV) or else from the records database."""
    if table is not None:
        data = read_long_csv(table)
        chosen = split or ("val" if "val" in data.splits else data.splits[0])
        return data.to_records(split=chosen)
    from taskgraph.storage import open_repository, resolve_storage_url

    repository = open_repository(resolve_storage_url(storage), create=False)
    try:
        records = repository.score_records(split=split, metric=metric)
    finally:
        repository.close()
    if split is None:
        # Gains of one split are evidence; the same runs scored on dev and test are not two.
        splits = sorted({r.split for r in records})
        preferred = next(
            (s for s in ("dev", "val") if s in splits), splits[0] if len(splits) == 1 else None
        )
        if splits and preferred is None:
            raise ConfigError(f"the records have splits {splits}; choose one with --split")
        records = [r for r in records if r.split == preferred]
    return records


def _lookahead(storage: str | None, table: Path | None) -> list[Any]:
    if table is not None:
        return []
    from taskgraph.storage import open_repository, resolve_storage_url

    repository = open_repository(resolve_storage_url(storage), create=False)
    try:
        return [stored.matrix for stored in repository.lookahead_matrices()]
    finally:
        repository.close()


def task_text_embeddings(tasks: Sequence[str], **options: Any) -> dict[str, np.ndarray]:
    """TextEmb vectors of catalog tasks (:func:`taskgraph.models.task_embeddings.task_text_embeddings`)."""
    # Imported here: the models package imports torch, which the other commands never need.
    from taskgraph.models.task_embeddings import task_text_embeddings as embed

    return embed(tasks, **options)


def _fit(
    method: str,
    records: list[ScoreRecord],
    *,
    lookahead: list[Any],
    embeddings: Mapping[str, np.ndarray],
    hyperprior: bool = True,
) -> AffinityEstimator:
    if not records:
        raise ConfigError("no score records to fit on (run a study, or pass --table FILE)")
    options: dict[str, Any] = {}
    if method in ("setfn", "lookahead") and lookahead:
        options["lookahead"] = lookahead
    if method in ("setfn", "textemb") and embeddings:
        options["task_embeddings"] = embeddings
    if method == "setfn" and hyperprior:
        # Predictions shown to a user: with one target and a handful of gains, plain evidence
        # maximisation puts everything into noise (every set predicted alike) or fits an
        # overconfident additive model; the weak prior avoids both (docs/affinity.md).
        options["hyperprior"] = SMALL_DATA_HYPERPRIOR
    estimator = make_estimator(method, **options)
    with stderr_console.status(f"fitting {method} on {len(records)} records"):
        estimator.fit(records)
    if not estimator.table.gains and method != "textemb":
        raise ConfigError(
            f"none of the {len(records)} records has a single-task baseline of its family to compare with; "
            "run the targets' single-task baselines"
        )
    return estimator


def _prepare(
    *,
    method: str,
    storage: str | None,
    table: Path | None,
    split: str | None,
    metric: str | None,
    embed: bool,
    hyperprior: bool = True,
) -> tuple[AffinityEstimator, list[ScoreRecord]]:
    ESTIMATORS.get(method)  # unknown name: one line listing the known ones, before any work
    records = load_records(storage=storage, table=table, split=split, metric=metric)
    lookahead = _lookahead(storage, table) if method in ("setfn", "lookahead") else []
    names = sorted({t for r in records for t in r.task_set})
    embeddings = task_text_embeddings(names) if embed else {}
    return _fit(
        method, records, lookahead=lookahead, embeddings=embeddings, hyperprior=hyperprior
    ), records


@app.command("fit")
def fit(
    method: MethodOption = "setfn",
    storage: StorageOption = None,
    table: TableOption = None,
    split: SplitOption = None,
    metric: MetricOption = None,
    text_embeddings: EmbedOption = False,
    hyperprior: PriorOption = True,
    as_json: JsonOption = False,
) -> None:
    """Fit an estimator on all records and save its edges (source -> target gains) to the database."""
    estimator, records = _prepare(
        method=method,
        storage=storage,
        table=table,
        split=split,
        metric=metric,
        embed=text_embeddings,
        hyperprior=hyperprior,
    )
    edges = graph_edges(affinity_graph(estimator))
    saved = False
    if table is None:
        from taskgraph.storage import open_repository, resolve_storage_url

        repository = open_repository(resolve_storage_url(storage), create=False)
        try:
            repository.save_affinity_edges(
                [{k: v for k, v in e.items() if k != "method"} for e in edges], method=method
            )
            saved = True
        finally:
            repository.close()
    summary = {**estimator.describe(), "records": len(records), "edges": len(edges), "saved": saved}
    if as_json:
        emit_json(summary)
        return
    for key, value in summary.items():
        typer.echo(f"{key}: {value}")


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
    hyperprior: PriorOption = True,
    as_json: JsonOption = False,
) -> None:
    """List the auxiliary sets with the highest predicted gain for a target."""
    estimator, _ = _prepare(
        method=method,
        storage=storage,
        table=table,
        split=split,
        metric=metric,
        embed=text_embeddings,
        hyperprior=hyperprior,
    )
    if target not in estimator.tasks:
        raise ConfigError(
            f"`--target` {target!r} has no records; known tasks: {', '.join(estimator.tasks)}"
        )
    recommendations = recommend_auxiliaries(estimator, target, k, max_size=max_size)
    rows = [r.to_dict() for r in recommendations]
    emit_rows(rows, columns=["auxiliaries", "predicted_gain", "std", "n_evidence"], as_json=as_json,
              title=f"auxiliary sets for {target} ({method}; gain relative to the baseline)")  # fmt: skip


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
    hyperprior: PriorOption = True,
    as_json: JsonOption = False,
) -> None:
    """Choose which tasks to train together under an inference budget (measured scores where known)."""
    estimator, records = _prepare(
        method=method,
        storage=storage,
        table=table,
        split=split,
        metric=metric,
        embed=False,
        hyperprior=hyperprior,
    )
    chosen = (
        sorted({t.strip() for t in tasks.split(",") if t.strip()}) if tasks else estimator.targets
    )
    unknown = [t for t in chosen if t not in estimator.targets]
    if unknown:
        raise ConfigError(
            f"`--tasks` has no baseline records for {unknown}; known targets: {', '.join(estimator.targets)}"
        )
    baselines, higher, measured = _measured(records, chosen)
    if len(set(higher.values())) > 1:
        # The grouping sums the tasks' scores: an accuracy and a loss cannot share one total.
        up = sorted(t for t in chosen if higher[t])
        down = sorted(t for t in chosen if not higher[t])
        raise ConfigError(
            f"`--tasks` mix higher-is-better scores {up} with lower-is-better scores {down}; "
            "a grouping sums scores of one direction: choose tasks of one kind with --tasks"
        )
    size = max_size if max_size is not None else (len(chosen) if len(chosen) <= 10 else 3)
    networks = candidate_task_sets(chosen, max_size=size)
    scores = predicted_network_scores(
        estimator, baselines, networks=networks, higher_is_better=higher, measured=measured
    )
    grouping = select_networks(
        scores, budget=budget, tasks=chosen, higher_is_better=all(higher.values())
    )
    if as_json:
        emit_json(
            {**grouping.to_dict(), "scores": {t: scores[grouping.assignment[t]][t] for t in chosen}}
        )
        return
    rows = [
        {"network": sorted(n), "serves": sorted(t for t, a in grouping.assignment.items() if a == n),
         "measured": n in measured}
        for n in grouping.networks
    ]  # fmt: skip
    emit_rows(rows, columns=["network", "serves", "measured"],
              title=f"budget {budget:g}: total score {grouping.total:.5g} ({grouping.method})")  # fmt: skip


def _measured(
    records: list[ScoreRecord], tasks: Sequence[str]
) -> tuple[dict[str, float], dict[str, bool], dict[frozenset[str], dict[str, float]]]:
    """Return baselines, directions and measured per-task scores of the task sets within ``tasks``."""
    values: dict[frozenset[str], dict[str, list[float]]] = {}
    higher: dict[str, bool] = {}
    for record in records:
        if record.task_set <= set(tasks) and math.isfinite(record.value):
            values.setdefault(record.task_set, {}).setdefault(record.task, []).append(record.value)
            higher[record.task] = record.higher_is_better
    measured = {
        n: {t: float(np.mean(v)) for t, v in per.items()}
        for n, per in values.items()
        if set(per) == set(n)
    }
    baselines = {t: measured[frozenset({t})][t] for t in tasks if frozenset({t}) in measured}
    missing = [t for t in tasks if t not in baselines]
    if missing:
        raise ConfigError(
            f"no single-task score for {missing}: groupings compare every task with its baseline"
        )
    return baselines, higher, measured


@app.command("graph")
def graph(
    fmt: Annotated[
        str, typer.Option("--format", help=f"Output format: {', '.join(GRAPH_FORMATS)}.")
    ],
    output: Annotated[
        Path,
        typer.Option(
            "-o",
            "--output",
            help="File to write, or '-' for stdout.  A new path or a regular file (replaced "
            "atomically); a symlink is written through; a device, FIFO or directory is refused.",
        ),
    ],
    min_evidence: Annotated[
        int, typer.Option("--min-evidence", help="Leave out edges backed by fewer records.")
    ] = 0,
    method: MethodOption = "setfn",
    storage: StorageOption = None,
    table: TableOption = None,
    split: SplitOption = None,
    metric: MetricOption = None,
    hyperprior: PriorOption = True,
) -> None:
    """Export the affinity graph (edge s -> t: gain of t from s) as GraphML, JSON, DOT or PNG."""
    if fmt not in GRAPH_FORMATS:
        raise ConfigError(f"`--format` must be one of {list(GRAPH_FORMATS)}, but got {fmt!r}")
    # Checked before any work: a device, a FIFO or a directory is refused, never replaced.
    target = resolve_output(output)
    estimator, _ = _prepare(
        method=method,
        storage=storage,
        table=table,
        split=split,
        metric=metric,
        embed=False,
        hyperprior=hyperprior,
    )
    graph = affinity_graph(estimator, min_evidence=min_evidence)
    if target is None:  # `-o -`: written to a scratch file, then copied to standard output
        with tempfile.TemporaryDirectory() as scratch:
            written = write_graph(graph, Path(scratch) / f"graph.{fmt}", fmt=fmt)
            write_output(None, written.read_bytes())
        return
    with output_errors(output):
        written = write_graph(graph, target, fmt=fmt)
    typer.echo(f"wrote {output}")
