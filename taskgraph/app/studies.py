"""Studies: the one place that composes spec -> engine -> runner -> storage.

Every function here is a documented Python API (exported from :mod:`taskgraph`) and the call
behind a ``taskgraph study`` command, which parses arguments, calls it and prints (``study
submit`` alone calls :func:`taskgraph.runners.ray.submit_study` directly).
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from taskgraph.app.arguments import (
    duration,
    engine_observer,
    filesystem_path,
    flag,
    integer,
    mapping,
    storage_url,
    study_name,
)
from taskgraph.errors import (
    ConfigError,
    DataFormatError,
    SpecError,
    StorageError,
    option_name,
    worded_for_command_line,
)
from taskgraph.registry import RUNNERS
from taskgraph.runners.base import Runner
from taskgraph.search.engine import EngineObserver, RunSummary, StudyEngine, StudyVanishedError
from taskgraph.spec.models import RayRunnerSpec, StudySpec
from taskgraph.storage.retry import DatabaseUnavailableError

__all__ = [
    "build_engine",
    "check_study_spec",
    "delete_study",
    "invocation_wall_time",
    "list_studies",
    "load_study_spec",
    "resumable_spec",
    "resume_study",
    "run_spec",
    "run_study",
    "runner_of",
    "study_status",
    "study_summary",
]

PathLike = str | os.PathLike[str]


def runner_of(spec: StudySpec) -> Runner:
    """Return the :class:`~taskgraph.runners.base.Runner` plug-in ``spec.runner.name`` names.

    Raises :class:`~taskgraph.errors.UnknownNameError` listing the registered runners.
    """
    runner: Runner = RUNNERS.get(spec.runner.name)
    return runner


# -- specs -----------------------------------------------------------------------------------


def load_study_spec(
    path: PathLike,
    overrides: Mapping[str, Any] | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    trust_remote_code: bool = False,
) -> StudySpec:
    """Return the checked spec at ``path`` with ``overrides`` (dotted field path -> value).

    ``overrides["runner"]`` (a mapping) or ``overrides["runner.name"]`` replaces the runner,
    keeping the file's runner settings when the name is the same; the other ``runner.*``
    overrides then apply to the runner chosen.  Every override goes through the models and the checks
    (:func:`taskgraph.search.checks.check_spec`), so nothing invalid reaches the database.  An
    error that an override causes names where it came from (``labels[key]``, e.g.
    ``--trials``, default ``--set KEY``), not a line of the file.  Raises
    :class:`~taskgraph.errors.SpecError` or :class:`~taskgraph.errors.ConfigError`.
    """
    path = filesystem_path(path, "path")
    # A deep copy: the overrides are applied, and their paths resolved, in place (`runner`'s
    # dict gets `runner.resources.gpu`), which must not be the caller's.
    overrides = copy.deepcopy(mapping(overrides, "overrides"))
    labels = mapping(labels, "labels")
    flag(trust_remote_code, "trust_remote_code")
    try:
        return _build_spec(path, overrides, labels=labels, trust_remote_code=trust_remote_code)
    except SpecError as error:
        given = [labels.get(key) or _override_label(key) for key in overrides]
        named = ("--", *(f"{label}: " for label in [*labels.values(), *given]))
        if not overrides or str(error).startswith(named):
            raise  # the models' error names the option (or keyword) already
        blamed = _blame_option(path, overrides, labels, trust_remote_code)
        if blamed is None:
            raise
        raise blamed from None


def check_study_spec(
    spec: StudySpec, *, source: str = "spec", trust_remote_code: bool = False, stored: bool = False
) -> None:
    """Check ``spec``'s names against the registries, as its runner needs (raises ``SpecError``).

    ``stored``: the spec a study was created with (resume): the checks a stored study may
    predate warn instead (:func:`taskgraph.search.checks.check_spec`)."""
    from taskgraph.search.checks import check_spec

    runner = runner_of(spec)
    check_spec(
        spec,
        source=source,
        trust_remote_code=trust_remote_code,
        trains=runner.capabilities.trains,
        stored=stored,
    )
    runner_check = getattr(runner, "check_spec", None)
    if callable(runner_check):  # an optional hook (taskgraph.runners.base.Runner)
        runner_check(spec, source=source)


def _build_spec(
    path: Path,
    overrides: Mapping[str, Any],
    *,
    labels: dict[str, str] | None = None,
    trust_remote_code: bool = False,
) -> StudySpec:
    from taskgraph.spec import load_spec

    rest = dict(overrides)
    labels = dict(labels or {})
    runner = rest.pop("runner", None)
    if isinstance(runner, str):
        runner = {"name": runner}  # `--set runner=ray`: the spec's `runner: ray` shorthand
    elif runner is not None and not isinstance(runner, Mapping):
        raise SpecError(
            f"{path}: runner: must be a runner name or a mapping, got {type(runner).__name__}"
        )
    fields = _runner_fields(rest) if runner is not None or "runner.name" in rest else {}
    # Labels only for what is overridden here: an error in the file's own runner, replaced
    # below, is the file's.
    options = {key: labels.get(key) or _override_label(key) for key in rest}
    try:
        spec = load_spec(path, overrides=rest, options=options)
    except SpecError as error:
        raise _named_once(error, options) from None
    if runner is not None or fields:
        spec = _with_runner(
            spec, runner or {}, fields=fields, labels=labels, source=str(path), base=path.parent
        )
    check_study_spec(spec, source=str(path), trust_remote_code=trust_remote_code)
    return spec


def _runner_fields(overrides: dict[str, Any]) -> dict[str, Any]:
    # Takes the `runner.*` overrides out of ``overrides``: with a runner switch (`runner`,
    # `runner.name`: --runner/--address) they apply to the runner chosen, after the switch,
    # not to the file's runner (`--runner ray --set runner.resources=...`).
    return {key: overrides.pop(key) for key in list(overrides) if key.startswith("runner.")}


def _blame_option(
    path: Path, overrides: Mapping[str, Any], labels: Mapping[str, str], trust: bool
) -> SpecError | None:
    # Only on failure: apply the overrides one group at a time; the first whose error is not
    # the file's own is the culprit.  (Cheap: the spec is small and the checks' imports are
    # done.)  A runner switch and the `runner.*` fields are one group, as `_build_spec`
    # applies them: `runner.table` alone would land on the file's runner.
    def failure(given: Mapping[str, Any]) -> str | None:
        try:
            _build_spec(
                path,
                given,
                labels={key: label for key, label in labels.items() if key in given},
                trust_remote_code=trust,
            )
        except SpecError as failed:
            return str(failed)
        return None

    own = failure({})
    for group in _override_groups(overrides):
        message = failure(group)
        if message is None or message == own:
            continue
        named_by = {key: labels.get(key) or _override_label(key) for key in group}
        if message.startswith(("--", *(f"{label}: " for label in named_by.values()))):
            return SpecError(message)  # the models' error, naming the option already
        message = re.sub(rf"^{re.escape(str(path))}(:\d+)?: ", "", message)
        named = [key for key in group if message.startswith(f"{key}: ")]
        if named or len(group) == 1:
            key = (named or list(group))[0]
            return SpecError(f"{named_by[key]}: {message.removeprefix(f'{key}: ')}")
        # A field that no option set (`target: ... has no rows in <table>`): the runner
        # they chose and its settings, together.
        return SpecError(f"{', '.join(named_by.values())}: {message}")
    return None


def _override_groups(overrides: Mapping[str, Any]) -> list[dict[str, Any]]:
    # Each override alone, except that a runner switch (`runner`, `runner.name`) and every
    # `runner.*` override are one group, the switch first: the fields apply to the runner
    # it chooses.
    switches = [key for key in ("runner", "runner.name") if key in overrides]
    fields = [key for key in overrides if key.startswith("runner.") and key not in switches]
    runner = {key: overrides[key] for key in switches + fields} if switches else {}
    rest = [{key: value} for key, value in overrides.items() if key not in runner]
    return [runner, *rest] if runner else rest


def _with_runner(
    spec: StudySpec,
    runner: Mapping[str, Any],
    *,
    fields: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
    source: str,
    base: Path | None = None,
) -> StudySpec:
    # A runner given on the command line replaces the spec's; keep the spec's settings when
    # the name is the same (so --address only changes the address).  ``fields`` (dotted
    # `runner.*` paths; `runner.name` is the switch) apply after it, to the runner chosen.
    # A relative table path is resolved as the spec file's own paths are (against its
    # folder; the working directory for a spec object) and stored absolute, so `study
    # resume` finds it from anywhere.  Deep copies: the fields write into nested settings
    # (`runner.resources.gpu`), which must not be the caller's.
    from taskgraph.spec import spec_from_dict

    labels = dict(labels or {})
    fields = copy.deepcopy(dict(fields or {}))
    switch_label = (
        labels.get("runner.name")
        or labels.get("runner")
        or option_name("runner", flag="--runner/--address")
    )
    data = spec.model_dump(mode="json")
    current = data.get("runner") or {}
    given = copy.deepcopy(dict(runner))
    if "runner.name" in fields:
        given["name"] = fields.pop("runner.name")
    name = given.get("name", current.get("name"))
    if not isinstance(name, str) or name not in RUNNERS:
        raise SpecError(f"{switch_label}: {RUNNERS.unknown(name)}")
    if name == current.get("name"):
        given = {**current, **given}
    for key, value in fields.items():
        _set_dotted(given, key.split(".")[1:], value)
    table = given.get("table")
    if isinstance(table, str) and table and not Path(table).expanduser().is_absolute():
        given["table"] = str(((base or Path.cwd()) / table).resolve())
    data["runner"] = given
    # Most specific first: the first label whose path matches an error names it.  Nothing
    # given (a spec object whose table is only made absolute): an error is the spec's own.
    options = {key: labels.get(key) or _override_label(key) for key in fields}
    if runner or fields or "runner.name" in labels:
        options["runner"] = switch_label
    try:
        return spec_from_dict(data, source=source, options=options)
    except SpecError as error:
        raise _named_once(error, options) from None


def _set_dotted(node: dict[str, Any], parts: list[str], value: Any) -> None:
    *parents, last = parts
    for part in parents:
        child = node.get(part)
        node[part] = child = child if isinstance(child, dict) else {}
        node = child
    node[last] = value


def _with_fields(
    spec: StudySpec,
    fields: Mapping[str, Any],
    *,
    source: str,
    labels: Mapping[str, str] | None = None,
) -> StudySpec:
    # The same dotted paths as a spec file's overrides (`budget.trials`), on a parsed spec; an
    # error names ``labels[key]`` (the keyword given), else the path.
    from taskgraph.spec import spec_from_dict

    data = spec.model_dump(mode="json")
    for key, value in fields.items():
        _set_dotted(data, key.split("."), copy.deepcopy(value))  # not into the caller's dicts
    options = {key: (labels or {}).get(key, key) for key in fields}
    try:
        return spec_from_dict(data, source=source, options=options)
    except SpecError as error:
        raise _named_once(error, options) from None


def _override_label(key: str) -> str:
    """Return how an error names the override of spec field ``key`` when no label was given:
    ``overrides['budget.trials']`` from Python, ``--set budget.trials`` on the command line."""
    return option_name("set", key) if worded_for_command_line() else f"overrides[{key!r}]"


def _named_once(error: SpecError, options: Mapping[str, str]) -> SpecError:
    """Return ``error`` without the field path that repeats its label's unknown field.

    An override of a field under an unknown one (``budgett__trials``) is named by its label,
    then by the unknown field's path (``budgett__trials: budgett: unknown field 'budgett'``):
    the path says nothing that the message does not.
    """
    message = str(error)
    for key, label in options.items():
        head = f"{label}: "
        if not message.startswith(head):
            continue
        field, separator, rest = message[len(head) :].partition(": ")
        parts, wanted = field.split("."), key.split(".")
        unknown = rest.startswith(f"unknown field {parts[-1]!r}")
        if separator and unknown and len(parts) < len(wanted) and wanted[: len(parts)] == parts:
            return SpecError(head + rest)
    return error


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


def checked_spec(
    spec_or_path: StudySpec | PathLike,
    overrides: Mapping[str, Any],
    *,
    trust_remote_code: bool = False,
) -> tuple[StudySpec, str]:
    """Return the checked spec of a spec file or :class:`StudySpec` with keyword ``overrides``
    (``budget__trials=4``; ``runner="tabular"`` or ``runner={...}``), and how errors name it.

    A relative ``runner.table`` is read from the spec file's folder, or from the working
    directory for a :class:`StudySpec`, and made absolute.  Two keywords for one field
    (``budget__trials`` and ``budget.trials``) are a :class:`ConfigError` naming both.
    """
    flag(trust_remote_code, "trust_remote_code")
    if not isinstance(spec_or_path, StudySpec | str | os.PathLike):
        raise ConfigError(
            "`spec_or_path` must be a spec file's path or a StudySpec, but got "
            f"{type(spec_or_path).__name__}"
        )
    dotted: dict[str, Any] = {}
    # Errors name the keywords as given (`budget__trials`, `runner`), not the CLI's options.
    labels: dict[str, str] = {}
    for key, value in overrides.items():
        path = key.replace("__", ".")
        if path in labels:  # `**{"budget.trials": 1, "budget__trials": 2}`: neither wins
            raise ConfigError(
                f"`{labels[path]}` and `{key}` both set spec field {path} "
                f"({dotted[path]!r} and {value!r}): pass one"
            )
        dotted[path], labels[path] = value, key
    if isinstance(dotted.get("runner"), str):
        dotted["runner"] = {"name": dotted["runner"]}
    labels |= {"runner.name": "runner"} if "runner" in overrides else {}
    if not isinstance(spec_or_path, StudySpec):
        source = str(spec_or_path)
        spec = load_study_spec(
            spec_or_path, dotted, labels=labels, trust_remote_code=trust_remote_code
        )
        return spec, source
    spec, source = spec_or_path, "spec"
    runner = dotted.pop("runner", None)
    if runner is not None and not isinstance(runner, Mapping):  # as a spec file's is refused
        raise SpecError(
            f"{source}: runner: must be a runner name or a mapping, got {type(runner).__name__}"
        )
    fields = _runner_fields(dotted) if runner is not None or "runner.name" in dotted else {}
    if dotted:
        spec = _with_fields(spec, dotted, source=source, labels=labels)
    # Also without a runner override: the object's own relative table is made absolute.
    spec = _with_runner(
        spec, runner or {}, fields=fields, labels={"runner": "runner", **labels}, source=source
    )
    check_study_spec(spec, source=source, trust_remote_code=trust_remote_code)
    return spec, source


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

    ``runner`` replaces the runner as :func:`load_study_spec`'s does, then ``fields`` (dotted
    ``runner.*`` paths, e.g. ``--address``'s ``runner.address``) apply to it; an error names
    the label of what caused it (``labels["runner.name"]``, e.g. ``--runner``, default
    ``runner``; ``labels["runner.address"]``), not the stored spec.
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


# -- reading ---------------------------------------------------------------------------------


def study_summary(
    name: str, *, storage: str | None = None, top: int | None = None
) -> dict[str, Any]:
    """Return study ``name``'s report: baseline, best trial, gains of the ``top`` trials, failures.

    ``top=None`` (the default) lists every trial, as ``taskgraph study show --json`` does
    without ``--top``; the keys are its keys.
    Raises :class:`~taskgraph.errors.StorageError` naming the known studies when ``name`` is
    not one of them, or when the database cannot be opened.
    """
    from taskgraph.search.report import open_study, study_report, target_data_versions

    if top is not None:
        top = integer(top, "top", minimum=1)
    url = _storage_url(storage)
    study = open_study(study_name(name), storage_url=url)
    # Gains are measured within one version of the target's data (the records' fingerprints).
    versions = target_data_versions(study.study_name, storage_url=url)
    return study_report(study, top=top, data_versions=versions)


def study_spec(name: str, *, storage: str | None = None) -> dict[str, Any]:
    """Return the spec study ``name`` was created with, as stored (``taskgraph study show
    --spec``): the storage URL's password masked, ``budget.trials`` the study's budget now.

    optuna-dashboard shows the stored spec cut at 1024 characters; this is it whole.
    Raises :class:`~taskgraph.errors.StorageError` as :func:`study_summary` does.
    """
    from taskgraph.search.study import stored_spec_data

    return stored_spec_data(study_name(name), storage_url=_storage_url(storage))


def study_status(name: str, *, storage: str | None = None) -> dict[str, Any]:
    """Return how far study ``name`` is (``taskgraph study status --json``).

    Raises :class:`~taskgraph.errors.StorageError` as :func:`study_summary` does.
    """
    from taskgraph.search.progress import SPEC_ATTR, study_progress
    from taskgraph.search.report import open_study

    study = open_study(study_name(name), storage_url=_storage_url(storage))
    spec = study.user_attrs.get(SPEC_ATTR) or {}
    # The fields `study list --json` gives the same study (open_study refuses one not taskgraph's).
    return {"target": spec.get("target"), **study_progress(study).to_dict(), "taskgraph": True}


def list_studies(*, storage: str | None = None) -> list[dict[str, Any]]:
    """Return every study in the database with its progress (``taskgraph study list``).

    Raises :class:`~taskgraph.errors.StorageError` when the database cannot be opened.
    """
    from taskgraph.search.report import list_progress

    return list_progress(storage_url=_storage_url(storage))


# -- deleting --------------------------------------------------------------------------------


def delete_study(name: str, *, storage: str | None = None) -> dict[str, Any]:
    """Delete study ``name``: the Optuna study and every record of it, in one transaction.

    Its runs (screens included), their scores and lookahead matrices, its row in
    ``tg_studies`` and Optuna's study with its trials go; another study, the shared tasks,
    task sets and model configurations, and affinity fits stay.  Records whose Optuna study
    was deleted outside taskgraph (``optuna delete-study``) are deleted the same way.  Then
    the local runner's checkpoint folder of the study, where it is found, goes too.

    Returns what was deleted (``name``, ``runs``, ``scores``, ``lookahead_matrices``,
    ``optuna_trials``, ``checkpoints``: the local runner's folder removed or ``None``,
    ``tune_checkpoints``: the Ray runner's persisted checkpoints removed).  An Optuna study
    taskgraph did not create (no spec, trials of its own, no records) is refused
    (:class:`~taskgraph.errors.NotFoundError`), as every other command refuses it.
    Raises :class:`~taskgraph.errors.NotFoundError` naming the known studies when there is
    no such study (checked before any lock is taken, so no lock file is left for it), and
    :class:`~taskgraph.errors.StorageError` when a driver runs the study: every driver
    (``study run``/``resume``/``screen``, the Python API, local or Ray) holds the study's
    liveness lock, :mod:`taskgraph.storage.locks`, for its whole life, and one that died
    holds nothing.  Once that lock is taken here, a trial left RUNNING (its heartbeat fresh
    or not) belongs to a dead driver: it does not stop the delete.
    """
    import shutil

    from taskgraph.runners.local import remove_tune_checkpoints
    from taskgraph.storage import mask_url, open_repository
    from taskgraph.storage.locks import no_driver, setup_lock

    name = study_name(name)
    url = _storage_url(storage)
    where = mask_url(url)
    with open_repository(url, create=False) as repository:
        # Refuse a name that is no study before locking: the locks create their files.
        _find_study(name, url, where, repository)
        with setup_lock(url), no_driver(url, name) as free:
            if not free:
                # A driver holds the study's liveness lock from opening it until it stops,
                # between trials too; held here until the delete is done, a driver starting
                # meanwhile waits and then creates the study anew.
                raise StorageError(
                    f"study {name!r} in {where} is being run by a driver (`taskgraph study "
                    "run`, `resume` or a Ray job holds it); stop that driver, or wait until it "
                    "finishes, then delete the study"
                )
            # Again under the locks: another delete may have gone through meanwhile.
            optuna_id, checkpoints, tune_checkpoints = _find_study(name, url, where, repository)
            counts = repository.delete_study(name, optuna_study_id=optuna_id)
    removed = None
    if checkpoints is not None and checkpoints.is_dir():
        shutil.rmtree(checkpoints, ignore_errors=True)
        removed = str(checkpoints)
    # The Ray runner's checkpoints its interrupted trials persisted under experiment_dir.
    tune_removed = remove_tune_checkpoints(tune_checkpoints)
    return {"name": name, **counts, "checkpoints": removed, "tune_checkpoints": tune_removed}


def _find_study(
    name: str, url: str, where: str, repository: Any
) -> tuple[int | None, Path | None, set[str]]:
    """Return study ``name``'s Optuna id (``None``: records only), the local runner's
    checkpoint folder of it and the Ray runner's persisted checkpoints of its trials.

    Raises :class:`~taskgraph.errors.NotFoundError` when there is no such study, or the
    Optuna study of that name is another program's.
    """
    from taskgraph.errors import NotFoundError
    from taskgraph.search.heartbeat import quiet_optuna
    from taskgraph.search.progress import RAY_CHECKPOINT_ATTR, SPEC_ATTR
    from taskgraph.search.report import read_only_storage, study_names

    optuna_storage = read_only_storage(url)
    optuna_id: int | None = None
    optuna_names: list[str] = []
    checkpoints = None
    tune_checkpoints: set[str] = set()
    record_names = [summary.name for summary in repository.studies()]
    try:
        if optuna_storage is not None:
            with quiet_optuna():
                optuna_names = study_names(optuna_storage)
                if name in optuna_names:
                    optuna_id = optuna_storage.get_study_id_from_name(name)
                    attrs = optuna_storage.get_study_user_attrs(optuna_id)
                    trials = optuna_storage.get_all_trials(optuna_id, deepcopy=False)
                    if SPEC_ATTR not in attrs and trials and name not in record_names:
                        # Another program's Optuna study sharing the database: every other
                        # command refuses it as not taskgraph's (a half-created one, no
                        # attribute and no trial, is deleted: its advice says so).
                        raise NotFoundError(
                            f"study {name!r} in {where} was not created by taskgraph (no "
                            f"{SPEC_ATTR}, {len(trials)} trial(s)): delete it with Optuna "
                            "(optuna delete-study) if that is what you want"
                        )
                    checkpoints = _checkpoint_folder(name, url, optuna_id, attrs)
                    tune_checkpoints = {
                        str(t.system_attrs[RAY_CHECKPOINT_ATTR])
                        for t in trials
                        if RAY_CHECKPOINT_ATTR in t.system_attrs
                    }
    finally:
        if optuna_storage is not None:
            optuna_storage.engine.dispose()
    if optuna_id is None and name not in record_names:
        known = ", ".join(sorted({*optuna_names, *record_names})) or "(none)"
        raise NotFoundError(f"no study {name!r} in {where}; known studies: {known}")
    return optuna_id, checkpoints, tune_checkpoints


def _checkpoint_folder(name: str, url: str, study_id: int, attrs: Mapping[str, Any]) -> Path | None:
    """Return the local runner's checkpoint folder of the study (``None``: another runner, or
    checkpoints off): the runners package reads its own setting from the stored spec."""
    from taskgraph.runners.local import stored_study_checkpoint_folder

    return stored_study_checkpoint_folder(
        attrs.get("taskgraph:spec"), study=name, storage_url=url, study_id=study_id
    )
