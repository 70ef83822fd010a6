"""The live display of ``study run`` and ``study resume``: a line per finished trial, and in
a terminal a bar with the running trial, the best so far and the time left.

:class:`_ProgressObserver` turns the engine's events (an
:class:`~taskgraph.search.engine.EngineObserver`) into that display.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from taskgraph.cli.output import stderr_console


class _EtaColumn(ProgressColumn):
    """Time left: this run's seconds per trial so far times the trials left.

    Rich's own column estimates a speed over the last 30 s only, so it shows ``-:--:--``
    whenever a trial takes longer than that; the work done here counts each running trial's
    share of its steps, so the estimate appears within the first trial.
    """

    def __init__(self, watcher: _ProgressObserver) -> None:
        super().__init__()
        self.watcher = watcher

    def render(self, task: Task) -> Text:
        seconds = self.watcher.eta()
        shown = "-:--:--" if seconds is None else str(timedelta(seconds=round(seconds)))
        return Text(f"ETA {shown}", style="progress.remaining")


class _TrialsDoneColumn(ProgressColumn):
    """``done/total``: the trials that have ended.  The bar moves within a running trial by its
    steps (``completed`` counts its share), but a trial at its last step still has its final
    evaluation to run: rich's ``MofNCompleteColumn`` rounded ``completed`` and showed it done."""

    def render(self, task: Task) -> Text:
        total = "?" if task.total is None else str(int(task.total))
        return Text(f"{task.fields.get('done', 0)}/{total}", style="progress.download")


class _StudyProgress(Progress):
    """The study's bar, then the running trial on a line of its own (it is long: the task
    set, the step, the last evaluation), as rich's docs show for a custom display."""

    def get_renderables(self) -> Any:
        yield self.make_tasks_table(self.tasks)
        current = self.tasks[0].fields.get("current", "") if self.tasks else ""
        if current:
            yield Text(f"  {current}", no_wrap=True, overflow="ellipsis")


class _ProgressObserver:
    """Shows the study's progress: a line per finished trial, and in a terminal a live bar
    (trials done / total, moving within a trial by its steps), the best so far and the ETA."""

    def __init__(
        self,
        *,
        name: str,
        quiet: bool,
        header: str = "",
        budget: int | None = None,
        searches_pretraining: bool = False,
        searches_selection: bool = False,
    ) -> None:
        from taskgraph.search.engine import EngineObserver

        class Observer(EngineObserver):
            def on_open(inner, progress: Any) -> None:
                if self.header and not self.quiet:
                    # Printed once the study is open: an error in the checks before it
                    # (data, another spec) is then the only line.
                    stderr_console.print(self.header, soft_wrap=True, highlight=False)
                self.open(progress)

            def on_wait(inner, seconds: float, n_running: int) -> None:
                stderr_console.print(
                    f"{n_running} trial(s) are marked running (a killed earlier run, or another "
                    f"driver of this study); waiting until each beats again (a live driver's, "
                    f"left to it) or at most {seconds:g} s (then those gone stale are retried)",
                    soft_wrap=True,
                )

            def on_trial_start(inner, number: int, config: Any) -> None:
                aux = "+".join(config.auxiliaries) or "target alone"
                self.started[number] = f"trial {number}: {aux} ({config.sharing})" + _stages(
                    config,
                    pretraining=self.searches_pretraining,
                    selection=self.searches_selection,
                )
                self.fractions[number] = 0.0
                self.last_evals.pop(number, None)
                self.describe(self.started[number])

            def on_trial_progress(inner, number: int, step: Any) -> None:
                self.step(number, step)

            def on_trial_end(inner, number: int, outcome: Any, progress: Any) -> None:
                self.fractions.pop(number, None)
                self.last_evals.pop(number, None)
                self.update(progress)
                ended = self.started.pop(number, f"trial {number}")
                if not self.quiet:
                    self.log_trial(ended, outcome, progress)
                # The live line described this trial (its last step): show one still running
                # (Ray runs several), else nothing, never a trial that has ended.
                self.describe(next(reversed(self.started.values()), ""))

        self.observer = Observer()
        self.quiet = quiet
        self.header = header
        # Trials that differ only in these read alike without them ("target alone (hard)").
        self.searches_pretraining = searches_pretraining
        self.searches_selection = searches_selection
        # Not a terminal (a log file, CI, `make demo | tee`): only the lines, no bar, whose
        # redraws a log cannot show.  In a terminal the lines print above the live bar.
        self.bar = not quiet and stderr_console.is_terminal
        self.progress = _StudyProgress(
            TextColumn("{task.description}", style="bold", markup=False),
            BarColumn(bar_width=20),
            _TrialsDoneColumn(),
            TextColumn("trials, best {task.fields[best]}", markup=False),
            TimeElapsedColumn(),
            _EtaColumn(self),
            console=stderr_console,
            disable=not self.bar,
        )
        # The spec's budget until the study is open: a resume that first waits out a grace
        # period shows `0/24`, not `0/?`.
        self.task = self.progress.add_task(name, total=budget, best="-", current="", done=0)
        self.started: dict[int, str] = {}  # trial number -> description (Ray runs several)
        self.fractions: dict[int, float] = {}  # running trial -> share of its training done
        # running trial -> its last evaluation's words: a trial (one resumed past step 1, one
        # of several Ray runs) never shows another's
        self.last_evals: dict[int, str] = {}
        self.budget = 0
        self.n_done = 0
        self.n_done_at_open = 0
        self.opened_at: float | None = None

    def open(self, progress: Any) -> None:
        self.opened_at = time.monotonic()
        self.n_done_at_open = progress.n_done
        self.update(progress)

    def describe(self, text: str) -> None:
        self.progress.update(self.task, current=text)

    def step(self, number: int, step: Any) -> None:
        self.fractions[number] = step.fraction
        text = f"{self.started.get(number, f'trial {number}')}, step {step.step}/{step.max_steps}"
        if step.n_phases > 1:
            text += f" (phase {step.phase_index + 1}/{step.n_phases})"
        if step.n_seeds > 1:
            text += f" (seed {step.seed_index + 1}/{step.n_seeds})"
        if step.objective is not None:
            self.last_evals[number] = f", last evaluation {step.objective:.4f}"
        elif step.step <= 1:  # a new seed or phase starts afresh
            self.last_evals.pop(number, None)
        self.describe(text + self.last_evals.get(number, ""))
        self.progress.update(self.task, completed=self.n_done + sum(self.fractions.values()))

    def eta(self) -> float | None:
        """Return the seconds left: this run's seconds per unit of work times the work left."""
        if self.opened_at is None:
            return None
        running = sum(self.fractions.values())
        done = self.n_done - self.n_done_at_open + running
        left = max(self.budget - self.n_done - running, 0.0)
        if left == 0:
            return 0.0
        if done <= 0:
            return None
        return (time.monotonic() - self.opened_at) / done * left

    def log_trial(self, description: str, outcome: Any, progress: Any) -> None:
        value = "" if outcome.value is None else f" {outcome.value:.4f}"
        if outcome.value is None and outcome.last_intermediate is not None:
            value = f" at {outcome.last_intermediate:.4f}"  # a pruned trial's last evaluation
        reason = f" ({outcome.failure_reason})" if outcome.failure_reason else ""
        best = "-" if progress.best_value is None else f"{progress.best_value:.4f}"
        stderr_console.print(
            f"[{progress.n_done}/{max(progress.budget, progress.n_done)}] {description}: "
            f"{outcome.status.value}{value}{reason}; best {best}",
            soft_wrap=True,
            highlight=False,
            markup=False,
        )

    def update(self, progress: Any) -> None:
        self.budget, self.n_done = progress.budget, progress.n_done
        best = "-" if progress.best_value is None else f"{progress.best_value:.4f}"
        self.progress.update(
            self.task,
            total=max(progress.budget, progress.n_done),  # never "24/20" after --trials 20
            completed=progress.n_done + sum(self.fractions.values()),
            best=best,
            done=progress.n_done,
        )


def _stages(config: Any, *, pretraining: bool, selection: bool) -> str:
    """Return a trial's ", pretraining random, selection keep 0.42" for its progress line:
    the stages it ran, and "no pretraining" / "no selection" where the study searches them."""
    text = ""
    if config.pretraining is not None:
        text += f", pretraining {config.pretraining.scheme}"
    elif pretraining:
        text += ", no pretraining"
    if config.data_selection is not None:
        text += f", selection keep {config.data_selection.keep:.2f}"
    elif selection and config.auxiliaries:  # the target alone has nothing to select
        text += ", no selection"
    return text
