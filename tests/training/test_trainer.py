"""The trainer end to end on the synthetic family with the tiny random BERT (CPU; CUDA too)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from taskgraph.tasks.synthetic import synthetic_family
from taskgraph.testing import SMALL_BERT, KillAtStep
from taskgraph.training import (
    TrainerCallback,
    TrainerControl,
    TrainerState,
    build_trainer,
    train_trial,
)
from taskgraph.trial import MixingConfig, TrialConfig, TrialStatus

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here"),
        ],
    ),
]

FAMILY = synthetic_family(target_train=8, aux_train=120, eval_size=60)
TASKS = FAMILY.tasks


def config(**overrides: Any) -> TrialConfig:
    values: dict[str, Any] = {
        "target": "synth_target",
        "encoder": "tiny-bert",
        "encoder_options": SMALL_BERT,
        "max_steps": 20,
        "batch_size": 8,
        "learning_rate": 1e-3,
        "eval_every": 10,
        "max_length": 32,
        # These tests count steps as they were written: every task's steps together (the
        # target step budget has its own tests in test_step_budget.py).
        "step_budget": "total",
    }
    values.update(overrides)
    return TrialConfig(**values)


def run(cfg: TrialConfig, **kwargs: Any):  # type: ignore[no-untyped-def]
    result = train_trial(cfg, tasks=TASKS, **kwargs)
    return result


def without_seconds(result) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    data = result.to_dict()
    data["cost"].pop("seconds")
    return data  # type: ignore[no-any-return]


@pytest.mark.parametrize("device", DEVICES)
def test_joint_trial_scores_every_task_with_cost(device: str) -> None:
    cfg = config(auxiliaries=("synth_related", "synth_cls_related"), eval_splits=("dev", "test"))
    result = run(cfg, device=device)
    assert result.status is TrialStatus.COMPLETE, result.failure_reason
    assert set(result.scores) == {"synth_target", "synth_related", "synth_cls_related"}
    for task, splits in result.scores.items():
        assert set(splits) == {"dev", "test"}, task
        assert 0.0 <= splits["dev"]["accuracy"] <= 1.0
    assert "macro_f1" in result.scores["synth_cls_related"]["dev"]
    assert result.objective == result.scores["synth_target"]["dev"]["accuracy"]
    assert [step for step, _ in result.intermediate] == [10, 20]
    assert result.cost.examples > 0 and result.cost.tokens > result.cost.examples
    assert result.cost.device.startswith(device)
    assert result.lookahead is None


def test_same_seed_gives_the_same_result_on_cpu() -> None:
    cfg = config(auxiliaries=("synth_related",), max_steps=12, eval_every=6)
    first, second = run(cfg, device="cpu"), run(cfg, device="cpu")
    assert without_seconds(first) == without_seconds(second)
    other = run(cfg.with_seed(1), device="cpu")
    assert without_seconds(other) != without_seconds(first)


@pytest.mark.parametrize("device", DEVICES)
def test_lookahead_matrix_orientation_and_no_effect_on_training(device: str) -> None:
    cfg = config(auxiliaries=("synth_related", "synth_conflict"), lookahead_every=5, max_steps=20)
    probed = run(cfg, device=device)
    assert probed.status is TrialStatus.COMPLETE, probed.failure_reason
    matrix = probed.lookahead
    assert matrix is not None
    assert matrix.tasks == list(cfg.task_set) and matrix.n_probes == 4
    assert len(matrix.values) == 3 and all(len(row) == 3 for row in matrix.values)
    assert all(math.isfinite(v) for row in matrix.values for v in row)
    # A step on a task lowers that task's own loss: the diagonal is positive.
    assert all(matrix.values[i][i] > 0 for i in range(3))
    if device == "cpu":
        plain = run(
            config(auxiliaries=("synth_related", "synth_conflict"), max_steps=20), device=device
        )
        assert plain.scores == probed.scores  # probes observe, they never change training


def test_lookahead_needs_two_tasks_and_a_joint_run() -> None:
    assert run(config(lookahead_every=5, max_steps=10)).lookahead is None
    sequential = run(
        config(
            auxiliaries=("synth_related",),
            lookahead_every=5,
            max_steps=10,
            transfer_mode="sequential",
        )
    )
    assert sequential.lookahead is None


def test_lookahead_steps_probe_exactly_the_listed_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    from taskgraph.training.trainer import MultiTaskTrainer

    probed: list[int] = []
    original = MultiTaskTrainer._probe

    def probe(self, drawn, batch, optimizer, scheduler):  # type: ignore[no-untyped-def]
        probed.append(self.state.global_step + 1)  # the step counter moves after the probe
        return original(self, drawn, batch, optimizer, scheduler)

    monkeypatch.setattr(MultiTaskTrainer, "_probe", probe)
    # Uneven gaps no `lookahead_every` gives; the last step too.
    listed = [3, 7, 8, 20]
    cfg = config(
        auxiliaries=("synth_related", "synth_conflict"),
        hyperparameters={"lookahead_steps": listed},
    )
    result = run(cfg)
    assert result.status is TrialStatus.COMPLETE, result.failure_reason
    assert probed == listed
    assert result.lookahead is not None and result.lookahead.n_probes == len(listed)
    assert result.lookahead.tasks == list(cfg.task_set)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"lookahead_every": 5, "hyperparameters": {"lookahead_steps": [5, 10]}},
            "hyperparameter `lookahead_steps` ([5, 10]) and trial `lookahead_every` (5) both "
            "set the probe steps; give one",
        ),
        *(
            (
                {"hyperparameters": {"lookahead_steps": steps}},
                "hyperparameter `lookahead_steps` must be increasing step numbers in [1, 20] "
                f"(max_steps), but got {steps!r}",
            )
            for steps in ([], [0, 4], [4, 4], [8, 4], [4, 21], [4.0], [True], 4)
        ),
        (
            # Under the target budget a joint run counts every task's steps, past max_steps.
            {"step_budget": "target", "hyperparameters": {"lookahead_steps": [0]}},
            "hyperparameter `lookahead_steps` must be increasing step numbers >= 1, but got [0]",
        ),
    ],
)
def test_bad_lookahead_steps_are_one_clear_line(overrides: dict[str, Any], message: str) -> None:
    from taskgraph.errors import ConfigError
    from taskgraph.training import TrainingOptions

    cfg = config(auxiliaries=("synth_related",), **overrides)
    with pytest.raises(ConfigError) as error:
        TrainingOptions.from_config(cfg)
    assert str(error.value) == message
    beyond = config(step_budget="target", hyperparameters={"lookahead_steps": [25]})
    assert TrainingOptions.from_config(beyond).lookahead_steps == (25,)


def test_sequential_transfer_scores_sources_then_target() -> None:
    cfg = config(
        auxiliaries=("synth_related",),
        transfer_mode="sequential",
        max_steps=10,
        eval_every=5,
        hyperparameters={"source_max_steps": 15},
    )
    trainer = build_trainer(cfg, tasks=TASKS, device="cpu")
    seen: list[tuple[str, int]] = []

    class Phases(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            seen.append((state.phase, state.global_step))

    trainer.handler.callbacks.append(Phases())
    outcome = trainer.train()
    assert outcome.status is TrialStatus.COMPLETE
    assert [s for p, s in seen if p == "source"] == list(range(1, 16))
    assert [s for p, s in seen if p == "target"] == list(range(1, 11))
    assert set(outcome.scores) == {"synth_target", "synth_related"}
    assert [step for step, _ in outcome.intermediate] == [5, 10]  # target phase only


@pytest.mark.parametrize(
    ("weighting", "scheme"),
    [("uncertainty", "temperature"), ("pcgrad", "annealed"), ("equal", "proportional")],
)
def test_weightings_and_sampling_schemes_train(weighting: str, scheme: str) -> None:
    cfg = config(
        auxiliaries=("synth_related",),
        loss_weighting=weighting,
        max_steps=10,
        mixing=MixingConfig(scheme=scheme, temperature=2.0),
    )
    result = run(cfg)
    assert result.status is TrialStatus.COMPLETE, result.failure_reason
    # PCGrad draws tasks_per_step batches (as many as tasks by default, drawn independently)
    # each step; the others one per step.
    per_step = 2 if weighting == "pcgrad" else 1
    assert result.cost.examples <= 10 * 8 * per_step
    assert result.cost.examples > 10 * 4 * per_step


class Recorder(TrainerCallback):
    """Records hook calls; prunes or stops at a given evaluation."""

    def __init__(self, *, prune_at: int | None = None, stop_at: int | None = None) -> None:
        self.events: list[str] = []
        self.prune_at, self.stop_at = prune_at, stop_at

    def on_train_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self.events.append("begin")

    def on_epoch_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self.events.append("epoch")

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):  # type: ignore[no-untyped-def]
        self.events.append(f"evaluate@{state.global_step}")
        assert isinstance(state, TrainerState) and kwargs["objective"] is not None
        assert metrics is not None and "synth_target" in metrics
        if state.global_step == self.prune_at:
            control.should_prune = True
        if state.global_step == self.stop_at:
            return TrainerControl(should_stop=True)
        return None

    def on_train_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self.events.append("end")


def test_callback_prune_stop_and_hook_order() -> None:
    recorder = Recorder()
    run(config(max_steps=20), callbacks=[recorder])
    assert recorder.events[0] == "begin" and recorder.events[-1] == "end"
    assert [e for e in recorder.events if e.startswith("evaluate")] == [
        "evaluate@10",
        "evaluate@20",
    ]
    assert "epoch" in recorder.events  # 8 target examples, batch 8: an epoch per step

    pruner = Recorder(prune_at=10)
    pruned = run(config(max_steps=30), callbacks=[pruner])
    assert pruned.status is TrialStatus.PRUNED
    assert pruned.intermediate == [(10, pruned.objective)]
    assert "synth_target" in pruned.scores

    stopper = Recorder(stop_at=10)
    stopped = run(config(max_steps=30), callbacks=[stopper])
    assert stopped.status is TrialStatus.COMPLETE
    assert [s for s, _ in stopped.intermediate] == [10]


def test_a_task_drawn_twice_in_a_step_is_averaged_and_only_target_draws_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from taskgraph.training.phase import Phase

    schedule = [
        ["synth_target", "synth_target"],
        ["synth_related"],
        ["synth_related", "synth_related"],
        ["synth_target", "synth_related"],
    ]
    monkeypatch.setattr(Phase, "draw", lambda self, step, count: list(schedule[step]))
    cfg = config(auxiliaries=("synth_related",), max_steps=len(schedule), eval_every=100)
    trainer = build_trainer(cfg, tasks=TASKS, device="cpu")
    calls: list[tuple[str, float]] = []  # the model's losses of the current step
    steps: list[tuple[list[tuple[str, float]], dict[str, float]]] = []
    forward = trainer.model.forward
    backward = trainer.weighting.backward

    def recording_forward(task, batch):  # type: ignore[no-untyped-def]
        output = forward(task, batch)
        if trainer.model.training:
            assert output.loss is not None
            calls.append((task, float(output.loss.detach())))
        return output

    def recording_backward(losses, **kwargs):  # type: ignore[no-untyped-def]
        steps.append((list(calls), {t: float(loss.detach()) for t, loss in losses.items()}))
        calls.clear()
        return backward(losses, **kwargs)

    monkeypatch.setattr(trainer.model, "forward", recording_forward)
    monkeypatch.setattr(trainer.weighting, "backward", recording_backward)
    outcome = trainer.train()
    assert outcome.status is TrialStatus.COMPLETE
    assert [[task for task, _ in seen] for seen, _ in steps] == schedule
    for seen, losses in steps:
        assert set(losses) == {task for task, _ in seen}
        for task, loss in losses.items():
            own = [value for name, value in seen if name == task]
            # the mean of the task's batches, not their sum: a task drawn twice weighs the same
            assert loss == pytest.approx(sum(own) / len(own), rel=1e-5)
    assert steps[0][0][0][1] != steps[0][0][1][1]  # two different batches of the target
    # steps 1 and 4 drew the target; steps 2 and 3 trained the auxiliary alone
    assert outcome.total_steps == 4
    assert outcome.target_steps == 2


def test_early_stopping_on_the_objective() -> None:
    # With lr = 0 nothing improves after the first evaluation: patience 2 stops at step 15.
    result = run(config(learning_rate=1e-12, max_steps=50, eval_every=5, early_stopping_patience=2))
    assert result.status is TrialStatus.COMPLETE
    assert [s for s, _ in result.intermediate] == [5, 10, 15]


class Poison(TrainerCallback):
    def on_step_end(self, args, state, control, model=None, **kwargs):  # type: ignore[no-untyped-def]
        if state.global_step == 3:
            with torch.no_grad():
                for parameter in model.parameters():
                    parameter.fill_(float("nan"))


class Boom(TrainerCallback):
    def __init__(self, error: BaseException) -> None:
        self.error = error

    def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if state.global_step == 2:
            raise self.error


def test_failures_become_failed_results_naming_the_kind() -> None:
    nan = run(config(max_steps=8), callbacks=[Poison()])
    assert nan.status is TrialStatus.FAILED and nan.failure_reason.startswith("NaN loss")
    assert nan.cost.examples > 0
    cuda_oom = run(config(max_steps=8), callbacks=[Boom(torch.OutOfMemoryError("CUDA oom"))])
    assert cuda_oom.failure_reason.startswith("out of memory (CUDA)")
    cpu_oom = run(config(max_steps=8), callbacks=[Boom(MemoryError("no memory"))])
    assert cpu_oom.failure_reason.startswith("out of memory (CPU)")
    crash = run(config(max_steps=8), callbacks=[Boom(RuntimeError("kaboom"))])
    assert crash.failure_reason == "exception: RuntimeError: kaboom"

    class PanicException(BaseException):  # what pyo3 raises for a Rust panic (tokenizers)
        pass

    panic = run(config(max_steps=8), callbacks=[Boom(PanicException("stride too large"))])
    assert panic.failure_reason == "exception: PanicException: stride too large"
    for bad, message in [
        (config(target="no_such_task"), "unknown task 'no_such_task'"),
        (config(sharing="nope"), "nope"),
        (config(loss_weighting="nope"), "unknown loss weighting 'nope'"),
        (config(hyperparameters={"warmpu_ratio": 0.1}), "unknown hyperparameter(s) warmpu_ratio"),
        (config(mixing=MixingConfig(scheme="bogus")), "unknown sampling scheme 'bogus'"),  # type: ignore[arg-type]
        # patience 0 stopped after the first evaluation however good it was
        (config(early_stopping_patience=0), "`early_stopping_patience` is out of range: 0"),
    ]:
        result = run(bad)
        assert result.status is TrialStatus.FAILED
        assert result.failure_reason.startswith("invalid configuration:"), result.failure_reason
        assert message in result.failure_reason
    with pytest.raises(KeyboardInterrupt):
        run(config(max_steps=8), callbacks=[Boom(KeyboardInterrupt())])
    with pytest.raises(SystemExit):
        run(config(max_steps=8), callbacks=[Boom(SystemExit(3))])


def test_killed_run_resumes_where_it_stopped(tmp_path: Path) -> None:
    cfg = config(
        auxiliaries=("synth_related",),
        loss_weighting="uncertainty",
        max_steps=24,
        eval_every=8,
        lookahead_every=4,
    )
    uninterrupted = run(cfg, checkpoint_dir=tmp_path / "a")

    # Killed after the checkpoint at step 8, before the one at 16.
    with pytest.raises(KeyboardInterrupt):
        run(cfg, checkpoint_dir=tmp_path / "b", callbacks=[KillAtStep(13)])
    steps: list[int] = []

    class Steps(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            steps.append(state.global_step)

    resumed = run(cfg, checkpoint_dir=tmp_path / "b", callbacks=[Steps()])
    assert steps == list(range(9, 25))
    assert resumed.scores == uninterrupted.scores
    assert resumed.intermediate == uninterrupted.intermediate
    assert resumed.lookahead == uninterrupted.lookahead
    assert resumed.cost.examples == uninterrupted.cost.examples
    # Another trial may not reuse the directory.
    other = run(cfg.with_seed(7), checkpoint_dir=tmp_path / "b")
    assert other.status is TrialStatus.FAILED and "belongs to another trial" in other.failure_reason


def test_a_killed_run_resumes_its_listed_probe_steps(tmp_path: Path) -> None:
    cfg = config(
        auxiliaries=("synth_related",),
        max_steps=24,
        eval_every=8,
        hyperparameters={"lookahead_steps": [2, 5, 11, 13, 14, 23]},
    )
    uninterrupted = run(cfg, checkpoint_dir=tmp_path / "a")
    assert uninterrupted.lookahead is not None and uninterrupted.lookahead.n_probes == 6

    # Killed after the checkpoint at step 8 (its probes at 2 and 5).
    with pytest.raises(KeyboardInterrupt):
        run(cfg, checkpoint_dir=tmp_path / "b", callbacks=[KillAtStep(13)])
    resumed = run(cfg, checkpoint_dir=tmp_path / "b")
    # The checkpoint's two probes and the four listed after it, as in one run.
    assert resumed.lookahead == uninterrupted.lookahead
    assert resumed.scores == uninterrupted.scores


def test_run_killed_after_it_stopped_early_does_not_train_on(tmp_path: Path) -> None:
    cfg = config(learning_rate=1e-12, max_steps=50, eval_every=5, early_stopping_patience=2)
    uninterrupted = run(cfg, checkpoint_dir=tmp_path / "a")
    assert [s for s, _ in uninterrupted.intermediate] == [5, 10, 15]

    class KillAtTheEnd(TrainerCallback):
        def on_train_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            raise KeyboardInterrupt  # after the checkpoint of step 15, before the result

    with pytest.raises(KeyboardInterrupt):
        run(cfg, checkpoint_dir=tmp_path / "b", callbacks=[KillAtTheEnd()])
    steps: list[int] = []

    class Steps(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            steps.append(state.global_step)

    resumed = run(cfg, checkpoint_dir=tmp_path / "b", callbacks=[Steps()])
    assert steps == []
    assert resumed.intermediate == uninterrupted.intermediate
    assert resumed.scores == uninterrupted.scores


def test_max_examples_caps_each_tasks_training_data() -> None:
    cfg = config(
        auxiliaries=("synth_related",),
        mixing=MixingConfig(max_examples={"synth_related": 16}),
        hyperparameters={"max_eval_examples": 10},
    )
    trainer = build_trainer(cfg, tasks=TASKS, device="cpu")
    assert len(trainer.data["synth_related"].train or ()) == 16
    assert len(trainer.data["synth_target"].train or ()) == 8
    assert len(trainer.data["synth_target"].evals["dev"].examples) == 10
    again = build_trainer(cfg.with_seed(3), tasks=TASKS, device="cpu")
    first = trainer.data["synth_related"].train
    second = again.data["synth_related"].train
    assert first is not None and second is not None
    assert torch.equal(first.tensors["input_ids"], second.tensors["input_ids"])


def test_sequential_run_killed_in_the_source_phase_resumes(tmp_path: Path) -> None:
    cfg = config(
        auxiliaries=("synth_related",),
        transfer_mode="sequential",
        max_steps=8,
        eval_every=4,
        hyperparameters={"source_max_steps": 12},
    )
    uninterrupted = run(cfg, checkpoint_dir=tmp_path / "a")

    with pytest.raises(KeyboardInterrupt):
        run(cfg, checkpoint_dir=tmp_path / "b", callbacks=[KillAtStep(10, phase="source")])
    resumed = run(cfg, checkpoint_dir=tmp_path / "b")
    assert resumed.scores == uninterrupted.scores
    assert resumed.intermediate == uninterrupted.intermediate


def test_best_weights_are_not_evaluated_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """The final scores reuse the objective split's metrics measured at the best evaluation
    (same weights), and still evaluate the other splits; the objective equals the best one."""
    from taskgraph.training.trainer import MultiTaskTrainer

    calls: list[tuple[str, str]] = []
    original = MultiTaskTrainer._evaluate

    def counting(self: MultiTaskTrainer, task: str, split: str) -> Any:
        calls.append((task, split))
        return original(self, task, split)

    monkeypatch.setattr(MultiTaskTrainer, "_evaluate", counting)
    cfg = config(max_steps=20, eval_every=5, eval_splits=("dev", "test"))
    result = run(cfg)
    assert result.status is TrialStatus.COMPLETE
    evaluations = len(result.intermediate)  # the objective's evaluations during training
    assert calls.count(("synth_target", "dev")) == evaluations == 4
    assert calls.count(("synth_target", "test")) == 1  # the final evaluation, best weights
    best = max(v for _, v in result.intermediate)
    assert result.objective == best
    # The reused metrics are what evaluating the best weights again gives (same seed, the
    # reuse switched off).
    monkeypatch.setattr(MultiTaskTrainer, "_evaluate", original)
    evaluate_all = MultiTaskTrainer._evaluate_all

    def without_reuse(self: MultiTaskTrainer, tasks: Any, *, known: Any = None) -> Any:
        return evaluate_all(self, tasks)

    monkeypatch.setattr(MultiTaskTrainer, "_evaluate_all", without_reuse)
    again = run(cfg)
    assert again.scores == result.scores and again.objective == result.objective


def test_a_malformed_data_file_fails_the_trial_as_a_data_error(tmp_path: Path) -> None:
    from taskgraph.tasks import define_task

    for split in ("train", "dev", "test"):
        (tmp_path / f"{split}.iob").write_text("The\tO\ncat\tB-X\n\nA dog\n")  # line 4: no tab
    bad = define_task(
        "my_ner", format="iob", type="token_tagging", label_field="ner", path=str(tmp_path),
        metrics=["f1"],
    )  # fmt: skip
    result = train_trial(config(auxiliaries=("my_ner",)), tasks={**TASKS, "my_ner": bad})
    assert result.status is TrialStatus.FAILED
    reason = result.failure_reason or ""
    assert reason.startswith("data error: ") and ".iob:4: expected 2 columns" in reason


def test_the_soft_sharing_penalty_is_not_scaled_by_a_tasks_loss_weight() -> None:
    """Uncertainty weighting weighs the tasks' losses only: the penalty between the task copies
    (lambda) leaves the learned log-variances' gradients as they are."""

    def log_var_gradients(strength: float) -> list[torch.Tensor]:
        cfg = config(
            auxiliaries=("synth_related",),
            sharing="soft",
            sharing_params={"lambda": strength, "top_k_layers": 1},
            loss_weighting="uncertainty",
            max_steps=4,
            eval_every=4,
        )
        trainer = build_trainer(cfg, tasks=TASKS, device="cpu")
        seen: list[torch.Tensor] = []
        for param in trainer.weighting.parameters():
            param.register_hook(lambda grad: seen.append(grad.detach().clone()))
        trainer.train()
        return seen

    free, tied = log_var_gradients(0.0), log_var_gradients(100.0)
    assert len(free) == len(tied) == 4
    # The copies start equal, so the penalty and its gradient are 0 at step 1 and both runs
    # reach step 2 with the same weights: the same task losses, whatever lambda.  At step 2
    # the penalty is large (100 x the copies' drift) but must not reach the log-variances.
    assert torch.equal(free[0], tied[0])
    assert torch.equal(free[1], tied[1])
    assert not torch.equal(free[2], tied[2])  # from step 3 on the penalty has moved the weights


@pytest.mark.parametrize("dropout", [0.1, 0.0])
def test_probes_skip_the_zero_learning_rate_and_reuse_only_a_dropout_free_gradient(
    monkeypatch: pytest.MonkeyPatch, dropout: float
) -> None:
    from taskgraph.training.lookahead import LookaheadAffinity

    calls: list[tuple[float, bool]] = []
    original = LookaheadAffinity.probe

    def probe(self, *, optimizer, lr, reuse=None):  # type: ignore[no-untyped-def]
        calls.append((lr, reuse is not None))
        return original(self, optimizer=optimizer, lr=lr, reuse=reuse)

    monkeypatch.setattr(LookaheadAffinity, "probe", probe)
    options = {
        **SMALL_BERT,
        "hidden_dropout_prob": dropout,
        "attention_probs_dropout_prob": dropout,
    }
    cfg = config(
        auxiliaries=("synth_related",),
        encoder_options=options,
        max_steps=10,
        lookahead_every=1,
        hyperparameters={
            "tasks_per_step": 1,
            "head_options": {t: {"dropout": dropout} for t in ("synth_target", "synth_related")},
        },
    )
    result = run(cfg)
    assert result.status is TrialStatus.COMPLETE, result.failure_reason
    # step 1 of the warmup has lr 0: no probe there, one at every later step
    assert len(calls) == 9 and all(lr > 0 for lr, _ in calls)
    assert result.lookahead is not None and result.lookahead.n_probes == 9
    # with dropout the training step's gradient is not the probe's eval-mode one: never reused
    assert any(reused for _, reused in calls) is (dropout == 0.0)


def _storage_bytes(state: dict[str, torch.Tensor]) -> int:
    storages = (tensor.untyped_storage() for tensor in state.values())
    return sum({storage.data_ptr(): storage.nbytes() for storage in storages}.values())


def test_best_weights_copy_tied_tensors_once(tmp_path: Path) -> None:
    # Label embedding: the shared label space is also held by every tagging or classification
    # head, so its tensors appear under several state-dict keys.
    cfg = config(
        auxiliaries=("synth_related",), sharing="label_embedding", max_steps=4, eval_every=2
    )
    trainer = build_trainer(cfg, tasks=TASKS, device="cpu", checkpoint_dir=tmp_path)
    assert trainer.train().status is TrialStatus.COMPLETE
    saved = torch.load(tmp_path / "best.pt", map_location="cpu", weights_only=True)
    model_state = trainer.model.state_dict()
    tied = [key for key in model_state if key.endswith("space.labels")]
    assert len(tied) == 3
    assert trainer.best_weights is not None
    for best in (trainer.best_weights, saved):
        assert best.keys() == model_state.keys()
        assert len({best[key].untyped_storage().data_ptr() for key in tied}) == 1
        assert _storage_bytes(best) == _storage_bytes(model_state)  # each storage once
    # Loaded back, the copies give the model the weights it had (the best ones, restored).
    fresh = build_trainer(cfg, tasks=TASKS, device="cpu").model
    fresh.load_state_dict(saved)
    for key, tensor in fresh.state_dict().items():
        assert torch.equal(tensor, model_state[key]), key


def test_the_objective_is_reported_when_its_split_is_not_in_eval_splits() -> None:
    # train_trial(eval_splits=("test",)) selects its best weights on dev: its objective is that
    # dev score, not None beside a COMPLETE status.
    result = run(config(eval_splits=("test",), max_steps=10, eval_every=5))
    assert result.status is TrialStatus.COMPLETE, result.failure_reason
    dev = result.scores["synth_target"]["dev"]["accuracy"]
    assert result.objective == dev == max(value for _, value in result.intermediate)
    assert "test" in result.scores["synth_target"]


def test_a_checkpoint_saved_on_other_data_is_not_resumed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trial killed, its data edited, then run again trains from the start: resuming the
    checkpoint would carry weights fitted on the old data into a run recorded on the new."""
    import taskgraph.training.run as run_module

    cfg = config(auxiliaries=("synth_related",), max_steps=24, eval_every=8)
    version = {"name": "v1"}
    monkeypatch.setattr(
        run_module,
        "task_set_fingerprints",
        lambda task_set, **kwargs: {task: version["name"] for task in task_set},
    )
    uninterrupted = run(cfg, checkpoint_dir=tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        run(cfg, checkpoint_dir=tmp_path / "b", callbacks=[KillAtStep(13)])
    version["name"] = "v2"  # the files changed before the retry
    steps: list[int] = []

    class Steps(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            steps.append(state.global_step)

    again = run(cfg, checkpoint_dir=tmp_path / "b", callbacks=[Steps()])
    assert steps == list(range(1, 25))
    assert again.scores == uninterrupted.scores
    assert again.data_fingerprints == {task: "v2" for task in cfg.task_set}
