"""A study's checked spec: a spec file or :class:`~taskgraph.spec.StudySpec` with overrides.

The overrides (the command line's options, ``--set``, or the Python API's keywords) go through
the models and the checks (:func:`check_study_spec`), so nothing invalid reaches the database;
an error an override causes names the option or keyword that gave it, not a line of the file.
A runner given apart from the spec replaces the spec's, keeping its settings when the name is
the same.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from taskgraph.app.arguments import filesystem_path, flag, mapping
from taskgraph.errors import ConfigError, SpecError, option_name, worded_for_command_line
from taskgraph.registry import RUNNERS
from taskgraph.runners.base import Runner
from taskgraph.spec.models import StudySpec

__all__ = ["check_study_spec", "load_study_spec", "runner_of"]

PathLike = str | os.PathLike[str]


def runner_of(spec: StudySpec) -> Runner:
    """Return the :class:`~taskgraph.runners.base.Runner` plug-in ``spec.runner.name`` names.

    Raises :class:`~taskgraph.errors.UnknownNameError` listing the registered runners.
    """
    runner: Runner = RUNNERS.get(spec.runner.name)
    return runner


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
