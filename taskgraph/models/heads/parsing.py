"""Biaffine dependency parser head (Dozat and Manning 2017, "Deep Biaffine Attention for
Neural Dependency Parsing", ICLR).

Word representations are the encoder's hidden states at each word's first subword
(``word_starts``); the ROOT is the ``[CLS]`` state at position 0, so a sentence of W words has
W + 1 head candidates (index 0 = ROOT, matching the ``heads`` labels).  Four MLPs (linear ->
LeakyReLU(0.1) -> dropout, as in the paper) give arc-dependent, arc-head, label-dependent and
label-head vectors.  Arc scores are biaffine, ``s[i, j] = d_i^T U h_j + u^T h_j`` (the second
term is the prior of j being a head); label scores for a chosen head are bilinear with both
linear terms and a bias (the label vectors are extended by a constant 1).  U and the label
tensor start at zero, as in the paper's code.

Training loss: cross-entropy of each word's gold head over its W + 1 candidates plus
cross-entropy of its gold relation given the *gold* head.  Padding candidates and self loops
are masked.  Decoding: per sentence, the arc scores are turned into log-probabilities over
heads and the highest-scoring well-formed tree with exactly one root word is found by
Chu-Liu/Edmonds (:mod:`taskgraph.models.heads.tree_decoding`; non-projective trees allowed);
relations are then the argmax of the label scores for the decoded heads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from taskgraph.models.heads.base import Batch, HeadOutput, HeadSpec, TaskHead
from taskgraph.models.heads.tree_decoding import maximum_spanning_tree

__all__ = ["BiaffineParserHead", "ParsePrediction"]


@dataclass(frozen=True)
class ParsePrediction:
    """One sentence's tree: ``heads[i]`` is word i+1's head (0 = ROOT); relation ids alike."""

    heads: list[int]
    deprels: list[int]


def _mlp(in_size: int, out_size: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_size, out_size), nn.LeakyReLU(0.1), nn.Dropout(dropout))


class BiaffineParserHead(TaskHead):
    """Arc and label scores: ``logits = (arcs (B, W, W+1), labels (B, W, R))``.

    ``labels`` are the relation scores for the gold heads when ``heads`` are in the batch and
    for the greedy (argmax) heads otherwise; :meth:`decode` rescores them for the tree's heads.
    """

    OPTIONS: ClassVar[dict[str, Any]] = {"arc_size": 256, "label_size": 128, "mlp_dropout": 0.33}
    LABEL_KEYS = ("heads", "deprels")

    def __init__(self, *, spec: HeadSpec, hidden_size: int) -> None:
        super().__init__(spec=spec)
        arc, label = int(self.options["arc_size"]), int(self.options["label_size"])
        dropout = float(self.options["mlp_dropout"])
        self.num_labels = int(spec.num_labels)
        self.arc_dep = _mlp(hidden_size, arc, dropout)
        self.arc_head = _mlp(hidden_size, arc, dropout)
        self.label_dep = _mlp(hidden_size, label, dropout)
        self.label_head = _mlp(hidden_size, label, dropout)
        self.arc_weight = nn.Parameter(torch.zeros(arc, arc))
        self.arc_head_bias = nn.Parameter(torch.zeros(arc))
        self.label_weight = nn.Parameter(torch.zeros(self.num_labels, label + 1, label + 1))

    def forward(self, hidden: Tensor, batch: Batch) -> HeadOutput:
        """Return arc and label scores and, when ``heads``/``deprels`` are given, the loss."""
        starts = batch["word_starts"].long()
        word_mask = batch["word_mask"].bool()
        words = hidden.gather(1, starts.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
        nodes = torch.cat([hidden[:, :1], words], dim=1)  # (B, W+1, H): 0 is ROOT

        dep_arc, head_arc = self.arc_dep(words), self.arc_head(nodes)
        arcs = torch.einsum("bia,ac,bjc->bij", dep_arc, self.arc_weight, head_arc)
        raw_arcs = (arcs + (head_arc @ self.arc_head_bias).unsqueeze(1)).float()
        arcs = raw_arcs.masked_fill(~_candidate_mask(word_mask), torch.finfo(arcs.dtype).min)

        dep_label, head_label = self.label_dep(words), self.label_head(nodes)
        extra = {"label_dep": dep_label, "label_head": head_label, "word_mask": word_mask}
        loss = None
        if self.has_labels(batch):
            gold_heads, gold_rels = batch["heads"].long(), batch["deprels"].long()
            scored = (gold_heads != -100) & word_mask
            labels = self.label_scores(dep_label, head_label, gold_heads.clamp(min=0))
            if bool(scored.any()):
                loss = F.cross_entropy(arcs[scored], gold_heads[scored]) + F.cross_entropy(
                    labels[scored], gold_rels[scored]
                )
            else:
                # A zero that depends on the weights; not from the masked arcs, whose sum
                # overflows to -inf (and -inf * 0 is NaN).
                loss = raw_arcs.sum() * 0.0 + labels.sum() * 0.0
        else:
            labels = self.label_scores(dep_label, head_label, arcs.argmax(dim=-1))
        return HeadOutput(loss=loss, logits=(arcs, labels), extra=extra)

    def label_scores(self, dep_label: Tensor, head_label: Tensor, heads: Tensor) -> Tensor:
        """Return relation scores (B, W, R) of each word for the given head indices (B, W)."""
        chosen = head_label.gather(1, heads.unsqueeze(-1).expand(-1, -1, head_label.shape[-1]))
        ones = dep_label.new_ones(*dep_label.shape[:-1], 1)
        dep = torch.cat([dep_label, ones], dim=-1)
        head = torch.cat([chosen, ones], dim=-1)
        return torch.einsum("bwi,rij,bwj->bwr", dep, self.label_weight, head).float()

    def decode(self, output: HeadOutput, batch: Batch) -> list[ParsePrediction]:
        """Return one well-formed tree (single root, Chu-Liu/Edmonds) per sentence."""
        arcs = output.logits[0].detach().float()
        word_mask = output.extra["word_mask"]
        lengths = word_mask.sum(dim=1).tolist()
        log_probs = torch.log_softmax(arcs, dim=-1).cpu().numpy()
        heads = torch.zeros(word_mask.shape, dtype=torch.long)
        for row, n in enumerate(lengths):
            if n == 0:
                continue
            scores = np.full((n + 1, n + 1), -np.inf)
            scores[1:, :] = log_probs[row, :n, : n + 1]
            heads[row, :n] = torch.from_numpy(maximum_spanning_tree(scores)[1:])
        heads = heads.to(arcs.device)
        with torch.no_grad():
            rels = self.label_scores(output.extra["label_dep"], output.extra["label_head"], heads)
        rel_ids = rels.argmax(dim=-1).tolist()
        head_ids = heads.tolist()
        return [
            ParsePrediction(heads=head_ids[row][:n], deprels=rel_ids[row][:n])
            for row, n in enumerate(lengths)
        ]


def _candidate_mask(word_mask: Tensor) -> Tensor:
    """Return (B, W, W+1): may word i take node j as head (real node, not itself)."""
    batch, width = word_mask.shape
    nodes = torch.cat([word_mask.new_ones(batch, 1), word_mask], dim=1)  # ROOT always exists
    eye = torch.eye(width, width + 1, dtype=torch.bool, device=word_mask.device).roll(1, dims=1)
    return nodes.unsqueeze(1) & ~eye.unsqueeze(0)
