"""The loss-weighting seam: how the per-task losses of one step become parameter gradients."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

__all__ = ["LossWeighting"]


class LossWeighting(nn.Module):
    """Combines per-task losses into gradients (an ``nn.Module`` so learnable weights checkpoint).

    Loss-level methods override :meth:`combine`; gradient-level methods (``needs_task_gradients``)
    override :meth:`backward` and see one loss per task present in the step.
    """

    name: ClassVar[str] = "base"
    needs_task_gradients: ClassVar[bool] = False

    def __init__(self, *, tasks: Sequence[str], seed: int = 0) -> None:
        super().__init__()
        self.tasks = list(tasks)
        self.seed = seed

    def combine(self, losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Return the scalar to differentiate (default: the plain sum)."""
        return torch.stack(list(losses.values())).sum()

    def backward(
        self,
        losses: Mapping[str, torch.Tensor],
        *,
        shared: Sequence[nn.Parameter],
        others: Sequence[nn.Parameter],
    ) -> torch.Tensor:
        """Accumulate gradients into ``.grad`` and return the combined loss (detached).

        ``shared`` are the parameters every task reads; ``others`` the remaining trainable ones.
        """
        total = self.combine(losses)
        total.backward()
        return total.detach()

    def task_weights(self) -> dict[str, float]:
        """Return the current weight of each task's loss (for logs; syncs with the device)."""
        return {task: 1.0 for task in self.tasks}

    def extra_state(self) -> dict[str, Any]:
        """Return non-tensor state to checkpoint (RNG states and the like)."""
        return {}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`extra_state` returned."""
