"""PCGrad, gradient surgery (Yu, Kumar, Gupta, Levine, Hausman and Finn 2020, "Gradient Surgery
for Multi-Task Learning", NeurIPS).

For the shared parameters, each task's gradient g_i is projected, in a random order of the other
tasks j, onto the normal plane of g_j whenever the two conflict (g_i . g_j < 0):
``g_i <- g_i - min(g_i . g_j, 0) / |g_j|^2 g_j``; the update is the sum of the projected
gradients.  Task-specific parameters get their own task's gradient unchanged.  The projection
is written without data-dependent branches, so it never waits on the device.

PCGrad needs the gradients of several tasks at one step.  The trainer does **not** give it one
batch per task: each step makes ``tasks_per_step`` independent draws from the mixing
distribution (default: as many draws as tasks), so a step holds two or more distinct tasks
only by chance, and a step with one task is a plain gradient step with nothing to project.
With two tasks and 2 draws that chance is 2p(1 - p): measured on a 120-example auxiliary and
an 8-example target (target step budget, 200 target steps), 46 % of the steps (120 of 261)
under uniform mixing and 12 % (192 of 1,639) under proportional mixing.  Yu et al. project
every task's gradient at every step; no option does that here (every mixing scheme draws with
replacement).  The nearest is uniform mixing with a larger ``tasks_per_step``: with two tasks
and k draws a step holds both with probability 1 - 2^(1 - k) (75 % at k = 3, 94 % at k = 5).
See docs/training.md, "Loss weighting".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from taskgraph.training.weighting.base import LossWeighting

__all__ = ["PCGradWeighting"]


def project_conflicting(grads: torch.Tensor, order: Sequence[Sequence[int]]) -> torch.Tensor:
    """Return the PCGrad sum of the flattened task gradients ``grads`` (tasks x params).

    ``order[i]`` is the order in which task i is projected against the other tasks.
    """
    projected = grads.clone()
    squared_norms = (grads * grads).sum(dim=1).clamp_min(1e-20)
    for i, others in enumerate(order):
        g = projected[i]
        for j in others:
            dot = torch.dot(g, grads[j])
            g = g - torch.clamp(dot, max=0.0) / squared_norms[j] * grads[j]
        projected[i] = g
    return projected.sum(dim=0)


class PCGradWeighting(LossWeighting):
    """Projecting conflicting gradients on the shared parameters."""

    name = "pcgrad"
    needs_task_gradients = True

    def __init__(self, *, tasks: Sequence[str], seed: int = 0) -> None:
        super().__init__(tasks=tasks, seed=seed)
        self.rng = np.random.default_rng(seed)

    def backward(
        self,
        losses: Mapping[str, torch.Tensor],
        *,
        shared: Sequence[nn.Parameter],
        others: Sequence[nn.Parameter],
    ) -> torch.Tensor:
        """Set the shared parameters' gradients to the PCGrad sum; others get the plain sum."""
        names = list(losses)
        total = torch.stack([losses[t] for t in names]).sum()
        if len(names) == 1 or not shared:
            total.backward()
            return total.detach()
        flat = []
        # A shared parameter no task of the step reads keeps no gradient (None), as under
        # every other weighting: a zero would let AdamW decay it and move it by momentum.
        used = [False] * len(shared)
        for task in names:
            grads = torch.autograd.grad(
                losses[task], list(shared), retain_graph=True, allow_unused=True
            )
            used = [u or g is not None for u, g in zip(used, grads, strict=True)]
            flat.append(
                torch.cat(
                    [
                        (g if g is not None else torch.zeros_like(p)).reshape(-1).float()
                        for g, p in zip(grads, shared, strict=True)
                    ]
                )
            )
        order = [
            [j for j in self.rng.permutation(len(names)).tolist() if j != i]
            for i in range(len(names))
        ]
        combined = project_conflicting(torch.stack(flat), order)
        if others:
            total.backward(inputs=list(others))
        offset = 0
        for p, read in zip(shared, used, strict=True):
            size = p.numel()
            if read:
                piece = combined[offset : offset + size].view_as(p).to(p.dtype)
                p.grad = piece if p.grad is None else p.grad + piece
            offset += size
        return total.detach()

    def extra_state(self) -> dict[str, Any]:
        """Return the projection-order RNG state."""
        return {"rng": self.rng.bit_generator.state}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        """Restore the projection-order RNG state."""
        if "rng" in state:
            self.rng.bit_generator.state = state["rng"]
