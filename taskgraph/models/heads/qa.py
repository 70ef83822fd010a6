"""Extractive question answering: start and end logits over the tokens, with no-answer.

As ``BertForQuestionAnswering`` (Devlin et al. 2019) with the SQuAD 2.0 convention: an
unanswerable question, or a window of a long context that does not contain the answer, has
both gold positions at 0 (the ``[CLS]`` token).  The loss is the mean of the start and end
cross-entropies over the attended positions (padding is masked out).

``decode`` returns, per window, the ``top_k`` best spans ``(start, end, score)`` with
``score = start_logit + end_logit``, ``start <= end < start + max_answer_length``, both inside
the context, and the no-answer score ``start_logits[0] + end_logits[0]``.  The context is the
batch's ``context_mask`` (B, L) when given (best: built from the tokenizer's sequence ids);
otherwise the positions with ``token_type_ids == 1`` except the final ``[SEP]``.  The caller
maps token spans to characters and decides answer vs no-answer (the usual rule: answer when
the best span beats ``null_score``, possibly by a tuned threshold) across a question's windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from taskgraph.models.heads.base import Batch, HeadOutput, HeadSpec, TaskHead

__all__ = ["QAPrediction", "SpanQAHead", "context_mask"]


@dataclass(frozen=True)
class QAPrediction:
    """The best spans of one window, best first, and the score of answering nothing."""

    spans: list[tuple[int, int, float]]
    null_score: float

    @property
    def best(self) -> tuple[int, int]:
        """Return the best span, or ``(0, 0)`` when no span beats the no-answer score."""
        if not self.spans or self.null_score >= self.spans[0][2]:
            return (0, 0)
        return (self.spans[0][0], self.spans[0][1])


class SpanQAHead(TaskHead):
    """Start/end logits: ``logits = (start (B, L), end (B, L))``."""

    OPTIONS: ClassVar[dict[str, Any]] = {"max_answer_length": 30, "top_k": 5, "dropout": 0.0}
    LABEL_KEYS = ("start_positions", "end_positions")

    def __init__(self, *, spec: HeadSpec, hidden_size: int) -> None:
        super().__init__(spec=spec)
        self.dropout = nn.Dropout(float(self.options["dropout"]))
        self.qa_outputs = nn.Linear(hidden_size, 2)

    def forward(self, hidden: Tensor, batch: Batch) -> HeadOutput:
        """Return the start and end logits and, when gold positions are given, the loss."""
        scores = self.qa_outputs(self.dropout(hidden)).float()
        start, end = scores.unbind(dim=-1)
        attention = batch.get("attention_mask")
        if attention is not None:
            blocked = attention == 0
            start = start.masked_fill(blocked, torch.finfo(start.dtype).min)
            end = end.masked_fill(blocked, torch.finfo(end.dtype).min)
        loss = None
        if self.has_labels(batch):
            length = start.shape[1]
            # Positions past the window cannot be predicted: ignore them (transformers does too).
            gold_start = batch["start_positions"].reshape(-1).clamp(0, length)
            gold_end = batch["end_positions"].reshape(-1).clamp(0, length)
            # Not from the masked logits: their sum overflows to -inf, and -inf * 0 is NaN.
            zero = scores.sum() * 0.0
            loss = (
                _window_loss(start, gold_start, outside=length, zero=zero)
                + _window_loss(end, gold_end, outside=length, zero=zero)
            ) / 2
        return HeadOutput(loss=loss, logits=(start, end))

    def decode(
        self,
        output: HeadOutput,
        batch: Batch,
        *,
        top_k: int | None = None,
        max_answer_length: int | None = None,
    ) -> list[QAPrediction]:
        """Return the ``top_k`` best spans and the no-answer score of each window."""
        start, end = output.logits
        k = int(top_k if top_k is not None else self.options["top_k"])
        max_len = int(
            max_answer_length
            if max_answer_length is not None
            else self.options["max_answer_length"]
        )
        start, end = start.detach().float(), end.detach().float()
        length = start.shape[1]
        allowed = context_mask(batch, length=length).to(start.device)
        offsets = torch.arange(length, device=start.device)
        span_len = offsets[None, :] - offsets[:, None]  # end - start
        shape_ok = (span_len >= 0) & (span_len < max_len)
        valid = allowed[:, :, None] & allowed[:, None, :] & shape_ok[None]
        scores = (start[:, :, None] + end[:, None, :]).masked_fill(~valid, float("-inf"))
        flat = scores.flatten(1)
        count = min(k, flat.shape[1])
        values, indices = flat.topk(count, dim=1)
        null = (start[:, 0] + end[:, 0]).tolist()
        result = []
        for row in range(flat.shape[0]):
            spans = [
                (int(i) // length, int(i) % length, float(v))
                for v, i in zip(values[row].tolist(), indices[row].tolist(), strict=True)
                if v != float("-inf")
            ]
            result.append(QAPrediction(spans=spans, null_score=float(null[row])))
        return result


def _window_loss(logits: Tensor, gold: Tensor, *, outside: int, zero: Tensor) -> Tensor:
    """Return the mean cross-entropy over the gold positions inside the window, else ``zero``.

    With every gold position at ``outside`` (past the window) the mean would be over no
    positions, NaN; ``zero`` is a zero that still depends on the weights.
    """
    if bool((gold != outside).any()):
        return F.cross_entropy(logits, gold, ignore_index=outside)
    return zero


def context_mask(batch: Batch, *, length: int) -> Tensor:
    """Return the (B, L) bool mask of positions an answer may start or end at."""
    if "context_mask" in batch:
        return batch["context_mask"].bool()
    attention = batch.get("attention_mask")
    ids = batch["input_ids"]
    attended = attention.bool() if attention is not None else torch.ones_like(ids, dtype=torch.bool)
    # The last attended position is the closing [SEP]; it is never part of an answer.
    last = attended.long().cumsum(dim=1).argmax(dim=1)
    is_last = torch.zeros_like(attended).scatter_(1, last[:, None], True)
    types = batch.get("token_type_ids")
    if types is not None and bool((types == 1).any()):
        return attended & (types == 1) & ~is_last
    is_first = torch.zeros_like(attended)
    is_first[:, 0] = True
    return attended & ~is_first & ~is_last
