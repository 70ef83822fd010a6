"""Trainer callbacks in the style of transformers' ``TrainerCallback``.

A callback is a set of no-op hooks; it observes :class:`TrainerState` and steers the loop only
through :class:`TrainerControl` (``should_stop`` ends training normally, ``should_prune`` ends it
and marks the trial PRUNED).  Optuna pruning and Ray Tune reporting are callbacks written on top
of these by the search and runner layers, so this package never imports Optuna or Ray.

Hook signature: ``hook(args, state, control, **kwargs)`` where ``args`` is the
:class:`~taskgraph.trial.TrialConfig`; ``on_evaluate`` also gets ``metrics``
(``{task: {split: {metric: value}}}``) and ``objective``.  A hook may return a
:class:`TrainerControl`, as in transformers, or change ``control`` in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from taskgraph.trial import TrialConfig

__all__ = [
    "CallbackHandler",
    "ProgressCallback",
    "TrainerCallback",
    "TrainerControl",
    "TrainerState",
]


@dataclass
class TrainerState:
    """Where training stands: counters, the objective's history and the best value so far."""

    global_step: int = 0  # optimizer steps of the current phase
    max_steps: int = 0  # the current phase's steps (planned in full under the target budget)
    target_step: int = 0  # steps of the current phase that trained the target
    epoch: float = 0.0  # the phase's clock (target steps or steps) / its steps per epoch
    phase: str = "joint"  # "joint", or "source" then "target" in sequential transfer
    examples: int = 0  # training examples consumed (padding excluded)
    tokens: int = 0  # non-padding training tokens consumed
    total_steps: int = 0  # optimizer steps of every phase so far
    target_steps: int = 0  # those that trained the target
    objective_history: list[tuple[int, float]] = field(default_factory=list)
    best_objective: float | None = None
    best_step: int | None = None
    evaluations_without_improvement: int = 0
    log_history: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready copy (for checkpoints)."""
        return {
            "global_step": self.global_step,
            "max_steps": self.max_steps,
            "target_step": self.target_step,
            "epoch": self.epoch,
            "phase": self.phase,
            "examples": self.examples,
            "tokens": self.tokens,
            "total_steps": self.total_steps,
            "target_steps": self.target_steps,
            "objective_history": [list(p) for p in self.objective_history],
            "best_objective": self.best_objective,
            "best_step": self.best_step,
            "evaluations_without_improvement": self.evaluations_without_improvement,
            "log_history": list(self.log_history),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainerState:
        """Rebuild a state saved by :meth:`to_dict`."""
        values = dict(data)
        values["objective_history"] = [(int(s), float(v)) for s, v in data["objective_history"]]
        return cls(**values)


@dataclass
class TrainerControl:
    """Flags callbacks set to steer the loop."""

    should_stop: bool = False
    should_prune: bool = False
    should_evaluate: bool = False
    should_save: bool = False


class TrainerCallback:
    """Base class: every hook does nothing.  Subclass and override what you need."""

    def on_train_begin(
        self, args: TrialConfig, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> TrainerControl | None:
        """Called once before the first step of each phase (also after resuming from a
        checkpoint); in kwargs, ``data_fingerprints``: the dataset fingerprint of each task's
        data as the trainer read it (None where the trainer was built without them),
        ``pretraining``: the report of the masked-LM stage the encoder came from (None without
        one) and ``selection``: what data selection kept (:attr:`TrialResult.selection`)."""
        return None

    def on_step_end(
        self, args: TrialConfig, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> TrainerControl | None:
        """Called after every optimizer step."""
        return None

    def on_epoch_end(
        self, args: TrialConfig, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> TrainerControl | None:
        """Called when ``state.epoch`` passes a whole number."""
        return None

    def on_evaluate(
        self,
        args: TrialConfig,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, dict[str, dict[str, float]]] | None = None,
        **kwargs: Any,
    ) -> TrainerControl | None:
        """Called after each evaluation with ``metrics`` and ``objective``."""
        return None

    def on_save(
        self, args: TrialConfig, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> TrainerControl | None:
        """Called after a checkpoint was written (``checkpoint_dir`` in kwargs)."""
        return None

    def on_train_end(
        self, args: TrialConfig, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> TrainerControl | None:
        """Called once after the last step and the final evaluation."""
        return None


class CallbackHandler:
    """Calls every callback's hook in order and merges the controls they return."""

    def __init__(self, *, callbacks: Sequence[TrainerCallback] = ()) -> None:
        for callback in callbacks:
            if not isinstance(callback, TrainerCallback):
                raise TypeError(
                    f"callbacks must be TrainerCallback instances, got {type(callback).__name__}"
                )
        self.callbacks = list(callbacks)

    def call(
        self,
        event: str,
        args: TrialConfig,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> TrainerControl:
        """Return ``control`` after running hook ``event`` of every callback."""
        for callback in self.callbacks:
            result = getattr(callback, event)(args, state, control, **kwargs)
            if result is not None:
                control = result
        return control


class ProgressCallback(TrainerCallback):
    """A rich progress bar per training phase (transformers' ``ProgressCallback``, with rich)."""

    def __init__(self) -> None:
        self._progress: Any = None
        self._task: Any = None

    def on_train_begin(
        self, args: TrialConfig, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Start a bar for the phase that begins (resumed runs start where they stopped)."""
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.close()
        # A format string: braces in a task name are doubled so that they print as they are.
        label = f"training {args.task_set_key} ({state.phase})".replace("{", "{{").replace(
            "}", "}}"
        )
        self._progress = Progress(
            TextColumn(label, markup=False),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} steps"),
            TimeRemainingColumn(),
        )
        self._task = self._progress.add_task(
            state.phase, total=state.max_steps, completed=state.global_step
        )
        self._progress.start()

    def on_step_end(
        self, args: TrialConfig, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Advance the bar."""
        if self._progress is not None:
            self._progress.update(self._task, completed=state.global_step)

    def on_train_end(
        self, args: TrialConfig, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Remove the bar."""
        self.close()

    def close(self) -> None:
        """Stop the bar if one is showing."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
