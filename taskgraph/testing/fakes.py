"""Test fakes: an evaluator whose answers are known in advance, its search spaces and results.

It imports the trainer's callback types, not torch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from taskgraph.training.callbacks import TrainerControl, TrainerState
from taskgraph.trial import Cost, TrialConfig, TrialResult, TrialStatus

# Architectures' own parameters, in the shape `search_space()` returns them.
SHARING_SPACES: dict[str, dict[str, dict[str, Any]]] = {
    "hard": {},
    "soft": {"lambda": {"type": "float", "low": 1e-4, "high": 1.0, "log": True}},
}

EFFECTS = {"good": 0.2, "bad": -0.15, "meh": 0.01}


def known_objective(config: TrialConfig) -> float:
    """Return the objective the fake reports: 0.5 plus each auxiliary's known effect."""
    return 0.5 + sum(EFFECTS.get(t, 0.0) for t in config.auxiliaries) + 0.001 * config.seed


class FakeEvaluator:
    """Evaluates a config by formula, reporting ``n_evals`` evaluations through the callbacks.

    Configs containing a task in ``fail_with`` fail; ``interrupt_on`` raises KeyboardInterrupt
    on that call number (1-based), as Ctrl-C would.
    """

    def __init__(
        self,
        *,
        n_evals: int = 3,
        fail_with: Sequence[str] = (),
        interrupt_on: int | None = None,
        seconds_per_eval: float = 0.0,
    ) -> None:
        self.seconds_per_eval = seconds_per_eval
        self.n_evals = n_evals
        self.fail_with = set(fail_with)
        self.interrupt_on = interrupt_on
        self.calls: list[TrialConfig] = []
        self.checkpoint_keys: list[str | None] = []

    def evaluate(
        self,
        config: TrialConfig,
        *,
        callbacks: Sequence[Any] = (),
        checkpoint_key: str | None = None,
    ) -> TrialResult:
        """Return the known result of ``config`` (see the class docstring); keys are recorded."""
        self.calls.append(config)
        self.checkpoint_keys.append(checkpoint_key)
        if self.interrupt_on is not None and len(self.calls) == self.interrupt_on:
            raise KeyboardInterrupt
        if self.fail_with & set(config.auxiliaries):
            return TrialResult.failed("fake failure: loss is NaN", cost=Cost(seconds=0.01))
        final = known_objective(config)
        state, control = TrainerState(), TrainerControl()
        intermediate: list[tuple[int, float]] = []
        for step in range(1, self.n_evals + 1):
            time.sleep(self.seconds_per_eval)
            value = final * step / self.n_evals
            state.global_step = step * 10
            intermediate.append((state.global_step, value))
            for callback in callbacks:
                out = callback.on_evaluate(config, state, control, metrics={}, objective=value)
                control = out or control
            if control.should_prune:
                return TrialResult(
                    status=TrialStatus.PRUNED,
                    objective=value,
                    scores={config.target: {"dev": {"accuracy": value}}},
                    intermediate=intermediate,
                    cost=Cost(seconds=0.01),
                )
        scores = {t: {"dev": {"accuracy": final}} for t in config.task_set}
        return TrialResult(
            status=TrialStatus.COMPLETE,
            objective=final,
            scores=scores,
            intermediate=intermediate,
            cost=Cost(seconds=0.01, examples=100),
        )


def fake_evaluator_factory(spec: Any, data_dir: Any) -> FakeEvaluator:
    """Return the fake a Ray worker evaluates with: three evaluations, 0.5 s apart.

    The Ray runner's ``evaluator_factory`` (:class:`taskgraph.runners.builtin.RayRunner`):
    importable by name on every node, and slow enough that concurrent trials overlap.
    """
    return FakeEvaluator(n_evals=3, seconds_per_eval=0.5)


def noop_evaluator_factory(spec: Any, data_dir: Any) -> FakeEvaluator:
    """Return a fake that does no work: one evaluation, reported at once (overhead benchmarks)."""
    return FakeEvaluator(n_evals=1)


#: seconds each trial of the test command line's ``tabular`` runner takes (``main``)
TRIAL_SECONDS_ENV = "TASKGRAPH_TEST_TRIAL_S"


class PacedEvaluator:
    """Wraps an evaluator, taking ``seconds`` per trial (a fault can land between trials)."""

    def __init__(self, *, inner: Any, seconds: float) -> None:
        self.inner = inner
        self.seconds = seconds

    def evaluate(
        self,
        config: TrialConfig,
        *,
        callbacks: Sequence[Any] = (),
        checkpoint_key: str | None = None,
    ) -> TrialResult:
        """Return ``inner``'s result after ``seconds``."""
        time.sleep(self.seconds)
        return self.inner.evaluate(config, callbacks=callbacks, checkpoint_key=checkpoint_key)


def complete_result(
    config: TrialConfig, value: float = 0.5, *, split: str = "dev", metric: str = "f1"
) -> TrialResult:
    """Return a complete result scoring ``value`` on every task of ``config`` (its objective
    too), for tests that write records by hand."""
    return TrialResult(
        status=TrialStatus.COMPLETE,
        scores={task: {split: {metric: value}} for task in config.task_set},
        objective=value,
        cost=Cost(seconds=1.0),
    )
