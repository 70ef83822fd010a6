"""Uncertainty weighting (Kendall, Gal and Cipolla 2018, "Multi-Task Learning Using Uncertainty
to Weigh Losses for Scene Geometry and Semantics", CVPR).

Each task t has a learnable log-variance ``s_t`` (homoscedastic uncertainty):
``L = sum_t L_t / (2 exp(s_t)) + s_t / 2``.  Noisy or hard tasks learn a large ``s_t`` and are
down-weighted; the ``s_t / 2`` term keeps the weights from collapsing to zero.  The ``s_t`` are
trained by the same optimizer as the model, without weight decay.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from taskgraph.training.weighting.base import LossWeighting

__all__ = ["UncertaintyWeighting"]


class UncertaintyWeighting(LossWeighting):
    """Learned per-task weights ``exp(-s_t) / 2`` with the regulariser ``s_t / 2``."""

    name = "uncertainty"

    def __init__(self, *, tasks: Sequence[str], seed: int = 0) -> None:
        super().__init__(tasks=tasks, seed=seed)
        self.index = {task: i for i, task in enumerate(self.tasks)}
        self.log_vars = nn.Parameter(torch.zeros(len(self.tasks)))

    def combine(self, losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Return ``sum_t L_t / (2 exp(s_t)) + s_t / 2`` over the tasks present."""
        terms = []
        for task, loss in losses.items():
            s = self.log_vars[self.index[task]]
            terms.append(loss.float() * torch.exp(-s) / 2 + s / 2)
        return torch.stack(terms).sum()

    def task_weights(self) -> dict[str, float]:
        """Return ``exp(-s_t) / 2`` per task."""
        weights = (torch.exp(-self.log_vars.detach()) / 2).tolist()
        return dict(zip(self.tasks, weights, strict=True))
