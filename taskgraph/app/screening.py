"""Screening a study: one joint run of the target with every candidate, lookahead on.

``taskgraph study screen SPEC`` calls :func:`screen_study`; ``--show`` (no training) calls
:func:`screen_report`.  The screen trains in this process (the ``local`` runner's evaluator,
whatever runner the spec names for its trials), is stored with the study
(:meth:`~taskgraph.storage.Repository.add_screen`: a run with ``transfer_mode = "screen"``, a
negative trial number and no score rows, so it spends none of the trial budget and no gain
sees it) and creates the study when it does not exist yet, so that ``study run`` of the same
spec starts its graph-guided proposals from the screened ranking.  A new study is created only
after the joint run has succeeded: a failed or interrupted screen leaves no study behind.  A
re-screen adds a screen; the latest one counts.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskgraph.app.arguments import storage_url as resolved_url
from taskgraph.errors import ConfigError, NotFoundError, TaskgraphError, option_name
from taskgraph.spec.limits import MAX_STEPS
from taskgraph.spec.models import StudySpec

if TYPE_CHECKING:
    from taskgraph.search.engine import StudyEngine

__all__ = ["screen_report", "screen_study", "screen_summary", "screen_tables", "study_trial_cost"]

PathLike = str | os.PathLike[str]


def _no_embeddings(tasks: Sequence[str], **_: Any) -> dict[str, Any]:
    # Opening the study for its screen needs no text-embedding start-up prior: the screen is
    # about to give a better one.
    return {}


def screen_study(
    spec_or_path: StudySpec | PathLike,
    *,
    storage: str | None = None,
    data: PathLike | None = None,
    steps: int | None = None,
    probes: int | None = None,
    full_matrix: bool = False,
    observer: Any = None,
    source: str | None = None,
    trust_remote_code: bool = False,
    **overrides: Any,
) -> dict[str, Any]:
    """Run and store a screen of a study; return its report (:func:`screen_report`).

    ``spec_or_path``, ``storage``, ``data`` and ``overrides`` (``budget__trials=4``) as in
    :func:`~taskgraph.app.studies.run_study`: a spec file or a
    :class:`~taskgraph.spec.StudySpec`, the records database (default: ``TASKGRAPH_STORAGE``,
    then the spec's ``storage``, then ``sqlite:///taskgraph.db``), the data directory.
    ``steps`` / ``probes`` / ``full_matrix``: :func:`taskgraph.search.screening.screen_config`
    (exactly ``probes`` probes run, spread evenly over the steps).  ``observer``: an
    :class:`~taskgraph.search.engine.EngineObserver` whose ``on_trial_progress`` sees the
    joint run's steps (trial number -1).  ``trust_remote_code``: allow
    ``encoder.options.trust_remote_code: true`` (the CLI's ``--trust-remote-code``), as in
    :func:`~taskgraph.app.studies.run_study`.  Nothing is written before the spec's data is
    found.  A study that exists is opened (and checked against the
    spec) before the joint run; a new one is created only after it, so that a failed or
    interrupted run leaves the database as it was (a SQLite file that was not there is not
    created).  A failed joint run raises :class:`~taskgraph.errors.TaskgraphError` with its
    reason.
    """
    from taskgraph.app.arguments import filesystem_path, flag, integer
    from taskgraph.app.studies.running import build_engine
    from taskgraph.app.studies.specs import checked_spec, runner_of
    from taskgraph.registry import RUNNERS
    from taskgraph.search.recording import code_version
    from taskgraph.search.screening import screen_config, screen_probe_count
    from taskgraph.search.watching import ObserverCallback

    # The command line's --steps and --probes are at least 1 too.
    steps = None if steps is None else integer(steps, "steps", minimum=1)
    if steps is not None and steps > MAX_STEPS:
        # A typo (an extra zero or three) would train for days: bounded as search.max_steps.
        raise ConfigError(f"`{option_name('steps')}` must be in [1, {MAX_STEPS}], but got {steps}")
    probes = None if probes is None else integer(probes, "probes", minimum=1)
    full_matrix = flag(full_matrix, "full_matrix")
    flag(trust_remote_code, "trust_remote_code")
    if data is not None:  # before anything is written
        filesystem_path(data, "data")
    if observer is not None and not callable(getattr(observer, "on_trial_progress", None)):
        raise ConfigError(
            f"`observer` must have an on_trial_progress hook (an EngineObserver), but got {observer!r}"
        )
    spec, default_source = checked_spec(
        spec_or_path, overrides, trust_remote_code=trust_remote_code
    )
    source = source or default_source
    if not runner_of(spec).capabilities.trains:
        raise ConfigError(
            f"{source}: a screen trains a model, but runner {spec.runner.name!r} trains none"
        )
    config = screen_config(spec, steps=steps, probes=probes, full_matrix=full_matrix)
    n_probes = screen_probe_count(config)  # the default: 20, or as many as the steps allow
    storage_url = resolved_url(storage, spec_storage=spec.storage)

    def open_engine() -> StudyEngine:
        engine = build_engine(spec, storage_url=storage_url, data_dir=data, source=source)
        try:
            engine.embed = _no_embeddings
            # A screen spends no trial: a study that exists keeps its stored spec and budget.
            engine.open(keep_stored=True)
        except BaseException:
            engine.close()
            raise
        return engine

    # A study that is there is opened first, so that one of another spec fails before the
    # run; a new one is created only once the run has succeeded, so that a failed or
    # interrupted screen leaves the database as it was.
    engine = open_engine() if _holds_study(storage_url, spec.name) else None
    try:
        data_dir = engine.data_dir if engine is not None else _data_dir(spec, data, source)
        evaluator = RUNNERS.get("local").build_evaluator(spec, data_dir=data_dir)
        callbacks = [] if observer is None else [ObserverCallback(observer=observer, number=-1)]
        started = datetime.now(timezone.utc)
        clock = time.perf_counter()
        result = evaluator.evaluate(config, callbacks=callbacks)
        wall = time.perf_counter() - clock
        if result.lookahead is None:
            reason = result.failure_reason or f"status {result.status.value}, no lookahead probe"
            raise TaskgraphError(f"the screen of study {spec.name!r} failed: {reason}")
        if engine is None:
            engine = open_engine()
        # The data the screen trained on, as its trainer read it (not the files as they
        # are now: one edited while the screen ran would label it with the new version).
        fingerprints = engine.recorder.run_fingerprints(config, result)
        types = engine.recorder.task_types(config.task_set)
        objective = result.objective
        stored = engine.repository.add_screen(
            study=spec.name,
            config=config,
            result=result,
            details={
                "steps": config.max_steps,
                # The probes that ran: exactly those asked (screen_probe_steps); a screen
                # stored before that ran the most a fixed gap gave, which could be fewer.
                "probes": result.lookahead.n_probes,
                "probes_asked": n_probes,
                "lookahead_every": config.lookahead_every,
                "lookahead_steps": config.hyperparameters.get("lookahead_steps"),
                "full_matrix": full_matrix,
                "wall_seconds": wall,
                "target_score": objective,
                "metric": spec.objective.metric,
                "split": spec.objective.split,
            },
            started_at=started,
            finished_at=datetime.now(timezone.utc),
            task_fingerprints=fingerprints,
            task_types=types,
            host=socket.gethostname(),
            code_version=code_version(),
        )
        return _report(stored, engine.repository, target=spec.target)
    finally:
        if engine is not None:
            engine.close()


def _holds_study(storage_url: str, name: str) -> bool:
    """Return whether the records database at ``storage_url`` holds study ``name``.

    Nothing is created: a SQLite file that is not there yet, and a database without
    taskgraph's tables (an empty file, a new PostgreSQL database), hold none.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from taskgraph.storage import open_repository, parse_storage_url
    from taskgraph.storage.migrate import schema_state
    from taskgraph.storage.repository import open_engine
    from taskgraph.storage.urls import sqlite_path

    parsed = parse_storage_url(storage_url)
    path = sqlite_path(parsed) if parsed.get_backend_name() == "sqlite" else None
    if path is not None and not path.exists():
        return False
    engine = open_engine(storage_url, create=False)
    try:
        with engine.connect() as connection:
            if schema_state(connection).is_empty:
                return False
    except SQLAlchemyError:
        pass  # open_repository below says what is wrong, in its own words
    finally:
        engine.dispose()
    with open_repository(storage_url, create=False) as repository:
        return name in {study.name for study in repository.studies()}


def _data_dir(spec: StudySpec, data: PathLike | None, source: str) -> Path | None:
    """Return the data directory of the screen's run, after checking every task's files (as
    :func:`~taskgraph.app.studies.build_engine` does, without opening the database)."""
    from taskgraph.spec.checks import check_data

    resolved = check_data(spec, data_dir=data, source=source, trains=True)
    chosen = data or spec.data_dir
    return resolved if resolved is not None else (None if chosen is None else Path(chosen))


def screen_report(
    name: str, *, storage: str | None = None, screen: int | None = None
) -> dict[str, Any]:
    """Return the report of study ``name``'s latest screen (or screen number ``screen``: -1,
    -2, ...), without training.

    Raises :class:`~taskgraph.errors.NotFoundError` when the study is unknown, has no screen,
    or has none of number ``screen`` (the message lists those it has).
    """
    from taskgraph.app.arguments import integer, study_name
    from taskgraph.errors import worded_for_command_line
    from taskgraph.storage import open_repository

    name = study_name(name)
    if screen is not None:
        screen = integer(screen, "screen")  # negative, as the screens' trial numbers are
    repository = open_repository(resolved_url(storage), create=False)
    try:
        known = [s.name for s in repository.studies()]
        if name not in known:
            listed = ", ".join(sorted(known)) or "none"
            raise NotFoundError(f"no study {name!r} in {repository.url} (studies: {listed})")
        screens = repository.screens(name)
        if not screens:
            run = (
                "`taskgraph study screen SPEC`"
                if worded_for_command_line()
                else "taskgraph.screen_study(SPEC)"
            )
            raise NotFoundError(f"study {name!r} has no screen; run {run} for it")
        if screen is not None:
            chosen = [s for s in screens if s.number == screen]
            if not chosen:
                numbers = ", ".join(str(s.number) for s in screens)
                raise NotFoundError(
                    f"study {name!r} has no screen {screen}; its screens: {numbers}"
                )
            screens = chosen
        target = screens[-1].target
        return _report(screens[-1], repository, target=target)
    finally:
        repository.close()


def _report(stored: Any, repository: Any, *, target: str) -> dict[str, Any]:
    """Return the JSON-ready report of one :class:`~taskgraph.storage.StoredScreen`."""
    from taskgraph.affinity.screening import screen_ranking

    ranking = screen_ranking(stored.matrix, target)
    details: Mapping[str, Any] = stored.details
    trial, run = _trial_cost(repository, stored.study)
    steps = stored.total_steps or details.get("steps")
    cost = {
        "seconds": stored.cost_seconds,
        "steps": steps,
        "probes": stored.matrix.n_probes,
        "probes_asked": details.get("probes_asked", details.get("probes")),
        "lookahead_every": details.get("lookahead_every"),
        "lookahead_steps": details.get("lookahead_steps"),
        "trial_seconds": trial,
        "run_seconds": run,
        "trials_equivalent": None if not trial else stored.cost_seconds / trial,
    }
    return {
        "study": stored.study,
        "target": target,
        "screen": stored.number,
        "run_id": stored.run_id,
        "created_at": stored.created_at.isoformat(),
        "n_candidates": len(ranking),
        "candidates": [
            {"rank": e.rank, "candidate": e.candidate, "effect": e.effect, "stderr": e.stderr}
            for e in ranking
        ],
        "target_score": details.get("target_score"),
        "metric": details.get("metric"),
        "split": details.get("split"),
        "full_matrix": bool(details.get("full_matrix", False)),
        "matrix": _pairs(stored.matrix),
        "cost": cost,
    }


def _pairs(matrix: Any) -> dict[str, dict[str, dict[str, float | None]]]:
    """Return source -> target -> ``{"effect", "stderr"}`` of every measured entry of a
    :class:`~taskgraph.trial.LookaheadMatrix`: Z(source -> target), how much a step on
    ``source`` lowered ``target``'s loss, mean over the probes +- its standard error.  A
    target-only screen measured the target's column only; ``--full-matrix`` every pair."""
    from taskgraph.affinity.screening import matrix_entry

    pairs: dict[str, dict[str, dict[str, float | None]]] = {}
    for i, source in enumerate(matrix.tasks):
        for j, target in enumerate(matrix.tasks):
            entry = matrix_entry(matrix, i, j)
            if entry is not None:
                pairs.setdefault(source, {})[target] = {"effect": entry[0], "stderr": entry[1]}
    return pairs


def _count(n: Any, noun: str) -> str:
    """Return "1 probe", "3 probes" ("? probes" for a count not known)."""
    return f"{n} {noun}" if n == 1 else f"{'?' if n is None else n} {noun}s"


def screen_tables(report: Mapping[str, Any]) -> list[tuple[str, list[str], list[dict[str, str]]]]:
    """Return the tables (title, columns, rows) of a screen's report (:func:`screen_report`)
    for the terminal: the ranking, then, for a ``--full-matrix`` screen, Z(row -> column) of
    every pair (standard errors in the report's ``matrix``)."""
    cost = report["cost"]
    probes = _count(cost.get("probes"), "probe")
    rows = [
        {
            "rank": str(c["rank"]),
            "candidate": c["candidate"],
            "effect": f"{c['effect']:+.4f}",
            "stderr": "-" if c["stderr"] is None else f"{c['stderr']:.4f}",
        }
        for c in report["candidates"]
    ]
    tables = [
        (
            f"screen {report['screen']} of {report['study']!r}: predicted effect on "
            f"{report['target']} (mean lookahead Z(candidate -> target) over {probes}, +- "
            "standard error)",
            ["rank", "candidate", "effect", "stderr"],
            rows,
        )
    ]
    matrix: Mapping[str, Mapping[str, Mapping[str, Any]]] = report.get("matrix") or {}
    if report.get("full_matrix") and matrix:
        tasks = [report["target"], *(c["candidate"] for c in report["candidates"])]
        tasks += sorted({t for row in matrix.values() for t in row} - set(tasks))
        cells = [
            {"step on": source}
            | {
                target: "-" if target not in matrix.get(source, {})
                else f"{matrix[source][target]['effect']:+.4f}"
                for target in tasks
            }
            for source in tasks
        ]  # fmt: skip
        tables.append(
            (
                f"full matrix: lookahead Z(row -> column) over {probes}, positive when a step on "
                "the row's task lowered the column's loss (standard errors: --json)",
                ["step on", *tasks],
                cells,
            )
        )
    return tables


def screen_summary(report: Mapping[str, Any]) -> str:
    """Return the cost line of a screen's report: seconds, steps, probes, its price in trials,
    the target's score after the joint run."""
    cost = report["cost"]
    line = f"cost: {cost['seconds']:.0f} s, {_count(cost['steps'], 'step')}, "
    line += _count(cost["probes"], "probe")
    asked = cost.get("probes_asked")
    if asked is not None and asked != cost["probes"]:
        # Screens stored before probes were placed step by step ran the most a fixed gap gave.
        every = cost.get("lookahead_every")
        gap = "step" if every == 1 else f"{every} steps"
        line += f" ({asked} asked; one every {gap})"
    if cost.get("trials_equivalent") is not None:
        line += (
            f" = {cost['trials_equivalent']:.2f} x one trial of the study "
            f"({cost['trial_seconds']:.0f} s)"
        )
    if report.get("target_score") is not None:
        line += f"; {report['target']} {report['metric'] or 'objective'} on {report['split']} "
        line += f"after the joint run: {report['target_score']:.4f}"
    return line


def study_trial_cost(name: str, *, storage: str | None = None) -> tuple[float | None, float | None]:
    """Return the mean seconds of one complete trial of study ``name`` (its seeds' runs summed)
    and of one run (one seed); ``(None, None)`` before the first complete trial."""
    from taskgraph.storage import open_repository

    repository = open_repository(resolved_url(storage), create=False)
    try:
        return _trial_cost(repository, name)
    finally:
        repository.close()


def _trial_cost(repository: Any, study: str) -> tuple[float | None, float | None]:
    """Return the mean seconds of one complete trial of ``study`` (its seeds' runs summed) and
    of one run (one seed) of those trials; ``None`` before the first complete trial.

    A trial is complete when every seed's run is: one whose other seed failed (a FAILED trial)
    would count as a trial of fewer seeds, and price a trial below what it costs.
    """
    per_trial: dict[int, list[float]] = {}
    incomplete: set[int] = set()
    for run in repository.runs(study=study):
        if run.trial_number < 0 or run.transfer_mode == "screen":
            continue
        if run.status != "complete":
            incomplete.add(run.trial_number)
        per_trial.setdefault(run.trial_number, []).append(run.cost_seconds)
    per_trial = {number: runs for number, runs in per_trial.items() if number not in incomplete}
    if not per_trial:
        return None, None
    runs = [s for seconds in per_trial.values() for s in seconds]
    return sum(map(sum, per_trial.values())) / len(per_trial), sum(runs) / len(runs)
