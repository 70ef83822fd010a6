"""Task metadata: what is known about each task apart from the gains (descriptions, curve statistics).

A task-metadata file is JSON::

    {"source": {...},                       # optional provenance, not read
     "tasks": {"ccg": {"texts": ["In this task ...", "an example input"],
                       "features": {"dev_f1": 0.86, "loss_slope_30": -0.05},
                       ...}}}                # other keys (e.g. "categories") are kept, not used

``texts`` are embedded (the mean MiniLM sentence embedding, as TextEmb does for catalog tasks:
:func:`taskgraph.models.task_embeddings.text_embeddings`, outside this layer) to give the
task-similarity kernel of :func:`~taskgraph.affinity.similarity.embedding_similarity`;
``features`` are numeric properties of the task (Bingel & Søgaard 2017 found features of the
single-task learning curves predictive of multi-task gains).  ``sourcerank`` uses both when
given (``task_embeddings=``, ``task_features=``); without them every estimator behaves as before.
``benchmarks/metadata/`` holds files of this format for the TaskWeb and Bingel & Søgaard tables.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np

from taskgraph.errors import ConfigError

__all__ = ["TaskMetadata", "feature_matrix", "load_task_metadata"]


@dataclass(frozen=True)
class TaskMetadata:
    """Per-task texts and numeric features read from a task-metadata file."""

    texts: dict[str, list[str]] = field(default_factory=dict)
    features: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def feature_names(self) -> list[str]:
        """Return every numeric feature name that some task has, sorted."""
        return sorted({name for per in self.features.values() for name in per})


def load_task_metadata(path: str | PathLike[str]) -> TaskMetadata:
    """Return the task metadata of the JSON file at ``path``.

    Raises :class:`ConfigError` naming the file and the field when the file is missing, not a
    regular file (a FIFO would wait and a device never end), not JSON, a task's
    ``texts`` is not a list of strings or ``features`` not a mapping of numbers, or no task
    has either (a misspelled key).
    """
    where = Path(path)
    if where.exists() and not where.is_file():
        raise ConfigError(
            f"task metadata {where}: not a regular file (a directory, device, FIFO or socket)"
        )
    try:
        document = json.loads(where.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"task metadata {where}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"task metadata {where}: not JSON ({error})") from None
    except OSError as error:
        # A permission names the file; a read that fails (EIO) does not: name it, so the
        # command line says it in one line with the exit status of its errno.
        raise OSError(error.errno, error.strerror, str(where)) from None
    tasks = document.get("tasks") if isinstance(document, dict) else None
    if not isinstance(tasks, dict) or not tasks:
        raise ConfigError(
            f"task metadata {where}: expected an object with a non-empty 'tasks' object"
        )
    texts: dict[str, list[str]] = {}
    features: dict[str, dict[str, float]] = {}
    for task, entry in tasks.items():
        if not isinstance(entry, dict):
            raise ConfigError(
                f"task metadata {where}: tasks.{task} must be an object, but got {entry!r}"
            )
        raw_texts = entry.get("texts", [])
        if not isinstance(raw_texts, list) or not all(isinstance(t, str) for t in raw_texts):
            raise ConfigError(
                f"task metadata {where}: tasks.{task}.texts must be a list of strings"
            )
        if raw_texts:
            texts[task] = list(raw_texts)
        raw_features = entry.get("features", {})
        if not isinstance(raw_features, dict):
            raise ConfigError(f"task metadata {where}: tasks.{task}.features must be an object")
        numbers: dict[str, float] = {}
        for name, value in raw_features.items():
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise ConfigError(
                    f"task metadata {where}: tasks.{task}.features.{name} must be a finite number, but got {value!r}"
                )
            numbers[name] = float(value)
        if numbers:
            features[task] = numbers
    if not texts and not features:
        keys = sorted({key for entry in tasks.values() for key in entry})
        raise ConfigError(
            f"task metadata {where}: no task has 'texts' or 'features' (the tasks' keys: "
            f"{', '.join(keys) or 'none'})"
        )
    return TaskMetadata(texts=texts, features=features)


def feature_matrix(
    tasks: Sequence[str],
    features: Mapping[str, Mapping[str, float]],
    names: Sequence[str] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Return the (tasks, features) matrix of ``features``, each column standardised over the tasks that have it, and its names.

    NaN where a task lacks a feature; a column constant over the tasks is 0.  ``names``
    (default: every feature any task has, sorted) chooses the columns.
    """
    columns = (
        list(names)
        if names is not None
        else sorted({n for t in tasks for n in features.get(t, {})})
    )
    raw = np.array(
        [[features.get(t, {}).get(n, math.nan) for n in columns] for t in tasks], dtype=float
    ).reshape(len(tasks), len(columns))
    out = np.full(raw.shape, np.nan)
    for k in range(raw.shape[1]):
        present = ~np.isnan(raw[:, k])
        if present.any():
            values = raw[present, k]
            spread = float(values.std())
            out[present, k] = (values - values.mean()) / (spread if spread > 0 else 1.0)
    return out, columns
