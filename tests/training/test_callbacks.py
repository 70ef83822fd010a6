"""The trainer's callbacks: the handler's order and merge of controls, the trainer state's JSON
round trip, and the per-trial progress bar."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from taskgraph.testing import tiny_trial_config
from taskgraph.training import CallbackHandler, TrainerCallback, TrainerControl, TrainerState
from taskgraph.training.callbacks import ProgressCallback
from taskgraph.trial import TrialConfig


class Recording(TrainerCallback):
    """Records the controls it is handed and returns ``answer``."""

    def __init__(self, name: str, log: list[tuple[str, TrainerControl]], answer: Any) -> None:
        self.name, self.log, self.answer = name, log, answer

    def on_evaluate(
        self,
        args: TrialConfig,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, dict[str, dict[str, float]]] | None = None,
        **kwargs: Any,
    ) -> TrainerControl | None:
        self.log.append((self.name, control))
        return self.answer


def test_the_handler_runs_callbacks_in_order_handing_each_the_last_returned_control() -> None:
    log: list[tuple[str, TrainerControl]] = []
    stop = TrainerControl(should_stop=True)
    handler = CallbackHandler(
        callbacks=[Recording("first", log, stop), Recording("second", log, None)]
    )
    start = TrainerControl()
    result = handler.call("on_evaluate", tiny_trial_config(), TrainerState(), start)
    assert log == [("first", start), ("second", stop)]
    assert log[1][1] is stop and result is stop


def test_the_handler_refuses_what_is_not_a_callback() -> None:
    with pytest.raises(TypeError, match="callbacks must be TrainerCallback instances, got dict"):
        CallbackHandler(callbacks=[TrainerCallback(), {}])  # type: ignore[list-item]


def test_the_trainer_state_survives_its_json_round_trip() -> None:
    state = TrainerState(
        global_step=7, max_steps=12, target_step=5, epoch=2.5, phase="target", examples=56,
        tokens=901, total_steps=19, target_steps=11, objective_history=[(4, 0.25), (8, 0.5)],
        best_objective=0.5, best_step=8, evaluations_without_improvement=1,
        log_history=[{"step": 5.0, "loss": 1.5, "learning_rate": 0.001}],
    )  # fmt: skip
    again = TrainerState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again == state


# --------------------------------------------------------------------------- progress bar
def _phase(args: TrialConfig, bar: ProgressCallback, state: TrainerState, to: int) -> None:
    bar.on_train_begin(args, state, TrainerControl())
    while state.global_step < to:
        state.global_step += 1
        state.total_steps += 1
        bar.on_step_end(args, state, TrainerControl())


def test_the_progress_bar_shows_each_phase_of_a_sequential_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = tiny_trial_config(auxiliaries=("synth_related",))
    bar = ProgressCallback()
    bar.on_step_end(args, TrainerState(), TrainerControl())  # before any phase: nothing to do
    state = TrainerState(phase="source", max_steps=6, global_step=2, total_steps=2)
    _phase(args, bar, state, to=5)  # resumed at step 2 of 6, stopped early at 5
    _phase(args, bar, TrainerState(phase="target", max_steps=4, total_steps=5), to=4)
    bar.on_train_end(args, state, TrainerControl())
    shown = re.findall(r"^(training .*?\)) .* (\d+/\d+) steps", capsys.readouterr().out, re.M)
    assert shown == [
        ("training synth_related+synth_target (source)", "5/6"),
        ("training synth_related+synth_target (target)", "4/4"),
    ]


def test_a_resumed_run_with_no_step_left_shows_a_full_bar(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args, bar = tiny_trial_config(), ProgressCallback()
    bar.on_train_begin(args, TrainerState(max_steps=8, global_step=8), TrainerControl())
    bar.on_train_end(args, TrainerState(), TrainerControl())
    assert "8/8 steps" in capsys.readouterr().out


def test_task_names_are_shown_as_they_are_in_the_progress_bar(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args, bar = tiny_trial_config(target="t{0}[b]x[/b]"), ProgressCallback()
    _phase(args, bar, TrainerState(max_steps=2), to=2)
    bar.on_train_end(args, TrainerState(), TrainerControl())
    assert "training t{0}[b]x[/b] (joint)" in capsys.readouterr().out
