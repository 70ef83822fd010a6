"""`train_trial` refuses a `mixing.max_examples` cap for a task the trial does not train.

Such a cap used to be silently ignored; the spec checks refuse the same for a study.
"""

from __future__ import annotations

import pytest

from taskgraph.errors import ConfigError
from taskgraph.training import build_trainer, train_trial
from taskgraph.trial import MixingConfig, TrialConfig, TrialStatus


def _config(caps: dict[str, int]) -> TrialConfig:
    return TrialConfig(
        target="synth_target",
        auxiliaries=("synth_related",),
        encoder="tiny-bert",
        mixing=MixingConfig(max_examples=caps),
        max_steps=1,
        batch_size=2,
        max_length=16,
    )


def test_a_cap_for_a_task_outside_the_trial_fails_it_as_invalid() -> None:
    result = train_trial(_config({"synth_target": 8, "synth_conflict": 8}))
    assert result.status is TrialStatus.FAILED
    reason = result.failure_reason or ""
    assert reason.startswith("invalid configuration: mixing.max_examples.synth_conflict: ")
    assert "synth_related, synth_target" in reason


def test_build_trainer_refuses_it_too() -> None:
    with pytest.raises(ConfigError, match=r"max_examples\.nosuch: not a task of the trial"):
        build_trainer(_config({"nosuch": 4}))
