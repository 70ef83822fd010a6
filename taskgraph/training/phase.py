"""One training phase's stateful parts: optimizer, schedule, task sampler, batch streams.

A joint run has one phase; sequential transfer has a ``source`` and a ``target`` phase, each
with a fresh optimizer and schedule.  :class:`Phase` also saves and restores those parts for
checkpoints.

**Step budgets.**  Under ``step_budget="total"`` a phase trains ``max_steps`` steps (or
``epochs`` passes over all its tasks' examples) and draws each step's tasks as it goes.  Under
``"target"`` (the default) a phase that trains the target counts *target steps*: the sampler
plans the whole schedule up front (:meth:`TaskSampler.plan`) until the target has had
``max_steps`` steps (or ``epochs`` passes over its own examples, ``ceil(n_target /
batch_size)`` target steps each), so the phase's length, which the learning-rate schedule
needs, is known before it starts.  A source phase has no target and keeps the total budget.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn
from transformers import get_linear_schedule_with_warmup

from taskgraph.errors import TaskgraphError
from taskgraph.training.batching import BatchStream, TaskTensors
from taskgraph.training.options import TrainingOptions
from taskgraph.training.runtime import stable_seed
from taskgraph.training.sampling import TaskSampler
from taskgraph.training.weighting import LossWeighting
from taskgraph.trial import TrialConfig

__all__ = ["Phase", "build_optimizer", "build_phase", "phase_budget", "target_budget"]


@dataclass
class Phase:
    """The parts of one phase that change as it trains."""

    name: str
    tasks: list[str]
    total_steps: int
    steps_per_epoch: int  # in the phase's clock: target steps under the target budget
    optimizer: torch.optim.Optimizer
    scheduler: Any
    sampler: TaskSampler
    streams: dict[str, BatchStream]
    # The target step budget: the planned draws of every step, and the task whose steps are
    # the phase's clock (for evaluations and epochs).  None: the total budget, drawn live.
    plan: list[list[str]] | None = None
    clock_task: str | None = None

    def draw(self, step: int, count: int) -> list[str]:
        """Return the tasks of step ``step`` (0-based): planned, or drawn now."""
        if self.plan is not None:
            return list(self.plan[step])
        return self.sampler.sample(step, count)

    def state_dict(self) -> dict[str, Any]:
        """Return the optimizer, schedule, sampler and stream states."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "sampler": self.sampler.state_dict(),
            "streams": {t: s.state_dict() for t, s in self.streams.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned.

        Raises :class:`TaskgraphError` when the saved optimizer groups its parameters
        otherwise than this phase's (a checkpoint written before cross-stitch units got a
        learning rate of their own): resuming it would train them at the wrong rate.
        """
        saved = [len(group["params"]) for group in state["optimizer"]["param_groups"]]
        current = [len(group["params"]) for group in self.optimizer.param_groups]
        if saved != current:
            raise TaskgraphError(
                f"phase {self.name!r}: the checkpoint's optimizer has parameter groups of "
                f"sizes {saved}, this run's {current} (it was written by another version of "
                "taskgraph); delete the checkpoint directory to train this trial from the start"
            )
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.sampler.load_state_dict(state["sampler"])
        for task, stream_state in state["streams"].items():
            self.streams[task].load_state_dict(stream_state)


def _is_norm(module: nn.Module) -> bool:
    # torch's norms, and a model's own (T5LayerNorm, DebertaLayerNorm, ... are not subclasses);
    # nn.RMSNorm only exists from torch 2.4, and pyproject allows 2.3.
    rms_norm = getattr(nn, "RMSNorm", None)
    norms = (
        (nn.LayerNorm, nn.GroupNorm) if rms_norm is None else (nn.LayerNorm, nn.GroupNorm, rms_norm)
    )
    return isinstance(module, norms) or type(module).__name__.endswith("Norm")


def _no_decay_ids(model: nn.Module) -> set[int]:
    """Return the ids of the parameters trained without weight decay: biases and norm layers'.

    By module type, not by name: a LayerNorm inside an ``nn.Sequential`` (the masked-LM head's
    transform) is named by its index only.
    """
    ids: set[int] = set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if _is_norm(module) or name.endswith("bias"):
                ids.add(id(param))
    return ids


def build_optimizer(
    model: nn.Module, weighting: LossWeighting, *, learning_rate: float, weight_decay: float
) -> torch.optim.Optimizer:
    """Return AdamW with decoupled weight decay except on biases, norms and loss weights.

    Parameters the model gives a learning-rate multiplier
    (:meth:`~taskgraph.models.sharing.base.MultiTaskModel.learning_rate_scales`: cross-stitch
    units) get a group of their own per multiplier, after the two usual groups, with
    ``learning_rate`` times it and no weight decay; the schedule scales every group alike.
    Group 0 always holds the decayed parameters at ``learning_rate`` itself.
    """
    scales_of = getattr(model, "learning_rate_scales", None)
    scales = {id(p): float(s) for p, s in scales_of().items()} if callable(scales_of) else {}
    for scale in scales.values():
        if not (math.isfinite(scale) and scale > 0):
            raise TaskgraphError(
                f"{type(model).__name__}.learning_rate_scales: a multiplier must be a finite "
                f"number > 0, but got {scale}"
            )
    undecayed = _no_decay_ids(model)
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    scaled: dict[float, list[nn.Parameter]] = {}
    for param in model.parameters():
        if not param.requires_grad:
            continue
        if id(param) in scales:
            scaled.setdefault(scales[id(param)], []).append(param)
        else:
            (no_decay if id(param) in undecayed else decay).append(param)
    groups: list[dict[str, Any]] = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay + list(weighting.parameters()), "weight_decay": 0.0},
    ]
    # Only when there are any, so models without scales keep the two groups older checkpoints
    # hold.
    groups += [
        {"params": params, "weight_decay": 0.0, "lr": learning_rate * scale}
        for scale, params in sorted(scaled.items())
    ]
    # The fused kernel (CPU and CUDA) makes one pass over memory per step: on the tiny test
    # encoder, whose 30k-word embedding dominates, it is ~10x faster than the default loop.
    fused = all(
        p.dtype in (torch.float32, torch.float16, torch.bfloat16)
        for group in groups
        for p in group["params"]
    )
    return torch.optim.AdamW(groups, lr=learning_rate, fused=fused)


def phase_budget(
    name: str,
    sizes: Sequence[int],
    *,
    config: TrialConfig,
    options: TrainingOptions,
    per_step: int,
) -> tuple[int, int]:
    """Return (total steps, steps per epoch); an epoch covers every task's examples once."""
    steps_per_epoch = max(math.ceil(sum(sizes) / (config.batch_size * per_step)), 1)
    max_steps, epochs = config.max_steps, config.epochs
    if name == "source" and options.source_max_steps is not None:
        max_steps = options.source_max_steps
    elif name == "source" and options.source_epochs is not None:
        # The source phase's own epochs win over the trial's max_steps (docs/training.md).
        max_steps, epochs = None, options.source_epochs
    total = max_steps if max_steps is not None else math.ceil(epochs * steps_per_epoch)
    return max(int(total), 1), steps_per_epoch


def target_budget(target_size: int, *, config: TrialConfig) -> tuple[int, int]:
    """Return (target steps, target steps per epoch) of the target step budget.

    An epoch of the target is one pass over its own examples: ``ceil(n_target / batch_size)``
    target steps, whatever the other tasks.
    """
    steps_per_epoch = max(math.ceil(target_size / config.batch_size), 1)
    if config.max_steps is not None:
        total = config.max_steps
    else:
        total = math.ceil(config.epochs * steps_per_epoch)
    return max(int(total), 1), steps_per_epoch


def build_phase(
    name: str,
    tasks: list[str],
    *,
    train: Mapping[str, TaskTensors | None],
    model: nn.Module,
    weighting: LossWeighting,
    config: TrialConfig,
    options: TrainingOptions,
) -> Phase:
    """Return a fresh phase: optimizer, linear warmup/decay, sampler and one stream per task."""
    checked: dict[str, TaskTensors] = {}
    for task in tasks:
        tensors = train.get(task)
        if tensors is None or len(tensors) == 0:
            raise TaskgraphError(f"task {task!r} has no training examples")
        checked[task] = tensors
    sizes = {t: len(checked[t]) for t in tasks}
    per_step = options.tasks_per_step(len(tasks), weighting)
    # The mixing weights of the trial's other tasks do not apply here (sequential transfer's
    # target phase trains the target alone while the trial's weights name its sources too).
    mixing = replace(
        config.mixing, weights={t: w for t, w in config.mixing.weights.items() if t in sizes}
    )
    clock_task = (
        config.target if config.step_budget == "target" and config.target in tasks else None
    )
    plan: list[list[str]] | None = None
    if clock_task is not None:
        target_steps, steps_per_epoch = target_budget(sizes[clock_task], config=config)
        sampler = TaskSampler(
            sizes=sizes,
            mixing=mixing,
            total_steps=target_steps,
            seed=stable_seed(config.seed, "sampler", name),
        )
        plan = sampler.plan(clock_task, target_steps, per_step)
        total = len(plan)
    else:
        total, steps_per_epoch = phase_budget(
            name, list(sizes.values()), config=config, options=options, per_step=per_step
        )
        sampler = TaskSampler(
            sizes=sizes,
            mixing=mixing,
            total_steps=total,
            seed=stable_seed(config.seed, "sampler", name),
        )
    optimizer = build_optimizer(
        model, weighting, learning_rate=config.learning_rate, weight_decay=options.weight_decay
    )
    scheduler = get_linear_schedule_with_warmup(optimizer, int(options.warmup_ratio * total), total)
    streams = {
        t: BatchStream(
            tensors=checked[t],
            batch_size=config.batch_size,
            seed=stable_seed(config.seed, "stream", name, t),
            group_by_length=options.group_by_length,
        )
        for t in tasks
    }
    return Phase(
        name=name,
        tasks=tasks,
        total_steps=total,
        steps_per_epoch=steps_per_epoch,
        optimizer=optimizer,
        scheduler=scheduler,
        sampler=sampler,
        streams=streams,
        plan=plan,
        clock_task=clock_task,
    )
