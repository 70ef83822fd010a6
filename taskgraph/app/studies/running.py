"""Running a study: the engine of a checked spec on the records database, driven by its runner
until the budget; and resuming a stopped study with the spec it was stored with.

:func:`run_study` and :func:`resume_study` are the Python API behind ``taskgraph study run``
and ``study resume``; :func:`build_engine` checks the data before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from taskgraph.app.arguments import (
    duration,
    engine_observer,
    filesystem_path,
    flag,
    integer,
    storage_url,
    study_name,
)
from taskgraph.app.studies.specs import (
    PathLike,
    _with_fields,
    _with_runner,
    check_study_spec,
    checked_spec,
    runner_of,
)
from taskgraph.errors import ConfigError, DataFormatError, StorageError, option_name
from taskgraph.search.engine import EngineObserver, RunSummary, StudyEngine, StudyVanishedError
from taskgraph.spec.models import RayRunnerSpec, StudySpec
from taskgraph.storage.retry import DatabaseUnavailableError

__all__ = [
    "build_engine",
    "invocation_wall_time",
    "resumable_spec",
    "resume_study",
    "run_spec",
    "run_study",
]


def invocation_wall_time(
    spec: StudySpec, wall_time: float | str | None, *, source: str, label: str | None = None
) -> float | None:
    """Return ``wall_time`` (seconds, or a duration such as ``10m``) checked as
    ``budget.wall_time`` of ``spec`` would be, or ``None`` when it is ``None``.

    It limits one invocation (:func:`run_spec`'s ``wall_time``) and is never stored with the
    study.  An error names ``label`` (default: the ``wall_time`` keyword, ``--wall-time`` on
    the command line).  Raises :class:`~taskgraph.errors.SpecError`.
    """
    if wall_time is None:
        return None
    label = label or option_name("wall_time")
    checked = _with_fields(
        spec, {"budget.wall_time": wall_time}, source=source, labels={"budget.wall_time": label}
    )
    return checked.budget.wall_time


def _storage_url(storage: str | None, spec: StudySpec | None = None) -> str:
    """Return :func:`~taskgraph.app.arguments.storage_url` of ``storage`` and ``spec``'s."""
    return storage_url(storage, spec_storage=None if spec is None else spec.storage)


def build_engine(
    spec: StudySpec,
    *,
    storage_url: str,
    data_dir: PathLike | None = None,
    observer: EngineObserver | None = None,
    source: str = "spec",
    wall_time: float | None = None,
) -> StudyEngine:
    """Return an engine for ``spec`` on ``storage_url`` with its runner's evaluator (not opened).

    The data directory and every task's files are checked first (``source`` names the spec in
    the error), before the engine touches the database: a wrong ``data_dir`` leaves nothing
    behind, not a study of failed trials that a corrected rerun could not continue.
    Raises :class:`~taskgraph.errors.DataNotFoundError` or
    :class:`~taskgraph.errors.DataFormatError` naming the file, and
    :class:`~taskgraph.errors.StorageError` for a database that cannot be opened.
    ``wall_time``: this invocation's wall-time budget in seconds (see :class:`StudyEngine`).
    """
    from taskgraph.spec.checks import check_data, inline_task_defs

    runner = runner_of(spec)
    trains = runner.capabilities.trains
    resolved = check_data(spec, data_dir=data_dir, source=source, trains=trains)
    chosen = data_dir or spec.data_dir
    engine_dir = resolved if resolved is not None else (None if chosen is None else Path(chosen))
    task_defs: dict[str, Any] | None = None
    sharing_spaces: dict[str, dict[str, Any]] | None = None
    # A runner whose scores are not trained on the datasets says where they come from.
    fingerprints_of = getattr(runner, "data_fingerprints", None)
    if not trains:
        # A runner that trains nothing (a published table, measured with one fixed model):
        # only the task set matters, so the architectures' own parameters (and importing
        # torch to read them) are skipped.
        sharing_spaces = {name: {} for name in spec.search.sharing}
    else:
        task_defs = inline_task_defs(spec)
        _read_inline_data(spec, task_defs, data_dir=resolved, source=source)
    return StudyEngine(
        spec=spec,
        storage_url=storage_url,
        evaluator=runner.build_evaluator(spec, data_dir=engine_dir),
        sharing_spaces=sharing_spaces,
        task_defs=task_defs,
        data_dir=engine_dir,
        observer=observer,
        intermediate_reports=runner.capabilities.intermediate_reports,
        wall_time=wall_time,
        source_fingerprints=fingerprints_of(spec) if fingerprints_of is not None else None,
    )


def _read_inline_data(
    spec: StudySpec,
    task_defs: Mapping[str, Any],
    *,
    data_dir: PathLike | None = None,
    source: str = "spec",
) -> None:
    """Read, in full, each split the study reads of each of its inline tasks (``task_defs``).

    ``study validate`` reads the first examples of each (``check_data``); a malformed line
    further down failed every trial of the study, each after the study was written.  The
    splits are those :func:`~taskgraph.spec.checks.check_inline_data` reads (``train``,
    ``training.eval_splits``, the objective's split); the catalog's tasks are not read.  The
    reading is :func:`~taskgraph.tasks.count_examples`'s, whose count is cached until the file
    changes: trials read the count from there instead of the file, and a study resumed on
    unchanged files reads nothing again.  A malformed line is a
    :class:`~taskgraph.errors.DataFormatError` naming the task, the split, the file and the line.
    """
    from taskgraph.tasks import count_examples
    from taskgraph.tasks.loading import SYNTHETIC

    used = {"train", *spec.training.eval_splits, spec.objective.split}
    for name, task in task_defs.items():
        if task.format == SYNTHETIC:
            continue
        for split in task.splits:
            if split not in used:
                continue
            try:
                count_examples(task, split, data_dir=data_dir)
            except DataFormatError as error:
                raise DataFormatError(
                    f"{source}: task {name!r} (split {split}): {error.path}",
                    error.line,
                    error.expected,
                    error.got,
                ) from None


def run_spec(
    spec: StudySpec,
    *,
    storage_url: str,
    data_dir: PathLike | None = None,
    observer: EngineObserver | None = None,
    source: str = "spec",
    wall_time: float | None = None,
) -> RunSummary:
    """Open (or continue) the study of a checked ``spec`` and run it with its runner.

    ``spec`` is stored with the study; ``wall_time`` (seconds, checked by
    :func:`invocation_wall_time`) replaces its ``budget.wall_time`` for this run only.

    Nothing is written before the spec's data is found (:func:`build_engine`).  The runner
    (:data:`taskgraph.registry.RUNNERS`) drives the opened engine until the budget, the wall
    time or the failure limit; the engine is closed whatever happens.  Returns why the run
    stopped (:class:`~taskgraph.search.engine.RunSummary`); raises what :func:`build_engine`
    raises, and :class:`~taskgraph.errors.SpecError` when the database holds another study of
    that name.
    """
    engine = build_engine(
        spec,
        storage_url=storage_url,
        data_dir=data_dir,
        observer=observer,
        source=source,
        wall_time=wall_time,
    )
    try:
        engine.open()
        _warn_of_changed_data(engine)
        try:
            return runner_of(spec).run(engine)
        except DatabaseUnavailableError as error:
            # The storage layer does not know the study: the resume command names it here.
            raise error.for_study(spec.name) from error.__cause__
        except Exception as error:
            # The study deleted under the driver (Optuna's KeyError, whatever the runner or
            # Tune wrapped it in, or what was made of it): one error; resuming is no advice.
            if isinstance(error, StudyVanishedError):
                raise
            vanished = engine.vanished_error()
            if vanished is not None:
                raise vanished from error
            # A write that failed mid-study (disk full, read-only file): the database is as
            # the last committed transaction left it, and the study continues from there.
            message = str(error) if isinstance(error, StorageError) else None
            if message is None:
                from taskgraph.storage.failures import storage_failure_message

                message = storage_failure_message(error)
            if message is None:
                raise
            from taskgraph.storage.urls import resume_command

            raise StorageError(
                f"{message}; once the database can be written again, continue with "
                f"`{resume_command(spec.name, storage_url)}`"
            ) from error
    finally:
        engine.close()


def changed_data(engine: StudyEngine) -> list[str]:
    """Return the study's tasks whose dataset files differ from those of its earlier runs
    (their recorded fingerprints), sorted; empty for a new study."""
    recorder = engine.recorder
    recorded = recorder.repository.study_fingerprints(engine.spec.name)
    if not recorded:
        return []
    tasks = tuple(sorted({engine.spec.target, *engine.spec.candidate_names}))
    current, _ = recorder.task_metadata(tasks)
    return [task for task in tasks if task in recorded and task in current
            and recorded[task] != current[task]]  # fmt: skip


def _warn_of_changed_data(engine: StudyEngine) -> None:
    """Say on stderr which tasks' data changed since the study's earlier runs: its new runs
    are another data version, whose gains are kept apart from the earlier ones."""
    import sys

    changed = changed_data(engine)
    if changed:
        print(
            f"warning: the data files of {', '.join(changed)} changed since study "
            f"{engine.spec.name!r}'s earlier runs (another dataset fingerprint): the new runs' "
            "scores of these tasks are another data version, compared only with runs on the "
            "same data (their gains never mix the two)",
            file=sys.stderr,
        )


def run_study(
    spec_or_path: StudySpec | PathLike,
    *,
    storage: str | None = None,
    data: PathLike | None = None,
    observer: EngineObserver | None = None,
    trust_remote_code: bool = False,
    **overrides: Any,
) -> RunSummary:
    """Run a study to its budget (or continue it) and return why it stopped.

    ``spec_or_path`` is a spec file (YAML) or a :class:`~taskgraph.spec.StudySpec`.
    ``storage`` is the records database URL (default: ``TASKGRAPH_STORAGE``, then the spec's
    ``storage``, then ``sqlite:///taskgraph.db``); ``data`` the data directory (default: the
    spec's ``data_dir``, then ``TASKGRAPH_DATA``).  ``overrides`` set spec fields, ``__``
    separating the path: ``run_study("demo.yaml", budget__trials=4, search__max_steps=20)``;
    ``runner="tabular"`` or ``runner={...}`` replaces the runner.  The spec is checked before
    anything is written.  Raises :class:`~taskgraph.errors.TaskgraphError` subclasses for bad
    input.

    >>> summary = run_study("searchspaces/demo.yaml", storage="sqlite:////tmp/demo.db")  # doctest: +SKIP
    >>> summary.progress.n_done  # doctest: +SKIP
    """
    if data is not None:
        filesystem_path(data, "data")
    engine_observer(observer)
    spec, source = checked_spec(spec_or_path, overrides, trust_remote_code=trust_remote_code)
    return run_spec(
        spec,
        storage_url=_storage_url(storage, spec),
        data_dir=data,
        observer=observer,
        source=source,
    )


def resumable_spec(
    name: str,
    *,
    storage_url: str,
    trials: int | None = None,
    runner: Mapping[str, Any] | str | None = None,
    fields: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
    trust_remote_code: bool = False,
) -> StudySpec:
    """Return the stored spec of study ``name`` with the overrides, checked for its runner.

    ``runner`` replaces the runner as :func:`~taskgraph.app.studies.specs.load_study_spec`'s
    does, then ``fields`` (dotted ``runner.*`` paths, e.g. ``--address``'s
    ``runner.address``) apply to it; an error names the label of what caused it
    (``labels["runner.name"]``, e.g. ``--runner``, default ``runner``;
    ``labels["runner.address"]``), not the stored spec.
    Its ``budget.wall_time`` is the one stored (the spec file's): a wall time for one resume
    goes to :func:`run_spec` (:func:`invocation_wall_time`).
    Raises :class:`~taskgraph.errors.StorageError` when the study is unknown or was not created
    by taskgraph, and :class:`~taskgraph.errors.SpecError` for an override that does not fit.
    """
    from taskgraph.search.study import stored_spec

    source = f"study {name!r}"
    spec = stored_spec(name, storage_url=storage_url, trials=trials)
    stored_address = spec.runner.address if isinstance(spec.runner, RayRunnerSpec) else None
    if runner is not None or fields:
        spec = _with_runner(
            spec,
            {"name": runner} if isinstance(runner, str) else (runner or {}),
            fields=fields,
            labels=labels or {"runner.name": "runner"},
            source=source,
        )
    check_study_spec(spec, source=source, trust_remote_code=trust_remote_code, stored=True)
    given = "runner.address" in (fields or {}) or (
        isinstance(runner, Mapping) and "address" in runner
    )
    address = spec.runner.address if isinstance(spec.runner, RayRunnerSpec) else None
    if address and address == stored_address and not given:
        # The cluster the study ran on: a dead one is blamed on the study's stored address,
        # not on an --address nobody gave (the runner checks the address again, by its flag).
        from taskgraph.runners.ray.address import check_ray_address

        check_ray_address(address, flag=f"runner.address stored with {source}")
    return spec


def resume_study(
    name: str,
    *,
    storage: str | None = None,
    data: PathLike | None = None,
    trials: int | None = None,
    wall_time: float | str | None = None,
    runner: Mapping[str, Any] | str | None = None,
    observer: EngineObserver | None = None,
    trust_remote_code: bool = False,
) -> RunSummary:
    """Finish a stopped or killed study with the spec it was run with.

    Interrupted trials are failed and retried.  ``trials`` raises (or lowers) the budget,
    ``wall_time`` limits this run only (the study keeps its spec's own), ``runner`` replaces the runner (its stored settings are kept
    when the name is the same), ``data`` points at the data directory on this machine.
    Raises :class:`~taskgraph.errors.StorageError` when the study does not exist.
    """
    if trials is not None:  # the command line's --trials is at least 1 too
        trials = integer(trials, "trials", minimum=1)
    if wall_time is not None:
        wall_time = duration(wall_time, "wall_time")
    url = _storage_url(storage)
    if runner is not None and not isinstance(runner, str | Mapping):
        raise ConfigError(f"`runner` must be a runner name or a mapping, but got {runner!r}")
    if data is not None:
        filesystem_path(data, "data")
    engine_observer(observer)
    flag(trust_remote_code, "trust_remote_code")
    spec = resumable_spec(
        study_name(name),
        storage_url=url,
        trials=trials,
        runner=runner,
        trust_remote_code=trust_remote_code,
    )
    source = f"study {name!r}"
    return run_spec(
        spec,
        storage_url=url,
        data_dir=data,
        observer=observer,
        source=source,
        wall_time=invocation_wall_time(spec, wall_time, source=source),
    )
