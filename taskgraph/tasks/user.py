"""User-defined tasks, written inline in a study YAML and built with :func:`define_task`.

A user task names its files either one by one (``files: {train: ..., dev: ...}``) or by a
``path``: a directory whose files are named after their split (``train.*``, ``dev.*``; upstream
``devel``/``dtest``/``valid``/``validation`` count as dev) or a pattern with a ``{split}``
placeholder (``corpus/{split}.conllu``).  Relative paths are resolved against ``base_dir`` (the
directory of the study YAML) or, without one, the data directory.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from taskgraph.errors import ConfigError, DataNotFoundError
from taskgraph.tasks.catalog import BUILTIN_TASKS
from taskgraph.tasks.datadir import resolve_data_dir
from taskgraph.tasks.readers import get_reader
from taskgraph.tasks.scoring import is_entity_metric, metrics_for_type
from taskgraph.tasks.types import SplitSource, TaskDef, TaskType

__all__ = ["SPLIT_ALIASES", "define_task"]

_NAME = re.compile(r"[a-z][a-z0-9_]*")
_SPLIT = re.compile(r"[a-z][a-z0-9_]*")
#: upstream split names read as ours when a directory is scanned
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "dev": "dev",
    "devel": "dev",
    "dtest": "dev",
    "valid": "dev",
    "validation": "dev",
    "test": "test",
    "etest": "test",
}
_DEFAULT_METRICS: dict[TaskType, tuple[str, ...]] = {
    TaskType.TOKEN_TAGGING: ("accuracy",),
    TaskType.DEPENDENCY_PARSING: ("las", "uas"),
    TaskType.EXTRACTIVE_QA: ("f1", "exact"),
    TaskType.SENTENCE_CLASSIFICATION: ("accuracy",),
    TaskType.SENTENCE_PAIR_CLASSIFICATION: ("accuracy",),
    TaskType.MASKED_LM: ("perplexity",),
}


def define_task(
    name: str,
    *,
    format: str,
    type: str | TaskType,
    label_field: str,
    files: Mapping[str, str] | None = None,
    path: str | None = None,
    metrics: Sequence[str] | None = None,
    reader_options: Mapping[str, Any] | None = None,
    base_dir: Path | None = None,
) -> TaskDef:
    """Return a validated user task; raise :class:`ConfigError` naming the offending field.

    Exactly one of ``files`` (split -> file) and ``path`` (a directory or a ``{split}``
    pattern) must be given.  ``metrics`` defaults by type (accuracy for tagging, which suits
    POS; give ``[f1, precision, recall]`` for NER).
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(f"`name` must be lowercase snake_case, but got {name!r}")
    if name in BUILTIN_TASKS or name.startswith("synth_"):
        raise ConfigError(f"`name` {name!r} is taken by a built-in task; choose another name")
    task_type = _task_type(type)
    reader = get_reader(format)  # UnknownNameError lists the formats
    options = dict(reader_options or {})
    if not isinstance(label_field, str) or not label_field:
        raise ConfigError(f"`label_field` must be a non-empty string, but got {label_field!r}")
    reader.check(task_type, label_field, options)
    chosen = _metrics(task_type, metrics, options, conllu=format == "conllu")
    if (files is None) == (path is None):
        raise ConfigError(f"task {name!r}: give exactly one of `files` and `path`")
    root = Path(base_dir) if base_dir is not None else None
    if files is not None:
        splits = _from_files(files, root)
    else:
        assert path is not None
        # Only a relative path is the data directory's: an absolute one needs none to exist.
        relative = isinstance(path, str) and not Path(path).expanduser().is_absolute()
        splits = _from_path(
            path, root if root is not None or not relative else resolve_data_dir(None)
        )
    return TaskDef(
        name=name,
        type=task_type,
        format=format,
        dataset=f"user:{name}",
        splits=MappingProxyType(splits),
        label_field=label_field,
        metrics=chosen,
        reader_options=MappingProxyType(options),
        description=f"user-defined {task_type.value} task",
    )


def _task_type(value: str | TaskType) -> TaskType:
    try:
        return TaskType(value)
    except ValueError:
        allowed = ", ".join(t.value for t in TaskType)
        raise ConfigError(f"`type` must be one of {allowed}, but got {value!r}") from None


def _metrics(
    task_type: TaskType,
    metrics: Sequence[str] | None,
    options: Mapping[str, Any],
    *,
    conllu: bool = False,
) -> tuple[str, ...]:
    if metrics is None:
        return _DEFAULT_METRICS[task_type]
    if isinstance(metrics, str) or not metrics:
        raise ConfigError(f"`metrics` must be a non-empty list, but got {metrics!r}")
    allowed = metrics_for_type(task_type)
    for metric in metrics:
        if metric not in allowed and not (
            task_type is TaskType.TOKEN_TAGGING and is_entity_metric(metric)
        ):
            raise ConfigError(
                f"`metrics` entry {metric!r} is not available for {task_type.value}; "
                f"known: {', '.join(sorted(allowed))}"
            )
    if (
        "f1" in metrics
        and task_type in (TaskType.SENTENCE_CLASSIFICATION, TaskType.SENTENCE_PAIR_CLASSIFICATION)
        and not options.get("positive_label")
    ):
        raise ConfigError(
            "`metrics` has binary 'f1', which needs `reader_options.positive_label` "
            "(or use 'macro_f1')"
        )
    if task_type is TaskType.TOKEN_TAGGING and (conllu or options.get("scheme") == "none"):
        # entity scores read B-/I- spans; plain labels (POS, IOBES) failed every trial at scoring
        spans = [m for m in metrics if is_entity_metric(m)]
        if spans and conllu:
            raise ConfigError(
                f"`metrics` has entity score {spans[0]!r}, but CoNLL-U tags (upos, xpos) are "
                "plain labels, not IOB spans: use 'accuracy'"
            )
        if spans:
            raise ConfigError(
                f"`metrics` has entity score {spans[0]!r}, but `reader_options.scheme` is "
                "'none' (tags are plain labels, not IOB spans): use 'accuracy', or set "
                "`reader_options.scheme` to 'iob2' or 'iob1'"
            )
    return tuple(metrics)


def _resolve(file: str, root: Path | None) -> str:
    candidate = Path(file).expanduser()
    if candidate.is_absolute():
        return str(candidate)
    return str(root / candidate) if root is not None else file


def _from_files(files: Mapping[str, str], root: Path | None) -> dict[str, SplitSource]:
    if not isinstance(files, Mapping) or not files:
        raise ConfigError(f"`files` must map split names to files, but got {files!r}")
    splits: dict[str, SplitSource] = {}
    for split, file in files.items():
        if not isinstance(split, str) or not _SPLIT.fullmatch(split):
            raise ConfigError(f"`files` key {split!r} must be a lowercase split name")
        if not isinstance(file, str) or not file:
            raise ConfigError(f"`files.{split}` must be a file path, but got {file!r}")
        splits[split] = SplitSource(file=_resolve(file, root))
    return splits


def _from_path(path: str, root: Path | None) -> dict[str, SplitSource]:
    if not isinstance(path, str) or not path:
        raise ConfigError(f"`path` must be a directory or a '{{split}}' pattern, but got {path!r}")
    full = Path(_resolve(path, root))
    splits: dict[str, SplitSource] = {}
    if "{split}" in path:
        pattern = full.name
        prefix, _, suffix = pattern.partition("{split}")
        if not full.parent.is_dir():
            raise DataNotFoundError(f"`path` {path!r}: directory does not exist: {full.parent}")
        for candidate in sorted(full.parent.glob(prefix + "*" + suffix)):
            raw = candidate.name[len(prefix) : len(candidate.name) - len(suffix)]
            split = SPLIT_ALIASES.get(raw, raw)
            if _SPLIT.fullmatch(split):
                _add(splits, split, candidate, path)
    else:
        if not full.is_dir():
            raise DataNotFoundError(f"`path` {path!r}: directory does not exist: {full}")
        for candidate in sorted(full.iterdir()):
            alias = SPLIT_ALIASES.get(candidate.name.split(".")[0])
            if candidate.is_file() and alias:
                _add(splits, alias, candidate, path)
    if not splits:
        raise ConfigError(
            f"`path` {path!r} matched no split files (expected names like train.*, dev.*, test.*)"
        )
    return splits


def _add(splits: dict[str, SplitSource], split: str, file: Path, path: str) -> None:
    if split in splits:
        raise ConfigError(
            f"`path` {path!r}: two files for split {split!r}: {splits[split].file} and {file}; "
            "name the files with `files` instead"
        )
    splits[split] = SplitSource(file=str(file))
