"""A trial that fails is charged and described as one that completes.

Its cost counts the time before a kill it was resumed from (the trainer's
``elapsed_before``), and its result carries the pretraining stage's report whenever the
stage ran, so the run's records say what was paid for (before: the time before the kill was
left out, and a failed run's cost counted the stage's tokens while its records had no report).
Tiny random BERT on the synthetic family: seconds.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from taskgraph.tasks.synthetic import synthetic_family
from taskgraph.testing import KillAtStep, tiny_trial_config
from taskgraph.training import TrainerCallback, train_trial
from taskgraph.trial import Cost, PretrainingConfig, TrialStatus

TASKS = synthetic_family(target_train=8, aux_train=40, eval_size=8).tasks


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKGRAPH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TASKGRAPH_PRETRAIN_CACHE", raising=False)


class _PauseAt(TrainerCallback):
    def __init__(self, step: int, seconds: float) -> None:
        self.step, self.seconds = step, seconds

    def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if state.global_step == self.step:
            time.sleep(self.seconds)


class _FailAt(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step
        self.failed_at = 0.0

    def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if state.global_step >= self.step:
            self.failed_at = time.perf_counter()
            raise RuntimeError("a hook failed")


def test_a_resumed_trial_that_fails_counts_the_time_before_its_kill(tmp_path: Path) -> None:
    config = tiny_trial_config()
    with pytest.raises(KeyboardInterrupt):  # 3 s before the checkpoint of step 4, killed at 6
        train_trial(
            config,
            tasks=TASKS,
            checkpoint_dir=tmp_path / "run",
            callbacks=[_PauseAt(2, 3.0), KillAtStep(6)],
        )
    fail = _FailAt(5)
    start = time.perf_counter()
    result = train_trial(config, tasks=TASKS, checkpoint_dir=tmp_path / "run", callbacks=[fail])
    assert result.status is TrialStatus.FAILED
    assert result.failure_reason == "exception: RuntimeError: a hook failed"
    # This call's own time up to the failure, and the 3 s paused before the checkpoint.
    assert result.cost.seconds > fail.failed_at - start + 2.0


def test_a_trial_failing_after_its_pretraining_stage_carries_the_stage_s_report() -> None:
    stage = PretrainingConfig(scheme="random", steps=2, batch_size=4, learning_rate=8e-4)
    result = train_trial(tiny_trial_config(pretraining=stage), tasks=TASKS, callbacks=[_FailAt(1)])
    assert result.status is TrialStatus.FAILED
    assert result.pretraining is not None
    seconds, tokens = Cost.of_pretraining(result.pretraining)
    assert tokens > 0 and result.cost.pretrain_tokens == tokens
    assert result.cost.pretrain_seconds == seconds
