"""``taskgraph study screen``: rank the candidates by one joint run with lookahead probes
(Fifty et al. 2021), or print a stored screen."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from taskgraph.cli.options import DataOption, JsonOption, SpecArgument, StorageOption
from taskgraph.cli.output import emit_json, emit_rows, stderr_console, stdout_console
from taskgraph.cli.study._common import (
    SetOption,
    TrustOption,
    _labels,
    _load_checked,
    _parse_sets,
    _quiet_transformers,
    _stopped,
    _storage,
)
from taskgraph.errors import ConfigError
from taskgraph.spec.limits import MAX_STEPS


class _ScreenProgress:
    """A bar over the screen's joint run (its steps); nothing when quiet or not a terminal."""

    def __init__(self, *, name: str, quiet: bool) -> None:
        self.progress = Progress(
            TextColumn("{task.description}", style="bold", markup=False),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            TextColumn("steps"),
            TimeElapsedColumn(),
            console=stderr_console,
            disable=quiet or not stderr_console.is_terminal,
        )
        self.task = self.progress.add_task(f"screen {name}", total=None)

    def on_trial_progress(self, number: int, step: Any) -> None:
        self.progress.update(self.task, completed=step.step, total=step.max_steps)


def screen(
    spec: SpecArgument,
    storage: StorageOption = None,
    steps: Annotated[
        int | None,
        typer.Option(
            "--steps",
            min=1,
            help="Optimizer steps of the joint run, every task's counted (default: about one "
            "run of a one-auxiliary trial: max_steps, twice that under step_budget: target; "
            f"at most {MAX_STEPS}).",
        ),
    ] = None,
    probes: Annotated[
        int | None,
        typer.Option(
            "--probes",
            min=1,
            help="Lookahead probes, exactly that many, spread evenly over the steps (at most "
            "the steps, and below them while the warmup starts the learning rate at 0 at the "
            "first step; default: 20, or as many as the steps allow).",
        ),
    ] = None,
    full_matrix: Annotated[
        bool,
        typer.Option(
            "--full-matrix",
            help="Measure every task's loss after each step (n^2 forwards per probe), not "
            "only the target's: affinities between the candidates too (a second table; "
            "--json: matrix).",
        ),
    ] = False,
    data: DataOption = None,
    sets: SetOption = None,
    show_only: Annotated[
        bool,
        typer.Option("--show", help="Print the study's latest screen; train nothing."),
    ] = False,
    which: Annotated[
        int | None,
        typer.Option(
            "--screen",
            help="With --show: which stored screen, by its number: -1 the study's first, -2 "
            "its second (default: the latest; the error lists those it has).",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    as_json: JsonOption = False,
    trust_remote_code: TrustOption = False,
) -> None:
    """Rank every candidate by one joint run of the target with all of them (lookahead on).

    The screen (Fifty et al. 2021) trains the target and every candidate together with hard
    sharing and measures, at each probe, how much a step on each candidate lowers the target's
    loss.  It is stored with the study (created if needed) without spending its trial budget;
    `study run` of the same spec then tries the candidates in the screened order.
    """
    from taskgraph.app.screening import screen_report, screen_study, screen_summary, screen_tables
    from taskgraph.search.heartbeat import terminate_as_interrupt

    if which is not None and not show_only:
        raise ConfigError("`--screen` picks a stored screen to print: give it with --show")
    if show_only:
        training = [
            flag for flag, given in (("--steps", steps is not None), ("--probes", probes is not None),
                                     ("--full-matrix", full_matrix), ("--data", data is not None))
            if given
        ]  # fmt: skip
        if training:
            raise ConfigError(
                f"`--show` prints the stored screen and trains nothing: {', '.join(training)} "
                "would not be used; drop them, or drop --show to run a screen"
            )
    _quiet_transformers()
    overrides = _parse_sets(sets)
    labels = _labels(overrides, {})
    checked = _load_checked(spec, overrides, labels=labels, trust_remote_code=trust_remote_code)
    url = _storage(storage, checked, labels)
    if show_only:
        report = screen_report(checked.name, storage=url, screen=which)
    else:
        watcher = _ScreenProgress(name=checked.name, quiet=quiet or as_json)
        try:
            with terminate_as_interrupt(), watcher.progress:
                report = screen_study(
                    checked,
                    storage=url,
                    data=data,
                    steps=steps,
                    probes=probes,
                    full_matrix=full_matrix,
                    observer=watcher,
                    source=str(spec),
                    trust_remote_code=trust_remote_code,
                )
        except KeyboardInterrupt as stop:
            _stopped(stop, "no screen was stored")
    if as_json:
        emit_json(report)
        return
    for title, columns, rows in screen_tables(report):
        emit_rows(rows, columns=columns, title=title)
    stdout_console.print(screen_summary(report), soft_wrap=True, highlight=False)
