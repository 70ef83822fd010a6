"""Lookahead inter-task affinity (Fifty, Amid, Zhao, Yu, Anil and Finn 2021, "Efficiently
Identifying Task Groupings for Multi-Task Learning", NeurIPS; "TAG").

Every ``lookahead_every`` steps of a joint run, with one probe batch per task:

    Z(i -> j) = 1 - L_j(theta_s - step_i, batch_j) / L_j(theta_s, batch_j)

where ``theta_s`` are the shared parameters (``model.shared_parameters()``) and ``step_i`` is the
update one step on task i's gradient alone would make.  Z > 0: a step on i lowers j's loss.
The result averages Z over all probes.

**Orientation**: ``LookaheadMatrix.values[i][j] = Z(tasks[i] -> tasks[j])``: row = the task that
takes the step (source), column = the task whose loss is measured (target).  The dictionaries
in ``shared/benchmarks/tag2021_fifty`` (TAG's network-selection notebook) are indexed the other
way round, ``values[target][source]`` (the selection code adds ``values[member][other]`` to the
member's score), so ours is their transpose.

**Scale**: TAG divides Z by the learning rate (its CelebA notebook computes
``(1 - L_after / L_before) / lr`` for an SGD-with-momentum step), which is why its CelebA values
are in the hundreds.  Ours is the plain ratio (no division): multiply by ``1 / step_size`` to
compare magnitudes.  Signs and row/column rankings are comparable as they are.

**The step**: our optimizer is AdamW, whose real updates are scaled per parameter, so a plain
SGD step of size lr would be orders of magnitude smaller than a training step.  The lookahead
step is the Adam-preconditioned one: ``step_i = lr * g_i / (sqrt(v_hat) + eps)`` with the
optimizer's current second-moment estimate ``v_hat`` (before the first update, when there is
none, ``lr * g_i / (|g_i| + eps)``, which is Adam's own first step); weight decay and momentum
are left out so that the step depends on task i alone.  ``lookahead_lr`` in the trial's
hyperparameters overrides lr.

**Measurement**: probes run with dropout off (eval mode) and in float32, so "before" and
"after" differ only by the step; they draw from their own seeded batch streams and never touch
the training RNG, so a run with probes trains exactly as a run without.  The lookahead
parameters are applied with :func:`torch.func.functional_call` (no model copy).  Cost per
probe: one forward/backward per task and ``n^2`` forwards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from taskgraph.training.batching import BatchStream, to_device
from taskgraph.trial import LookaheadMatrix

__all__ = ["LookaheadAffinity"]


class LookaheadAffinity:
    """Accumulates lookahead affinities of a joint run; :meth:`result` gives the mean matrix."""

    def __init__(
        self,
        *,
        model: nn.Module,
        tasks: Sequence[str],
        streams: Mapping[str, BatchStream],
        shared: Sequence[nn.Parameter],
        device: torch.device,
    ) -> None:
        self.model = model
        self.tasks = list(tasks)
        self.streams = dict(streams)
        self.device = device
        shared_ids = {id(p) for p in shared}
        self.names = [n for n, p in model.named_parameters() if id(p) in shared_ids]
        self.params = [p for n, p in model.named_parameters() if id(p) in shared_ids]
        n = len(self.tasks)
        self.total = torch.zeros(n, n, dtype=torch.float64, device=device)
        self.count = 0

    def _steps(
        self, grads: Sequence[torch.Tensor | None], optimizer: torch.optim.Optimizer | None,
        lr: float,
    ) -> list[torch.Tensor]:
        steps = []
        group_of = (
            {id(p): g for g in optimizer.param_groups for p in g["params"]} if optimizer else {}
        )
        for param, grad in zip(self.params, grads, strict=True):
            if grad is None:
                steps.append(torch.zeros_like(param))
                continue
            state = optimizer.state.get(param, {}) if optimizer is not None else {}
            eps = 1e-8
            if "exp_avg_sq" in state and "step" in state and id(param) in group_of:
                group = group_of[id(param)]
                beta2 = group["betas"][1]
                eps = group.get("eps", eps)
                correction = 1 - beta2 ** float(state["step"])
                denom = (state["exp_avg_sq"] / correction).sqrt() + eps
            else:
                denom = grad.abs() + eps
            steps.append(lr * grad / denom)
        return steps

    def probe(self, *, optimizer: torch.optim.Optimizer | None, lr: float) -> torch.Tensor:
        """Run one probe, add it to the running mean and return its (n x n) matrix (on device)."""
        model = self.model
        was_training = model.training
        model.eval()
        try:
            batches = {t: to_device(self.streams[t].next_batch()[0], self.device) for t in self.tasks}
            before: list[torch.Tensor] = []
            updates: list[list[torch.Tensor]] = []
            for task in self.tasks:
                loss = model(task, batches[task]).loss.float()
                grads = torch.autograd.grad(loss, self.params, allow_unused=True)
                before.append(loss.detach())
                with torch.no_grad():
                    updates.append(self._steps(grads, optimizer, lr))
            matrix = torch.zeros(len(self.tasks), len(self.tasks), dtype=torch.float64,
                                 device=self.device)
            with torch.no_grad():
                for i, steps in enumerate(updates):
                    moved = {
                        name: param - step
                        for name, param, step in zip(self.names, self.params, steps, strict=True)
                    }
                    for j, task in enumerate(self.tasks):
                        after = functional_call(model, moved, (task, batches[task])).loss.float()
                        matrix[i, j] = 1.0 - after.double() / before[j].double()
        finally:
            model.train(was_training)
        self.total += matrix
        self.count += 1
        return matrix

    def result(self) -> LookaheadMatrix | None:
        """Return the mean affinity over the probes so far (None before the first probe)."""
        if self.count == 0:
            return None
        mean = (self.total / self.count).cpu().tolist()
        return LookaheadMatrix(tasks=list(self.tasks), values=mean, n_probes=self.count)

    def state_dict(self) -> dict[str, Any]:
        """Return the running sums and the probe streams' positions."""
        return {
            "total": self.total.cpu(),
            "count": self.count,
            "streams": {t: s.state_dict() for t, s in self.streams.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.total = state["total"].to(self.device)
        self.count = int(state["count"])
        for task, stream_state in state["streams"].items():
            self.streams[task].load_state_dict(stream_state)
