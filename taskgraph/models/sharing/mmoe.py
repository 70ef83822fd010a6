"""Multi-gate mixture of experts (MMoE) over the top encoder layers.

Ma et al. (2018), "Modeling Task Relationships in Multi-task Learning with Multi-gate
Mixture-of-Experts", KDD.  ``num_experts`` experts, each a copy of the encoder's top
``top_k_layers`` layers (default ``ceil(N / 3)``: 2 of MiniLM's 6), run on the output of the
shared embeddings and lower layers; every task has its own gate, a linear layer followed by a
softmax over the experts, and reads the gate-weighted sum of the expert outputs:

    h_t = sum_e softmax(W_t x)_e * expert_e(x)

The gate is computed per token from the shared representation x (the paper gates per example;
per-token gates let token-level tasks route words differently at the same cost).  Experts
start as copies of the pretrained layers; the random gates break the symmetry.  All experts and
the lower stack are shared parameters; the gates and heads are task-specific.  Cost: the copied
layers run ``num_experts`` times per forward pass.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from taskgraph.errors import ConfigError
from taskgraph.models.encoders import EncoderBundle
from taskgraph.models.heads import Batch, HeadSpec
from taskgraph.models.layerwise import run_layers
from taskgraph.models.sharing.base import check_param_names, module_key
from taskgraph.models.sharing.columns import ColumnSharing, check_top_k

__all__ = ["MixtureOfExpertsSharing"]


class MixtureOfExpertsSharing(ColumnSharing):
    """Shared experts (copies of the top layers) mixed by one softmax gate per task."""

    name = "mmoe"
    PARAMS: ClassVar[dict[str, Any]] = {"num_experts": 4, "top_k_layers": None}

    @classmethod
    def search_space(cls, *, num_layers: int = 6) -> dict[str, dict[str, Any]]:
        """Return the number of experts and the number of top layers each expert copies."""
        return {
            "num_experts": {"type": "int", "low": 2, "high": 8},
            "top_k_layers": {"type": "int", "low": 1, "high": num_layers},
        }

    @classmethod
    def resolve_params(
        cls, params: Mapping[str, Any], *, specs: Sequence[HeadSpec], num_layers: int
    ) -> dict[str, Any]:
        """Return the parameters; ``num_experts`` must be an integer >= 1."""
        check_param_names(cls.name, params, allowed=cls.allowed_params(specs))
        resolved = {**cls.PARAMS, **params}
        top_k = resolved["top_k_layers"]
        resolved["top_k_layers"] = check_top_k(
            cls.name, math.ceil(num_layers / 3) if top_k is None else top_k, num_layers
        )
        experts = resolved["num_experts"]
        if isinstance(experts, bool) or not isinstance(experts, numbers.Integral) or experts < 1:
            raise ConfigError(
                f"sharing architecture 'mmoe': num_experts must be an integer >= 1, but got {experts!r}"
            )
        resolved["num_experts"] = int(experts)
        return resolved

    def column_owners(self) -> list[str]:
        """Return one column name per expert."""
        return [f"expert{index}" for index in range(int(self.params["num_experts"]))]

    def build_trunk(self, encoder: EncoderBundle) -> None:
        """Build the shared stack, the experts and one gate per task."""
        super().build_trunk(encoder)
        experts = int(self.params["num_experts"])
        self.gates = nn.ModuleDict(
            {module_key(task): nn.Linear(self.hidden_size, experts) for task in self.specs}
        )

    def encode(self, task: str, batch: Batch) -> Tensor:
        """Return the mixture of the experts' outputs under ``task``'s gate."""
        shared, bias = self.encode_shared(batch)
        outputs = torch.stack(
            [run_layers(self.column(owner), shared, bias) for owner in self.column_owners()],
            dim=-1,
        )  # (B, L, H, E)
        weights = torch.softmax(self.gates[module_key(task)](shared).float(), dim=-1)
        return (outputs * weights.to(outputs.dtype).unsqueeze(-2)).sum(dim=-1)

    def trunk_parameters(self, task: str) -> Iterable[nn.Parameter]:
        """Yield the shared stack, every expert and ``task``'s gate."""
        yield from self.shared_trunk_parameters()
        yield from self.columns.parameters()
        yield from self.gates[module_key(task)].parameters()
