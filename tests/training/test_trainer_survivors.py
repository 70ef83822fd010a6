"""What the trainer's earlier tests let through (a mutation audit of ``trainer.py`` and
``task_data.py``): the evaluation schedule (target epochs, the last step, a callback's request),
early stopping counted from the last improvement, a minimised objective, the final scores taken
with the best evaluation's weights (also after a resume), a stop in the source phase, a run
killed in the target phase or pruned right after resuming, the resumed cost, the NaN checks
before a pruner or a stop, ``checkpoint_every``, and the feature cache's key (the cap).

Evaluations are scripted where the test is about which evaluation wins: the target's dev score
is looked up by the weights it is measured on (the first weights seen get the first scripted
value, ...), and every evaluation reports a fingerprint of those weights, so a final score says
which weights it was measured with.  Tiny random BERT on the synthetic family: about a second
a test.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import torch

from taskgraph.errors import ConfigError
from taskgraph.tasks.synthetic import synthetic_family
from taskgraph.testing import KillAtStep, tiny_trial_config
from taskgraph.training import (
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingOptions,
    build_trainer,
    train_trial,
)
from taskgraph.training.task_data import build_task_data, deterministic_subset
from taskgraph.training.trainer import MultiTaskTrainer
from taskgraph.trial import (
    DataSelectionConfig,
    MixingConfig,
    Objective,
    TrialConfig,
    TrialResult,
    TrialStatus,
)

FAMILY = synthetic_family(target_train=8, aux_train=24, eval_size=20)
TASKS = FAMILY.tasks
TARGET = "synth_target"


def run(cfg: TrialConfig, **kwargs: Any) -> TrialResult:
    return train_trial(cfg, tasks=TASKS, device="cpu", **kwargs)


class Evaluations(TrainerCallback):
    """Records (phase, step, target step) of every evaluation and the steps of every save."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int, int]] = []
        self.saves: list[int] = []

    def on_evaluate(
        self,
        args: TrialConfig,
        state: TrainerState,
        control: TrainerControl,
        metrics: Any = None,
        **kwargs: Any,
    ) -> None:
        self.seen.append((state.phase, state.global_step, state.target_step))

    def on_save(
        self, args: TrialConfig, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.saves.append(state.global_step)


class Steps(TrainerCallback):
    """Records (phase, step) of every training step."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def on_step_end(
        self, args: TrialConfig, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.seen.append((state.phase, state.global_step))


class AtStep(TrainerCallback):
    """Sets one control flag at the end of step ``step`` of ``phase``."""

    def __init__(self, flag: str, step: int, phase: str | None = None) -> None:
        self.flag, self.step, self.phase = flag, step, phase

    def on_step_end(
        self, args: TrialConfig, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if state.global_step == self.step and self.phase in (None, state.phase):
            setattr(control, self.flag, True)


def fingerprint(model: torch.nn.Module) -> float:
    """Return a number that tells the model's weights apart (their sum, in float64)."""
    return float(sum(p.detach().double().sum() for p in model.parameters()))


class ScriptedScores:
    """Stands in for ``MultiTaskTrainer._evaluate``: the target's dev ``metric`` is the next of
    ``values`` for weights not seen before and the same value again for weights seen before;
    every split reports ``weights``, the fingerprint of the weights it was measured with."""

    def __init__(self, values: Sequence[float], metric: str = "accuracy") -> None:
        self.values, self.metric = list(values), metric
        self.by_weights: dict[float, float] = {}

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def evaluate(trainer: MultiTaskTrainer, task: str, split: str) -> dict[str, float]:
            weights = fingerprint(trainer.model)
            if (task, split) != (TARGET, "dev"):
                return {"weights": weights}
            if weights not in self.by_weights:
                self.by_weights[weights] = self.values[len(self.by_weights)]
            return {self.metric: self.by_weights[weights], "weights": weights}

        monkeypatch.setattr(MultiTaskTrainer, "_evaluate", evaluate)

    def weights_scored(self, value: float) -> float:
        """Return the fingerprint of the weights whose dev score was ``value``."""
        (weights,) = [w for w, v in self.by_weights.items() if v == value]
        return weights


# ----------------------------------------------------------------- the evaluation schedule
def test_target_epochs_of_two_steps_end_and_evaluate_on_the_target_clock() -> None:
    # Batches of 4: the target's 8 sentences are 2 target steps an epoch, and the auxiliary's
    # steps come between them.  Epochs end (and, without eval_every, evaluations happen) every
    # 2 target steps, never on the total step count and never on each step.
    epochs: list[tuple[int, float]] = []

    class Epochs(TrainerCallback):
        def on_epoch_end(
            self, args: TrialConfig, state: TrainerState, control: TrainerControl, **kwargs: Any
        ) -> None:
            epochs.append((state.target_step, state.epoch))

    evaluations = Evaluations()
    cfg = tiny_trial_config(
        auxiliaries=("synth_related",), batch_size=4, max_steps=None, epochs=2, eval_every=None
    )
    result = run(cfg, callbacks=[evaluations, Epochs()])
    assert result.status is TrialStatus.COMPLETE, result.failure_reason
    assert result.cost.target_steps == 4 and result.cost.total_steps > 4
    assert epochs == [(2, 1.0), (4, 2.0)]
    assert [t for _, _, t in evaluations.seen] == [2, 4]


def test_the_last_step_is_evaluated_when_eval_every_does_not_divide_the_budget() -> None:
    result = run(tiny_trial_config(max_steps=5, eval_every=2))
    assert [step for step, _ in result.intermediate] == [2, 4, 5]


def test_a_callback_asks_for_one_evaluation() -> None:
    result = run(tiny_trial_config(), callbacks=[AtStep("should_evaluate", 3)])
    assert [step for step, _ in result.intermediate] == [3, 4, 8]


def test_a_prune_at_a_step_end_ends_training_without_evaluating() -> None:
    evaluations = Evaluations()
    result = run(
        tiny_trial_config(eval_every=2), callbacks=[AtStep("should_prune", 4), evaluations]
    )
    assert result.status is TrialStatus.PRUNED
    assert result.cost.total_steps == 4  # not trained on to step 8
    assert [step for step, _ in result.intermediate] == [2]
    assert [s for _, s, _ in evaluations.seen] == [2]


def test_checkpoint_every_saves_on_its_steps(tmp_path: Path) -> None:
    evaluations = Evaluations()
    cfg = tiny_trial_config(max_steps=7, eval_every=100, hyperparameters={"checkpoint_every": 3})
    result = run(cfg, checkpoint_dir=tmp_path, callbacks=[evaluations])
    assert result.status is TrialStatus.COMPLETE, result.failure_reason
    assert evaluations.saves == [3, 6, 7]  # and after the evaluation that ends the run


# ----------------------------------------------------------------- NaN
class Poison(TrainerCallback):
    """Fills every weight with NaN at the end of step ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(
        self,
        args: TrialConfig,
        state: TrainerState,
        control: TrainerControl,
        model: torch.nn.Module | None = None,
        **kwargs: Any,
    ) -> None:
        if state.global_step == self.step and model is not None:
            with torch.no_grad():
                for parameter in model.parameters():
                    parameter.fill_(float("nan"))


def test_a_nan_model_is_never_evaluated_for_the_pruner() -> None:
    reported: list[float] = []

    class PruneAlways(TrainerCallback):
        def on_evaluate(
            self,
            args: TrialConfig,
            state: TrainerState,
            control: TrainerControl,
            metrics: Any = None,
            **kwargs: Any,
        ) -> None:
            reported.append(kwargs["objective"])
            control.should_prune = True

    result = run(
        tiny_trial_config(max_steps=10, eval_every=5), callbacks=[Poison(3), PruneAlways()]
    )
    assert result.status is TrialStatus.FAILED
    assert (result.failure_reason or "").startswith("NaN loss")
    assert reported == []


def test_a_nan_loss_before_a_callbacks_stop_fails_the_trial() -> None:
    # The loss of step 3 is NaN; the stop at its end comes before any log or evaluation.
    result = run(
        tiny_trial_config(max_steps=10, eval_every=5),
        callbacks=[Poison(2), AtStep("should_stop", 3)],
    )
    assert result.status is TrialStatus.FAILED
    assert (result.failure_reason or "").startswith("NaN loss")


# ----------------------------------------------------------------- best scores, patience
def test_a_minimised_objective_keeps_its_lowest_evaluation(monkeypatch: pytest.MonkeyPatch) -> None:
    scores = ScriptedScores([0.9, 0.3, 0.6], metric="loss")
    scores.install(monkeypatch)
    # A target scored by a lower-is-better metric (train_trial refuses a metric the target
    # does not have, or the other direction).
    tasks = {**TASKS, TARGET: dataclasses.replace(TASKS[TARGET], metrics=("loss",))}
    objective = Objective(metric="loss", direction="minimize")
    cfg = tiny_trial_config(max_steps=6, eval_every=2, objective=objective)
    result = train_trial(cfg, tasks=tasks, device="cpu")
    assert result.status is TrialStatus.COMPLETE, result.failure_reason
    assert [value for _, value in result.intermediate] == [0.9, 0.3, 0.6]
    assert result.objective == 0.3
    assert result.scores[TARGET]["dev"]["weights"] == scores.weights_scored(0.3)


def test_patience_counts_the_evaluations_since_the_last_improvement(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ScriptedScores([0.5, 0.4, 0.6, 0.5, 0.4, 0.3]).install(monkeypatch)
    result = run(tiny_trial_config(max_steps=6, eval_every=1, early_stopping_patience=2))
    # 0.6 at step 3 improved: the two evaluations after it stop the run, not the one before.
    assert [step for step, _ in result.intermediate] == [1, 2, 3, 4, 5]
    assert result.objective == 0.6


def test_the_final_scores_are_measured_with_the_best_evaluations_weights(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scores = ScriptedScores([0.2, 0.9, 0.4])
    scores.install(monkeypatch)
    result = run(tiny_trial_config(max_steps=6, eval_every=2, eval_splits=("dev", "test")))
    assert result.status is TrialStatus.COMPLETE, result.failure_reason
    assert result.objective == 0.9
    best, last = scores.weights_scored(0.9), scores.weights_scored(0.4)
    assert best != last
    assert result.scores[TARGET]["dev"]["weights"] == best
    assert result.scores[TARGET]["test"]["weights"] == best  # measured after training, on best


def test_a_resumed_run_scores_the_best_weights_saved_before_it_was_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The best evaluation is the first, before the kill; the resumed run never improves on it.
    scores = ScriptedScores([0.9, 0.2, 0.4])
    scores.install(monkeypatch)
    cfg = tiny_trial_config(max_steps=6, eval_every=2, eval_splits=("dev", "test"))
    whole = run(cfg, checkpoint_dir=tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        run(cfg, checkpoint_dir=tmp_path / "b", callbacks=[KillAtStep(3)])
    resumed = run(cfg, checkpoint_dir=tmp_path / "b")
    assert resumed.status is TrialStatus.COMPLETE, resumed.failure_reason
    assert resumed.intermediate == whole.intermediate
    assert resumed.objective == whole.objective == 0.9
    assert resumed.scores[TARGET]["test"]["weights"] == scores.weights_scored(0.9)
    assert resumed.scores == whole.scores


# ----------------------------------------------------------------- sequential transfer
def test_a_stop_in_the_source_phase_ends_that_phase_only() -> None:
    steps = Steps()
    cfg = tiny_trial_config(
        auxiliaries=("synth_related",),
        transfer_mode="sequential",
        hyperparameters={"source_max_steps": 6},
    )
    result = run(cfg, callbacks=[AtStep("should_stop", 2, phase="source"), steps])
    assert result.status is TrialStatus.COMPLETE, result.failure_reason
    assert [s for p, s in steps.seen if p == "source"] == [1, 2]
    assert [s for p, s in steps.seen if p == "target"] == list(range(1, 9))
    assert (result.cost.target_steps, result.cost.total_steps) == (8, 10)


def test_the_target_phase_counts_its_epochs_from_zero() -> None:
    # The source phase ends at epoch 1.0 (3 steps of its 24 sentences in batches of 8); the
    # target phase's first epoch still ends, and is evaluated, at its first step.
    evaluations = Evaluations()
    cfg = tiny_trial_config(
        auxiliaries=("synth_related",),
        transfer_mode="sequential",
        max_steps=None,
        epochs=3,
        eval_every=None,
        hyperparameters={"source_max_steps": 3},
    )
    result = run(cfg, callbacks=[evaluations])
    assert result.status is TrialStatus.COMPLETE, result.failure_reason
    assert evaluations.seen == [("target", 1, 1), ("target", 2, 2), ("target", 3, 3)]


def test_a_run_killed_in_the_target_phase_resumes_there(tmp_path: Path) -> None:
    cfg = tiny_trial_config(
        auxiliaries=("synth_related",),
        transfer_mode="sequential",
        hyperparameters={"source_max_steps": 4},
    )
    whole = run(cfg, checkpoint_dir=tmp_path / "a")
    # Killed after the checkpoint of target step 4, before the one of step 8.
    with pytest.raises(KeyboardInterrupt):
        run(cfg, checkpoint_dir=tmp_path / "b", callbacks=[KillAtStep(6, phase="target")])
    steps = Steps()
    resumed = run(cfg, checkpoint_dir=tmp_path / "b", callbacks=[steps])
    assert resumed.status is TrialStatus.COMPLETE, resumed.failure_reason
    assert steps.seen == [("target", s) for s in range(5, 9)]
    assert set(resumed.scores) == {TARGET, "synth_related"}  # the source's, from before
    assert resumed.scores == whole.scores
    assert resumed.intermediate == whole.intermediate
    assert resumed.cost.examples == whole.cost.examples


# ----------------------------------------------------------------- resuming
def test_a_resumed_run_adds_the_killed_tries_seconds(tmp_path: Path) -> None:
    cfg = tiny_trial_config(max_steps=8, eval_every=4)
    with pytest.raises(KeyboardInterrupt):
        run(cfg, checkpoint_dir=tmp_path, callbacks=[KillAtStep(6)])
    path = tmp_path / "checkpoint.pt"
    payload = torch.load(path, map_location="cpu", weights_only=False)
    payload["seconds"] = 1000.0  # as if the first try had trained for 1000 s
    torch.save(payload, path)
    resumed = run(cfg, checkpoint_dir=tmp_path)
    assert resumed.status is TrialStatus.COMPLETE, resumed.failure_reason
    assert 1000.0 < resumed.cost.seconds < 1100.0


def test_a_resumed_run_pruned_before_it_evaluates_keeps_its_last_scores(tmp_path: Path) -> None:
    cfg = tiny_trial_config(max_steps=12, eval_every=4)
    with pytest.raises(KeyboardInterrupt):
        run(cfg, checkpoint_dir=tmp_path, callbacks=[KillAtStep(6)])
    pruned = run(cfg, checkpoint_dir=tmp_path, callbacks=[AtStep("should_prune", 5)])
    assert pruned.status is TrialStatus.PRUNED
    ((step, value),) = pruned.intermediate
    assert step == 4
    assert pruned.objective == value == pruned.scores[TARGET]["dev"]["accuracy"]


def test_a_resumed_run_logs_the_losses_of_the_uninterrupted_one(tmp_path: Path) -> None:
    # Logs every 3 steps, checkpoints every 4: the checkpoint of step 4 holds step 4's loss,
    # which the log of step 6 averages with steps 5 and 6.
    cfg = tiny_trial_config(max_steps=8, eval_every=4, hyperparameters={"log_every": 3})

    def losses(directory: Path, callbacks: Sequence[TrainerCallback] = ()) -> list[float]:
        trainer = build_trainer(
            cfg, tasks=TASKS, device="cpu", checkpoint_dir=directory, callbacks=callbacks
        )
        return [entry["loss"] for entry in trainer.train().state.log_history]

    whole = losses(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        losses(tmp_path / "b", [KillAtStep(5)])
    assert len(whole) == 2
    assert losses(tmp_path / "b") == whole


def test_a_resumed_pcgrad_run_equals_the_uninterrupted_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Three tasks: the order PCGrad projects the others' gradients in is drawn, so its random
    # state must come back with the checkpoint.  The weights themselves are compared (each
    # evaluation better than the last: the final scores are the last weights').
    scores = ScriptedScores([i / 10 for i in range(1, 10)])
    scores.install(monkeypatch)
    cfg = tiny_trial_config(
        auxiliaries=("synth_related", "synth_conflict"),
        loss_weighting="pcgrad",
        mixing=MixingConfig(scheme="uniform"),
        max_steps=8,
        eval_every=2,
        step_budget="total",
        # Six draws of three tasks: most steps hold all three, whose projection order counts.
        hyperparameters={"tasks_per_step": 6},
    )
    whole = run(cfg, checkpoint_dir=tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        run(cfg, checkpoint_dir=tmp_path / "b", callbacks=[KillAtStep(3)])
    resumed = run(cfg, checkpoint_dir=tmp_path / "b")
    assert resumed.intermediate == whole.intermediate
    assert resumed.scores == whole.scores


# ----------------------------------------------------------------- task data
def test_deterministic_subsets_are_sorted_keyed_and_refuse_a_cap_below_one() -> None:
    first = deterministic_subset(100, 10, key="a")
    assert list(first) == sorted(first) and len(set(first.tolist())) == 10
    assert list(deterministic_subset(100, 10, key="a")) == list(first)
    assert list(deterministic_subset(100, 10, key="b")) != list(first)
    assert list(deterministic_subset(5, 5, key="a")) == [0, 1, 2, 3, 4]
    with pytest.raises(ConfigError, match=r"`max_examples` for 'a' must be >= 1, but got 0"):
        deterministic_subset(5, 0, key="a")


def _task_data(cfg: TrialConfig, tasks: dict[str, Any]) -> dict[str, Any]:
    from taskgraph.models import load_encoder

    tokenizer = load_encoder("tiny-bert").tokenizer
    options = TrainingOptions.from_config(cfg)
    return build_task_data(cfg, tasks, tokenizer, data_dir=None, options=options)


def test_the_feature_cache_keeps_capped_and_whole_training_splits_apart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TASKGRAPH_FEATURE_CACHE", "memory")
    family = synthetic_family(seed=17, target_train=8, aux_train=24, eval_size=12)
    tasks = {name: family.tasks[name] for name in (TARGET, "synth_related")}
    capped = tiny_trial_config(
        auxiliaries=("synth_related",),
        mixing=MixingConfig(max_examples={"synth_related": 10}),
    )
    first = _task_data(capped, tasks)
    second = _task_data(tiny_trial_config(auxiliaries=("synth_related",)), tasks)
    assert len(first["synth_related"].train) == 10
    assert len(second["synth_related"].train) == 24


def test_a_selection_trains_on_the_kept_examples_only() -> None:
    selection = DataSelectionConfig(features=("ttr",), weights={"ttr": 1.0}, keep=0.25)
    trainer = build_trainer(
        tiny_trial_config(auxiliaries=("synth_related",), data_selection=selection),
        tasks=TASKS,
        device="cpu",
    )
    data = trainer.data["synth_related"]
    assert data.selection is not None and data.selection["kept"] == 6  # a quarter of 24
    assert data.train is not None and data.train_pool is not None
    assert (len(data.train), len(data.train_pool)) == (6, 24)


def test_a_target_without_the_objective_split_is_refused_before_training() -> None:
    task = TASKS[TARGET]
    no_dev = dataclasses.replace(task, splits={k: v for k, v in task.splits.items() if k != "dev"})
    with pytest.raises(ConfigError, match=r"target task 'synth_target' has no 'dev' split"):
        _task_data(tiny_trial_config(eval_splits=("test",)), {TARGET: no_dev})
