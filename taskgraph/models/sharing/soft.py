"""Soft parameter sharing: a copy of the encoder's top layers per task, tied by an L2 penalty.

Duong et al. (2015), "Low Resource Dependency Parsing: Cross-lingual Parameter Sharing in a
Neural Network Parser", ACL: each task keeps its own parameters, and the distance between
corresponding parameters of different tasks is penalised with strength ``lambda``.

Here each task has its own copy of the top ``top_k_layers`` transformer layers (default: all
of them; the embeddings and any lower layers stay shared, see
:mod:`taskgraph.models.sharing.columns`), and :meth:`SoftSharing.regularization_loss` is

    lambda * sum over copied parameters p of  sum_{i < j} ||p_i - p_j||^2,

computed in time linear in the number of tasks T (the identity is in the code).  For two tasks
it is exactly Duong et al.'s ``lambda * ||W_1 - W_2||^2``.  The copies start equal, so the
penalty starts at exactly 0.  The trainer adds it to the loss.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from taskgraph.errors import ConfigError
from taskgraph.models.heads import Batch, HeadSpec
from taskgraph.models.layerwise import run_layers
from taskgraph.models.sharing.columns import ColumnSharing

__all__ = ["SoftSharing"]


class SoftSharing(ColumnSharing):
    """Per-task copies of the top layers, pulled together by an L2 penalty of strength lambda."""

    name = "soft"
    PARAMS: ClassVar[dict[str, Any]] = {"lambda": 1e-2, "top_k_layers": None}

    @classmethod
    def search_space(cls, *, num_layers: int = 6) -> dict[str, dict[str, Any]]:
        """Return the penalty strength (log scale) and the number of copied top layers."""
        return {
            "lambda": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
            "top_k_layers": {"type": "int", "low": 1, "high": num_layers},
        }

    @classmethod
    def resolve_params(
        cls, params: Mapping[str, Any], *, specs: Sequence[HeadSpec], num_layers: int
    ) -> dict[str, Any]:
        """Return the parameters; ``lambda`` must be a number >= 0."""
        resolved = super().resolve_params(params, specs=specs, num_layers=num_layers)
        strength = resolved["lambda"]
        if (
            isinstance(strength, bool)
            or not isinstance(strength, (int, float))
            or not strength >= 0
        ):
            raise ConfigError(
                f"sharing architecture 'soft': lambda must be a number >= 0, but got {strength!r}"
            )
        resolved["lambda"] = float(strength)
        return resolved

    def encode(self, task: str, batch: Batch) -> Tensor:
        """Return the output of ``task``'s own top layers over the shared lower stack."""
        hidden, bias = self.encode_shared(batch)
        return run_layers(self.column(task), hidden, bias)

    def trunk_parameters(self, task: str) -> Iterable[nn.Parameter]:
        """Yield the shared lower stack and ``task``'s own copies of the top layers."""
        yield from self.shared_trunk_parameters()
        yield from self.column(task).parameters()

    def regularization_loss(self) -> Tensor:
        """Return ``lambda * sum_{i<j} ||theta_i - theta_j||^2`` over the copied layers."""
        strength = float(self.params["lambda"])
        columns = [self.column(task) for task in self.specs]
        if strength == 0.0 or len(columns) < 2:
            return self._zero()
        count = len(columns)
        total = self._zero()
        # Corresponding parameters share their position in each column's parameter list.
        # sum_{i<j} ||p_i - p_j||^2 = T sum_i ||d_i||^2 - ||sum_i d_i||^2 with d_i = p_i - p_0:
        # linear in T, and exactly 0 while the copies are equal.
        for group in zip(*(list(column.parameters()) for column in columns), strict=True):
            stacked = torch.stack([p.float() for p in group])
            offsets = stacked - stacked[0]
            total = total + count * (offsets**2).sum() - (offsets.sum(dim=0) ** 2).sum()
        return strength * total.clamp(min=0.0)
