"""The task catalog: built-in and user tasks, readers for their files, and their metrics.

>>> from taskgraph.tasks import get_task, load_examples, score_predictions
>>> task = get_task("ud_en_ewt_upos")
>>> gold = load_examples(task, "dev", limit=100)
"""

from __future__ import annotations

from taskgraph.errors import DataFormatError
from taskgraph.tasks.catalog import BUILTIN_TASKS, get_task, list_tasks
from taskgraph.tasks.datadir import resolve_data_dir
from taskgraph.tasks.loading import (
    cached_count,
    count_examples,
    dataset_fingerprints,
    describe_split,
    edited_while_read,
    has_unanswerable,
    iter_examples,
    label_vocabulary,
    load_examples,
    split_file,
    task_fingerprint,
)
from taskgraph.tasks.readers import READERS, Reader, Record, get_reader
from taskgraph.tasks.scoring import metric_direction, metrics_for_type, score_predictions
from taskgraph.tasks.splits import Carve, parse_carve
from taskgraph.tasks.types import (
    Answer,
    Example,
    ParsedSentence,
    QAExample,
    SplitSource,
    TaggedSentence,
    TaskDef,
    TaskType,
    TextExample,
)
from taskgraph.tasks.user import define_task

__all__ = [
    "BUILTIN_TASKS",
    "READERS",
    "Answer",
    "Carve",
    "DataFormatError",
    "Example",
    "ParsedSentence",
    "QAExample",
    "Reader",
    "Record",
    "SplitSource",
    "TaggedSentence",
    "TaskDef",
    "TaskType",
    "TextExample",
    "cached_count",
    "count_examples",
    "dataset_fingerprints",
    "define_task",
    "describe_split",
    "edited_while_read",
    "get_reader",
    "get_task",
    "has_unanswerable",
    "iter_examples",
    "label_vocabulary",
    "list_tasks",
    "load_examples",
    "metric_direction",
    "metrics_for_type",
    "parse_carve",
    "resolve_data_dir",
    "score_predictions",
    "split_file",
    "task_fingerprint",
]
