"""Checks of a parsed spec against the task catalog and the data directory.

The pydantic models check a spec's shape; :func:`inline_task_defs` turns its inline tasks into
task definitions, :func:`check_inline_data` reads the head of each of their files, and
:func:`check_data` is the last check before a study is created: it resolves the data directory
and finds every file each task reads, so a wrong ``--data`` is one error line instead of a
study full of failed trials.  The checks of the spec's names against the registries of the
layers above (samplers, trainer settings, sharing architectures) are
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
    option_name,
)
from taskgraph.spec.models import StudySpec

__all__ = ["check_data", "check_inline_data", "inline_task_defs"]


def inline_task_defs(spec: StudySpec, *, source: str = "spec") -> dict[str, Any]:
    """Return the spec's inline tasks as validated ``TaskDef`` objects, by name.

    Files are not read here (:func:`check_inline_data` reads them); a file or folder given by
    an absolute path (every path of a spec file is made absolute) must exist and be of its
    kind.  A relative one, from a spec object, is the data directory's, checked by
    :func:`check_data`: a relative file is looked up when it is read, a relative ``path`` here
    (its split files are listed now), in the spec's ``data_dir``, else ``TASKGRAPH_DATA``,
    else the default folder (:func:`path_base`).
    """
    from taskgraph.tasks import define_task

    defs: dict[str, Any] = {}
    for index, task in enumerate(spec.inline_tasks()):
        where = _inline_path(spec, task.name, index)
        for split, file in (task.files or {}).items():
            if not Path(file).is_absolute():
                continue
            if Path(file).is_dir():
                raise SpecError(
                    f"{source}: {where}.files.{split}: is a directory, not a file: {file}"
                )
            if Path(file).exists() and not Path(file).is_file():
                raise SpecError(
                    f"{source}: {where}.files.{split}: not a regular file (a device, FIFO or "
                    f"socket): {file}"
                )
            if not Path(file).is_file():
                raise SpecError(f"{source}: {where}.files.{split}: file not found: {file}")
        if task.path is not None and "{split}" not in task.path and Path(task.path).is_absolute():
            if Path(task.path).is_file():
                raise SpecError(f"{source}: {where}.path: is a file, not a directory: {task.path}")
            if not Path(task.path).exists():
                raise SpecError(f"{source}: {where}.path: not found: {task.path}")
        base = None
        if task.path is not None and not _absolute(task.path):
            base = path_base(spec)
            if base is None:
                raise _unlisted(source, f"{where}.path", task.path)
        try:
            definition = define_task(
                task.name,
                format=task.format,
                type=task.type,
                label_field=task.label_field,
                files=task.files,
                path=task.path,
                metrics=task.metrics,
                reader_options=task.reader_options,
                base_dir=base,
            )
        except TaskgraphError as error:
            listed = ""
            if task.path is not None and not _absolute(task.path):
                listed = (
                    " (a relative `path` is listed in the spec's data_dir, else TASKGRAPH_DATA, "
                    "else the default folder)"
                )
            raise SpecError(f"{source}: {where}: {error}{listed}") from None
        if "train" not in definition.splits:
            raise SpecError(
                f"{source}: {where} ({task.name}): no train split to train on "
                f"(splits: {', '.join(definition.splits)})"
            )
        defs[task.name] = definition
    return defs


def path_base(spec: StudySpec) -> Path | None:
    """Return the folder a relative ``path`` of the spec's inline tasks is listed in: the spec's
    ``data_dir``, else ``TASKGRAPH_DATA``, else the default folder; ``None`` when there is
    none of the three (a run's ``--data`` is not known where task definitions are built:
    :func:`check_data` refuses a relative ``path`` with it).  A ``TASKGRAPH_DATA`` that names
    no folder raises :class:`DataNotFoundError` saying so."""
    from taskgraph.tasks import resolve_data_dir

    if spec.data_dir is not None:
        return Path(spec.data_dir).expanduser().resolve()
    try:
        return resolve_data_dir(None)
    except DataNotFoundError:
        if os.environ.get("TASKGRAPH_DATA"):
            raise
        return None


def _unlisted(source: str, where: str, path: str) -> SpecError:
    """Return the error for a relative ``path`` (at ``where``) with no folder to list it in."""
    return SpecError(
        f"{source}: {where}: {path!r} is relative, and no folder is there to list its split "
        "files in (no spec `data_dir`, no TASKGRAPH_DATA, no ../shared/data): give the spec's "
        "`data_dir`, an absolute `path`, or `files`"
    )


def _relative_paths(spec: StudySpec) -> list[tuple[str, str]]:
    """Return ``(field, path)`` of each inline task whose ``path`` is relative."""
    names = [task.name for task in spec.inline_tasks()]
    return [
        (f"{_inline_path(spec, task.name, names.index(task.name))}.path", task.path)
        for task in spec.inline_tasks()
        if task.path is not None and not _absolute(task.path)
    ]


def _absolute(path: str) -> bool:
    """Return whether ``path`` names the same file wherever the data directory is (as
    :func:`taskgraph.tasks.define_task` reads it: ``~`` is the home folder)."""
    return Path(path).expanduser().is_absolute()


def check_inline_data(
    spec: StudySpec, *, source: str = "spec", data_dir: Path | None = None
) -> None:
    """Read the first :data:`INLINE_HEAD` examples of each split the study reads.

    Those are ``train``, ``training.eval_splits`` and the objective's split, of each of the
    spec's inline tasks.  A file in the wrong format, or unreadable, is one error naming it
    before the study is created (the catalog's datasets are the shared folder's, checked by
    their own tests), and each must hold an example: an empty training split failed every
    trial, an empty evaluation split scored 0.  A split the study never reads is not read
    (a stray ``ner_spaces.iob`` that a ``{split}`` pattern matched is no error).  Without
    ``data_dir`` the files given by absolute paths are read (every path of a spec file is
    absolute: ``study validate``); with it, :func:`check_data`'s directory, the relative ones
    of a spec object, which are that directory's.
    """
    used = {"train", *spec.training.eval_splits, spec.objective.split}  # of every task
    names = [task.name for task in spec.inline_tasks()]
    for name, task in inline_task_defs(spec, source=source).items():
        where = f"{source}: {_inline_path(spec, name, names.index(name))}"
        for split, split_source in task.splits.items():
            if split not in used or (data_dir is None) != Path(split_source.file).is_absolute():
                continue
            if not _read_head(task, split, where=where, data_dir=data_dir):
                raise SpecError(
                    f"{where} ({task.name}): split {split} ({split_source.file}) has no examples"
                )


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

    The files of the spec's inline (user-defined) tasks given by relative paths (a spec
    object's) are also read, their first :data:`INLINE_HEAD` examples per split
    (:func:`check_inline_data`; ``study validate`` reads the others), so a file in the wrong
    format, or an empty split, is one error before the study is created.  So is a
    classification split the study scores whose first examples carry no label (RTE's
    ``test_unlabeled`` in ``training.eval_splits``): every trial failed on it.

    The directory is ``data_dir`` (``run_study``'s ``data``, the ``--data`` option: messages
    name it so), else the spec's ``data_dir``, else ``TASKGRAPH_DATA``, else
    ``../shared/data``.  A directory given explicitly must exist even when no task reads from
    it; the others are only looked for when a task needs them.
    Returns the resolved directory (``None`` when no task reads from one).  Raises
    :class:`ConfigError` for a missing ``--data``, :class:`SpecError` for a missing
    ``data_dir`` field, :class:`DataNotFoundError` naming the task, its field and the path for
    a missing file.  ``trains`` is the runner's capability: a runner that trains nothing (a
    published table) reads no task data, and nothing but an explicit ``data_dir`` is checked
    (it returns None).
    """
    from taskgraph.tasks import get_task, resolve_data_dir, split_file
    from taskgraph.tasks.loading import SYNTHETIC

    resolved: Path | None = None
    origin = ""
    if data_dir is not None:
        origin = option_name("data")  # run_study's keyword, the command line's option
        # Given explicitly, it must exist whatever the runner: `study run/resume --data` with
        # a mistyped directory was accepted by the tabular runner, which reads no data.
        resolved = _data_directory(data_dir, origin, ConfigError)
    if not trains:
        return None  # e.g. a published table reads no task data
    if resolved is not None and (relative := _relative_paths(spec)):
        where, path = relative[0]
        listed = path_base(spec)
        if listed is None:
            raise _unlisted(source, where, path)
        if listed != resolved:
            # A relative `path`'s split files are listed where the task is defined, before
            # any --data is known: they would come from another folder than the rest.
            raise SpecError(
                f"{source}: {where}: {path!r} is relative, and its split files are listed in "
                f"{listed}, not in the `{origin}` directory {resolved}; give the spec's "
                "`data_dir` instead, an absolute `path`, or `files` (relative files are read "
                f"from the `{origin}` directory)"
            )
    if data_dir is None and spec.data_dir is not None:  # --data points at moved data
        resolved = _data_directory(spec.data_dir, f"{source}: data_dir", SpecError)
        origin = "the spec's data_dir"
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
                # names TASKGRAPH_DATA when it is wrong
                resolved = resolve_data_dir(None, keyword="data")
                origin = "TASKGRAPH_DATA" if os.environ.get("TASKGRAPH_DATA") else "default"
            try:
                split_file(task, split, data_dir=resolved)
            except DataNotFoundError as error:
                hint = f" (data directory {resolved}, from {origin})" if resolved else ""
                raise DataNotFoundError(f"{source}: {where}: {error}{hint}") from None
        _check_scored_labels(spec, task, source=source, data_dir=resolved)
    if resolved is not None:
        check_inline_data(spec, source=source, data_dir=resolved)
    return resolved


def _data_directory(
    option: str | os.PathLike[str], label: str, error: type[TaskgraphError]
) -> Path:
    """Return the directory ``option`` names, resolved; raise ``error`` naming ``label`` when it
    does not exist or is a file (as :func:`taskgraph.tasks.resolve_data_dir` says it)."""
    if not os.fspath(option).strip():  # Path("") is the working directory
        raise error(f"{label}: is empty: give the data directory")
    path = Path(option).expanduser()
    if path.exists() and not path.is_dir():
        raise error(f"{label}: data directory is a file, not a directory: {path}")
    if not path.is_dir():
        raise error(f"{label}: data directory does not exist: {path}")
    return path.resolve()


#: examples read from each split of an inline task before a study starts
INLINE_HEAD = 20


def _check_scored_labels(spec: StudySpec, task: Any, *, source: str, data_dir: Path | None) -> None:
    """Refuse a split the study scores ``task`` on whose first examples carry no label.

    Every task of a trial is scored on each split of ``training.eval_splits`` it has, and the
    target on the objective's split too (``taskgraph.training.task_data.build_task_data``); a split
    of unlabeled rows (RTE's ``test_unlabeled``, a TSV reader's ``unlabeled_value``) failed
    each trial at its first evaluation ("gold example 0 has no label"), after the study was
    written.  Only classification examples can lack their label; the first
    :data:`INLINE_HEAD` examples of each such split are read.
    """
    from taskgraph.tasks.types import TaskType, TextExample

    if task.type not in (TaskType.SENTENCE_CLASSIFICATION, TaskType.SENTENCE_PAIR_CLASSIFICATION):
        return
    scored = [("training.eval_splits", split) for split in spec.training.eval_splits]
    if task.name == spec.target:
        scored.append(("objective.split", spec.objective.split))
    checked: set[str] = set()
    for field, split in scored:
        if split not in task.splits or split in checked:
            continue
        checked.add(split)
        where = f"{source}: {field}"
        for index, example in enumerate(_head(task, split, where=where, data_dir=data_dir)):
            if isinstance(example, TextExample) and example.label is None:
                fix = (
                    f"every task is scored on each eval split it has: remove {split}"
                    if field == "training.eval_splits"
                    else "the objective is read from it: name a labeled split"
                )
                raise SpecError(
                    f"{where}: split {split!r} of task {task.name} is unlabeled (example "
                    f"{index} of {task.splits[split].file} has no label), so it cannot be "
                    f"scored; {fix}"
                )


def _read_head(task: Any, split: str, *, where: str, data_dir: Path | None) -> int:
    """Return how many of the first :data:`INLINE_HEAD` examples of ``split`` there are."""
    return len(_head(task, split, where=where, data_dir=data_dir))


def _head(task: Any, split: str, *, where: str, data_dir: Path | None) -> list[Any]:
    """Return the first :data:`INLINE_HEAD` examples of ``split``.

    A malformed line is a :class:`~taskgraph.errors.DataFormatError` naming the spec field,
    the file and the line; a file that is missing or a directory is a :class:`SpecError`
    naming it (exit 2), one the file system refuses to read (permission denied) a
    :class:`TaskgraphError` (exit 1, the environment).
    """
    from taskgraph.tasks import iter_examples

    try:
        return list(iter_examples(task, split, data_dir=data_dir, limit=INLINE_HEAD))
    except DataFormatError as error:
        raise DataFormatError(
            f"{where} (task {task.name!r}, split {split}): {error.path}",
            error.line,
            error.expected,
            error.got,
        ) from None
    except OSError as error:
        message = (
            f"{where} (task {task.name!r}, split {split}): cannot read "
            f"{task.splits[split].file}: {error.strerror or error}"
        )
        if isinstance(error, FileNotFoundError | IsADirectoryError | NotADirectoryError):
            raise SpecError(message) from None  # the file the spec names is wrong: exit 2
        # No permission to read it, an I/O error: the environment failed (exit 1).
        raise TaskgraphError(message) from None
