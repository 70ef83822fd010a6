"""Lookahead inter-task affinity (Fifty, Amid, Zhao, Yu, Anil and Finn 2021, "Efficiently
Identifying Task Groupings for Multi-Task Learning", NeurIPS; "TAG").

At each probe step of a joint run (every ``lookahead_every``-th step, or the steps the
trainer option ``lookahead_steps`` lists), with one probe batch per task:

    Z(i -> j) = 1 - L_j(theta_s - step_i, batch_j) / L_j(theta_s, batch_j)

where ``theta_s`` are the shared parameters (``model.shared_parameters()``) and ``step_i`` is the
update one step on task i's gradient alone would make.  Z > 0: a step on i lowers j's loss.
The result averages Z over all probes, with the standard error of each mean.  A probe whose
``L_j`` before the step is exactly 0 (float32 cross-entropy of an easy batch late in training)
has no Z for column j: that entry is left out of its cell's mean, which counts its own probes,
instead of turning the cell into NaN for the rest of the run.  ``measure``
limits the columns: a screen (:mod:`taskgraph.search.screening`) measures only the target's
loss after each task's step, ``n`` forwards per probe instead of ``n^2``; the other entries
are NaN.

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
step is the one Adam would take next on task i's gradient alone: with the optimizer's second
moment ``v`` after ``t`` updates,

    v' = beta2 * v + (1 - beta2) * g_i^2,   v_hat' = v' / (1 - beta2^(t + 1)),
    step_i = lr * g_i / (sqrt(v_hat') + eps)

(before the first update, when there is no ``v``, ``lr * g_i / (|g_i| + eps)``, which is the
same formula at ``t = 0``: Adam's own first step).  Weight decay and momentum are left out so
that the step depends on task i alone.  Because ``g_i`` enters its own denominator, no entry
moves by more than ``lr * sqrt((1 - beta2^(t + 1)) / (1 - beta2))`` (about ``lr * sqrt(t + 1)``
early on), as no Adam update does; dividing by the current ``v_hat`` alone would let another
task's gradient move the entries the training steps have barely touched yet (``v_hat`` near 0
early in a run: the last LayerNorm's bias after span steps, whose loss it cannot change, and
parts of the attention) by up to ``lr * g_i / eps``.
``lookahead_lr`` in the trial's hyperparameters overrides lr.

Parameters the optimizer trains at a multiple of the run's rate (cross-stitch units) take the
same multiple of the probe's step.

**Measurement**: probes run with dropout off (eval mode) and in float32, so "before" and
"after" differ only by the step; they draw from their own seeded batch streams and never touch
the training RNG, so a run with probes trains exactly as a run without.  The lookahead
parameters are applied with :func:`torch.func.functional_call` (no model copy); a word
embedding matrix (>= 4096 rows) moves only in the rows the batch's tokens touch, in place, and
is restored bit for bit.  Cost per probe: ``n^2`` forwards and one forward/backward per task,
except, for a model without dropout trained in float32, for the task of the training step at
which the probe runs: its gradient (taken before clipping, divided by its loss weight) and batch
are reused, so it costs one forward.  With dropout (MiniLM's 0.1) the training step's gradient
is not the eval-mode one the other tasks' steps use, so the probe takes its own.  No probe runs
while the learning rate is 0 (the first warmup step): its step would move nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from taskgraph.training.batching import BatchStream, to_device
from taskgraph.trial import LookaheadMatrix

__all__ = ["ROW_SPARSE_MIN_ROWS", "LookaheadAffinity", "ReusedGradient"]


# Shared matrices with at least this many rows (word embeddings) get row-sparse lookahead steps:
# a batch's gradient touches only the rows of its tokens, so only those rows move.
ROW_SPARSE_MIN_ROWS = 4096


@dataclass(frozen=True)
class _NextAdam:
    """A shared parameter's Adam state for its next update (after ``t`` updates):
    ``v_hat' = decay * v + gain * g^2`` with ``decay = beta2 / (1 - beta2^(t+1))`` and
    ``gain = (1 - beta2) / (1 - beta2^(t+1))``."""

    v: torch.Tensor
    decay: float
    gain: float
    eps: float


@dataclass
class ReusedGradient:
    """A task gradient the training step already computed, handed to the probe.

    ``grads`` are the gradients of the shared parameters of ``scale`` times the task's loss on
    ``batch`` (the loss weighting's weight), taken before clipping.
    """

    task: str
    batch: Mapping[str, torch.Tensor]
    grads: Sequence[torch.Tensor | None]
    scale: float = 1.0


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
        measure: Sequence[str] | None = None,
    ) -> None:
        self.model = model
        self.tasks = list(tasks)
        unknown = sorted(set(measure or ()) - set(self.tasks))
        if unknown:
            raise ValueError(f"`measure` names tasks outside the run: {unknown}")
        #: indices of the tasks whose loss is measured after each step (the matrix's columns)
        self.columns = [j for j, t in enumerate(self.tasks) if measure is None or t in measure]
        self.streams = dict(streams)
        self.device = device
        shared_ids = {id(p) for p in shared}
        named = [(n, p) for n, p in model.named_parameters() if id(p) in shared_ids]
        self.names = [n for n, _ in named]
        self.params = [p for _, p in named]
        self.sparse = [p.dim() == 2 and p.shape[0] >= ROW_SPARSE_MIN_ROWS for p in self.params]
        n = len(self.tasks)
        self.total = torch.zeros(n, n, dtype=torch.float64, device=device)
        self.total_sq = torch.zeros(n, n, dtype=torch.float64, device=device)
        #: probes behind each cell's sums: those whose Z was a finite number
        self.counts = torch.zeros(n, n, dtype=torch.float64, device=device)
        self.count = 0

    def _adam_state(self, optimizer: torch.optim.Optimizer | None) -> list[_NextAdam] | None:
        """Return each shared parameter's Adam state for its next update; None before an
        update."""
        if optimizer is None:
            return None
        group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
        out = []
        for param in self.params:
            state = optimizer.state.get(param, {})
            group = group_of.get(id(param))
            if group is None or "exp_avg_sq" not in state or "step" not in state:
                return None
            beta2 = float(group["betas"][1])
            correction = 1 - beta2 ** (float(state["step"]) + 1)
            out.append(
                _NextAdam(
                    v=state["exp_avg_sq"],
                    decay=beta2 / correction,
                    gain=(1 - beta2) / correction,
                    eps=float(group["eps"]),
                )
            )
        return out

    def _dense_bases(self, adam: list[_NextAdam] | None) -> list[torch.Tensor] | None:
        """Return ``beta2 * v / (1 - beta2^(t+1))`` for the dense shared parameters: the part
        of the next ``v_hat`` every task's step shares (None: first step)."""
        if adam is None:
            return None
        dense = [a for a, sparse in zip(adam, self.sparse, strict=True) if not sparse]
        if not dense:
            return []
        return list(torch._foreach_mul([a.v for a in dense], [a.decay for a in dense]))

    def _lr_scales(self, optimizer: torch.optim.Optimizer | None) -> list[float]:
        """Return each shared parameter's learning rate over the optimizer's first group's.

        An architecture may train some parameters at a multiple of the run's rate (cross-stitch
        units, ``MultiTaskModel.learning_rate_scales``): the probe's step moves them as the
        training step does.
        """
        if optimizer is None or not optimizer.param_groups[0]["lr"]:
            return [1.0] * len(self.params)
        base = float(optimizer.param_groups[0]["lr"])
        rate = {id(p): float(g["lr"]) / base for g in optimizer.param_groups for p in g["params"]}
        return [rate.get(id(p), 1.0) for p in self.params]

    def _step(
        self,
        grads: Sequence[torch.Tensor | None],
        adam: list[_NextAdam] | None,
        dense_bases: list[torch.Tensor] | None,
        lrs: Sequence[float],
    ) -> tuple[dict[str, torch.Tensor], list[tuple[nn.Parameter, torch.Tensor, torch.Tensor]]]:
        """Return the moved dense parameters by name, and (param, rows, new rows) of sparse ones.

        The step is Adam's next update on ``grads`` alone (module docstring, "The step"):
        ``lr * g / (sqrt(v_hat') + eps)`` with ``v_hat' = base + gain * g^2``.  ``lrs``: each
        shared parameter's step size.
        """
        dense_params: list[torch.Tensor] = []
        dense_grads: list[torch.Tensor] = []
        dense_names: list[str] = []
        dense_steps: list[float] = []
        dense_bases_present: list[torch.Tensor] = []
        dense_gains: list[float] = []
        dense_eps: list[float] = []
        sparse_moves = []
        dense_index = -1
        for index, (name, param, grad) in enumerate(
            zip(self.names, self.params, grads, strict=True)
        ):
            if not self.sparse[index]:
                dense_index += 1
            if grad is None:
                continue  # no gradient: the step leaves this parameter where it is
            lr = lrs[index]
            if self.sparse[index]:
                rows = torch.nonzero(grad.any(dim=1)).flatten()
                g = grad.index_select(0, rows)
                if adam is None:
                    denominator = g.abs().add_(1e-8)
                else:
                    a = adam[index]
                    denominator = (
                        a.v.index_select(0, rows)
                        .mul_(a.decay)
                        .addcmul_(g, g, value=a.gain)
                        .sqrt_()
                        .add_(a.eps)
                    )
                new = param.index_select(0, rows).addcdiv_(g, denominator, value=-lr)
                sparse_moves.append((param, rows, new))
            else:
                dense_names.append(name)
                dense_params.append(param)
                dense_grads.append(grad)
                dense_steps.append(-lr)
                if adam is not None and dense_bases is not None:
                    dense_bases_present.append(dense_bases[dense_index])
                    dense_gains.append(adam[index].gain)
                    dense_eps.append(adam[index].eps)
        if not dense_params:
            return {}, sparse_moves
        if adam is None or dense_bases is None:
            # Adam's first update: lr * g / (|g| + eps).
            denominators = list(torch._foreach_abs(dense_grads))
            torch._foreach_add_(denominators, 1e-8)
        else:
            denominators = list(
                torch._foreach_addcmul(dense_bases_present, dense_grads, dense_grads, dense_gains)
            )
            torch._foreach_sqrt_(denominators)
            torch._foreach_add_(denominators, dense_eps)
        moved = torch._foreach_addcdiv(dense_params, dense_grads, denominators, dense_steps)
        return dict(zip(dense_names, moved, strict=True)), sparse_moves

    def probe(
        self,
        *,
        optimizer: torch.optim.Optimizer | None,
        lr: float,
        reuse: ReusedGradient | None = None,
    ) -> torch.Tensor:
        """Run one probe, add it to the running mean and return its (n x n) matrix (on device).

        With ``reuse``, that task's gradient and batch come from the training step instead of
        a new forward/backward pass (its "before" loss is still measured here, in eval mode).
        """
        model = self.model
        was_training = model.training
        model.eval()
        try:
            batches: dict[str, Mapping[str, torch.Tensor]] = {}
            before: list[torch.Tensor] = []
            gradients: list[Sequence[torch.Tensor | None]] = []
            for task in self.tasks:
                if reuse is not None and task == reuse.task:
                    batches[task] = reuse.batch
                    with torch.no_grad():
                        before.append(model(task, reuse.batch).loss.float())
                        gradients.append(
                            [
                                g / reuse.scale if g is not None and reuse.scale != 1.0 else g
                                for g in reuse.grads
                            ]
                        )
                    continue
                batches[task] = to_device(self.streams[task].next_batch()[0], self.device)
                loss = model(task, batches[task]).loss.float()
                gradients.append(torch.autograd.grad(loss, self.params, allow_unused=True))
                before.append(loss.detach())
            matrix = torch.full(
                (len(self.tasks), len(self.tasks)),
                math.nan,
                dtype=torch.float64,
                device=self.device,
            )
            with torch.no_grad():
                adam = self._adam_state(optimizer)
                dense_bases = self._dense_bases(adam)
                lrs = [lr * scale for scale in self._lr_scales(optimizer)]
                for i, grads in enumerate(gradients):
                    moved, sparse_moves = self._step(grads, adam, dense_bases, lrs)
                    saved = [param.index_select(0, rows) for param, rows, _ in sparse_moves]
                    try:
                        # Row-sparse moves are applied in place and undone exactly below.
                        for param, rows, new in sparse_moves:
                            param.index_copy_(0, rows, new)
                        for j in self.columns:
                            task = self.tasks[j]
                            output = functional_call(model, moved, (task, batches[task]))
                            after = output.loss.float()
                            matrix[i, j] = 1.0 - after.double() / before[j].double()
                    finally:
                        for (param, rows, _), original in zip(sparse_moves, saved, strict=True):
                            param.index_copy_(0, rows, original)
        finally:
            model.train(was_training)
        finite = torch.isfinite(matrix)  # NaN: a column not measured, or a zero loss before
        kept = torch.where(finite, matrix, torch.zeros_like(matrix))
        self.total += kept
        self.total_sq += kept * kept
        self.counts += finite
        self.count += 1
        return matrix

    def result(self) -> LookaheadMatrix | None:
        """Return the mean affinity over the probes so far with its standard error (None
        before the first probe)."""
        if self.count == 0:
            return None
        n = self.counts
        nan = torch.full_like(n, math.nan)
        mean = torch.where(n > 0, self.total / n.clamp(min=1.0), nan)
        variance = ((self.total_sq - n * mean * mean) / (n - 1).clamp(min=1.0)).clamp(min=0.0)
        stderr = torch.where(n > 1, (variance / n.clamp(min=1.0)).sqrt(), nan)
        return LookaheadMatrix(
            tasks=list(self.tasks),
            values=mean.cpu().tolist(),
            n_probes=self.count,
            stderr=stderr.cpu().tolist(),
        )

    def state_dict(self) -> dict[str, Any]:
        """Return the running sums and the probe streams' positions."""
        return {
            "total": self.total.cpu(),
            "total_sq": self.total_sq.cpu(),
            "counts": self.counts.cpu(),
            "count": self.count,
            "streams": {t: s.state_dict() for t, s in self.streams.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.total = state["total"].to(self.device)
        # Checkpoints written before the standard errors were kept: zeros (errors understated).
        self.total_sq = state.get("total_sq", torch.zeros_like(state["total"])).to(self.device)
        self.count = int(state["count"])
        # Checkpoints written before the per-cell counts: every probe in every cell with a
        # finite sum (a NaN one, unmeasured or poisoned by a zero loss, starts again at 0).
        counts = state.get("counts")
        if counts is None:
            finite = torch.isfinite(self.total)
            counts = torch.where(finite, float(self.count), 0.0).to(self.total.dtype)
            self.total = torch.where(finite, self.total, 0.0)
            self.total_sq = torch.where(finite, self.total_sq, 0.0)
        self.counts = counts.to(self.device)
        for task, stream_state in state["streams"].items():
            self.streams[task].load_state_dict(stream_state)
