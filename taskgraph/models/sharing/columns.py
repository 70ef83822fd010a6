"""Per-task copies ("columns") of the top encoder layers: the machinery of soft sharing and
cross-stitch networks.

The word/position embeddings and the lower ``N - k`` layers stay one shared stack; each task
gets its own deep copy of the top ``k = top_k_layers`` layers (all layers by default), all
starting from the same (pretrained) weights.  Sharing the embeddings is a deliberate choice:
they are over half of MiniLM's parameters (12M of 22M), copying them per task multiplies memory
for little benefit, and it leaves a non-empty set of shared parameters for gradient methods
(PCGrad) and lookahead affinity to work on.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, cast

from torch import Tensor, nn

from taskgraph.errors import ConfigError
from taskgraph.models.encoders import EncoderBundle
from taskgraph.models.heads import Batch, HeadSpec
from taskgraph.models.layerwise import attention_bias, embed, run_layers, split_encoder
from taskgraph.models.sharing.base import MultiTaskModel, check_param_names, module_key

__all__ = ["ColumnSharing", "check_top_k"]


class ColumnSharing(MultiTaskModel):
    """Shared embeddings and lower layers, a copy of the top ``top_k_layers`` layers per task."""

    PARAMS: ClassVar[dict[str, Any]] = {"top_k_layers": None}

    @classmethod
    def resolve_params(
        cls, params: Mapping[str, Any], *, specs: Sequence[HeadSpec], num_layers: int
    ) -> dict[str, Any]:
        """Return the parameters with ``top_k_layers`` resolved to 1..num_layers."""
        check_param_names(cls.name, params, allowed=cls.allowed_params(specs))
        resolved = {**cls.PARAMS, **params}
        resolved["top_k_layers"] = check_top_k(cls.name, resolved["top_k_layers"], num_layers)
        return resolved

    def build_trunk(self, encoder: EncoderBundle) -> None:
        """Split the encoder into shared embeddings + lower layers and per-task top columns."""
        parts = split_encoder(encoder.model, architecture=self.name)
        top_k = int(self.params["top_k_layers"])
        first_copied = len(parts.layers) - top_k
        self.encoder_config = parts.config
        self.embeddings = parts.embeddings
        self.shared_layers = nn.ModuleList(parts.layers[:first_copied])
        self.columns = nn.ModuleDict(
            {
                module_key(owner): nn.ModuleList(
                    copy.deepcopy(layer) for layer in parts.layers[first_copied:]
                )
                for owner in self.column_owners()
            }
        )

    def column_owners(self) -> list[str]:
        """Return the names of the columns: one per task (mixture of experts: one per expert)."""
        return list(self.specs)

    def column(self, owner: str) -> nn.ModuleList:
        """Return the copies of the top layers that belong to ``owner`` (a task or an expert)."""
        return cast(nn.ModuleList, self.columns[module_key(owner)])

    def encode_shared(self, batch: Batch) -> tuple[Tensor, Tensor | None]:
        """Return the output of the shared lower stack and the attention bias."""
        hidden = embed(self.embeddings, batch)
        bias = attention_bias(self.encoder_config, hidden, batch.get("attention_mask"))
        return run_layers(self.shared_layers, hidden, bias), bias

    def shared_trunk_parameters(self) -> Iterable[nn.Parameter]:
        """Yield the embeddings' and lower layers' parameters (used by every task)."""
        yield from self.embeddings.parameters()
        yield from self.shared_layers.parameters()

    def word_embeddings(self) -> nn.Embedding:
        """Return the shared input word embeddings."""
        return cast(nn.Embedding, self.embeddings.word_embeddings)


def check_top_k(architecture: str, value: Any, num_layers: int) -> int:
    """Return ``value`` as a layer count in 1..num_layers (``None``: all layers)."""
    if value is None:
        return num_layers
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ConfigError(
            f"sharing architecture {architecture!r}: top_k_layers must be an integer >= 1, but got {value!r}"
        )
    return min(int(value), num_layers)  # more layers than the encoder has: all of them
