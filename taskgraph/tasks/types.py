"""Plain data types shared by readers, the catalog, metrics and the trainer (no torch here).

A *task* is a :class:`TaskDef`: a name, where its data lives, how to read it and how to score
it.  Readers turn files into *examples*, one dataclass per task family.  Predictions handed to
the metrics use the shapes documented on :func:`taskgraph.tasks.scoring.score_predictions`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

__all__ = [
    "Answer",
    "Example",
    "ParsedSentence",
    "QAExample",
    "SplitSource",
    "TaggedSentence",
    "TaskDef",
    "TaskType",
    "TextExample",
]


class TaskType(str, Enum):
    """What a task predicts; selects the reader output, the head and the metrics."""

    TOKEN_TAGGING = "token_tagging"
    DEPENDENCY_PARSING = "dependency_parsing"
    EXTRACTIVE_QA = "extractive_qa"
    SENTENCE_CLASSIFICATION = "sentence_classification"
    SENTENCE_PAIR_CLASSIFICATION = "sentence_pair_classification"
    MASKED_LM = "masked_lm"


@dataclass(frozen=True, slots=True)
class TaggedSentence:
    """One sentence of a token-tagging task (NER in IOB2, UPOS, PTB POS, ...)."""

    tokens: tuple[str, ...]
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ParsedSentence:
    """One basic dependency tree: multiword ranges and empty nodes already removed.

    ``heads[i]`` is the 1-based index of word ``i``'s head, 0 for the root.
    """

    tokens: tuple[str, ...]
    heads: tuple[int, ...]
    deprels: tuple[str, ...]
    upos: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Answer:
    """A gold answer span: its text and its character offset in the context."""

    text: str
    start: int


@dataclass(frozen=True, slots=True)
class QAExample:
    """One extractive question; ``is_impossible`` questions have no answers."""

    id: str
    question: str
    context: str
    answers: tuple[Answer, ...]
    is_impossible: bool = False
    group: str = ""  # article title / question id prefix: the unit of deterministic splits


@dataclass(frozen=True, slots=True)
class TextExample:
    """A sentence or sentence pair with an optional label (``None`` for unlabeled rows/MLM)."""

    text: str
    text_pair: str | None = None
    label: str | None = None


Example = TaggedSentence | ParsedSentence | QAExample | TextExample


@dataclass(frozen=True, slots=True)
class SplitSource:
    """Where one split of a task comes from.

    ``file`` is relative to the data directory (absolute for user-defined tasks).  ``select``
    names a deterministic carve-out of that file (for datasets that lack the split), for
    example ``"hash:dev:0.1"``; ``None`` means the whole file.
    """

    file: str
    select: str | None = None


@dataclass(frozen=True)
class TaskDef:
    """A task: a name, where its data is, how to read it and how to score it."""

    name: str
    type: TaskType
    format: str  # reader name: "conllu", "iob", "squad", "tsv", "synthetic", ...
    dataset: str  # dataset folder under the data directory (or a label for user tasks)
    splits: Mapping[str, SplitSource]
    label_field: str  # "upos", "ner", "head+deprel", "label", "answers", "text", ...
    metrics: tuple[str, ...]  # the first one is the primary metric
    reader_options: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def primary_metric(self) -> str:
        """Return the metric used as the objective unless a study names another."""
        return self.metrics[0]
