"""Score a task's predictions: pick the metric functions by task type and shape the inputs.

Prediction shapes (one per gold example, in the same order):

* token tagging: a sequence of tags per sentence;
* dependency parsing: ``(heads, deprels)`` per sentence;
* extractive QA: a ranked list of answers per question, best first, ``""`` = no answer (a
  plain string counts as a list of one).  For BioASQ-style tasks (``group_by: id_prefix``)
  answers may be ``(text, score)`` pairs: the snippets of one question are merged by score;
  plain strings are merged rank by rank (all first answers, then all second answers, ...);
* sentence(-pair) classification: the label string;
* masked LM: ``(summed_loss, token_count)`` per example.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any

from taskgraph.errors import ConfigError
from taskgraph.tasks import metrics as m
from taskgraph.tasks.types import (
    Example,
    ParsedSentence,
    QAExample,
    TaggedSentence,
    TaskDef,
    TaskType,
    TextExample,
)
from taskgraph.vocabulary import metric_direction

__all__ = ["is_entity_metric", "metric_direction", "metrics_for_type", "score_predictions"]

_CLASSIFICATION = frozenset({"accuracy", "f1", "macro_f1", "mcc"})
_METRICS: dict[TaskType, frozenset[str]] = {
    TaskType.TOKEN_TAGGING: frozenset({"accuracy", "f1", "precision", "recall"}),
    TaskType.DEPENDENCY_PARSING: frozenset({"uas", "las"}),
    TaskType.EXTRACTIVE_QA: frozenset(
        {
            "exact",
            "f1",
            "has_ans_exact",
            "has_ans_f1",
            "no_ans_exact",
            "no_ans_f1",
            "strict_accuracy",
            "lenient_accuracy",
            "mrr",
        }
    ),
    TaskType.SENTENCE_CLASSIFICATION: _CLASSIFICATION,
    TaskType.SENTENCE_PAIR_CLASSIFICATION: _CLASSIFICATION,
    TaskType.MASKED_LM: frozenset({"perplexity", "loss"}),
}
_FACTOID = frozenset({"strict_accuracy", "lenient_accuracy", "mrr"})


def metrics_for_type(task_type: TaskType) -> frozenset[str]:
    """Return the metric names :func:`score_predictions` can report for ``task_type``."""
    return _METRICS[task_type]


def score_predictions(
    task: TaskDef, gold: Sequence[Example], predictions: Sequence[Any]
) -> dict[str, float]:
    """Return the task's metrics (every name in ``task.metrics``, plus related ones).

    Raises :class:`ConfigError` when the predictions do not fit the gold examples.
    """
    if len(gold) != len(predictions):
        raise ConfigError(
            f"task {task.name!r}: expected {len(gold)} predictions (one per gold example), "
            f"got {len(predictions)}"
        )
    scorer: Callable[[TaskDef, list[Any], Sequence[Any]], dict[str, float]] = {
        TaskType.TOKEN_TAGGING: _tagging,
        TaskType.DEPENDENCY_PARSING: _parsing,
        TaskType.EXTRACTIVE_QA: _qa,
        TaskType.SENTENCE_CLASSIFICATION: _classification,
        TaskType.SENTENCE_PAIR_CLASSIFICATION: _classification,
        TaskType.MASKED_LM: _masked_lm,
    }[task.type]  # type: ignore[assignment]  # each takes its own example type
    scores = scorer(task, _typed(task, gold), predictions)
    for metric in task.metrics:
        # a per-type entity score of a type that occurs nowhere is 0, not missing
        scores.setdefault(metric, 0.0)
    return scores


_EXAMPLE_TYPES: dict[TaskType, type] = {
    TaskType.TOKEN_TAGGING: TaggedSentence,
    TaskType.DEPENDENCY_PARSING: ParsedSentence,
    TaskType.EXTRACTIVE_QA: QAExample,
    TaskType.SENTENCE_CLASSIFICATION: TextExample,
    TaskType.SENTENCE_PAIR_CLASSIFICATION: TextExample,
    TaskType.MASKED_LM: TextExample,
}


def _typed(task: TaskDef, gold: Sequence[Example]) -> list[Any]:
    wanted = _EXAMPLE_TYPES[task.type]
    for index, example in enumerate(gold):
        if not isinstance(example, wanted):
            raise ConfigError(
                f"task {task.name!r}: gold example {index} is a {type(example).__name__}, "
                f"expected {wanted.__name__}"
            )
    return list(gold)


def is_entity_metric(name: str) -> bool:
    """Return whether ``name`` is a token-tagging entity-span score: ``f1``, ``precision`` or
    ``recall``, or one of them for one entity type (``f1_PER``)."""
    return re.fullmatch(r"(f1|precision|recall)(_.+)?", name) is not None


def _tagging(task: TaskDef, gold: list[TaggedSentence], pred: Sequence[Any]) -> dict[str, float]:
    gold_tags = [g.tags for g in gold]
    pred_tags = [tuple(p) for p in pred]
    scores = {"accuracy": m.tagging_accuracy(gold_tags, pred_tags)}
    if any(is_entity_metric(name) for name in task.metrics):
        scores.update(m.entity_scores(gold_tags, pred_tags))
    return scores


def _parsing(task: TaskDef, gold: list[ParsedSentence], pred: Sequence[Any]) -> dict[str, float]:
    for index, item in enumerate(pred):
        if not (isinstance(item, Sequence) and len(item) == 2):
            raise ConfigError(
                f"task {task.name!r}: prediction {index} must be (heads, deprels), got {item!r}"
            )
    return m.attachment_scores(
        [g.heads for g in gold],
        [g.deprels for g in gold],
        [list(p[0]) for p in pred],
        [list(p[1]) for p in pred],
        gold_upos=[g.upos for g in gold],
    )


def _ranked(item: Any) -> list[Any]:
    if isinstance(item, str):
        return [item]
    if isinstance(item, Sequence):
        return list(item)
    raise ConfigError(f"a QA prediction must be a ranked list of answers, got {item!r}")


def _text(answer: Any) -> str:
    return answer[0] if isinstance(answer, tuple) else str(answer)


def _qa(task: TaskDef, gold: list[QAExample], pred: Sequence[Any]) -> dict[str, float]:
    ranked = [_ranked(p) for p in pred]
    scores: dict[str, float] = {}
    if not set(task.metrics) <= _FACTOID:
        best = [_text(r[0]) if r else "" for r in ranked]
        scores.update(m.squad_v2_scores([[a.text for a in g.answers] for g in gold], best))
    if set(task.metrics) & _FACTOID:
        # Factoid metrics count questions.  A group is one question only when the reader
        # grouped the snippets of one question (group_by: id_prefix); by default it is the
        # article title, whose questions are each scored on their own.
        by_question = task.reader_options.get("group_by") == "id_prefix"
        questions: dict[str, tuple[set[str], list[list[Any]]]] = {}
        for example, answers in zip(gold, ranked, strict=True):
            question = (example.group if by_question else "") or example.id
            gold_texts, member_answers = questions.setdefault(question, (set(), []))
            gold_texts.update(a.text for a in example.answers)
            member_answers.append(answers)
        scores.update(
            m.factoid_scores(
                [sorted(g) for g, _ in questions.values()],
                [_merge(members) for _, members in questions.values()],
            )
        )
    return scores


def _merge(members: list[list[Any]], top: int = 5) -> list[str]:
    """Return one ranked answer list for a question from its snippets' ranked lists."""
    scored = all(isinstance(a, tuple) and len(a) == 2 for answers in members for a in answers)
    if scored:
        best: dict[str, tuple[float, str]] = {}
        for answers in members:
            for text, score in answers:
                key = text.strip().lower()
                if key and (key not in best or score > best[key][0]):
                    best[key] = (float(score), text)
        return [text for _, text in sorted(best.values(), key=lambda x: -x[0])][:top]
    merged: list[str] = []
    seen: set[str] = set()
    for rank in range(max((len(a) for a in members), default=0)):
        for answers in members:
            if rank < len(answers):
                text = _text(answers[rank])
                key = text.strip().lower()
                if key and key not in seen:
                    seen.add(key)
                    merged.append(text)
    return merged[:top]


def _classification(
    task: TaskDef, gold: list[TextExample], pred: Sequence[Any]
) -> dict[str, float]:
    labels: list[str] = []
    for index, example in enumerate(gold):
        if example.label is None:
            raise ConfigError(
                f"task {task.name!r}: gold example {index} has no label (an unlabeled split such "
                "as rte test_unlabeled cannot be scored)"
            )
        labels.append(example.label)
    predicted = [str(p) for p in pred]
    scores = {"accuracy": m.accuracy(labels, predicted)}
    if "mcc" in task.metrics:
        scores["mcc"] = m.matthews_corrcoef(labels, predicted)
    if "macro_f1" in task.metrics:
        scores["macro_f1"] = m.macro_f1(labels, predicted)
    if "f1" in task.metrics:
        positive = task.reader_options.get("positive_label")
        if not positive:
            raise ConfigError(f"task {task.name!r}: binary f1 needs reader_options.positive_label")
        scores["f1"] = m.binary_f1(labels, predicted, positive=str(positive))
    return scores


def _masked_lm(task: TaskDef, gold: list[TextExample], pred: Sequence[Any]) -> dict[str, float]:
    total_loss = 0.0
    total_tokens = 0
    for index, item in enumerate(pred):
        if not (isinstance(item, Sequence) and len(item) == 2):
            raise ConfigError(
                f"task {task.name!r}: prediction {index} must be (summed_loss, token_count)"
            )
        total_loss += float(item[0])
        total_tokens += int(item[1])
    loss = total_loss / total_tokens if total_tokens else 0.0
    return {"loss": loss, "perplexity": math.exp(loss)}
