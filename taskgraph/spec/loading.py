"""Read a study spec from YAML or JSON: ``${ENV}`` expansion, validation, one-line errors.

Every error is a :class:`~taskgraph.errors.SpecError` of the form
``FILE:LINE: FIELD.PATH: what is wrong; allowed: ...`` so the user can go straight to it.
Relative paths in the spec (inline task files, a tabular table, the data directory) are
resolved against the spec's folder, so a spec works from any working directory.

The file is parsed by :mod:`taskgraph.spec.reading`; a validation error is worded by
:mod:`taskgraph.spec.validation_messages`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from taskgraph.errors import SpecError
from taskgraph.spec.models import StudySpec
from taskgraph.spec.reading import _read_spec
from taskgraph.spec.validation_messages import _one_line

__all__ = ["expand_env", "load_spec", "spec_from_dict"]

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_TASK_NAME = re.compile(r"[a-z][a-z0-9_]*")  # taskgraph.tasks.user: a task name, not a path


def expand_env(value: Any, *, where: str = "spec") -> Any:
    """Return ``value`` with ``${VAR}`` / ``${VAR:-default}`` replaced in every string.

    An unset variable without a default is a :class:`SpecError` naming it.
    """
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise SpecError(
                f"{where}: environment variable {name} is not set (write ${{{name}:-default}} for a default)"
            )

        return _ENV.sub(replace, value)
    if isinstance(value, Mapping):
        return {k: expand_env(v, where=where) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, where=where) for v in value]
    return value


def load_spec(
    path: str | os.PathLike[str],
    *,
    overrides: Mapping[str, Any] | None = None,
    options: Mapping[str, str] | None = None,
) -> StudySpec:
    """Return the validated :class:`StudySpec` in the YAML (or ``.json``) file at ``path``.

    ``overrides`` maps dotted field paths to values applied before validation, for command
    line options such as ``--trials`` (``{"budget.trials": 3}``).  An error in an overridden
    field names the option that set it, ``options[path]`` (default ``--set PATH``), rather
    than a line of the file, which does not hold the bad value.
    """
    if not os.fspath(path).strip():
        raise SpecError("the spec path is empty: give the study's YAML file")
    file = Path(path)
    if file.is_dir():
        raise SpecError(f"{file}: is a directory, not a spec file: give the study's YAML file")
    if file.exists() and not file.is_file():
        raise SpecError(f"{file}: not a regular file: give the study's YAML file")
    if not file.is_file():
        raise SpecError(f"{file}: spec file not found")
    text, raw = _read_spec(file)
    if not isinstance(raw, Mapping):
        raise SpecError(
            f"{file}: expected a mapping of spec fields at the top level, got {type(raw).__name__}"
        )
    data = expand_env(dict(raw), where=str(file))
    for dotted, value in (overrides or {}).items():
        _set_path(data, dotted.split("."), value)
    _resolve_paths(data, file.resolve().parent)
    labels = {key: f"--set {key}" for key in overrides or {}}
    labels.update(options or {})
    return spec_from_dict(data, source=str(file), text=text, options=labels)


def spec_from_dict(
    data: Mapping[str, Any],
    *,
    source: str = "spec",
    text: str | None = None,
    options: Mapping[str, str] | None = None,
) -> StudySpec:
    """Return ``data`` validated as a :class:`StudySpec`; errors name ``source`` and the field.

    ``options`` maps dotted field paths set from the command line to the option that set
    them (``{"budget.wall_time": "--wall-time"}``): an error inside one names the option.
    """
    try:
        return StudySpec.model_validate(dict(data))
    except ValidationError as error:
        raise SpecError(_one_line(error, source=source, text=text, options=options)) from None


def _set_path(data: dict[str, Any], keys: list[str], value: Any) -> None:
    node = data
    for key in keys[:-1]:
        child = node.get(key)
        if isinstance(child, str) and key in ("runner", "sampler", "pruner", "encoder"):
            child = {"name": child}  # expand the `runner: local` shorthand before overriding
        if child is None and node is data and key == "runner":
            # A spec without `runner:` runs the local one: `--set runner.threads=2` sets its
            # field (a runner of that one field and no name is no runner).
            child = {"name": "local"}
        if not isinstance(child, dict):
            child = {}
        node[key] = child
        node = child
    node[keys[-1]] = value


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    # Paths in a spec are relative to the spec file, not to wherever the CLI runs.
    def absolute(value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            # Left as it is for the spec's checks to refuse: made a path, it was the working
            # directory (``Path("")`` is "."), never what an empty value meant.
            return value
        if isinstance(value, str) and not Path(value).expanduser().is_absolute():
            return str((base / value).resolve())
        return str(Path(value).expanduser()) if isinstance(value, str) else value

    def fix_task(task: Any) -> None:
        if not isinstance(task, dict):
            return
        if isinstance(task.get("files"), dict):
            task["files"] = {k: absolute(v) for k, v in task["files"].items()}
        if "path" in task:
            task["path"] = absolute(task["path"])

    for key in ("candidates", "tasks"):
        if isinstance(data.get(key), list):
            for task in data[key]:
                fix_task(task)
    search = data.get("search")
    pretraining = search.get("pretraining") if isinstance(search, dict) else None
    if isinstance(pretraining, dict) and isinstance(pretraining.get("corpus"), list):
        # A corpus entry is a task name ([a-z][a-z0-9_]*) or a text file's path.
        pretraining["corpus"] = [
            entry if not isinstance(entry, str) or _TASK_NAME.fullmatch(entry) else absolute(entry)
            for entry in pretraining["corpus"]
        ]
    runner = data.get("runner")
    if isinstance(runner, dict) and isinstance(runner.get("table"), str):
        runner["table"] = absolute(runner["table"])
    if isinstance(data.get("data_dir"), str):
        data["data_dir"] = absolute(data["data_dir"])
    if isinstance(data.get("storage"), str):
        data["storage"] = _spec_relative_sqlite(data["storage"], base)


def _spec_relative_sqlite(url: str, base: Path) -> str:
    """Return ``url`` with a relative SQLite file made absolute against ``base``.

    ``storage: sqlite:///study.db`` in a spec names a file beside the spec, like every other
    path in it; ``--storage`` and ``TASKGRAPH_STORAGE`` stay relative to the working directory.
    Other URLs (PostgreSQL, an absolute or ``~`` path, in-memory) are returned unchanged.
    """
    # Imported here: the storage package imports SQLAlchemy and Alembic, which reading a spec
    # without a `storage` field should not pay for.
    from taskgraph.storage.urls import sqlite_url_relative_to

    return sqlite_url_relative_to(url, base)
