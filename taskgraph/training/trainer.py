"""The multi-task training loop: one architecture, one loss weighting, one dataset per task.

:class:`MultiTaskTrainer` composes a :class:`~taskgraph.models.MultiTaskModel` (sharing
architecture + heads) with a :class:`~taskgraph.training.weighting.LossWeighting`; it never
subclasses either.  Each step draws ``tasks_per_step`` tasks from the mixing distribution
(:class:`~taskgraph.training.sampling.TaskSampler`; planned up front under the target step
budget, see :mod:`~taskgraph.training.phase`), takes the next batch of each from its own
stream, and lets the weighting turn the losses into gradients; AdamW with linear warmup/decay
then steps.  Under the target step budget, evaluations and epochs count target steps.  Transfer modes: ``joint`` (all tasks in one phase) and ``sequential`` (a ``source``
phase on the auxiliaries, then a ``target`` phase that fine-tunes on the target alone with a
fresh optimizer; with the ``source_tasks`` option only those auxiliaries are sources and the
others train with the target in the target phase).  Evaluation, early stopping, pruning, checkpoints and lookahead probes hang
off the step counter (probes: every ``lookahead_every``-th step of a joint run, or the steps
the ``lookahead_steps`` option lists).

Speed: the step has no host-device synchronisation.  The running loss stays on the device and
is checked for NaN/inf every ``log_every`` steps (a NaN poisons the weights, so a late check
still catches it); token and example counts come from CPU-side lengths.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from taskgraph.errors import TaskgraphError
from taskgraph.models import MultiTaskModel
from taskgraph.tasks import metric_direction
from taskgraph.tasks.types import TaskDef
from taskgraph.training.batching import BatchStream, TaskTensors, to_device
from taskgraph.training.callbacks import (
    CallbackHandler,
    ProgressCallback,
    TrainerCallback,
    TrainerControl,
    TrainerState,
)
from taskgraph.training.checkpoint import CheckpointStore
from taskgraph.training.evaluation import EvalSet, evaluate_split
from taskgraph.training.lookahead import LookaheadAffinity, ReusedGradient
from taskgraph.training.options import TrainingOptions
from taskgraph.training.phase import Phase, build_phase
from taskgraph.training.runtime import stable_seed
from taskgraph.training.weighting import LossWeighting
from taskgraph.trial import LookaheadMatrix, TrialConfig, TrialStatus

__all__ = ["MultiTaskTrainer", "NonFiniteLossError", "TaskData", "TrainingOutcome"]

logger = logging.getLogger(__name__)


class NonFiniteLossError(TaskgraphError):
    """The training loss became NaN or infinite."""


@dataclass
class TaskData:
    """One task's label vocabulary, training tensors and evaluation splits."""

    task: TaskDef
    labels: list[str] | None
    train: TaskTensors | None
    evals: dict[str, EvalSet] = field(default_factory=dict)
    truncated_words: dict[str, int] = field(default_factory=dict)
    # Example-level data selection: what was kept of the training split (TrialResult.selection),
    # and the whole pool it was kept from with the kept rows (frozen-layer outputs are computed
    # once on the pool, then subset, so trials with other selections reuse them).
    selection: dict[str, Any] | None = None
    train_pool: TaskTensors | None = None
    selected_rows: np.ndarray | None = None


@dataclass
class TrainingOutcome:
    """What :meth:`MultiTaskTrainer.train` produced."""

    status: TrialStatus
    scores: dict[str, dict[str, dict[str, float]]]
    objective: float | None
    intermediate: list[tuple[int, float]]
    lookahead: LookaheadMatrix | None
    examples: int
    tokens: int
    seconds: float
    state: TrainerState
    target_steps: int = 0  # optimizer steps that trained the target, every phase
    total_steps: int = 0  # optimizer steps of every phase


class MultiTaskTrainer:
    """Trains one model on several tasks and evaluates it (see the module docstring)."""

    def __init__(
        self,
        *,
        config: TrialConfig,
        model: MultiTaskModel,
        weighting: LossWeighting,
        data: Mapping[str, TaskData],
        options: TrainingOptions,
        device: torch.device,
        callbacks: Sequence[TrainerCallback] = (),
        checkpoint_dir: str | None = None,
        progress: bool = False,
    ) -> None:
        self.config = config
        self.model = model
        self.weighting = weighting
        self.data = dict(data)
        self.options = options
        self.device = device
        # A lookahead probe may reuse the training step's gradient only when the probe would
        # take the same one: no dropout, float32 (the step runs under bf16 autocast on CUDA).
        self._step_gradient_reusable = device.type != "cuda" and not _has_active_dropout(model)
        self.progress = ProgressCallback() if progress else None
        self.handler = CallbackHandler(
            callbacks=[*callbacks, *([self.progress] if self.progress else [])]
        )
        self.store = (
            CheckpointStore(directory=checkpoint_dir, config=config) if checkpoint_dir else None
        )
        # The dataset fingerprint of each task's data as read for this run (set by
        # ``train_trial``): a checkpoint saved on other data is not resumed.
        self.data_fingerprints: dict[str, str] | None = None
        # The report of the masked-LM stage this trial's encoder came from (set by
        # ``train_trial``): handed to ``on_train_begin`` with the data's fingerprints, so a
        # runner whose trial may end without a result (Ray: stopped by the scheduler) has it.
        self.pretraining: dict[str, Any] | None = None
        self.state = TrainerState()
        self.control = TrainerControl()
        self.objective_metric = (
            config.objective.metric or self.data[config.target].task.primary_metric
        )
        self.maximize = metric_direction(self.objective_metric) == "maximize"
        self.best_weights: dict[str, torch.Tensor] | None = None
        # The objective split's metrics at the best evaluation, measured with best_weights:
        # the final scores reuse them instead of evaluating those weights a second time.
        self._best_metrics: dict[str, float] | None = None
        self.lookahead: LookaheadAffinity | None = None
        self.elapsed_before = 0.0
        self._last_metrics: dict[str, dict[str, dict[str, float]]] | None = None
        self._loss_sum = torch.zeros((), device=device)
        self._loss_steps = 0
        shared_ids = {id(p) for p in model.shared_parameters()}
        self.shared = [p for p in model.parameters() if id(p) in shared_ids and p.requires_grad]
        self.others = [p for p in model.parameters() if id(p) not in shared_ids and p.requires_grad]
        self.others += [p for p in weighting.parameters() if p.requires_grad]

    # ----------------------------------------------------------------- setup per phase
    def _phases(self) -> list[tuple[str, list[str]]]:
        return self.options.phases(self.config)

    def autocast(self) -> AbstractContextManager[Any]:
        """Return the autocast context of the device (bf16 on CUDA, none on the CPU)."""
        if self.device.type == "cuda":
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return nullcontext()

    # ----------------------------------------------------------------- training
    def train(self) -> TrainingOutcome:
        """Run every phase, evaluate, and return the outcome (raises on NaN loss)."""
        try:
            return self._train()
        finally:
            if self.progress is not None:
                self.progress.close()

    def _train(self) -> TrainingOutcome:
        start = time.perf_counter()
        resume = self.store.load() if self.store and self.store.exists() else None
        if resume is not None and self._checkpoint_on_other_data(resume):
            assert self.store is not None
            self.store.discard()
            resume = None
        phases = self._phases()
        first_phase = int(resume["phase_index"]) if resume else 0
        phase_scores: dict[str, dict[str, dict[str, float]]] = {}
        if resume:
            phase_scores = resume.get("phase_scores", {})
            self.elapsed_before = float(resume.get("seconds", 0.0))
        pruned = False
        for index in range(first_phase, len(phases)):
            phase, tasks = phases[index]
            pruned = self._run_phase(
                index, phase, tasks, resume if index == first_phase else None, start, phase_scores
            )
            resume = None
            if pruned or (self.control.should_stop and phase != "source"):
                break
            self.control.should_stop = False  # a stop in the source phase ends that phase only
            if phase == "source":
                # The sources' scores are measured when their phase ends (before fine-tuning).
                phase_scores.update(self._evaluate_all(tasks))
        seconds = self.elapsed_before + time.perf_counter() - start
        if pruned:
            scores = self._last_scores()
            status = TrialStatus.PRUNED
        else:
            known = self._best_metrics if self.best_weights is not None else None
            if self.best_weights is None and self.store is not None:
                self.best_weights = self.store.load_best()
            if self.best_weights is not None:
                self.model.load_state_dict(self.best_weights)
            final_tasks = phases[-1][1]  # the target phase: the target and its joint tasks
            scores = {**phase_scores, **self._evaluate_all(final_tasks, known=known)}
            status = TrialStatus.COMPLETE
            seconds = self.elapsed_before + time.perf_counter() - start
        objective = (
            scores.get(self.config.target, {})
            .get(self.config.objective.split, {})
            .get(self.objective_metric)
        )
        self._call(
            "on_train_end",
            metrics=scores,
            objective=objective,
        )
        return TrainingOutcome(
            status=status,
            scores=scores,
            objective=objective,
            intermediate=list(self.state.objective_history),
            lookahead=self.lookahead.result() if self.lookahead else None,
            examples=self.state.examples,
            tokens=self.state.tokens,
            seconds=seconds,
            state=self.state,
            target_steps=self.state.target_steps,
            total_steps=self.state.total_steps,
        )

    def _run_phase(
        self,
        index: int,
        phase: str,
        tasks: list[str],
        resume: dict[str, Any] | None,
        start: float,
        phase_scores: dict[str, dict[str, dict[str, float]]],
    ) -> bool:
        """Train one phase; return True when a callback pruned the trial."""
        config, options = self.config, self.options
        parts = build_phase(
            phase,
            tasks,
            train={t: self.data[t].train for t in tasks},
            model=self.model,
            weighting=self.weighting,
            config=config,
            options=options,
        )
        total, steps_per_epoch = parts.total_steps, parts.steps_per_epoch
        seed = config.seed
        if options.has_probes(config) and phase == "joint" and len(tasks) > 1 and self.shared:
            probe_streams = {
                t: BatchStream(
                    tensors=parts.streams[t].tensors,
                    batch_size=config.batch_size,
                    seed=stable_seed(seed, "lookahead", t),
                )
                for t in tasks
            }
            self.lookahead = LookaheadAffinity(
                model=self.model,
                tasks=tasks,
                streams=probe_streams,
                shared=self.shared,
                device=self.device,
                measure=self.options.lookahead_targets,
            )
        evaluates = phase != "source"
        if resume is not None:
            self._restore(resume, parts)
            patience = config.early_stopping_patience
            if patience is not None and self.state.evaluations_without_improvement >= patience:
                # The run had stopped early when it was killed (e.g. in its final evaluation):
                # training on would give another result than the uninterrupted run.
                self.control.should_stop = True
        else:
            self.state.phase = phase
            self.state.global_step = 0
            self.state.target_step = 0
            self.state.epoch = 0.0
            self.state.evaluations_without_improvement = 0
        self.state.max_steps = total
        per_step = options.tasks_per_step(len(tasks), self.weighting)
        self.model.train()
        self._call(
            "on_train_begin",
            data_fingerprints=self.data_fingerprints,
            pretraining=self.pretraining,
            selection=self.selection(),
        )
        while self.state.global_step < total and not self._stopping():
            probe = self.lookahead is not None and options.probes_after(
                self.state.global_step + 1, config
            )
            trained_target = self._step(per_step, parts, probe)
            step = self.state.global_step
            # The phase's clock: target steps under the target step budget, else every step.
            # Evaluations and epochs follow it, so every trial of a study evaluates after the
            # same number of target updates; a step without the target leaves it standing.
            ticked = parts.clock_task is None or trained_target
            clock = self.state.target_step if parts.clock_task is not None else step
            epoch_before = math.floor(self.state.epoch)
            self.state.epoch = clock / steps_per_epoch
            if step % options.log_every == 0:
                self._log(step, parts.scheduler)
            self._call("on_step_end", optimizer=parts.optimizer)
            epoch_ended = math.floor(self.state.epoch) > epoch_before
            if epoch_ended:
                self._call("on_epoch_end")
            due = (
                ticked and (clock % config.eval_every == 0 if config.eval_every else epoch_ended)
            ) or self.control.should_evaluate
            if (due or step == total) and not self.control.should_prune:
                if evaluates:
                    self._evaluate_objective()
                # Checkpoint on the evaluation schedule (the source phase has no evaluations).
                self.control.should_save = True
            if self.store is not None and (
                self.control.should_save
                or (options.checkpoint_every and step % options.checkpoint_every == 0)
            ):
                self._save(index, parts, start, phase_scores)
            self.control.should_evaluate = self.control.should_save = False
        self._check_finite()
        return self.control.should_prune

    def selection(self) -> dict[str, dict[str, Any]] | None:
        """Return what example-level data selection kept of each auxiliary's training split
        (:attr:`TrialResult.selection`), or ``None`` without selection."""
        return {
            name: dict(task_data.selection)
            for name, task_data in self.data.items()
            if task_data.selection is not None
        } or None

    def _call(self, event: str, **kwargs: Any) -> None:
        """Run callback hook ``event`` (callbacks also get the model, as in transformers)."""
        self.control = self.handler.call(
            event, self.config, self.state, self.control, model=self.model, **kwargs
        )

    def _stopping(self) -> bool:
        return self.control.should_stop or self.control.should_prune

    def _step(self, per_step: int, parts: Phase, probe: bool = False) -> bool:
        """Train one step; return whether it trained the target."""
        streams = parts.streams
        optimizer, scheduler = parts.optimizer, parts.scheduler
        drawn = parts.draw(self.state.global_step, per_step)
        losses: dict[str, torch.Tensor] = {}
        counts: dict[str, int] = {}
        batch: dict[str, torch.Tensor] = {}
        for task in drawn:
            batch, examples, tokens = streams[task].next_batch()
            batch = to_device(batch, self.device)
            with self.autocast():
                output = self.model(task, batch)
            loss = output.loss.float()
            losses[task] = losses[task] + loss if task in losses else loss
            counts[task] = counts.get(task, 0) + 1
            self.state.examples += examples
            self.state.tokens += tokens
        for task, count in counts.items():
            if count > 1:
                losses[task] = losses[task] / count
        total = self.weighting.backward(losses, shared=self.shared, others=self.others)
        if probe and self.lookahead is not None:
            # Before the penalty below joins the gradients: they are the tasks' own here.
            self._probe(drawn, batch, optimizer, scheduler)
        extra = self.model.regularization_loss()
        if extra.requires_grad:
            # The architecture's penalty (soft sharing's L2 between task copies) is added as
            # configured: not scaled by a task's loss weight (uncertainty weighting would turn
            # lambda into lambda * exp(-s_t) / 2 and push s_t), nor projected by PCGrad.
            penalty = extra.float()
            penalty.backward()
            total = total + penalty.detach()
        if self.options.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.options.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        self._loss_sum += total
        self._loss_steps += 1
        self.state.global_step += 1
        self.state.total_steps += 1
        trained_target = self.config.target in counts
        if trained_target:
            self.state.target_step += 1
            self.state.target_steps += 1
        return trained_target

    def _probe(
        self,
        drawn: list[str],
        batch: dict[str, torch.Tensor],
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
    ) -> None:
        """Run a lookahead probe from the pre-update parameters of this step."""
        assert self.lookahead is not None
        lr = self.options.lookahead_lr or scheduler.get_last_lr()[0]
        if lr <= 0:
            # The first warmup step has lr 0: the probe's step would move nothing and add an
            # all-zero matrix to the mean.
            return
        reuse = None
        if (
            self._step_gradient_reusable
            and len(drawn) == 1
            and not self.weighting.needs_task_gradients
        ):
            # The step's shared-parameter gradient is exactly weight x the task's gradient, as
            # the probe would take it (no dropout, float32): reuse it (and its batch) instead of
            # a second forward/backward pass.  With dropout it is another gradient than the
            # other tasks' eval-mode ones, so the probe takes its own.
            task = drawn[0]
            reuse = ReusedGradient(
                task=task,
                batch=batch,
                grads=[p.grad for p in self.lookahead.params],
                scale=float(self.weighting.task_weights()[task]),
            )
        self.lookahead.probe(optimizer=optimizer, lr=lr, reuse=reuse)

    def _check_finite(self) -> None:
        if self._loss_steps and not bool(torch.isfinite(self._loss_sum)):
            raise NonFiniteLossError(
                f"training loss became NaN/inf by step {self.state.global_step} "
                f"(phase {self.state.phase})"
            )

    def _log(self, step: int, scheduler: Any) -> None:
        self._check_finite()
        mean = float(self._loss_sum) / max(self._loss_steps, 1)
        self.state.log_history.append(
            {"step": float(step), "loss": mean, "learning_rate": float(scheduler.get_last_lr()[0])}
        )
        self._loss_sum.zero_()
        self._loss_steps = 0

    # ----------------------------------------------------------------- evaluation
    def _evaluate(self, task: str, split: str) -> dict[str, float] | None:
        evalset = self.data[task].evals.get(split)
        if evalset is None:
            return None
        return evaluate_split(
            self.model,
            evalset,
            batch_size=self.options.eval_batch_size,
            device=self.device,
            autocast=self.autocast,
        )

    def _evaluate_all(
        self, tasks: Sequence[str], *, known: dict[str, float] | None = None
    ) -> dict[str, dict[str, dict[str, float]]]:
        """Return every split's metrics of ``tasks``; ``known``: the target's objective-split
        metrics already measured with the current weights (not evaluated again).

        The target's objective split is always scored, in ``eval_splits`` or not: the trial's
        objective is read from it.
        """
        scores: dict[str, dict[str, dict[str, float]]] = {}
        objective = (self.config.target, self.config.objective.split)
        for task in tasks:
            splits = list(self.config.eval_splits)
            if task == objective[0] and objective[1] not in splits:
                splits.append(objective[1])
            for split in splits:
                if known is not None and (task, split) == objective:
                    scores.setdefault(task, {})[split] = dict(known)
                    continue
                metrics = self._evaluate(task, split)
                if metrics is not None:
                    scores.setdefault(task, {})[split] = metrics
        return scores

    def _last_scores(self) -> dict[str, dict[str, dict[str, float]]]:
        return self._last_metrics if self._last_metrics is not None else {}

    def _evaluate_objective(self) -> None:
        target, split = self.config.target, self.config.objective.split
        self._check_finite()
        metrics = self._evaluate(target, split)
        if metrics is None:
            raise TaskgraphError(f"target task {target!r} has no {split!r} split to evaluate")
        value = float(metrics[self.objective_metric]) if self.objective_metric in metrics else None
        if value is None:
            raise TaskgraphError(
                f"objective metric {self.objective_metric!r} is not reported for {target!r}; "
                f"available: {', '.join(sorted(metrics))}"
            )
        step = self.state.global_step
        self.state.objective_history.append((step, value))
        best = self.state.best_objective
        improved = best is None or (value > best if self.maximize else value < best)
        if improved:
            self.state.best_objective = value
            self.state.best_step = step
            self.state.evaluations_without_improvement = 0
            # One copy per tensor, not per key: tied weights (the word embeddings and a
            # masked-LM decoder, the label space every label-embedding head holds) keep sharing
            # it, so the snapshot and best.pt are not several times their size.
            copies: dict[tuple[Any, ...], torch.Tensor] = {}
            self.best_weights = {}
            for key, tensor in self.model.state_dict().items():
                tied = (
                    tensor.untyped_storage().data_ptr(),
                    tensor.storage_offset(),
                    tuple(tensor.shape),
                    tensor.stride(),
                    tensor.dtype,
                    tensor.device,
                )
                if tied not in copies:
                    copies[tied] = tensor.detach().to("cpu", copy=True)
                self.best_weights[key] = copies[tied]
            self._best_metrics = dict(metrics)
            if self.store is not None:
                self.store.save_best(self.best_weights)
        else:
            self.state.evaluations_without_improvement += 1
        patience = self.config.early_stopping_patience
        if patience is not None and self.state.evaluations_without_improvement >= patience:
            self.control.should_stop = True
        all_metrics = {target: {split: metrics}}
        self._last_metrics = all_metrics
        self._call(
            "on_evaluate",
            metrics=all_metrics,
            objective=value,
        )

    # ----------------------------------------------------------------- checkpoints
    def _save(
        self,
        index: int,
        parts: Phase,
        start: float,
        phase_scores: dict[str, dict[str, dict[str, float]]],
    ) -> None:
        assert self.store is not None
        payload = {
            "phase_index": index,
            "phase": parts.state_dict(),
            "model": self.model.state_dict(),
            "weighting": self.weighting.state_dict(),
            "weighting_extra": self.weighting.extra_state(),
            "state": self.state.to_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "lookahead": self.lookahead.state_dict() if self.lookahead else None,
            "loss_sum": float(self._loss_sum),
            "loss_steps": self._loss_steps,
            "phase_scores": phase_scores,
            "last_metrics": self._last_metrics,
            "seconds": self.elapsed_before + time.perf_counter() - start,
            "data_fingerprints": self.data_fingerprints,
        }
        self.store.save(payload)
        self._call("on_save", checkpoint_dir=str(self.store.directory))

    def _checkpoint_on_other_data(self, payload: dict[str, Any]) -> bool:
        """Return whether ``payload`` was saved on other data than this run reads (a task's
        files edited between the interrupted attempt and this one): its weights and best
        weights would carry the old data into a run recorded on the new.  A checkpoint that
        does not say (saved before fingerprints were kept), or a run that does not know its
        data, is resumed as before."""
        saved = payload.get("data_fingerprints")
        if saved is None or self.data_fingerprints is None or saved == self.data_fingerprints:
            return False
        changed = sorted(
            name
            for name in {*saved, *self.data_fingerprints}
            if saved.get(name) != self.data_fingerprints.get(name)
        )
        logger.warning(
            "the checkpoint in %s was saved on other data (%s changed since): training "
            "this trial from the start",
            self.store.directory if self.store is not None else "?",
            ", ".join(changed),
        )
        return True

    def _restore(self, payload: dict[str, Any], parts: Phase) -> None:
        self.model.load_state_dict(payload["model"])
        self.weighting.load_state_dict(payload["weighting"])
        self.weighting.load_extra_state(payload["weighting_extra"])
        parts.load_state_dict(payload["phase"])
        self.state = TrainerState.from_dict(payload["state"])
        torch.set_rng_state(payload["torch_rng"])
        if payload.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(payload["cuda_rng"])
        if self.lookahead is not None and payload.get("lookahead") is not None:
            self.lookahead.load_state_dict(payload["lookahead"])
        self._loss_sum = torch.tensor(float(payload["loss_sum"]), device=self.device)
        self._loss_steps = int(payload["loss_steps"])
        if payload.get("last_metrics") is not None:
            self._last_metrics = payload["last_metrics"]


def _has_active_dropout(model: torch.nn.Module) -> bool:
    """Return whether a training-mode forward of ``model`` drops anything (a dropout p > 0)."""
    return any(
        isinstance(module, torch.nn.modules.dropout._DropoutNd) and module.p > 0
        for module in model.modules()
    )
