"""The Optuna pruning callback: reports the objective at each evaluation and asks to prune.

It plugs into the trainer as an ordinary :class:`~taskgraph.training.TrainerCallback`, so the
trainer never imports Optuna (after ``optuna.integration``'s pruning callbacks, which do the same
for other training loops).  The resource a pruner counts is the *evaluation index* (1, 2, ...),
not the optimizer step: trials with more tasks or smaller batches take more steps per epoch, and
ASHA's rungs must compare like with like.

A run resumed from its checkpoint (a retried trial) carries on counting: its evaluations so far
are in the restored :class:`~taskgraph.training.TrainerState`'s ``objective_history``, which
:meth:`OptunaPruningCallback.on_train_begin` reports to the retry's Optuna trial (a fresh one,
without the first try's curve), so the next evaluation is reported, and judged, as the one after
them.
"""

from __future__ import annotations

from typing import Any

import optuna

from taskgraph.training.callbacks import TrainerCallback, TrainerControl, TrainerState
from taskgraph.trial import TrialConfig

__all__ = ["OptunaPruningCallback"]


class OptunaPruningCallback(TrainerCallback):
    """Reports each evaluation's objective to ``trial`` and sets ``control.should_prune``."""

    def __init__(self, *, trial: optuna.Trial, may_prune: bool = True) -> None:
        self.trial = trial
        self.may_prune = may_prune  # False: report only (the baseline is never pruned)
        self.evaluations = 0
        self.pruned_at: int | None = None

    def on_train_begin(
        self, args: TrialConfig, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> TrainerControl | None:
        """Catch up with a resumed run: report the evaluations its checkpoint holds."""
        # The trainer evaluates the objective only in the phases that count it, and every
        # evaluation is in the history: its length is the evaluation index reached so far.
        for index, (_, value) in enumerate(state.objective_history, start=1):
            if index > self.evaluations:
                self.trial.report(float(value), step=index)
                self.evaluations = index
        return None

    def on_evaluate(
        self,
        args: TrialConfig,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, dict[str, dict[str, float]]] | None = None,
        **kwargs: Any,
    ) -> TrainerControl | None:
        """Report the objective; ask the trainer to stop as PRUNED when the pruner says so."""
        objective = kwargs.get("objective")
        if objective is None:
            return None
        self.evaluations += 1
        self.trial.report(float(objective), step=self.evaluations)
        if self.may_prune and self.trial.should_prune():
            self.pruned_at = self.evaluations
            control.should_prune = True
        return control
