"""``taskgraph study run`` and ``study resume``: drive a study in the foreground, showing its
progress, and say how it ended (the exit status tells a script whether anything came out)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Any

import typer

from taskgraph.cli.options import DataOption, SpecArgument, StorageOption
from taskgraph.cli.output import emit_json, stderr_console, stdout_console
from taskgraph.cli.study._common import (
    AddressOption,
    RunnerOption,
    SetOption,
    TrialsOption,
    TrustOption,
    WallOption,
    _done_of_budget,
    _labels,
    _load_checked,
    _masked,
    _overrides,
    _parse_sets,
    _quiet_transformers,
    _refuse_conflicts,
    _runner_choice,
    _stopped,
    _storage,
)
from taskgraph.cli.study.progress import _ProgressObserver


def _study_exists(name: str, url: str) -> bool:
    """Return whether study ``name`` is in the database at ``url`` (True when that cannot be
    read: the study may well be there)."""
    from taskgraph.search.stored_studies import read_only_storage
    from taskgraph.storage import parse_storage_url
    from taskgraph.storage.urls import sqlite_path

    try:
        path = sqlite_path(parse_storage_url(url))
        if path is not None and not path.exists():
            return False
        storage = read_only_storage(url)
        if storage is None:
            return False
        try:
            storage.get_study_id_from_name(name)
        except KeyError:
            return False
        finally:
            storage.engine.dispose()
    except Exception:
        return True
    return True


def _run(
    spec: Any,
    *,
    url: str,
    data: Path | None,
    quiet: bool,
    as_json: bool,
    source: str,
    wall_time: float | None = None,
) -> None:
    from taskgraph.app.studies.running import run_spec
    from taskgraph.search.heartbeat import terminate_as_interrupt
    from taskgraph.storage import mask_url
    from taskgraph.storage.urls import resume_command

    _quiet_transformers()
    watcher = _ProgressObserver(
        name=spec.name,
        quiet=quiet or as_json,
        header=f"study {spec.name!r}: runner {spec.runner.name}, storage {mask_url(url)}",
        budget=spec.budget.trials,
        searches_pretraining=spec.search.pretraining.enabled,
        searches_selection=spec.search.data_selection is not None,
    )
    try:
        # `kill <pid>` (SIGTERM) stops a background driver the way Ctrl-C stops a foreground one.
        with terminate_as_interrupt(), watcher.progress:
            summary = run_spec(
                spec,
                storage_url=url,
                data_dir=data,
                observer=watcher.observer,
                source=source,
                wall_time=wall_time,
            )
    except KeyboardInterrupt as stop:
        if not _study_exists(spec.name, url):
            # Stopped while checking the data or opening the database: no resume to offer.
            _stopped(
                stop,
                f"nothing was started (study {spec.name!r} was not created yet); "
                "run the same `taskgraph study run` command again",
            )
        _stopped(stop, f"the study is saved; finish it with `{resume_command(spec.name, url)}`")
    progress = summary.progress
    result = summary.to_dict()
    show = f"taskgraph study show {shlex.quote(spec.name)} --storage {_masked(url)}"
    if as_json:
        emit_json(result)
    else:
        best = (
            "-"
            if progress.best_value is None
            else f"{progress.best_value:.4f} (trial {progress.best_number})"
        )
        base = "-" if progress.baseline_value is None else f"{progress.baseline_value:.4f}"
        stdout_console.print(
            f"study {spec.name!r}: {_done_of_budget(progress.n_done, progress.budget)} "
            f"({progress.n_complete} complete, {progress.n_pruned} "
            f"pruned, {progress.n_failed} failed); baseline {base}; best {best}. "
            f"See `{show}`.",
            soft_wrap=True,
        )
    if summary.reason == "max_failures":
        stderr_console.print(f"stopped: {summary.detail}; see `{show}`", soft_wrap=True)
        raise typer.Exit(1)
    if progress.n_done and not (progress.n_complete or progress.n_pruned):
        # Nothing usable came out: a script or CI job must not read this as success.
        stderr_console.print(
            f"failed: every trial of study {spec.name!r} failed; see `{show}` for the reasons",
            soft_wrap=True,
        )
        raise typer.Exit(1)
    if summary.reason == "wall_time" and not as_json:
        stderr_console.print(
            f"wall time reached ({summary.detail}); continue with `{resume_command(spec.name, url)}`",
            soft_wrap=True,
        )
    if summary.reason == "exhausted" and not as_json:
        stderr_console.print(f"stopped before the budget: {summary.detail}", soft_wrap=True)
    if summary.reason == "budget" and progress.n_running and not as_json:
        # The budget counts running trials: another driver's (or a killed one's) hold it.
        stderr_console.print(
            f"{progress.n_running} trial(s) of another driver are still running and hold the "
            "rest of the budget; if that driver is gone, "
            f"`{resume_command(spec.name, url)}` retries them once their heartbeat is stale",
            soft_wrap=True,
        )


def run(
    spec: SpecArgument,
    storage: StorageOption = None,
    trials: TrialsOption = None,
    runner: RunnerOption = None,
    address: AddressOption = None,
    data: DataOption = None,
    wall_time: WallOption = None,
    sets: SetOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the final progress as JSON.")
    ] = False,
    trust_remote_code: TrustOption = False,
) -> None:
    """Run a study in the foreground until its budget is spent (Ctrl-C: resume later).

    The spec, every --set value, the data directory and every task's files are checked
    before anything is written to the database.
    """
    from taskgraph.app.studies.running import invocation_wall_time

    _quiet_transformers()  # before the checks import transformers
    overrides = _parse_sets(sets)
    # Not --wall-time: it limits this invocation and is not stored with the study.
    options = _overrides(trials=trials, runner=runner, address=address)
    labels = _labels(overrides, options)
    named = dict(labels)
    if runner is None and address is not None:
        labels["runner.name"] = "--address"  # --address alone chose the ray runner
        named["runner.name"] = "--address (the ray runner)"
    _refuse_conflicts(overrides, options, named)  # before anything else: neither wins
    overrides.update(options)
    checked = _load_checked(spec, overrides, labels=labels, trust_remote_code=trust_remote_code)
    _run(
        checked,
        url=_storage(storage, checked, labels),
        data=data,
        quiet=quiet,
        as_json=as_json,
        source=str(spec),
        wall_time=invocation_wall_time(checked, wall_time, source=str(spec), label="--wall-time"),
    )


def resume(
    name: Annotated[str, typer.Argument(help="Study name.")],
    storage: StorageOption = None,
    trials: TrialsOption = None,
    runner: RunnerOption = None,
    address: AddressOption = None,
    data: DataOption = None,
    wall_time: WallOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the final progress as JSON.")
    ] = False,
    trust_remote_code: TrustOption = False,
) -> None:
    """Finish a stopped or killed study: interrupted trials are failed and retried.

    --data points at the data directory on this machine (it may differ from the one the
    study started with; the records keep each file's fingerprint).
    """
    from taskgraph.app.studies.running import invocation_wall_time, resumable_spec

    _quiet_transformers()
    url = _storage(storage)
    choice = _runner_choice(runner, address)
    spec = resumable_spec(
        name,
        storage_url=url,
        trials=trials,
        runner=None if choice is None else {"name": choice["runner.name"]},
        fields={k: v for k, v in (choice or {}).items() if k != "runner.name"},
        labels={"runner.name": "--address" if runner is None else "--runner"}
        | {"runner.address": "--address"},
        trust_remote_code=trust_remote_code,
    )
    source = f"study {name!r}"
    wall = invocation_wall_time(spec, wall_time, source=source, label="--wall-time")
    _run(spec, url=url, data=data, quiet=quiet, as_json=as_json, source=source, wall_time=wall)
