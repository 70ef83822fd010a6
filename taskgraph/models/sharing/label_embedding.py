"""Label embedding sharing: the labels of all tasks embedded in one shared space.

Augenstein, Ruder and Søgaard (2018), "Multi-Task Learning of Pairwise Sequence Classification
Tasks over Disparate Label Spaces", NAACL (the label embedding layer).  Instead of a separate
output layer per task, every label of every task is a row of one matrix E (``label_dim`` wide),
and a task's logits are the dot products of its representation, projected into the label
space, with the rows of its own labels:

    logits_t(x) = (P h(x)) E_t^T,      E_t = the rows of E that belong to task t

so labels of different tasks that behave alike can end up close together.  Every task
trains the shared projection P; of E, a task trains only its own rows E_t (its loss does not
reach the rows of other tasks' labels), so labels of different tasks are related through P
and the encoder, not through shared rows.  The encoder is shared as in hard sharing.

Scope: this applies to the heads that end in a label classifier, i.e. token tagging (the CRF,
when asked for, sits on top of these logits unchanged) and sentence(-pair) classification.
Dependency parsing, extractive QA and masked LM keep their usual heads: their outputs are
positions or vocabulary items, not labels from a small label set.  The label transfer network
of the paper (learning to map between label spaces for unlabelled data) is not implemented.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from taskgraph.errors import ConfigError
from taskgraph.models.encoders import EncoderBundle
from taskgraph.models.heads import CLASSIFIER_TASK_TYPES, HeadSpec, TaskHead, build_head
from taskgraph.models.sharing.hard import HardSharing

__all__ = ["LabelEmbeddingClassifier", "LabelEmbeddingSharing", "SharedLabelSpace"]


class SharedLabelSpace(nn.Module):
    """The projection P (H -> label_dim) and the label matrix E (all labels x label_dim)."""

    def __init__(self, *, hidden_size: int, label_dim: int, num_labels: int) -> None:
        super().__init__()
        self.projection = nn.Linear(hidden_size, label_dim)
        self.labels = nn.Parameter(torch.randn(num_labels, label_dim) / math.sqrt(label_dim))


class LabelEmbeddingClassifier(nn.Module):
    """A task's classifier: ``(P h) E[offset : offset + n]^T``, a drop-in for ``nn.Linear``."""

    def __init__(self, *, space: SharedLabelSpace, offset: int, num_labels: int) -> None:
        super().__init__()
        self.space = space  # the same module in every task's classifier: shared parameters
        self.offset = offset
        self.num_labels = num_labels

    def forward(self, hidden: Tensor) -> Tensor:
        """Return the scores of this task's labels for each representation (..., n)."""
        own = self.space.labels[self.offset : self.offset + self.num_labels]
        projected = self.space.projection(hidden)
        return projected @ own.to(projected.dtype).T


class LabelEmbeddingSharing(HardSharing):
    """Hard-shared encoder; label-classifier heads score against one shared label space."""

    name = "label_embedding"
    PARAMS: ClassVar[dict[str, Any]] = {"label_dim": 64}

    @classmethod
    def search_space(cls, *, num_layers: int = 6) -> dict[str, dict[str, Any]]:
        """Return the width of the shared label space (log scale)."""
        return {"label_dim": {"type": "int", "low": 16, "high": 256, "log": True}}

    @classmethod
    def resolve_params(
        cls, params: Mapping[str, Any], *, specs: Sequence[HeadSpec], num_layers: int
    ) -> dict[str, Any]:
        """Return the parameters; ``label_dim`` must be an integer >= 1."""
        resolved = super().resolve_params(params, specs=specs, num_layers=num_layers)
        value = resolved["label_dim"]
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ConfigError(
                f"sharing architecture 'label_embedding': label_dim must be an integer >= 1, but got {value!r}"
            )
        resolved["label_dim"] = int(value)
        return resolved

    def build_trunk(self, encoder: EncoderBundle) -> None:
        """Build the shared encoder and the label space covering every classifier task's labels."""
        super().build_trunk(encoder)
        self.label_offsets: dict[str, int] = {}
        total = 0
        for task, spec in self.specs.items():
            if spec.type in CLASSIFIER_TASK_TYPES:
                self.label_offsets[task] = total
                total += int(spec.num_labels)
        # Without any label-classifier task there is nothing to embed (and nothing to train).
        self.label_space = (
            SharedLabelSpace(
                hidden_size=self.hidden_size,
                label_dim=int(self.params["label_dim"]),
                num_labels=total,
            )
            if total
            else None
        )

    def make_head(self, spec: HeadSpec) -> TaskHead:
        """Return the task's head, with a label-embedding classifier where the head has one."""
        classifier = None
        if self.label_space is not None and spec.task in self.label_offsets:
            classifier = LabelEmbeddingClassifier(
                space=self.label_space,
                offset=self.label_offsets[spec.task],
                num_labels=int(spec.num_labels),
            )
        return build_head(
            spec,
            hidden_size=self.hidden_size,
            word_embeddings=self.word_embeddings(),
            classifier=classifier,
            layer_norm_eps=self.layer_norm_eps,
        )
