"""`train_trial` refuses an objective direction that goes against its metric's own.

The trainer keeps the best weights by the metric's direction: a config built by hand (not
through a study, whose spec checks refuse it) that said the other way used to train anyway,
and its caller read the best result as the worst.  Tiny random BERT on the synthetic family.
"""

from __future__ import annotations

from typing import Any

import pytest

import taskgraph.models
from taskgraph.errors import ConfigError
from taskgraph.tasks.synthetic import synthetic_family
from taskgraph.testing import SMALL_BERT
from taskgraph.training import build_trainer, train_trial
from taskgraph.trial import Objective, TrialConfig, TrialStatus

TASKS = synthetic_family(target_train=8, aux_train=16, eval_size=8).tasks


def _config(objective: Objective) -> TrialConfig:
    return TrialConfig(
        target="synth_target",
        auxiliaries=("synth_related",),
        encoder="tiny-bert",
        encoder_options=SMALL_BERT,
        objective=objective,
        max_steps=2,
        batch_size=4,
        eval_every=1,
        max_length=16,
    )


@pytest.fixture
def encoder_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every encoder the trial loads (it loads one before any model is built)."""
    loaded: list[str] = []
    original = taskgraph.models.load_encoder

    def recording(name: str, **kwargs: Any) -> Any:
        loaded.append(name)
        return original(name, **kwargs)

    monkeypatch.setattr(taskgraph.models, "load_encoder", recording)
    return loaded


def test_minimising_the_primary_accuracy_fails_the_trial_before_building_a_model(
    encoder_loads: list[str],
) -> None:
    result = train_trial(_config(Objective(direction="minimize")), tasks=TASKS)
    assert result.status is TrialStatus.FAILED
    assert result.failure_reason == (
        "invalid configuration: TrialConfig: objective.direction: minimize, but accuracy "
        "(the primary metric of synth_target) is higher-is-better; write `direction: maximize`"
    )
    assert encoder_loads == []


def test_minimising_a_named_accuracy_fails_the_trial() -> None:
    result = train_trial(_config(Objective(metric="accuracy", direction="minimize")), tasks=TASKS)
    assert result.status is TrialStatus.FAILED
    assert result.failure_reason == (
        "invalid configuration: TrialConfig: objective.direction: minimize, but accuracy "
        "is higher-is-better; write `direction: maximize`"
    )


def test_build_trainer_refuses_it_too() -> None:
    with pytest.raises(ConfigError, match=r"objective\.direction: minimize, but accuracy"):
        build_trainer(_config(Objective(direction="minimize")), tasks=TASKS)


def test_the_metric_s_own_direction_trains(encoder_loads: list[str]) -> None:
    result = train_trial(_config(Objective(metric="accuracy", direction="maximize")), tasks=TASKS)
    assert result.status is TrialStatus.COMPLETE, result.failure_reason
    assert result.objective is not None
    assert encoder_loads  # the recording fixture sees the loads the refusal test expects none of


@pytest.mark.parametrize("metric", ["los", "f1"])
def test_a_metric_the_target_does_not_have_fails_the_trial_naming_its_metrics(
    encoder_loads: list[str], metric: str
) -> None:
    # "los" was told to maximise (a wrong hint); "f1" trained to its first evaluation and then
    # failed as "not reported".
    result = train_trial(_config(Objective(metric=metric, direction="minimize")), tasks=TASKS)
    assert result.status is TrialStatus.FAILED
    assert result.failure_reason == (
        f"invalid configuration: TrialConfig: objective.metric: {metric!r} is not a metric of "
        "synth_target; allowed: accuracy"
    )
    assert encoder_loads == []
