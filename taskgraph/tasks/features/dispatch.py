"""The features of a task's examples, by the task's type (``encode_examples``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from taskgraph.errors import ConfigError
from taskgraph.tasks.features.classification import encode_classification
from taskgraph.tasks.features.encoded_split import EncodedSplit
from taskgraph.tasks.features.masked_lm import encode_masked_lm
from taskgraph.tasks.features.qa import encode_qa
from taskgraph.tasks.features.word_level import encode_parsing, encode_tagging
from taskgraph.tasks.types import (
    Example,
    ParsedSentence,
    QAExample,
    TaggedSentence,
    TaskDef,
    TaskType,
    TextExample,
)


def encode_examples(
    task: TaskDef,
    examples: Sequence[Example],
    tokenizer: Any,
    *,
    labels: Sequence[str] | None,
    max_length: int,
    doc_stride: int = 128,
) -> EncodedSplit:
    """Return the features of ``examples`` for ``task``'s type (dispatches on ``task.type``).

    ``labels`` is the task's label vocabulary (tags, dependency relations or classes; ``None``
    for QA and masked LM); a label's id is its index there.
    """
    label_to_id = {label: i for i, label in enumerate(labels)} if labels is not None else None
    kind = task.type
    if kind in (TaskType.TOKEN_TAGGING, TaskType.DEPENDENCY_PARSING) and label_to_id is None:
        raise ConfigError(f"task {task.name!r}: a label vocabulary is needed for {kind.value}")
    if kind is TaskType.TOKEN_TAGGING:
        return encode_tagging(
            _typed(examples, TaggedSentence, task),
            tokenizer,
            label_to_id=label_to_id or {},
            max_length=max_length,
        )
    if kind is TaskType.DEPENDENCY_PARSING:
        return encode_parsing(
            _typed(examples, ParsedSentence, task),
            tokenizer,
            deprel_to_id=label_to_id or {},
            max_length=max_length,
        )
    if kind is TaskType.EXTRACTIVE_QA:
        return encode_qa(
            _typed(examples, QAExample, task),
            tokenizer,
            max_length=max_length,
            # Clamped for the default (128), which short windows cannot take; a doc_stride a
            # spec sets is refused before the study when too large (search.checks).
            doc_stride=min(doc_stride, max_length // 2 - 1),
        )
    if kind is TaskType.MASKED_LM:
        return encode_masked_lm(
            _typed(examples, TextExample, task), tokenizer, max_length=max_length
        )
    return encode_classification(
        _typed(examples, TextExample, task),
        tokenizer,
        label_to_id=label_to_id,
        max_length=max_length,
    )


def _typed(examples: Sequence[Example], kind: type, task: TaskDef) -> list[Any]:
    for example in examples:
        if not isinstance(example, kind):
            raise ConfigError(
                f"task {task.name!r} ({task.type.value}) expects {kind.__name__} examples, "
                f"got {type(example).__name__}"
            )
    return list(examples)
