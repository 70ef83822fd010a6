"""``taskgraph study``: validate, run, submit, resume and inspect studies.

Every command that touches the database takes ``--storage URL``; the URL comes from that
option, else ``TASKGRAPH_STORAGE``, else the spec's ``storage`` field, else
``sqlite:///taskgraph.db``.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from taskgraph.cli.output import emit_json, emit_rows, stderr_console, stdout_console
from taskgraph.errors import ConfigError

app = typer.Typer(
    add_completion=False,
    help="Validate, run, submit, resume and inspect studies.",
    no_args_is_help=True,
)

StorageOption = Annotated[
    str | None,
    typer.Option(
        "--storage",
        help="Records database URL; overrides TASKGRAPH_STORAGE, then the spec's `storage`, "
        "then sqlite:///taskgraph.db.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
TrialsOption = Annotated[
    int | None, typer.Option("--trials", min=1, help="Budget of trials (overrides budget.trials).")
]
RunnerOption = Annotated[
    str | None,
    typer.Option("--runner", help="Runner: local, ray or tabular (overrides runner.name)."),
]
AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address", help="Ray cluster address for the ray runner, e.g. auto or ray://head:10001."
    ),
]
DataOption = Annotated[
    Path | None,
    typer.Option(
        "--data", help="Data directory (overrides the spec's data_dir and TASKGRAPH_DATA)."
    ),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Override a spec field: dotted.path=value (value read as YAML), repeatable; e.g. "
        "--set search.max_steps=20 --set encoder.name=tiny-bert.",
    ),
]
WallOption = Annotated[
    str | None,
    typer.Option("--wall-time", help="Wall-time budget of this invocation, e.g. 600, 10m, 2h."),
]


def _overrides(
    *, trials: int | None, runner: str | None, address: str | None, wall_time: str | None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if trials is not None:
        out["budget.trials"] = trials
    if runner is not None:
        out["runner"] = {"name": runner}
    if address is not None:
        out.setdefault("runner", {"name": "ray"})
        out["runner"]["address"] = address
    if wall_time is not None:
        out["budget.wall_time"] = wall_time
    return out


def _parse_sets(values: list[str] | None) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for item in values or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects dotted.path=value, got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ConfigError(f"--set {key}: value {raw!r} is not valid YAML") from None
    return out


def _load_checked(path: Path, overrides: dict[str, Any]) -> Any:
    from taskgraph.spec import load_spec
    from taskgraph.spec.checks import check_spec

    runner = overrides.pop("runner", None)
    spec = load_spec(path, overrides=overrides)
    if runner is not None:
        spec = _with_runner(spec, runner, source=str(path))
    check_spec(spec, source=str(path))
    return spec


def _with_runner(spec: Any, runner: dict[str, Any], *, source: str) -> Any:
    # A runner given on the command line replaces the spec's; keep the spec's settings when
    # the name is the same (so --address only changes the address).
    from taskgraph.spec import spec_from_dict

    data = spec.model_dump(mode="json")
    current = data.get("runner") or {}
    if runner.get("name", current.get("name")) == current.get("name"):
        runner = {**current, **runner}
    data["runner"] = runner
    return spec_from_dict(data, source=source)


def _storage(option: str | None, spec: Any = None) -> str:
    from taskgraph.storage import resolve_storage_url

    return resolve_storage_url(option, spec_storage=None if spec is None else spec.storage)


def _resume_command(name: str, url: str) -> str:
    from taskgraph.storage import mask_url

    return f"taskgraph study resume {shlex.quote(name)} --storage {shlex.quote(mask_url(url))}"


@app.command("validate")
def validate(
    spec: Annotated[Path, typer.Argument(help="Study spec (YAML).")],
    sets: SetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check a study spec: its shape, its names, and the search space it compiles to."""
    from taskgraph.search.space import SearchSpace

    checked = _load_checked(spec, _parse_sets(sets))
    space = SearchSpace(spec=checked)
    summary = {
        "valid": True,
        "file": str(spec),
        "name": checked.name,
        "target": checked.target,
        "candidates": checked.candidate_names,
        "sharing": list(checked.search.sharing),
        "sampler": checked.sampler.name,
        "pruner": checked.pruner.name,
        "runner": checked.runner.name,
        "budget": checked.budget.model_dump(mode="json"),
        "seeds": list(checked.seeds),
        "parameters": space.describe(),
    }
    if as_json:
        emit_json(summary)
        return
    stdout_console.print(
        f"[green]valid[/green] {spec}: study {checked.name!r}, target {checked.target}, "
        f"{len(checked.candidate_names)} candidates, {len(summary['parameters'])} searched "
        f"parameters, sampler {checked.sampler.name}, pruner {checked.pruner.name}, "
        f"runner {checked.runner.name}, budget {checked.budget.trials} trials x "
        f"{len(checked.seeds)} seed(s)",
        soft_wrap=True,
    )


class _ProgressObserver:
    """Shows the study's progress: trials done / total, best so far, ETA."""

    def __init__(self, *, name: str, quiet: bool) -> None:
        from taskgraph.search.engine import EngineObserver

        class Observer(EngineObserver):
            def on_open(inner, progress: Any) -> None:
                self.open(progress)

            def on_wait(inner, seconds: float, n_running: int) -> None:
                stderr_console.print(
                    f"{n_running} trial(s) of an earlier run are still marked running; waiting "
                    f"{seconds:g} s for their heartbeat to go stale, then they are retried",
                    soft_wrap=True,
                )

            def on_trial_start(inner, number: int, config: Any) -> None:
                aux = "+".join(config.auxiliaries) or "target alone"
                self.started[number] = f"trial {number}: {aux} ({config.sharing})"
                self.describe(self.started[number])

            def on_trial_end(inner, number: int, outcome: Any, progress: Any) -> None:
                self.update(progress)
                if self.log_lines:
                    self.log_trial(self.started.pop(number, f"trial {number}"), outcome, progress)

        self.observer = Observer()
        self.quiet = quiet
        # Not a terminal (a log file, CI, `make demo | tee`): a line per finished trial instead
        # of a progress bar, whose redraws a log cannot show.
        self.log_lines = not quiet and not stderr_console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TextColumn("trials, best {task.fields[best]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[current]}"),
            console=stderr_console,
            disable=quiet or self.log_lines,
        )
        self.task = self.progress.add_task(name, total=None, best="-", current="")
        self.started: dict[int, str] = {}  # trial number -> description (Ray runs several)

    def open(self, progress: Any) -> None:
        self.progress.update(self.task, total=progress.budget, completed=progress.n_done)
        self.update(progress)

    def describe(self, text: str) -> None:
        self.progress.update(self.task, current=text)

    def log_trial(self, description: str, outcome: Any, progress: Any) -> None:
        value = "" if outcome.value is None else f" {outcome.value:.4f}"
        best = "-" if progress.best_value is None else f"{progress.best_value:.4f}"
        stderr_console.print(
            f"[{progress.n_done}/{progress.budget}] {description}: "
            f"{outcome.status.value}{value}; best {best}",
            soft_wrap=True,
            highlight=False,
        )

    def update(self, progress: Any) -> None:
        best = "-" if progress.best_value is None else f"{progress.best_value:.4f}"
        self.progress.update(self.task, completed=progress.n_done, best=best)


def _run(spec: Any, *, url: str, data: Path | None, quiet: bool, as_json: bool) -> None:
    from taskgraph.search.study import run_study
    from taskgraph.storage import mask_url

    watcher = _ProgressObserver(name=spec.name, quiet=quiet or as_json)
    if not (quiet or as_json):
        stderr_console.print(
            f"study {spec.name!r}: runner {spec.runner.name}, storage {mask_url(url)}",
            soft_wrap=True,
        )
    try:
        with watcher.progress:
            summary = run_study(spec, storage_url=url, data_dir=data, observer=watcher.observer)
    except KeyboardInterrupt:
        stderr_console.print(
            f"interrupted: the study is saved; finish it with `{_resume_command(spec.name, url)}`",
            soft_wrap=True,
        )
        raise typer.Exit(130) from None
    progress = summary.progress
    result = {**progress.to_dict(), "stopped_because": summary.reason, "detail": summary.detail}
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
            f"study {spec.name!r}: {progress.n_done}/{progress.budget} trials "
            f"({progress.n_complete} complete, {progress.n_pruned} pruned, {progress.n_failed} "
            f"failed); baseline {base}; best {best}. See `taskgraph study show {spec.name}`.",
            soft_wrap=True,
        )
    if summary.reason == "max_failures":
        stderr_console.print(
            f"stopped: {summary.detail}; see `taskgraph study show {spec.name}`", soft_wrap=True
        )
        raise typer.Exit(1)
    if summary.reason == "wall_time" and not as_json:
        stderr_console.print(
            f"wall time reached ({summary.detail}); continue with `{_resume_command(spec.name, url)}`",
            soft_wrap=True,
        )


@app.command("run")
def run(
    spec: Annotated[Path, typer.Argument(help="Study spec (YAML).")],
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
) -> None:
    """Run a study in the foreground until its budget is spent (Ctrl-C: resume later)."""
    overrides = _parse_sets(sets)
    overrides.update(_overrides(trials=trials, runner=runner, address=address, wall_time=wall_time))
    checked = _load_checked(spec, overrides)
    _run(checked, url=_storage(storage, checked), data=data, quiet=quiet, as_json=as_json)


@app.command("resume")
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
) -> None:
    """Finish a stopped or killed study: interrupted trials are failed and retried."""
    from taskgraph.search.study import stored_spec
    from taskgraph.spec.checks import check_spec

    url = _storage(storage)
    runner_override = _overrides(trials=None, runner=runner, address=address, wall_time=None)
    spec = stored_spec(
        name,
        storage_url=url,
        trials=trials,
        wall_time=wall_time,
        runner=runner_override.get("runner"),
    )
    check_spec(spec, source=f"study {name!r}")
    _run(spec, url=url, data=data, quiet=quiet, as_json=as_json)


def _open_study(name: str, url: str) -> Any:
    from taskgraph.search.report import open_study

    return open_study(name, storage_url=url)


@app.command("status")
def status(
    name: Annotated[str, typer.Argument(help="Study name.")],
    storage: StorageOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show how far a study is: trials done of the budget, running, failed, best so far."""
    from taskgraph.search.progress import study_progress

    progress = study_progress(_open_study(name, _storage(storage)))
    data = progress.to_dict()
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


@app.command("list")
def list_studies(
    storage: StorageOption = None,
    as_json: JsonOption = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
) -> None:
    """List the studies in the database with their progress."""
    from taskgraph.search.report import list_progress

    rows = list_progress(storage_url=_storage(storage))
    emit_rows(
        rows,
        columns=["name", "target", "n_done", "budget", "n_failed", "best_value", "baseline_value"],
        as_json=as_json,
        as_csv=as_csv,
    )


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Study name.")],
    storage: StorageOption = None,
    top: Annotated[int, typer.Option("--top", min=1, help="Trials to list by score.")] = 10,
    as_json: JsonOption = False,
) -> None:
    """Show a study: baseline, best task set and configuration, gains of the top trials."""
    from taskgraph.search.report import study_report

    report = study_report(_open_study(name, _storage(storage)), top=None if as_json else top)
    if as_json:
        emit_json(report)
        return
    base = report["baseline"]
    best = report["best"]
    stdout_console.print(
        f"study {report['name']!r} (target {report['target']}, {report['direction']}): "
        f"{report['n_done']}/{report['budget']} trials, {report['n_complete']} complete, "
        f"{report['n_pruned']} pruned, {report['n_failed']} failed, {report['n_running']} running",
        soft_wrap=True,
    )
    if base is not None:
        stdout_console.print(
            f"baseline (target alone, trial {base['trial']}): {base['score']:.4f}", soft_wrap=True
        )
    if best is not None:
        aux = "+".join(best["auxiliaries"] or []) or "(none)"
        stdout_console.print(
            f"best (trial {best['trial']}): {best['score']:.4f} with {aux}, sharing "
            f"{best['configuration'].get('sharing')}"
            + ("" if best["gain"] is None else f", gain {best['gain']:+.4f}"),
            soft_wrap=True,
        )
    emit_rows(
        report["gains"],
        columns=["trial", "auxiliaries", "sharing", "value", "gain"],
        title="trials by score",
    )
    for late in report["not_converged"]:
        # A score still rising at its last evaluation understates the trial: a weak comparison.
        stdout_console.print(
            f"trial {late['trial']}{' (baseline)' if late['role'] == 'baseline' else ''}: "
            f"not converged: still rising ({late['rise']:+.4f} at the last evaluation)",
            soft_wrap=True,
        )
    for failure in report["failures"]:
        stdout_console.print(
            f"trial {failure['trial']} failed: {failure['reason']}", soft_wrap=True
        )


@app.command("submit")
def submit(
    spec: Annotated[Path, typer.Argument(help="Study spec (YAML).")],
    address: Annotated[
        str,
        typer.Option(
            "--address", help="Ray dashboard (job server) address, e.g. http://head:8265."
        ),
    ],
    storage: StorageOption = None,
    trials: TrialsOption = None,
    sets: SetOption = None,
    cluster_address: Annotated[
        str, typer.Option("--cluster-address", help="Ray address the job's driver connects to.")
    ] = "auto",
    cluster_storage: Annotated[
        str | None,
        typer.Option(
            "--cluster-storage",
            help="Database URL as the cluster sees it (default: the --storage URL), e.g. "
            "postgresql+psycopg://user:pw@postgres:5432/taskgraph inside docker compose.",
        ),
    ] = None,
) -> None:
    """Send a study to a running Ray cluster and return at once; follow it with `study status`."""
    from taskgraph.runners.ray import submit_study

    overrides = _parse_sets(sets)
    overrides.update(_overrides(trials=trials, runner="ray", address=None, wall_time=None))
    checked = _load_checked(spec, overrides)
    url = _storage(storage, checked)
    if (cluster_storage or url).startswith("sqlite"):
        stderr_console.print(
            "warning: a SQLite database must be on a file system the cluster shares; use "
            "PostgreSQL (--storage postgresql+psycopg://...) for a real cluster",
            soft_wrap=True,
        )
    job_id = submit_study(
        checked,
        storage_url=url,
        address=address,
        cluster_address=cluster_address,
        cluster_storage_url=cluster_storage,
    )
    stdout_console.print(
        f"submitted study {checked.name!r} as Ray job {job_id}; follow it with "
        f"`taskgraph study status {checked.name} --storage {_masked(url)}`",
        soft_wrap=True,
    )


def _masked(url: str) -> str:
    from taskgraph.storage import mask_url

    return shlex.quote(mask_url(url))


__all__ = ["app"]
