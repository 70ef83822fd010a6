"""A retried trial resumed from its checkpoint reports to the pruner where the first try stopped."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from taskgraph.runners.local import LocalEvaluator
from taskgraph.search.pruning import OptunaPruningCallback
from taskgraph.testing import KillAtStep
from taskgraph.training.callbacks import TrainerControl, TrainerState
from taskgraph.trial import TrialStatus

from .test_trainer import TASKS, config


class StepsSeen(optuna.pruners.BasePruner):
    """Never prunes; records the curve each judged trial had when it was judged."""

    def __init__(self) -> None:
        self.seen: dict[int, list[list[int]]] = {}

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        self.seen.setdefault(trial.number, []).append(sorted(trial.intermediate_values))
        return False


def test_resumed_retry_reports_the_evaluations_after_the_first_tries(tmp_path: Path) -> None:
    cfg = config(auxiliaries=("synth_related",), max_steps=12, eval_every=3)
    evaluator = LocalEvaluator(tasks=TASKS, checkpoint_root=tmp_path, device="cpu")
    pruner = StepsSeen()
    study = optuna.create_study(direction="maximize", pruner=pruner)

    whole = study.ask()  # the same training, never interrupted: the curve to match
    result = evaluator.evaluate(cfg, callbacks=[OptunaPruningCallback(trial=whole)])
    assert result.status is TrialStatus.COMPLETE, result.failure_reason
    study.tell(whole, result.objective)

    first = study.ask()
    # Killed after the checkpoint of evaluation 2 (step 6).
    with pytest.raises(KeyboardInterrupt):
        evaluator.evaluate(
            cfg,
            callbacks=[OptunaPruningCallback(trial=first), KillAtStep(7)],
            checkpoint_key="trial-1",
        )
    study.tell(first, state=optuna.trial.TrialState.FAIL)
    # The retry is a new Optuna trial (Optuna's retry callback copies no intermediate values)
    # that resumes the first try's checkpoint at step 6, after its second evaluation.
    retry = study.ask()
    result = evaluator.evaluate(
        cfg, callbacks=[OptunaPruningCallback(trial=retry)], checkpoint_key="trial-1"
    )
    assert result.status is TrialStatus.COMPLETE, result.failure_reason
    study.tell(retry, result.objective)

    curves = {t.number: t.intermediate_values for t in study.trials}
    assert sorted(curves[first.number]) == [1, 2]
    # Evaluations 3 and 4 are reported as steps 3 and 4 (not 1 and 2 again), after the first two.
    assert curves[retry.number] == curves[whole.number]
    assert sorted(curves[retry.number]) == [1, 2, 3, 4]
    # The pruner judges the retry at evaluations 3 and 4, with the whole curve before them.
    assert pruner.seen[retry.number] == [[1, 2, 3], [1, 2, 3, 4]]


class PruneAlways:
    """A stand-in for an Optuna trial whose pruner always says prune; records the reports."""

    def __init__(self) -> None:
        self.reports: list[tuple[float, int]] = []

    def report(self, value: float, step: int) -> None:
        self.reports.append((value, step))

    def should_prune(self) -> bool:
        return True


@pytest.mark.parametrize("may_prune", [False, True])
def test_a_trial_that_may_not_be_pruned_only_reports(may_prune: bool) -> None:
    # The baseline is never pruned: its callback reports its curve and leaves control alone.
    trial = PruneAlways()
    callback = OptunaPruningCallback(trial=trial, may_prune=may_prune)  # type: ignore[arg-type]
    control = TrainerControl()
    callback.on_evaluate(config(), TrainerState(), control, objective=0.5)
    assert trial.reports == [(0.5, 1)]
    assert control.should_prune is may_prune
    assert callback.pruned_at == (1 if may_prune else None)


def test_an_evaluation_without_the_objective_is_not_reported() -> None:
    # A phase that does not count the objective (a sequential source phase) evaluates
    # without one: nothing is reported, and the next objective is still evaluation 1.
    trial = PruneAlways()
    callback = OptunaPruningCallback(trial=trial)  # type: ignore[arg-type]
    control = TrainerControl()
    assert callback.on_evaluate(config(), TrainerState(), control, objective=None) is None
    assert callback.on_evaluate(config(), TrainerState(), control) is None
    assert trial.reports == [] and callback.evaluations == 0
    assert control.should_prune is False
    callback.on_evaluate(config(), TrainerState(), control, objective=0.25)
    assert trial.reports == [(0.25, 1)]
