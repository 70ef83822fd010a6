"""The phase's optimizer: parameter groups, per-architecture learning-rate scales, resuming."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch

from taskgraph.errors import TaskgraphError
from taskgraph.models import HeadSpec, build_model, load_encoder
from taskgraph.models.sharing.cross_stitch import CrossStitchSharing
from taskgraph.tasks.synthetic import synthetic_family
from taskgraph.tasks.types import TaskType
from taskgraph.testing import SMALL_BERT, KillAtStep
from taskgraph.training import TrainerCallback, train_trial
from taskgraph.training.phase import Phase, build_optimizer
from taskgraph.training.weighting import build_weighting
from taskgraph.trial import TrialConfig, TrialStatus

HEADS = [
    HeadSpec("a", TaskType.SENTENCE_CLASSIFICATION, 3),
    HeadSpec("b", TaskType.SENTENCE_CLASSIFICATION, 2),
]
LR = 5e-5


def _model(sharing: str) -> Any:
    return build_model(
        sharing=sharing, encoder=load_encoder("tiny-bert", options=SMALL_BERT), heads=HEADS
    )


def _group_of(optimizer: torch.optim.Optimizer) -> dict[int, int]:
    return {id(p): i for i, group in enumerate(optimizer.param_groups) for p in group["params"]}


def test_cross_stitch_alphas_get_a_group_of_their_own_at_a_scaled_rate_without_decay() -> None:
    model = _model("cross_stitch")
    assert isinstance(model, CrossStitchSharing)
    weighting = build_weighting("uncertainty", tasks=["a", "b"])
    optimizer = build_optimizer(model, weighting, learning_rate=LR, weight_decay=0.01)
    group_of = _group_of(optimizer)
    groups = optimizer.param_groups
    alpha_groups = {group_of[id(alpha)] for alpha in model.alphas}
    assert len(alpha_groups) == 1
    alpha_group = groups[alpha_groups.pop()]
    assert alpha_group["lr"] == pytest.approx(LR * CrossStitchSharing.ALPHA_LR_SCALE)
    assert CrossStitchSharing.ALPHA_LR_SCALE == 100.0
    assert alpha_group["weight_decay"] == 0.0
    assert {id(p) for p in alpha_group["params"]} == {id(a) for a in model.alphas}
    # Group 0 is the decayed parameters at the run's own rate (the trainer logs its rate).
    assert groups[0]["lr"] == LR and groups[0]["weight_decay"] == 0.01
    assert groups[1]["lr"] == LR and groups[1]["weight_decay"] == 0.0
    # Every trainable parameter (and the loss weights) is in exactly one group.
    listed = [id(p) for group in groups for p in group["params"]]
    expected = {id(p) for p in model.parameters()} | {id(p) for p in weighting.parameters()}
    assert len(listed) == len(set(listed)) and set(listed) == expected


def test_models_without_scales_keep_their_two_groups() -> None:
    for sharing in ("hard", "mmoe"):
        model = _model(sharing)
        assert model.learning_rate_scales() == {}
        optimizer = build_optimizer(
            model, build_weighting("equal", tasks=["a", "b"]), learning_rate=LR, weight_decay=0.01
        )
        assert [g["lr"] for g in optimizer.param_groups] == [LR, LR]


def test_alphas_move_further_than_the_base_rate_would_let_them() -> None:
    torch.manual_seed(0)
    model = _model("cross_stitch").train()
    optimizer = build_optimizer(
        model, build_weighting("equal", tasks=["a", "b"]), learning_rate=LR, weight_decay=0.01
    )
    start = [alpha.detach().clone() for alpha in model.alphas]
    tokenizer = load_encoder("tiny-bert", options=SMALL_BERT).tokenizer
    encoded = tokenizer(
        ["Ankara is the capital of Turkey.", "Short one", "A third sentence here"],
        padding=True,
        return_tensors="pt",
    )
    inputs = {k: encoded[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    labels = {"a": torch.tensor([0, 1, 2]), "b": torch.tensor([1, 0, 1])}
    steps = 6
    for step in range(steps):
        task = "ab"[step % 2]
        optimizer.zero_grad()
        model(task, {**inputs, "labels": labels[task]}).loss.backward()
        optimizer.step()
    moved = max(
        float((a.detach() - s).abs().max()) for a, s in zip(model.alphas, start, strict=True)
    )
    # An AdamW step moves a parameter by at most about 3 x its rate, (1 - beta1) /
    # sqrt(1 - beta2); at the base rate the alphas could not get this far.
    assert moved > 10 * LR * steps


FAMILY = synthetic_family(target_train=8, aux_train=60, eval_size=30)


def _config(**overrides: Any) -> TrialConfig:
    values: dict[str, Any] = {
        "target": "synth_target",
        "auxiliaries": ("synth_related",),
        "encoder": "tiny-bert",
        "encoder_options": SMALL_BERT,
        "sharing": "cross_stitch",
        "max_steps": 16,
        "batch_size": 8,
        "learning_rate": 1e-4,
        "eval_every": 8,
        "max_length": 32,
        "step_budget": "total",
    }
    values.update(overrides)
    return TrialConfig(**values)


def test_the_schedule_scales_the_alpha_group_and_a_killed_cross_stitch_run_resumes(
    tmp_path: Path,
) -> None:
    rates: list[list[float]] = []

    class Rates(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            rates.append([float(g["lr"]) for g in kwargs["optimizer"].param_groups])

    cfg = _config()
    uninterrupted = train_trial(
        cfg, tasks=FAMILY.tasks, checkpoint_dir=tmp_path / "a", callbacks=[Rates()]
    )
    assert uninterrupted.status is TrialStatus.COMPLETE, uninterrupted.failure_reason
    assert len(rates) == 16 and len(rates[0]) == 3
    # Warmup then decay, the alpha group at 100 x the base rate throughout.
    assert len({round(r[0], 12) for r in rates}) > 2
    for base, no_decay, alphas in rates:
        assert no_decay == pytest.approx(base) and alphas == pytest.approx(100 * base)

    # Killed after the checkpoint at step 8.
    with pytest.raises(KeyboardInterrupt):
        train_trial(
            cfg, tasks=FAMILY.tasks, checkpoint_dir=tmp_path / "b", callbacks=[KillAtStep(11)]
        )
    resumed_rates: list[list[float]] = []

    class ResumedRates(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            resumed_rates.append([float(g["lr"]) for g in kwargs["optimizer"].param_groups])

    resumed = train_trial(
        cfg, tasks=FAMILY.tasks, checkpoint_dir=tmp_path / "b", callbacks=[ResumedRates()]
    )
    assert resumed.status is TrialStatus.COMPLETE, resumed.failure_reason
    assert [r for step in resumed_rates for r in step] == pytest.approx(
        [r for step in rates[8:] for r in step]
    )
    assert resumed.scores == uninterrupted.scores
    assert resumed.intermediate == uninterrupted.intermediate


def test_a_checkpoint_whose_optimizer_groups_differ_is_refused_with_one_line() -> None:
    model = _model("cross_stitch")
    weighting = build_weighting("equal", tasks=["a", "b"])
    optimizer = build_optimizer(model, weighting, learning_rate=LR, weight_decay=0.01)
    # What an older version saved: the alphas decayed with the other matrices, two groups.
    old = torch.optim.AdamW(
        [
            {"params": [p for g in optimizer.param_groups[::2] for p in g["params"]]},
            {"params": optimizer.param_groups[1]["params"]},
        ],
        lr=LR,
    )
    phase = Phase(
        name="joint",
        tasks=["a", "b"],
        total_steps=1,
        steps_per_epoch=1,
        optimizer=optimizer,
        scheduler=None,
        sampler=None,  # type: ignore[arg-type]
        streams={},
    )
    state: Mapping[str, Any] = {"optimizer": old.state_dict()}
    with pytest.raises(TaskgraphError, match=r"phase 'joint'.*parameter groups.*delete the"):
        phase.load_state_dict(state)


def test_a_multiplier_that_is_not_a_positive_number_is_refused() -> None:
    class Scaled(torch.nn.Module):
        def __init__(self, scale: float) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(2))
            self.scale = scale

        def learning_rate_scales(self) -> dict[torch.nn.Parameter, float]:
            return {self.weight: self.scale}

    weighting = build_weighting("equal", tasks=["a"])
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(TaskgraphError, match=r"Scaled.learning_rate_scales: a multiplier"):
            build_optimizer(Scaled(bad), weighting, learning_rate=LR, weight_decay=0.0)
    optimizer = build_optimizer(Scaled(10.0), weighting, learning_rate=LR, weight_decay=0.0)
    assert [g["lr"] for g in optimizer.param_groups] == [LR, LR, pytest.approx(10 * LR)]


def test_every_layernorm_and_bias_is_trained_without_decay_whatever_its_name() -> None:
    # The masked-LM head's LayerNorm sits in an nn.Sequential, named "transform.2.weight".
    heads = [*HEADS, HeadSpec("mlm", TaskType.MASKED_LM, 0)]
    model = build_model(
        sharing="hard", encoder=load_encoder("tiny-bert", options=SMALL_BERT), heads=heads
    )
    optimizer = build_optimizer(
        model,
        build_weighting("equal", tasks=[h.task for h in heads]),
        learning_rate=LR,
        weight_decay=0.01,
    )
    decayed = {id(p) for p in optimizer.param_groups[0]["params"]}
    exempt = {
        f"{module_name}.{name}": param
        for module_name, module in model.named_modules()
        for name, param in module.named_parameters(recurse=False)
        if isinstance(module, torch.nn.LayerNorm) or name == "bias"
    }
    assert "heads.mlm.transform.2.weight" in exempt
    assert [name for name, param in exempt.items() if id(param) in decayed] == []
    # Every other parameter, the tied word embeddings among them, is still decayed.
    exempt_ids = {id(p) for p in exempt.values()}
    assert decayed == {id(p) for p in model.parameters() if id(p) not in exempt_ids}


def test_norms_are_found_without_torch_rmsnorm(monkeypatch: pytest.MonkeyPatch) -> None:
    # torch 2.3 (allowed by pyproject) has no nn.RMSNorm; the grouping looked it up each call.
    monkeypatch.delattr(torch.nn, "RMSNorm", raising=False)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 4), torch.nn.LayerNorm(4), torch.nn.GroupNorm(2, 4)
    )
    weighting = build_weighting("equal", tasks=["a"])
    optimizer = build_optimizer(model, weighting, learning_rate=LR, weight_decay=0.01)
    decayed = {id(p) for p in optimizer.param_groups[0]["params"]}
    assert decayed == {id(model[0].weight)}  # the norms' weights and every bias are exempt
