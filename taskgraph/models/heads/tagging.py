"""Token classification (NER, POS, ...) with an optional linear-chain CRF.

Without a CRF this is ``BertForTokenClassification``: hidden states -> dropout -> linear, and
a cross-entropy loss over the positions whose label is not -100 (the batch contract puts each
word's label on its first subword and -100 on continuation subwords, special tokens and
padding, so the loss is per word).

With ``{"crf": True}`` a CRF (``torchcrf.CRF``, Lafferty et al. 2001; as in Lample et al. 2016
for NER) scores tag sequences over *words*, not subwords: the emissions are the logits at each
word's first subword, gathered into a left-aligned ``(B, W, C)`` tensor with a ``(B, W)`` word
mask, so transitions are learned between consecutive words.  Word positions come from the
batch's ``word_starts``/``word_mask`` when present, otherwise from the positions whose label is
not -100.  The CRF loss is the negative log-likelihood averaged per word (``token_mean``), the
same scale as the cross-entropy without CRF, so loss weighting across tasks stays comparable.
The CRF runs in float32 even under autocast.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchcrf import CRF

from taskgraph.errors import ConfigError
from taskgraph.models.heads.base import Batch, HeadOutput, HeadSpec, TaskHead

__all__ = ["TokenTaggingHead", "word_positions"]


class TokenTaggingHead(TaskHead):
    """Per-word tags: ``logits`` (B, L, C); ``decode`` gives one list of tag ids per sentence."""

    OPTIONS: ClassVar[dict[str, Any]] = {"crf": False, "dropout": 0.1}
    LABEL_KEYS = ("labels",)

    def __init__(
        self, *, spec: HeadSpec, hidden_size: int, classifier: nn.Module | None = None
    ) -> None:
        """``classifier`` maps (..., H) to (..., C); a fresh linear layer when ``None``."""
        super().__init__(spec=spec)
        self.num_labels = int(spec.num_labels)
        self.dropout = nn.Dropout(float(self.options["dropout"]))
        self.classifier = (
            classifier if classifier is not None else nn.Linear(hidden_size, self.num_labels)
        )
        self.crf = CRF(self.num_labels, batch_first=True) if self.options["crf"] else None

    def forward(self, hidden: Tensor, batch: Batch) -> HeadOutput:
        """Return the tag logits and, when ``labels`` are given, the loss."""
        logits = self.classifier(self.dropout(hidden))
        labels = batch.get("labels")
        if self.crf is None:
            loss = None
            if labels is not None and bool((labels != -100).any()):
                loss = F.cross_entropy(
                    logits.float().reshape(-1, self.num_labels),
                    labels.reshape(-1),
                    ignore_index=-100,
                )
            elif labels is not None:  # no labelled word: a zero that still depends on the weights
                loss = logits.float().sum() * 0.0
            return HeadOutput(loss=loss, logits=logits)

        starts, mask = word_positions(batch, task=self.spec.task)
        emissions = _gather_words(logits, starts).float()
        extra = {"word_starts": starts, "word_mask": mask, "emissions": emissions}
        loss = None
        if labels is not None:
            tags = torch.where(mask, labels.gather(1, starts), torch.zeros_like(starts))
            rows = mask[:, 0]  # torchcrf needs the first step unmasked: skip word-less rows
            with torch.autocast(device_type=emissions.device.type, enabled=False):
                if bool(rows.any()):
                    loss = -self.crf(
                        emissions[rows], tags[rows], mask=mask[rows], reduction="token_mean"
                    )
                else:
                    loss = emissions.sum() * 0.0
        return HeadOutput(loss=loss, logits=logits, extra=extra)

    def decode(self, output: HeadOutput, batch: Batch) -> list[list[int]]:
        """Return, per sentence, the tag id of each word (Viterbi path when a CRF is used)."""
        assert isinstance(output.logits, Tensor)
        if "word_starts" in output.extra:
            starts, mask = output.extra["word_starts"], output.extra["word_mask"]
        else:
            starts, mask = word_positions(batch, task=self.spec.task)
        lengths = mask.sum(dim=1).tolist()
        if self.crf is None:
            best = _gather_words(output.logits, starts).argmax(dim=-1).tolist()
            return [row[:n] for row, n in zip(best, lengths, strict=True)]
        emissions = output.extra.get("emissions")
        if emissions is None:
            emissions = _gather_words(output.logits, starts).float()
        result: list[list[int]] = [[] for _ in lengths]
        rows = torch.nonzero(mask[:, 0]).flatten()
        if len(rows):
            with torch.autocast(device_type=emissions.device.type, enabled=False):
                paths = self.crf.decode(emissions[rows].float(), mask=mask[rows])
            for row, path in zip(rows.tolist(), paths, strict=True):
                result[row] = list(path)
        return result


def word_positions(batch: Batch, *, task: str = "?") -> tuple[Tensor, Tensor]:
    """Return ``(word_starts, word_mask)``, both (B, W), left-aligned.

    Taken from the batch when it has them, else derived from ``labels`` (every position whose
    label is not -100 starts a word).  A ConfigError when the batch has neither.
    """
    if "word_starts" in batch and "word_mask" in batch:
        return batch["word_starts"].long(), batch["word_mask"].bool()
    labels = batch.get("labels")
    if labels is None:
        raise ConfigError(
            f"task {task!r}: token tagging needs `labels` or `word_starts` + `word_mask` in the batch "
            "to know where words start"
        )
    is_word = labels != -100
    width = max(int(is_word.sum(dim=1).max()), 1) if is_word.numel() else 1
    # A stable sort puts each row's word positions first, in their original order.
    order = torch.argsort((~is_word).to(torch.int32), dim=1, stable=True)[:, :width]
    mask = is_word.gather(1, order)
    return torch.where(mask, order, torch.zeros_like(order)), mask


def _gather_words(values: Tensor, starts: Tensor) -> Tensor:
    """Return ``values[b, starts[b, w]]`` as (B, W, ...)."""
    index = starts.reshape(*starts.shape, *([1] * (values.dim() - 2))).expand(
        -1, -1, *values.shape[2:]
    )
    return values.gather(1, index)
