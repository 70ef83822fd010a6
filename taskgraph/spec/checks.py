"""Checks of a parsed spec against the task catalog and the data directory.

The pydantic models check a spec's shape; :func:`inline_task_defs` turns its inline tasks into
task definitions, and :func:`check_data` is the last check before a study is created: it
resolves the data directory and finds every file each task reads, so a wrong ``--data`` is one
error line instead of a study full of failed trials.  The checks of the spec's names against
the registries of the layers above (samplers, trainer settings, sharing architectures) are
:func:`taskgraph.search.checks.check_spec`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from taskgraph.errors import (
    ConfigError,
    DataFormatError,
    DataNotFoundError,
    SpecError,
    TaskgraphError,
)
from taskgraph.spec.models import StudySpec

__all__ = ["check_data", "inline_task_defs"]


def inline_task_defs(spec: StudySpec, *, source: str = "spec") -> dict[str, Any]:
    """Return the spec's inline tasks as validated ``TaskDef`` objects, by name."""
    from taskgraph.tasks import define_task

    defs: dict[str, Any] = {}
    for index, task in enumerate(spec.inline_tasks()):
        where = _inline_path(spec, task.name, index)
        for split, file in (task.files or {}).items():
            if not Path(file).is_file():
                raise SpecError(f"{source}: {where}.files.{split}: file not found: {file}")
        if task.path is not None and "{split}" not in task.path and not Path(task.path).exists():
            raise SpecError(f"{source}: {where}.path: not found: {task.path}")
        try:
            defs[task.name] = define_task(
                task.name,
                format=task.format,
                type=task.type,
                label_field=task.label_field,
                files=task.files,
                path=task.path,
                metrics=task.metrics,
                reader_options=task.reader_options,
            )
        except TaskgraphError as error:
            raise SpecError(f"{source}: {where}: {error}") from None
    return defs


def _inline_path(spec: StudySpec, name: str, index: int) -> str:
    for position, candidate in enumerate(spec.candidates):
        if not isinstance(candidate, str) and candidate.name == name:
            return f"candidates[{position}]"
    return f"tasks[{index - sum(1 for c in spec.candidates if not isinstance(c, str))}]"


def check_data(
    spec: StudySpec,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    source: str = "spec",
    trains: bool = True,
) -> Path | None:
    """Resolve the data directory and check that every file each task reads exists.

    The files of the spec's inline (user-defined) tasks are also read, their first
    :data:`INLINE_HEAD` examples per split, so a file in the wrong format is one error naming
    its line before the study is created (the catalog's datasets are the shared folder's,
    checked by their own tests).

    The directory is ``data_dir`` (the ``--data`` option), else the spec's ``data_dir``, else
    ``TASKGRAPH_DATA``, else ``../shared/data``.  A directory given explicitly must exist even
    when no task reads from it; the others are only looked for when a task needs them.
    Returns the resolved directory (``None`` when no task reads from one).  Raises
    :class:`ConfigError` for a missing ``--data``, :class:`SpecError` for a missing
    ``data_dir`` field, :class:`DataNotFoundError` naming the task, its field and the path for
    a missing file.  ``trains`` is the runner's capability: a runner that trains nothing (a
    published table) reads no task data, and nothing is checked.
    """
    from taskgraph.tasks import get_task, resolve_data_dir, split_file
    from taskgraph.tasks.loading import SYNTHETIC

    if not trains:
        return None  # e.g. a published table reads no task data
    resolved: Path | None = None
    origin = ""
    if data_dir is not None:
        resolved, origin = Path(data_dir).expanduser(), "--data"
        if not resolved.is_dir():
            raise ConfigError(f"--data: data directory does not exist: {resolved}")
    elif spec.data_dir is not None:
        resolved, origin = Path(spec.data_dir).expanduser(), "the spec's data_dir"
        if not resolved.is_dir():
            raise SpecError(f"{source}: data_dir: data directory does not exist: {resolved}")
    resolved = None if resolved is None else resolved.resolve()
    extra = inline_task_defs(spec, source=source)
    tasks = [("target", spec.target)]
    tasks += [(f"candidates[{i}]", name) for i, name in enumerate(spec.candidate_names)]
    for where, name in tasks:
        try:
            task = get_task(name, extra=extra)
        except TaskgraphError as error:
            raise SpecError(f"{source}: {where}: {error}") from None
        if task.format == SYNTHETIC:
            continue
        for split, split_source in task.splits.items():
            if resolved is None and not Path(split_source.file).is_absolute():
                resolved = resolve_data_dir(None)  # names TASKGRAPH_DATA when it is wrong
                origin = "TASKGRAPH_DATA" if os.environ.get("TASKGRAPH_DATA") else "default"
            try:
                split_file(task, split, data_dir=resolved)
            except DataNotFoundError as error:
                hint = f" (data directory {resolved}, from {origin})" if resolved else ""
                raise DataNotFoundError(f"{source}: {where}: {error}{hint}") from None
            if name in extra:
                _read_head(task, split, data_dir=resolved, where=f"{source}: {where}")
    return resolved


#: examples read from each split of an inline task before a study starts
INLINE_HEAD = 20


def _read_head(task: Any, split: str, *, data_dir: Path | None, where: str) -> None:
    """Read the first :data:`INLINE_HEAD` examples of ``split``; a malformed line is a
    :class:`~taskgraph.errors.DataFormatError` naming the spec field, the file and the line."""
    from taskgraph.tasks import iter_examples

    try:
        for _ in iter_examples(task, split, data_dir=data_dir, limit=INLINE_HEAD):
            pass
    except DataFormatError as error:
        raise DataFormatError(
            f"{where} (task {task.name!r}, split {split}): {error.path}",
            error.line,
            error.expected,
            error.got,
        ) from None
