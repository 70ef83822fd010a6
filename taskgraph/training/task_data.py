"""Each trial task's data: label vocabulary, training tensors and evaluation sets.

:func:`build_task_data` reads and tokenizes every task of a trial through the feature cache
(:func:`taskgraph.tasks.cache.feature_cache`).  Training examples are capped by
``mixing.max_examples`` with a fixed random subset (:func:`deterministic_subset`), so every
seed of a configuration trains on the same examples; :func:`check_caps` refuses a cap on a task
that is not one of the trial's.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from taskgraph.errors import ConfigError
from taskgraph.tasks import has_unanswerable, label_vocabulary, load_examples, task_fingerprint
from taskgraph.tasks.cache import feature_cache
from taskgraph.tasks.features import EncodedSplit, encode_examples, tokenizer_fingerprint
from taskgraph.tasks.types import Example, TaskDef, TaskType
from taskgraph.training.batching import TaskTensors
from taskgraph.training.evaluation import EvalSet
from taskgraph.training.options import TrainingOptions
from taskgraph.training.runtime import stable_seed
from taskgraph.training.selection import Selection, selected_rows, subset_tensors
from taskgraph.training.trainer import TaskData
from taskgraph.trial import TrialConfig

__all__ = ["build_task_data", "check_caps", "deterministic_subset"]

logger = logging.getLogger(__name__)

_LABELED = (
    TaskType.TOKEN_TAGGING,
    TaskType.DEPENDENCY_PARSING,
    TaskType.SENTENCE_CLASSIFICATION,
    TaskType.SENTENCE_PAIR_CLASSIFICATION,
)


def deterministic_subset(size: int, cap: int | None, *, key: str) -> np.ndarray:
    """Return the sorted indices of a fixed random subset of ``cap`` out of ``size`` items."""
    if cap is None or cap >= size:
        return np.arange(size)
    if cap < 1:
        raise ConfigError(f"`max_examples` for {key!r} must be >= 1, but got {cap}")
    rng = np.random.default_rng(stable_seed("subset", key))
    return np.sort(rng.choice(size, size=cap, replace=False))


def check_caps(config: TrialConfig) -> None:
    """Raise ConfigError for a ``mixing.max_examples`` task that is not one of the trial's.

    Such a cap would be silently ignored; the spec checks refuse the same for a study.
    """
    tasks = config.task_set
    for name in config.mixing.max_examples:
        if name not in tasks:
            raise ConfigError(
                f"mixing.max_examples.{name}: not a task of the trial; its tasks: "
                f"{', '.join(tasks)}"
            )


def _mlm_info(tokenizer: Any) -> dict[str, int]:
    return {"mask_token_id": int(tokenizer.mask_token_id), "vocab_size": len(tokenizer)}


def _encoded(
    task: TaskDef,
    split: str,
    tokenizer: Any,
    *,
    data_dir: str | os.PathLike[str] | None,
    cap: int | None,
    subset_key: str,
    labels: list[str] | None,
    max_length: int,
    doc_stride: int,
    keep_examples: bool,
) -> tuple[list[Example], EncodedSplit]:
    """Return the (capped) examples of ``split`` and their features, from the feature cache.

    The key holds everything the features depend on: the task's data fingerprint (file
    contents, carve rule, format, reader options), the split, the tokenizer's fingerprint,
    ``max_length``, the QA stride, the label vocabulary and the subset cap.  A hit skips
    reading the file and tokenizing.  Training splits keep no examples (only evaluation scores
    against them), so their entries are smaller.
    """
    cache = feature_cache()
    key = ""
    fingerprint = ""
    if cache is not None:
        fingerprint = task_fingerprint(task, data_dir=data_dir)
        key = cache.key(
            {
                "task": fingerprint,
                "split": split,
                "tokenizer": tokenizer_fingerprint(tokenizer),
                "max_length": max_length,
                "doc_stride": doc_stride if task.type is TaskType.EXTRACTIVE_QA else None,
                "labels": labels,
                "cap": cap,
                "subset": subset_key,
                "examples": keep_examples,
            }
        )
        hit = cache.get(key)
        if hit is not None:
            examples, encoded = hit
            return list(examples), encoded
    examples = load_examples(task, split, data_dir=data_dir)
    keep = deterministic_subset(len(examples), cap, key=subset_key)
    examples = [examples[i] for i in keep]
    encoded = encode_examples(
        task, examples, tokenizer, labels=labels, max_length=max_length, doc_stride=doc_stride
    )
    # A file edited between the key's fingerprint and the read would store the new examples
    # under the old data's key (the trial itself then fails: run._changed_task).
    if cache is not None and task_fingerprint(task, data_dir=data_dir) == fingerprint:
        cache.put(key, (examples if keep_examples else [], encoded))
    return examples, encoded


def build_task_data(
    config: TrialConfig,
    tasks: Mapping[str, TaskDef],
    tokenizer: Any,
    *,
    data_dir: str | os.PathLike[str] | None,
    options: TrainingOptions,
    selections: Mapping[str, Selection] | None = None,
) -> dict[str, TaskData]:
    """Return every task's label vocabulary, training tensors and evaluation sets.

    Encoded splits come from the feature cache (:func:`taskgraph.tasks.cache.feature_cache`)
    when an earlier trial or process tokenized the same data the same way.  ``selections``
    (example-level data selection) keep only the chosen examples of those tasks' training
    splits.
    """
    selections = selections or {}
    out: dict[str, TaskData] = {}
    eval_splits = list(dict.fromkeys([*config.eval_splits, config.objective.split]))
    pad = int(tokenizer.pad_token_id)
    for name, task in tasks.items():
        labels = label_vocabulary(task, data_dir=data_dir) if task.type in _LABELED else None
        if labels is not None and not labels:
            raise ConfigError(f"task {name!r} has no labels in any split")
        mlm = _mlm_info(tokenizer) if task.type is TaskType.MASKED_LM else None
        if "train" not in task.splits:
            raise ConfigError(
                f"task {name!r} has no train split (splits: {', '.join(task.splits)})"
            )
        _, encoded = _encoded(
            task,
            "train",
            tokenizer,
            data_dir=data_dir,
            cap=config.mixing.max_examples.get(name),
            subset_key=name,
            labels=labels,
            max_length=config.max_length,
            doc_stride=options.doc_stride,
            keep_examples=False,
        )
        truncated = {"train": encoded.truncated_words}
        train = TaskTensors.from_encoded(encoded, pad_token_id=pad, mlm=mlm)
        data = TaskData(task=task, labels=labels, train=train, truncated_words=truncated)
        chosen = selections.get(name)
        if chosen is not None:
            rows = selected_rows(encoded, chosen.positions)
            data.train = subset_tensors(train, rows)
            data.train_pool, data.selected_rows = train, rows
            data.selection = chosen.record
        splits = [s for s in eval_splits if s in task.splits]
        allow_null = has_unanswerable(task, data_dir=data_dir) if splits else None
        if name == config.target and config.objective.split not in task.splits:
            raise ConfigError(
                f"target task {name!r} has no {config.objective.split!r} split for the objective "
                f"(splits: {', '.join(task.splits)})"
            )
        for split in splits:
            gold, encoded = _encoded(
                task,
                split,
                tokenizer,
                data_dir=data_dir,
                cap=options.max_eval_examples,
                subset_key=f"{name}/{split}",
                labels=labels,
                max_length=config.max_length,
                doc_stride=options.doc_stride,
                keep_examples=True,
            )
            truncated[split] = encoded.truncated_words
            data.evals[split] = EvalSet(
                task=task,
                split=split,
                examples=gold,
                encoded=encoded,
                tensors=TaskTensors.from_encoded(encoded, pad_token_id=pad, mlm=mlm),
                labels=labels,
                allow_null=allow_null,
            )
        if any(truncated.values()):
            logger.warning(
                "task %s: words cut off by max_length=%d: %s", name, config.max_length, truncated
            )
        out[name] = data
    return out
