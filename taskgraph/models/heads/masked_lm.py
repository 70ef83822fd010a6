"""Masked language modelling head (Devlin et al. 2019), tied to the input embeddings.

As BERT's ``BertLMPredictionHead``: dense -> GELU -> LayerNorm -> a projection onto the
vocabulary whose weight *is* the encoder's word-embedding matrix (``{"tie": True}``, the
default; Press and Wolf 2017) plus a per-token bias.  all-MiniLM-L6-v2 ships no MLM head, so
the transform is freshly initialised.

With labels, the vocabulary projection is computed only at the positions whose label is not
-100 (the masked ones): ``logits`` is then ``(M, V)`` for those M positions, in row-major
order, and ``extra["positions"]`` is the (B, L) bool mask saying where they are;
``extra["loss_sum"]`` (B,) and ``extra["count"]`` (B,) are each sequence's summed token loss
and number of scored tokens (for perplexity).  Without
labels ``logits`` is ``(B, L, V)`` and ``extra["positions"]`` marks the attended positions.
This keeps the (B, L, V) tensor (hundreds of MB at vocabulary 30k) out of training.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from taskgraph.models.heads.base import Batch, HeadOutput, HeadSpec, TaskHead

__all__ = ["MaskedLMHead"]


class MaskedLMHead(TaskHead):
    """Token predictions over the vocabulary; ``decode`` gives predicted ids per sequence."""

    OPTIONS: ClassVar[dict[str, Any]] = {"tie": True}
    LABEL_KEYS = ("labels",)

    def __init__(
        self,
        *,
        spec: HeadSpec,
        hidden_size: int,
        word_embeddings: nn.Embedding,
        layer_norm_eps: float = 1e-12,
    ) -> None:
        """``word_embeddings``: the encoder's input embeddings (tied unless ``tie`` is False)."""
        super().__init__(spec=spec)
        self.transform = nn.Sequential(
            nn.Linear(hidden_size, hidden_size),
            nn.GELU(),
            nn.LayerNorm(hidden_size, eps=layer_norm_eps),
        )
        vocab_size, embedding_size = word_embeddings.weight.shape
        if embedding_size != hidden_size:
            raise ValueError(
                f"task {spec.task!r}: embeddings are {embedding_size} wide but hidden states {hidden_size}"
            )
        if self.options["tie"]:
            self.decoder_weight = word_embeddings.weight  # the same Parameter: tied
        else:
            self.decoder_weight = nn.Parameter(word_embeddings.weight.detach().clone())
        self.bias = nn.Parameter(torch.zeros(vocab_size))
        self.vocab_size = int(vocab_size)

    def forward(self, hidden: Tensor, batch: Batch) -> HeadOutput:
        """Return vocabulary logits (see the module docstring for their shape) and the loss."""
        labels = batch.get("labels")
        if labels is None:
            attention = batch.get("attention_mask")
            positions = (
                attention.bool()
                if attention is not None
                else torch.ones(hidden.shape[:2], dtype=torch.bool, device=hidden.device)
            )
            logits = self._project(hidden)
            return HeadOutput(loss=None, logits=logits, extra={"positions": positions})
        positions = labels != -100
        logits = self._project(hidden[positions])
        targets = labels[positions]
        token_loss = F.cross_entropy(logits.float(), targets, reduction="none")  # (M,)
        if logits.shape[0]:
            loss = token_loss.mean()
        else:  # nothing masked in this batch: a zero that still depends on the parameters
            loss = logits.float().sum() * 0.0 + hidden.float().sum() * 0.0
        # Per-sequence sums for perplexity-style evaluation without the (B, L, V) tensor.
        rows = torch.nonzero(positions)[:, 0]
        loss_sum = token_loss.new_zeros(labels.shape[0]).index_add_(0, rows, token_loss.detach())
        extra = {"positions": positions, "loss_sum": loss_sum, "count": positions.sum(dim=1)}
        return HeadOutput(loss=loss, logits=logits, extra=extra)

    def decode(self, output: HeadOutput, batch: Batch) -> list[list[int]]:
        """Return, per sequence, the predicted token id at each scored position."""
        assert isinstance(output.logits, Tensor)
        positions = output.extra["positions"]
        best = output.logits.argmax(dim=-1)
        if best.dim() == 2:  # (B, L): no labels were given
            best = best[positions]
        counts = positions.sum(dim=1).tolist()
        flat = best.tolist()
        result, offset = [], 0
        for count in counts:
            result.append(flat[offset : offset + count])
            offset += count
        return result

    def _project(self, hidden: Tensor) -> Tensor:
        return F.linear(self.transform(hidden), self.decoder_weight, self.bias)
