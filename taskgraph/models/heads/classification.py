"""Sentence and sentence-pair classification: pooled representation -> dropout -> linear.

The same head serves single sentences and pairs: a pair is one input (``[CLS] a [SEP] b
[SEP]`` with ``token_type_ids``) and the encoder sees both segments.  Pooling is an option:

* ``"mean"`` (default): the mean of the hidden states over the attended positions, which is
  how all-MiniLM-L6-v2 was trained (sentence-transformers mean pooling), so it is the better
  starting point for that encoder;
* ``"cls"``: the hidden state of the first token, as ``BertForSequenceClassification`` does,
  but without BERT's tanh pooler (the encoders here drop it, see :mod:`taskgraph.models.encoders`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from taskgraph.errors import ConfigError
from taskgraph.models.heads.base import Batch, HeadOutput, HeadSpec, TaskHead

__all__ = ["POOLINGS", "SequenceClassificationHead", "pool"]

POOLINGS = ("mean", "cls")


class SequenceClassificationHead(TaskHead):
    """One class per input: ``logits`` (B, C); ``decode`` gives one class id per example."""

    OPTIONS: ClassVar[dict[str, Any]] = {"pooling": "mean", "dropout": 0.1}
    LABEL_KEYS = ("labels",)

    def __init__(
        self, *, spec: HeadSpec, hidden_size: int, classifier: nn.Module | None = None
    ) -> None:
        """``classifier`` maps (B, H) to (B, C); a fresh linear layer when ``None``."""
        super().__init__(spec=spec)
        if self.options["pooling"] not in POOLINGS:
            raise ConfigError(
                f"task {spec.task!r}: pooling must be one of {', '.join(POOLINGS)}, "
                f"but got {self.options['pooling']!r}"
            )
        self.num_labels = int(spec.num_labels)
        self.pooling = str(self.options["pooling"])
        self.dropout = nn.Dropout(float(self.options["dropout"]))
        self.classifier = (
            classifier if classifier is not None else nn.Linear(hidden_size, self.num_labels)
        )

    def forward(self, hidden: Tensor, batch: Batch) -> HeadOutput:
        """Return the class logits and, when ``labels`` are given, the cross-entropy loss."""
        pooled = pool(hidden, batch.get("attention_mask"), how=self.pooling)
        logits = self.classifier(self.dropout(pooled))
        labels = batch.get("labels")
        loss = None if labels is None else F.cross_entropy(logits.float(), labels.reshape(-1))
        return HeadOutput(loss=loss, logits=logits)

    def decode(self, output: HeadOutput, batch: Batch) -> list[int]:
        """Return the predicted class id of each example."""
        assert isinstance(output.logits, Tensor)
        return [int(i) for i in output.logits.argmax(dim=-1).tolist()]


def pool(hidden: Tensor, attention_mask: Tensor | None, *, how: str) -> Tensor:
    """Return one vector per sequence (B, H): the first token's, or the masked mean."""
    if how == "cls":
        return hidden[:, 0]
    if attention_mask is None:
        return hidden.mean(dim=1)
    weights = attention_mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
