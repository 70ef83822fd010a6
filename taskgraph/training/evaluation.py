"""Evaluate one task split: run the model, decode to the metric's prediction shape, score.

Prediction shapes follow :func:`taskgraph.tasks.score_predictions`: tag strings per sentence,
``(heads, deprels)`` per sentence, ranked answer strings per question, a label per sentence,
``(summed_loss, token_count)`` per masked-LM example.  Words cut off by ``max_length`` get a
fallback prediction (tag ``O`` or the first tag; head = the predicted root word, relation
``dep`` or the first relation), so they count as the errors they are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from taskgraph.models import MultiTaskModel
from taskgraph.tasks import score_predictions
from taskgraph.tasks.features import EncodedSplit
from taskgraph.tasks.types import Example, QAExample, TaskDef, TaskType
from taskgraph.training.batching import TaskTensors, to_device
from taskgraph.training.qa_decoding import decode_qa

__all__ = ["EvalSet", "evaluate_split", "predict_split"]

_CLASSIFICATION = (TaskType.SENTENCE_CLASSIFICATION, TaskType.SENTENCE_PAIR_CLASSIFICATION)


@dataclass
class EvalSet:
    """One task split ready for evaluation: gold examples, their features and tensors."""

    task: TaskDef
    split: str
    examples: list[Example]
    encoded: EncodedSplit
    tensors: TaskTensors
    labels: list[str] | None
    #: QA: whether "" is an answer (the task has unanswerable questions, in any split);
    #: ``None``: whether these examples hold one
    allow_null: bool | None = None


def _fallback(labels: Sequence[str], preferred: str) -> str:
    return preferred if preferred in labels else labels[0]


def predict_split(
    model: MultiTaskModel,
    data: EvalSet,
    *,
    batch_size: int,
    device: torch.device,
    autocast: Callable[[], AbstractContextManager[Any]],
) -> list[Any]:
    """Return one prediction per gold example of ``data`` (shapes as in the module docstring)."""
    task, encoded, kind = data.task, data.encoded, data.task.type
    per_feature: list[Any] = [None] * len(encoded.features)
    # Masked LM: the same masks at every evaluation and under any batch size.
    tensors = data.tensors.with_fixed_masks(seed=0)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for indices in tensors.eval_batches(batch_size):
                batch = to_device(tensors.batch(indices), device)
                with autocast():
                    if kind in (TaskType.TOKEN_TAGGING, TaskType.DEPENDENCY_PARSING):
                        rows = list(model.predict(task.name, batch))
                    else:
                        rows = _rows(kind, model(task.name, batch), batch, len(indices))
                for row, feature in enumerate(indices.tolist()):
                    per_feature[feature] = rows[row]
    finally:
        model.train(was_training)
    return _to_predictions(data, per_feature)


def _rows(kind: TaskType, output: Any, batch: dict[str, torch.Tensor], n: int) -> list[Any]:
    """Return per-row raw results: class ids, (start, end) logits, or (loss sum, count)."""
    if kind in _CLASSIFICATION:
        return output.logits.float().argmax(dim=-1).tolist()
    if kind is TaskType.EXTRACTIVE_QA:
        start, end = output.logits
        lengths = batch["attention_mask"].sum(dim=1).tolist()
        start_np, end_np = start.float().cpu().numpy(), end.float().cpu().numpy()
        return [(start_np[r, : lengths[r]], end_np[r, : lengths[r]]) for r in range(n)]
    # masked LM: per-example summed loss over the masked positions and their count, as the
    # head computes them (its logits are only the masked positions', see MaskedLMHead)
    sums = output.extra["loss_sum"].float().tolist()
    counts = output.extra["count"].tolist()
    return list(zip(sums, counts, strict=True))


def _to_predictions(data: EvalSet, per_feature: list[Any]) -> list[Any]:
    kind, encoded, labels = data.task.type, data.encoded, data.labels or []
    if kind is TaskType.EXTRACTIVE_QA:
        starts = [p[0] for p in per_feature]
        ends = [p[1] for p in per_feature]
        questions = [e for e in data.examples if isinstance(e, QAExample)]
        # SQuAD 2.0-style tasks (some questions unanswerable, in any split) may answer "", also
        # on a subset without such a question; BioASQ never does.
        # A question spread over several snippets (BioASQ) merges their answers by score.
        return decode_qa(
            questions,
            encoded,
            _ragged(starts),
            _ragged(ends),
            allow_null=(
                any(q.is_impossible for q in questions)
                if data.allow_null is None
                else data.allow_null
            ),
            with_scores=bool(data.task.reader_options.get("group_by")),
        )
    predictions: list[Any] = []
    for feature, raw in enumerate(per_feature):
        n_words = encoded.meta[feature].get("n_words", 0) if encoded.meta else 0
        if kind is TaskType.TOKEN_TAGGING:
            tags = [labels[i] for i in raw][:n_words]
            tags += [_fallback(labels, "O")] * (n_words - len(tags))
            predictions.append(tuple(tags))
        elif kind is TaskType.DEPENDENCY_PARSING:
            heads = [int(h) for h in raw.heads][:n_words]
            rels = [labels[int(r)] for r in raw.deprels][:n_words]
            root = next((i + 1 for i, h in enumerate(heads) if h == 0), 0)
            missing = n_words - len(heads)
            heads += [root] * missing
            rels += [_fallback(labels, "dep")] * missing
            predictions.append((heads, rels))
        elif kind in _CLASSIFICATION:
            predictions.append(labels[int(raw)])
        else:
            predictions.append(raw)
    return predictions


def _ragged(rows: list[np.ndarray]) -> np.ndarray:
    """Return rows of unequal length as one array padded with -inf (never chosen)."""
    width = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), width), -np.inf, dtype=np.float64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def evaluate_split(
    model: MultiTaskModel,
    data: EvalSet,
    *,
    batch_size: int,
    device: torch.device,
    autocast: Callable[[], AbstractContextManager[Any]],
) -> dict[str, float]:
    """Return the task's metrics on ``data`` (A's :func:`score_predictions`)."""
    predictions = predict_split(
        model, data, batch_size=batch_size, device=device, autocast=autocast
    )
    return score_predictions(data.task, data.examples, predictions)
