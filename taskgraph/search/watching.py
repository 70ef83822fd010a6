"""Within-trial progress: the trainer's steps and evaluations, forwarded to the engine's observer.

A trial on a CPU can take minutes; a progress display that moves only between trials looks
frozen.  :class:`ObserverCallback` is an ordinary trainer callback (as the pruning callback
is) that hands each step and each evaluation to
:meth:`~taskgraph.search.engine.EngineObserver.on_trial_progress` as a
:class:`~taskgraph.search.progress.TrialStep`.
"""

from __future__ import annotations

import time
from typing import Any

from taskgraph.search.progress import TrialStep
from taskgraph.training.callbacks import TrainerCallback, TrainerControl, TrainerState
from taskgraph.trial import TrialConfig

__all__ = ["ObserverCallback", "phase_position"]


def phase_position(config: TrialConfig, phase: str) -> tuple[int, int]:
    """Return (index of ``phase``, number of phases) of a trial's training.

    Sequential transfer trains a ``source`` phase, then a ``target`` phase, each counting its
    own steps; everything else is one ``joint`` phase.
    """
    if config.transfer_mode == "sequential" and config.auxiliaries:
        return (1 if phase == "target" else 0), 2
    return 0, 1


class ObserverCallback(TrainerCallback):
    """Reports steps (at most every ``interval`` seconds) and every evaluation to ``observer``."""

    def __init__(
        self,
        *,
        observer: Any,
        number: int,
        seed_index: int = 0,
        n_seeds: int = 1,
        interval: float = 0.25,
    ) -> None:
        self.observer = observer
        self.number = number
        self.seed_index = seed_index
        self.n_seeds = n_seeds
        self.interval = interval  # a display redraws a few times a second; steps come faster
        self._last = 0.0

    def _report(self, config: TrialConfig, state: TrainerState, objective: float | None) -> None:
        phase_index, n_phases = phase_position(config, state.phase)
        self.observer.on_trial_progress(
            self.number,
            TrialStep(
                step=state.global_step,
                max_steps=state.max_steps,
                phase_index=phase_index,
                n_phases=n_phases,
                seed_index=self.seed_index,
                n_seeds=self.n_seeds,
                objective=objective,
            ),
        )

    def on_step_end(
        self, args: TrialConfig, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Report the step unless one was reported less than ``interval`` seconds ago."""
        now = time.monotonic()
        if now - self._last >= self.interval or state.global_step >= state.max_steps:
            self._last = now
            self._report(args, state, None)

    def on_evaluate(
        self,
        args: TrialConfig,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, dict[str, dict[str, float]]] | None = None,
        **kwargs: Any,
    ) -> None:
        """Report the evaluation's objective."""
        objective = kwargs.get("objective")
        self._report(args, state, None if objective is None else float(objective))
