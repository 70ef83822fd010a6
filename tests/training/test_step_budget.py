"""Step budgets: under the target budget (the default) every trial gives the target the same
number of updates as its single-task baseline, auxiliary steps come on top; the total budget
counts every task's steps together, as before.

Target batches are counted where they happen: a forward pre-hook on the model sees every
training batch of every task (evaluation runs in eval mode and is not counted).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch

from taskgraph.search.space import SearchSpace
from taskgraph.spec import load_spec
from taskgraph.tasks.synthetic import synthetic_family
from taskgraph.testing import KillAtStep, tiny_trial_config
from taskgraph.training import TrainerCallback, TrainerControl, TrainerState, build_trainer
from taskgraph.training.runtime import stable_seed
from taskgraph.training.sampling import TaskSampler
from taskgraph.trial import MixingConfig, TrialConfig, TrialStatus

# Small auxiliaries (24 sentences against the target's 8) keep the proportional runs short.
FAMILY = synthetic_family(target_train=8, aux_train=24, eval_size=20)
TASKS = FAMILY.tasks
REPO = Path(__file__).resolve().parents[2]


class Evaluations(TrainerCallback):
    """Records (phase, step, target step) of every evaluation."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int, int]] = []

    def on_evaluate(
        self, args: TrialConfig, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.seen.append((state.phase, state.global_step, state.target_step))


def train_counting(cfg: TrialConfig) -> tuple[Counter[str], Any, Evaluations]:
    """Train ``cfg``; return the training batches seen per task, the outcome, the evaluations."""
    evaluations = Evaluations()
    trainer = build_trainer(cfg, tasks=TASKS, device="cpu", callbacks=[evaluations])
    batches: Counter[str] = Counter()

    def count(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        if module.training:
            batches[args[0]] += 1

    trainer.model.register_forward_pre_hook(count)
    outcome = trainer.train()
    assert outcome.status is TrialStatus.COMPLETE
    return batches, outcome, evaluations


def test_the_default_budget_counts_target_steps() -> None:
    assert TrialConfig(target="t").step_budget == "target"
    spec = load_spec(REPO / "searchspaces" / "demo.yaml")
    assert spec.search.step_budget == "target"


@pytest.mark.parametrize(
    ("auxiliaries", "mixing"),
    [
        (("synth_related",), MixingConfig(scheme="proportional")),
        (("synth_related", "synth_conflict"), MixingConfig(scheme="uniform")),
        (("synth_related",), MixingConfig(scheme="annealed", temperature=3.0)),
    ],
)
def test_an_auxiliary_gives_the_target_as_many_updates_as_the_baseline(
    auxiliaries: tuple[str, ...], mixing: MixingConfig
) -> None:
    base_batches, base, base_evals = train_counting(tiny_trial_config())
    batches, outcome, evals = train_counting(
        tiny_trial_config(auxiliaries=auxiliaries, mixing=mixing)
    )
    assert base_batches == Counter({"synth_target": 8})
    assert batches["synth_target"] == base_batches["synth_target"] == 8
    auxiliary_batches = sum(batches[a] for a in auxiliaries)
    assert auxiliary_batches > 0  # the auxiliaries' steps come on top
    assert outcome.target_steps == base.target_steps == 8
    assert outcome.total_steps == 8 + auxiliary_batches
    assert base.total_steps == 8
    # Evaluations after the same target updates (every 4 target steps), the last one closing
    # the run: the same number and the same clock in both trials.
    assert [t for _, _, t in evals.seen] == [t for _, _, t in base_evals.seen] == [4, 8]
    assert [s for _, s, _ in evals.seen][-1] == outcome.total_steps


def test_pcgrad_target_updates_match_the_baseline() -> None:
    # A gradient weighting draws tasks_per_step batches each step (independent draws, so not
    # always every task); a step that draws the target (once or more) is one target update.
    cfg = tiny_trial_config(
        auxiliaries=("synth_related",), loss_weighting="pcgrad", eval_every=None
    )
    _, outcome, _ = train_counting(cfg)
    _, base, _ = train_counting(tiny_trial_config(loss_weighting="pcgrad", eval_every=None))
    assert outcome.target_steps == base.target_steps == 8
    assert outcome.total_steps >= 8


def test_epochs_under_the_target_budget_are_passes_over_the_target() -> None:
    # 8 target sentences in batches of 8: one target step per epoch, whatever the auxiliary.
    cfg = tiny_trial_config(
        auxiliaries=("synth_related",), max_steps=None, epochs=3, eval_every=None
    )
    batches, outcome, evals = train_counting(cfg)
    assert batches["synth_target"] == outcome.target_steps == 3
    assert [t for _, _, t in evals.seen] == [1, 2, 3]  # once per target epoch


def test_total_budget_counts_every_step_and_draws_as_before() -> None:
    cfg = tiny_trial_config(auxiliaries=("synth_related",), step_budget="total", max_steps=16)
    batches, outcome, evals = train_counting(cfg)
    assert sum(batches.values()) == outcome.total_steps == 16
    assert outcome.target_steps == batches["synth_target"] < 16
    # The tasks are drawn live, step by step, from the same seeded sampler as before the
    # target budget existed (proportional: 8 vs 24 examples).
    sampler = TaskSampler(
        sizes={"synth_target": 8, "synth_related": 24},
        mixing=cfg.mixing,
        total_steps=16,
        seed=stable_seed(cfg.seed, "sampler", "joint"),
    )
    expected = Counter(sampler.sample(step)[0] for step in range(16))
    assert batches == expected
    assert [s for _, s, _ in evals.seen] == [4, 8, 12, 16]  # every 4 steps


def test_sequential_target_phase_has_the_target_budget() -> None:
    cfg = tiny_trial_config(
        auxiliaries=("synth_related",),
        transfer_mode="sequential",
        hyperparameters={"source_max_steps": 5},
    )
    batches, outcome, evals = train_counting(cfg)
    assert batches == Counter({"synth_related": 5, "synth_target": 8})
    assert outcome.target_steps == 8 and outcome.total_steps == 13
    assert [(p, t) for p, _, t in evals.seen] == [("target", 4), ("target", 8)]


def test_sequential_transfer_with_a_weighted_source_trains_both_phases() -> None:
    # The trial's mixing weights name the source; the target phase trains the target alone
    # (its sampler was given the trial's weights and refused the source's).
    cfg = tiny_trial_config(
        auxiliaries=("synth_related",),
        transfer_mode="sequential",
        mixing=MixingConfig(weights={"synth_related": 0.5}),
        hyperparameters={"source_max_steps": 5},
    )
    batches, outcome, _ = train_counting(cfg)
    assert batches == Counter({"synth_related": 5, "synth_target": 8})
    assert outcome.target_steps == 8


def test_source_tasks_train_first_and_the_other_auxiliaries_join_the_target() -> None:
    # SQuAD first, then BioASQ with NER jointly: the shape of the biomedical QA table's rows.
    cfg = tiny_trial_config(
        auxiliaries=("synth_related", "synth_unrelated"),
        transfer_mode="sequential",
        mixing=MixingConfig(scheme="uniform"),
        hyperparameters={"source_max_steps": 5, "source_tasks": ["synth_related"]},
    )
    batches, outcome, evals = train_counting(cfg)
    # Uniform mixing of two tasks under the target budget: 8 target steps and, drawn with
    # them, the joint auxiliary's steps; the source only in its own 5 steps.
    assert batches["synth_related"] == 5 and batches["synth_target"] == 8
    assert batches["synth_unrelated"] == outcome.total_steps - 5 - 8 > 0
    assert outcome.target_steps == 8
    assert {p for p, _, _ in evals.seen} == {"target"}
    # Every task is scored: the source when its phase ends, the others at the end.
    assert set(outcome.scores) == {"synth_target", "synth_related", "synth_unrelated"}


def test_source_tasks_naming_no_auxiliary_is_a_clear_error() -> None:
    from taskgraph.errors import ConfigError
    from taskgraph.training import TrainingOptions

    cfg = tiny_trial_config(
        auxiliaries=("synth_unrelated",),
        transfer_mode="sequential",
        hyperparameters={"source_tasks": ["synth_related"]},
    )
    with pytest.raises(ConfigError, match="names none of the trial's auxiliaries"):
        TrainingOptions.from_config(cfg)
    joint = TrainingOptions.from_config(tiny_trial_config(hyperparameters={"source_tasks": ["x"]}))
    assert joint.phases(tiny_trial_config()) == [("joint", ["synth_target"])]


def test_target_that_is_never_drawn_is_a_clear_error() -> None:
    from taskgraph.training import train_trial

    cfg = tiny_trial_config(
        auxiliaries=("synth_related",),
        mixing=MixingConfig(weights={"synth_target": 0.0}),
    )
    result = train_trial(cfg, tasks=TASKS, device="cpu")
    assert result.status is TrialStatus.FAILED
    assert "target step budget" in (result.failure_reason or "")
    assert result.failure_reason.startswith("invalid configuration:")  # type: ignore[union-attr]


def test_results_record_both_counts() -> None:
    from taskgraph.training import train_trial

    result = train_trial(
        tiny_trial_config(auxiliaries=("synth_related",)), tasks=TASKS, device="cpu"
    )
    assert result.cost.target_steps == 8 and result.cost.total_steps > 8
    again = type(result).from_dict(result.to_dict())
    assert (again.cost.target_steps, again.cost.total_steps) == (8, result.cost.total_steps)


def test_search_space_passes_the_step_budget(tmp_path: Path) -> None:
    import optuna

    spec = load_spec(REPO / "searchspaces" / "demo.yaml")
    space = SearchSpace(spec=spec, sharing_spaces={"hard": {}, "hierarchical": {}})
    trial = optuna.create_study().ask()
    assert space.suggest(trial).step_budget == "target"
    total = spec.model_copy(
        update={"search": spec.search.model_copy(update={"step_budget": "total"})}
    )
    trial = optuna.create_study().ask()
    assert (
        SearchSpace(spec=total, sharing_spaces={"hard": {}, "hierarchical": {}})
        .suggest(trial)
        .step_budget
        == "total"
    )


def test_killed_run_resumes_on_the_same_plan(tmp_path: Path) -> None:
    from taskgraph.training import train_trial

    cfg = tiny_trial_config(auxiliaries=("synth_related",), mixing=MixingConfig(scheme="uniform"))
    evaluations = Evaluations()
    whole = train_trial(
        cfg, tasks=TASKS, device="cpu", checkpoint_dir=tmp_path / "a", callbacks=[evaluations]
    )
    (_, first, _), (_, second, _) = evaluations.seen
    kill_at = first + 1  # after the checkpoint of the first evaluation, before the second
    assert kill_at < second

    with pytest.raises(KeyboardInterrupt):
        train_trial(
            cfg,
            tasks=TASKS,
            device="cpu",
            checkpoint_dir=tmp_path / "b",
            callbacks=[KillAtStep(kill_at)],
        )
    resumed = train_trial(cfg, tasks=TASKS, device="cpu", checkpoint_dir=tmp_path / "b")
    assert resumed.scores == whole.scores
    assert resumed.intermediate == whole.intermediate
    assert (resumed.cost.target_steps, resumed.cost.total_steps) == (
        whole.cost.target_steps,
        whole.cost.total_steps,
    )
    assert resumed.cost.target_steps == 8


@pytest.mark.parametrize(
    ("hyperparameters", "expected"),
    [
        ({}, (8, 15)),  # the trial's max_steps
        ({"source_max_steps": 5}, (5, 15)),
        ({"source_epochs": 1}, (15, 15)),  # its own epochs, not the trial's max_steps
        ({"source_epochs": 0.5, "source_max_steps": 3}, (3, 15)),  # steps win
    ],
)
def test_the_source_phase_budget(
    hyperparameters: dict[str, Any], expected: tuple[int, int]
) -> None:
    from taskgraph.training.options import TrainingOptions
    from taskgraph.training.phase import phase_budget

    cfg = tiny_trial_config(
        auxiliaries=("synth_related",), transfer_mode="sequential", hyperparameters=hyperparameters
    )
    options = TrainingOptions.from_config(cfg)
    # 120 source examples in batches of 8: 15 steps an epoch.
    assert phase_budget("source", [120], config=cfg, options=options, per_step=1) == expected


@pytest.mark.parametrize(
    "hyperparameters", [{"source_max_steps": 0}, {"source_max_steps": -5}, {"source_epochs": -2.0}]
)
def test_a_source_budget_below_one_step_is_refused(hyperparameters: dict[str, Any]) -> None:
    from taskgraph.errors import ConfigError
    from taskgraph.training.options import TrainingOptions

    name = next(iter(hyperparameters))
    with pytest.raises(ConfigError, match=f"hyperparameter `{name}` must be"):
        TrainingOptions.from_config(tiny_trial_config(hyperparameters=hyperparameters))
