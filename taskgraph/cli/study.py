"""``taskgraph study``: validate, run, submit, resume and inspect studies.

Every command that touches the database takes ``--storage URL``; the URL comes from that
option, else ``TASKGRAPH_STORAGE``, else the spec's ``storage`` field, else
``sqlite:///taskgraph.db``.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from taskgraph.cli.options import (
    CsvOption,
    DataOption,
    JsonOption,
    SpecArgument,
    StorageOption,
)
from taskgraph.cli.output import (
    emit_json,
    emit_rows,
    print_line,
    stderr_console,
    stdout_console,
)
from taskgraph.errors import ConfigError
from taskgraph.spec.limits import MAX_STEPS

app = typer.Typer(
    rich_markup_mode="markdown",
    add_completion=False,
    help="Validate, run, submit, resume and inspect studies.",
    no_args_is_help=True,
)

TrialsOption = Annotated[
    int | None, typer.Option("--trials", min=1, help="Budget of trials (overrides budget.trials).")
]
RunnerOption = Annotated[
    str | None,
    typer.Option(
        "--runner",
        help="Runner: local, ray or tabular (overrides runner.name; the spec's other runner "
        "settings are kept only for the same name, and --set runner.* applies after it).",
    ),
]
AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="Ray cluster address, e.g. auto or the GCS's head:6379 (overrides runner.address; "
        "Ray Client's ray:// is refused); local: taskgraph's own Ray on this machine (leaves "
        "a dead cluster stored with a study); switches to the ray runner.",
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
    typer.Option(
        "--wall-time",
        help="Wall-time budget of this invocation only (not stored; without it, the spec's "
        "budget.wall_time), e.g. 600, 10m, 2h.",
    ),
]
TrustOption = Annotated[
    bool,
    typer.Option(
        "--trust-remote-code",
        help="Allow `encoder.options: {trust_remote_code: true}`, which runs Python code "
        "shipped with the model directory.",
    ),
]

# The spec field each command-line option sets: an error in that field names the option.
_OPTION_LABELS = {
    "budget.trials": "--trials",
    "runner.name": "--runner",
    "runner.address": "--address",
}


def _overrides(*, trials: int | None, runner: str | None, address: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if trials is not None:
        out["budget.trials"] = trials
    # --runner and --address are runner.name and runner.address, set before any
    # --set runner.*: the app applies those to the runner they choose.
    out.update(_runner_choice(runner, address) or {})
    return out


def _runner_choice(runner: str | None, address: str | None) -> dict[str, Any] | None:
    """Return ``{"runner.name": ..., "runner.address": ...}`` for --runner/--address (None
    without either); --address alone means the ray runner."""
    if address is not None and not address.strip():
        raise ConfigError(
            "--address is empty: give a Ray cluster address (auto or the GCS's "
            "host:6379), or drop --address"
        )
    if runner is None and address is None:
        return None
    out: dict[str, Any] = {"runner.name": "ray" if runner is None else runner}
    if address is not None:
        out["runner.address"] = address
    return out


def _parse_sets(values: list[str] | None) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for item in values or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects dotted.path=value, got {item!r}")
        if not raw.strip():  # YAML reads it as null, which every field then calls "None"
            raise ConfigError(
                f"--set {key.strip()}= has no value: give one (null for none, '\"\"' for an "
                "empty string)"
            )
        try:
            out[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ConfigError(f"--set {key}: value {raw!r} is not valid YAML") from None
    return out


def _load_checked(
    path: Path,
    overrides: dict[str, Any],
    *,
    labels: dict[str, str] | None = None,
    trust_remote_code: bool = False,
) -> Any:
    """Return the checked spec at ``path`` with ``overrides`` (:func:`taskgraph.app.load_study_spec`)."""
    from taskgraph.app.studies import load_study_spec

    return load_study_spec(path, overrides, labels=labels, trust_remote_code=trust_remote_code)


def _labels(sets: dict[str, Any], options: dict[str, Any]) -> dict[str, str]:
    # --set first, so that an option given explicitly (--trials) names itself.
    labels = {key: f"--set {key}" for key in sets}
    labels.update({key: _OPTION_LABELS.get(key, key) for key in options})
    return labels


_MISSING = object()


def _set_value(key: str, set_key: str, value: Any) -> Any:
    """Return the value that ``--set set_key=value`` gives spec field ``key`` (``_MISSING``
    where it gives none): the field itself, or inside a mapping set whole (``--set
    'budget={trials: 3}'``; ``--set runner=ray`` is the runner's name)."""
    if set_key == key:
        return value
    if not key.startswith(set_key + "."):
        return _MISSING
    if set_key == "runner" and isinstance(value, str):
        value = {"name": value}  # the spec's `runner: ray` shorthand
    for part in key.removeprefix(set_key + ".").split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _refuse_conflicts(
    sets: dict[str, Any], options: dict[str, Any], labels: dict[str, str], *, fixed: str = ""
) -> None:
    """Refuse a ``--set`` that gives a spec field another value than the option that sets it
    (``--set budget.trials=3 --trials 4``): neither silently wins.  ``labels`` name the
    options (``--address`` for the ray runner it implies); ``fixed`` is the key an option
    sets that the user cannot drop (`study submit`'s ray runner)."""
    for key, value in options.items():
        for set_key, set_value in sets.items():
            given = _set_value(key, set_key, set_value)
            if given is _MISSING or given == value:
                continue
            way_out = f"drop --set {set_key}" if key == fixed else "give one"
            raise ConfigError(
                f"{labels.get(key, key)} and --set {set_key} both set spec field {key} "
                f"({value!r} and {given!r}): {way_out}"
            )


def _storage(option: str | None, spec: Any = None) -> str:
    from taskgraph.storage import resolve_storage_url

    return resolve_storage_url(option, spec_storage=None if spec is None else spec.storage)


def _stopped(stop: KeyboardInterrupt, what: str) -> NoReturn:
    """Say how the command was stopped and ``what`` became of its work; exit 130 after Ctrl-C,
    143 after SIGTERM (raised under ``terminate_as_interrupt``, also when a library turned
    it into a plain ``KeyboardInterrupt``)."""
    from taskgraph.search.heartbeat import was_terminated

    terminated = was_terminated(stop)
    how = "terminated (SIGTERM)" if terminated else "interrupted"
    stderr_console.print(f"{how}: {what}", soft_wrap=True)
    raise typer.Exit(143 if terminated else 130) from None


def _study_exists(name: str, url: str) -> bool:
    """Return whether study ``name`` is in the database at ``url`` (True when that cannot be
    read: the study may well be there)."""
    from taskgraph.search.report import read_only_storage
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


@app.command("validate")
def validate(
    spec: SpecArgument,
    sets: SetOption = None,
    as_json: JsonOption = False,
    trust_remote_code: TrustOption = False,
    data: DataOption = None,
) -> None:
    """Check a study spec: its shape, its names, the search space it compiles to, and the
    data directory and every task's files, as `study run` checks them before it writes."""
    from taskgraph.app.studies import runner_of
    from taskgraph.search.space import SearchSpace
    from taskgraph.spec.checks import check_data

    overrides = _parse_sets(sets)
    checked = _load_checked(
        spec, overrides, labels=_labels(overrides, {}), trust_remote_code=trust_remote_code
    )
    # The same checks as `study run` (taskgraph.app.studies.build_engine): a spec that is
    # "valid" here does not fail there for data that is missing, or for a database URL
    # (`$TASKGRAPH_STORAGE`, else the spec's `storage`) whose directory does not exist.
    _storage(None, checked)
    data_dir = check_data(
        checked,
        data_dir=data,
        source=str(spec),
        trains=runner_of(checked).capabilities.trains,
    )
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
        # searched settings that change the target trained alone: a baseline of its own for
        # each under `budget.baselines: per_setting`, else gains hold their change too
        "searched_alone_settings": space.searched_alone_settings(),
        "data_dir": None if data_dir is None else str(data_dir),  # None: no task reads files
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
    searched = summary["searched_alone_settings"]
    if searched and checked.budget.baselines != "per_setting":
        stdout_console.print(
            f"note: the space searches {', '.join(searched)}, which change the target trained "
            "alone: the baseline draws its own, so a trial that draws others measures that "
            "change besides the transfer (`study show` and the affinity commands name it); "
            "`budget.baselines: per_setting` trains a baseline for each, or fix them",
            soft_wrap=True,
        )


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
                self.describe(self.started[number])

            def on_trial_progress(inner, number: int, step: Any) -> None:
                self.step(number, step)

            def on_trial_end(inner, number: int, outcome: Any, progress: Any) -> None:
                self.fractions.pop(number, None)
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
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=20),
            _TrialsDoneColumn(),
            TextColumn("trials, best {task.fields[best]}"),
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
            self.last_eval = f", last evaluation {step.objective:.4f}"
        elif step.step <= 1:
            self.last_eval = ""
        self.describe(text + getattr(self, "last_eval", ""))
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


def _quiet_transformers() -> None:
    # Loading an encoder draws transformers' "Loading weights" tqdm bar on stderr in every
    # trial: noise between the trial lines of a log, and a second bar fighting ours in a
    # terminal.  transformers reads this variable (through huggingface_hub) when it is first
    # imported, which is after this point; Ray workers started from here inherit it.  A user
    # who sets it to 0 keeps the bars.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules and os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] != "0":
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # imported before (in-process callers of the CLI)


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
    from taskgraph.app.studies import run_spec
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


def _done_of_budget(n_done: int, budget: int | None) -> str:
    """Return ``5/20 trials``; past a budget that a smaller ``--trials`` lowered, ``24 trials,
    more than the budget of 20`` (never ``24/20``); ``5 trials`` without a budget (a study
    that taskgraph did not create)."""
    if budget is None:
        return f"{n_done} trials"
    if n_done <= budget:
        return f"{n_done}/{budget} trials"
    return f"{n_done} trials, more than the budget of {budget}"


@app.command("run")
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
    from taskgraph.app.studies import invocation_wall_time

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
        url=_storage(storage, checked),
        data=data,
        quiet=quiet,
        as_json=as_json,
        source=str(spec),
        wall_time=invocation_wall_time(checked, wall_time, source=str(spec), label="--wall-time"),
    )


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
    trust_remote_code: TrustOption = False,
) -> None:
    """Finish a stopped or killed study: interrupted trials are failed and retried.

    --data points at the data directory on this machine (it may differ from the one the
    study started with; the records keep each file's fingerprint).
    """
    from taskgraph.app.studies import invocation_wall_time, resumable_spec

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


@app.command("status")
def status(
    name: Annotated[str, typer.Argument(help="Study name.")],
    storage: StorageOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show how far a study is: trials done of the budget, running, failed, best so far."""
    from taskgraph.app.studies import study_status

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


@app.command("list")
def list_studies(
    storage: StorageOption = None,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """List the studies in the database with their progress (a plain Optuna study in the same
    database is marked "not taskgraph's")."""
    from taskgraph.app.studies import list_studies

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


@app.command("delete")
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
    local runner's folder, the Ray runner's persisted ones).  A study whose trials another
    driver is running (fresh heartbeat), and an Optuna study taskgraph did not create, are
    refused.  Without --yes it asks first, and refuses when stdin is not a terminal.
    """
    from taskgraph.app.studies import delete_study
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


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Study name.")],
    storage: StorageOption = None,
    top: Annotated[
        int | None,
        typer.Option(
            "--top", min=1, help="Trials to list by score [default: 10; with --json, all]."
        ),
    ] = None,
    as_json: JsonOption = False,
    spec: Annotated[
        bool,
        typer.Option(
            "--spec",
            help="Print the spec the study was created with (YAML; JSON with --json), whole: "
            "optuna-dashboard cuts it at 1024 characters.",
        ),
    ] = False,
) -> None:
    """Show a study: baseline, best task set and configuration, gains of the top trials."""
    from taskgraph.app.studies import study_spec, study_summary

    if spec:
        if top is not None:
            raise ConfigError("`--top` lists trials; `--spec` prints the spec alone: give one")
        stored = study_spec(name, storage=_storage(storage))
        if as_json:
            emit_json(stored)
        else:
            import yaml

            typer.echo(yaml.safe_dump(stored, sort_keys=False, allow_unicode=True), nl=False)
        return
    if top is None and not as_json:
        top = 10
    report = study_summary(name, storage=_storage(storage), top=top)
    if as_json:
        emit_json(report)
        return
    base = report["baseline"]
    best = report["best"]
    stdout_console.print(
        f"study {report['name']!r} (target {report['target']}, {report['direction']}): "
        f"{_done_of_budget(report['n_done'], report['budget'])}, {report['n_complete']} complete, "
        f"{report['n_pruned']} pruned, {report['n_failed']} failed, {report['n_running']} running"
        + _repeats_note(report.get("n_repeats") or 0),
        soft_wrap=True,
    )
    # The trials' pretraining is named where some trial pretrained (as the table's column).
    pretrained = any(r.get("pretraining", "none") != "none" for r in report["gains"]) or any(
        _pretraining_of(shown.get("configuration"), searched=False)
        for shown in (base, best)
        if shown is not None
    )
    if base is not None:
        stdout_console.print(
            f"baseline (target alone"
            f"{_pretraining_of(base.get('configuration'), searched=pretrained)}, "
            f"trial {base['trial']}): {base['score']:.4f}",
            soft_wrap=True,
        )
    if best is not None:
        aux = "+".join(best["auxiliaries"] or []) or "target alone"
        stdout_console.print(
            f"best (trial {best['trial']}): {best['score']:.4f} with {aux}"
            f"{_pretraining_of(best.get('configuration'), searched=pretrained)}, sharing "
            f"{best['configuration'].get('sharing')}"
            + _measured(best["measured_absolute_gain"], best["measured_relative_gain"])
            + (
                ", no measured gain (no baseline on its version of the target's data)"
                if base is not None and best.get("no_baseline_because")
                else ""
            )
            + _selection(best.get("data_selection")),
            soft_wrap=True,
        )
    # Headers with spaces wrap in a narrow terminal; the JSON keys name the same numbers.
    rows = [
        {**r, "measured absolute gain": r["measured_absolute_gain"],
         "measured relative gain": r["measured_relative_gain"]}
        for r in report["gains"]
    ]  # fmt: skip
    columns = ["trial", "auxiliaries", "sharing"]
    # The pretraining and selection columns only when some trial has them (most studies do
    # not, and print as before).
    if any(r.get("pretraining", "none") != "none" for r in rows):
        columns.append("pretraining")
    if any(r.get("data_selection") for r in rows):
        columns.append("selection")
        for r in rows:
            r["selection"] = _selection_cell(r.get("data_selection"))
    columns += ["value", "measured absolute gain", "measured relative gain"]
    if any(r.get("repeat_of") is not None for r in rows):
        # A repeat is the earlier trial's measurement told again, not new evidence.
        columns.insert(1, "repeat of")
        for r in rows:
            r["repeat of"] = "" if r.get("repeat_of") is None else f"trial {r['repeat_of']}"
    emit_rows(
        rows,
        columns=columns,
        title=(
            "trials by score (absolute gain = value - baseline; relative = that / baseline)"
            if report.get("direction", "maximize") == "maximize"
            else "trials by score (lower is better: absolute gain = baseline - value; "
            "relative = that / baseline)"
        ),
    )  # fmt: skip
    differing = [r for r in report["gains"] if r.get("differs_from_baseline")]
    if differing:
        names = sorted({name for r in differing for name in r["differs_from_baseline"]})
        stdout_console.print(
            f"{len(differing)} of the {len(report['gains'])} trials shown differ from the "
            f"baseline in settings the study searched ({', '.join(names)}): their measured "
            "gains hold those settings' effect besides the transfer (`--json`: each trial's "
            "`differs_from_baseline`); fix them in the spec to measure the transfer alone",
            soft_wrap=True,
        )
    # Trials on a version of the target's data that no complete baseline ran on: a gain
    # against another version's baseline would hold the data's change besides the transfer.
    unmeasured = [r for r in report["gains"] if r.get("no_baseline_because")]
    if unmeasured and base is not None:
        numbers = ", ".join(str(r["trial"]) for r in sorted(unmeasured, key=lambda r: r["trial"]))
        stdout_console.print(
            f"no measured gain for trial{'s' if len(unmeasured) != 1 else ''} {numbers}: "
            f"{unmeasured[0]['no_baseline_because']} (`--json`: each trial's "
            "`no_baseline_because`)",
            soft_wrap=True,
        )
    for late in report["not_converged"]:
        # A score still rising at its last evaluation understates the trial: a weak comparison.
        # A repeat shares its earlier trial's runs: said so, not a second piece of evidence.
        repeat = late.get("repeat_of")
        stdout_console.print(
            f"trial {late['trial']}{' (baseline)' if late['role'] == 'baseline' else ''}: "
            f"not converged: still rising ({late['rise']:+.4f} at the last evaluation)"
            + ("" if repeat is None else f"; repeat of trial {repeat}: the same measurement"),
            soft_wrap=True,
        )
    for failure in report["failures"]:
        stdout_console.print(
            f"trial {failure['trial']} failed: {failure['reason']}", soft_wrap=True
        )


def _repeats_note(n_repeats: int) -> str:
    """Return ``study show``'s note on repeated trials (none: empty)."""
    if not n_repeats:
        return ""
    return (
        f"; {n_repeats} repeat{'s' if n_repeats != 1 else ''} of an earlier configuration "
        "(counted against the budget, not new measurements)"
    )


class _ScreenProgress:
    """A bar over the screen's joint run (its steps); nothing when quiet or not a terminal."""

    def __init__(self, *, name: str, quiet: bool) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
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


@app.command("screen")
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
    checked = _load_checked(
        spec, overrides, labels=_labels(overrides, {}), trust_remote_code=trust_remote_code
    )
    url = _storage(storage, checked)
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


def _pretraining_of(configuration: dict[str, Any] | None, *, searched: bool) -> str:
    """Return ", pretraining random" for `study show`'s baseline and best lines (", no
    pretraining" where the study searches the stage, else empty)."""
    stage = (configuration or {}).get("pretraining") or {}
    scheme = stage.get("scheme") if isinstance(stage, dict) else None
    if scheme and scheme != "none":
        return f", pretraining {scheme}"
    return ", no pretraining" if searched else ""


def _selection(selection: dict[str, Any] | None) -> str:
    """Return ", keep 0.42 of 3 auxiliaries (1008/2400 examples)" (empty without selection)."""
    if not selection:
        return ""
    kept = selection.get("kept") or {}
    share = ""
    if kept:
        n_kept = sum(int(r.get("kept") or 0) for r in kept.values())
        n_pool = sum(int(r.get("pool") or r.get("examples") or 0) for r in kept.values())
        share = f" ({n_kept}/{n_pool} examples)"
    return f", keep {float(selection.get('keep') or 0):.2f} of each auxiliary{share}"


def _selection_cell(selection: dict[str, Any] | None) -> str:
    """Return "keep 0.46 (184/400)" for the trials table."""
    text = _selection(selection).removeprefix(", keep ")
    return "keep " + text.replace(" of each auxiliary", "").replace(" examples", "") if text else ""


def _measured(absolute: float | None, relative: float | None) -> str:
    """Return ", measured gain +0.2998 (+42.8 % of the baseline)" (empty without a baseline)."""
    if absolute is None:
        return ""
    share = "" if relative is None else f" ({relative:+.1%} of the baseline)"
    return f", measured gain {absolute:+.4f}{share}"


@app.command("submit")
def submit(
    spec: SpecArgument,
    address: Annotated[
        str,
        typer.Option(
            "--address", help="Ray dashboard (job server) address, e.g. http://head:8265."
        ),
    ],
    storage: StorageOption = None,
    trials: TrialsOption = None,
    sets: SetOption = None,
    trust_remote_code: TrustOption = False,
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
    from taskgraph.runners.builtin import require_ray

    require_ray("study submit")  # before the spec's checks, which would name the ray runner
    from taskgraph.runners.ray import submit_study

    if not address.strip():  # required here: dropping it is no way out
        raise ConfigError(
            "--address is empty: give the Ray dashboard (job server) address, e.g. http://head:8265"
        )
    if not cluster_address.strip():
        raise ConfigError(
            "--cluster-address is empty: give a Ray address, or drop --cluster-address"
        )
    overrides = _parse_sets(sets)
    options = _overrides(trials=trials, runner="ray", address=None)
    labels = _labels(overrides, options)
    labels["runner.name"] = "study submit (the ray runner)"
    _refuse_conflicts(overrides, options, labels, fixed="runner.name")
    overrides.update(options)
    checked = _load_checked(spec, overrides, labels=labels, trust_remote_code=trust_remote_code)
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
