"""Build the head a :class:`HeadSpec` asks for."""

from __future__ import annotations

from torch import nn

from taskgraph.errors import ConfigError
from taskgraph.models.heads.base import HeadSpec, TaskHead
from taskgraph.models.heads.classification import SequenceClassificationHead
from taskgraph.models.heads.masked_lm import MaskedLMHead
from taskgraph.models.heads.parsing import BiaffineParserHead
from taskgraph.models.heads.qa import SpanQAHead
from taskgraph.models.heads.tagging import TokenTaggingHead
from taskgraph.tasks.types import TaskType

__all__ = ["CLASSIFIER_TASK_TYPES", "HEAD_CLASSES", "build_head"]

#: task types whose head ends in a (replaceable) label classifier: label embedding applies.
CLASSIFIER_TASK_TYPES = frozenset(
    {
        TaskType.TOKEN_TAGGING,
        TaskType.SENTENCE_CLASSIFICATION,
        TaskType.SENTENCE_PAIR_CLASSIFICATION,
    }
)

#: task type -> the head class :func:`build_head` builds for it; its ``OPTIONS`` are the head
#: options a task of that type accepts (``study validate`` checks a spec's against them).
HEAD_CLASSES: dict[TaskType, type[TaskHead]] = {
    TaskType.TOKEN_TAGGING: TokenTaggingHead,
    TaskType.SENTENCE_CLASSIFICATION: SequenceClassificationHead,
    TaskType.SENTENCE_PAIR_CLASSIFICATION: SequenceClassificationHead,
    TaskType.DEPENDENCY_PARSING: BiaffineParserHead,
    TaskType.EXTRACTIVE_QA: SpanQAHead,
    TaskType.MASKED_LM: MaskedLMHead,
}


def build_head(
    spec: HeadSpec,
    *,
    hidden_size: int,
    word_embeddings: nn.Embedding,
    classifier: nn.Module | None = None,
    layer_norm_eps: float = 1e-12,
) -> TaskHead:
    """Return a new head for ``spec``.

    ``word_embeddings`` is the encoder's input embedding (the masked-LM head ties to it);
    ``classifier`` replaces the final linear layer of tagging/classification heads (label
    embedding sharing passes one); it is an error for other task types.
    """
    if classifier is not None and spec.type not in CLASSIFIER_TASK_TYPES:
        raise ConfigError(
            f"task {spec.task!r}: a {spec.type.value} head has no label classifier to replace"
        )
    if spec.type is TaskType.TOKEN_TAGGING:
        return TokenTaggingHead(spec=spec, hidden_size=hidden_size, classifier=classifier)
    if spec.type in (TaskType.SENTENCE_CLASSIFICATION, TaskType.SENTENCE_PAIR_CLASSIFICATION):
        return SequenceClassificationHead(spec=spec, hidden_size=hidden_size, classifier=classifier)
    if spec.type is TaskType.DEPENDENCY_PARSING:
        return BiaffineParserHead(spec=spec, hidden_size=hidden_size)
    if spec.type is TaskType.EXTRACTIVE_QA:
        return SpanQAHead(spec=spec, hidden_size=hidden_size)
    if spec.type is TaskType.MASKED_LM:
        return MaskedLMHead(
            spec=spec,
            hidden_size=hidden_size,
            word_embeddings=word_embeddings,
            layer_norm_eps=layer_norm_eps,
        )
    raise ConfigError(
        f"task {spec.task!r}: no head for task type {spec.type!r}"
    )  # pragma: no cover
