"""``taskgraph records show``: one run, as lines and tables or as its export object."""

from __future__ import annotations

import io
import json
from typing import Annotated, Any

import typer

from taskgraph.cli.options import JsonOption, StorageOption
from taskgraph.cli.output import emit_json, emit_rows, print_line
from taskgraph.storage import Repository, RunRecord, open_repository, resolve_storage_url


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
    emit_rows(settings, columns=("setting", "value"), title="configuration")
    scores = [
        {"task": task, "split": split, "metric": metric, "value": value}
        for task, splits in sorted(run.scores.items())
        for split, metrics in sorted(splits.items())
        for metric, value in sorted(metrics.items())
    ]
    emit_rows(scores, columns=("task", "split", "metric", "value"), title="scores")


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
