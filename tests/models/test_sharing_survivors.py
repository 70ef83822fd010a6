"""Sharing-architecture behaviour that a mutation audit found untested.

Each test names the defect it guards against: parameters outside the heads, predict's eval
mode, the padding mask in the per-task columns, the soft-sharing penalty's precision and its
lambda = 0, and the cross-stitch row each task reads.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from taskgraph.models import EncoderBundle, HeadSpec, build_model
from taskgraph.models.layerwise import run_layers
from taskgraph.models.sharing.cross_stitch import CrossStitchSharing
from taskgraph.models.sharing.hard import HardSharing
from taskgraph.models.sharing.soft import SoftSharing
from tests.models.test_sharing_architectures import CYCLIC_READS, cyclic_alpha

Batches = dict[str, dict[str, torch.Tensor]]


def test_encoder_parameters_are_everything_outside_the_heads(
    tiny_encoder: Callable[..., EncoderBundle], three_tasks: list[HeadSpec]
) -> None:
    # A separate encoder learning rate must reach the encoder, not the heads.
    bundle = tiny_encoder()
    model = build_model(sharing="hard", encoder=bundle, heads=three_tasks)
    encoder = {id(p) for p in model.encoder_parameters()}
    assert encoder == {id(p) for p in bundle.model.parameters()}
    assert encoder.isdisjoint(id(p) for p in model.heads.parameters())


def test_predict_runs_the_model_in_eval_mode(
    tiny_encoder: Callable[..., EncoderBundle], three_tasks: list[HeadSpec], batches: Batches
) -> None:
    # Dropout left on during predict makes dev metrics noisy and seed-dependent.
    model = build_model(sharing="hard", encoder=tiny_encoder(), heads=three_tasks).train()
    assert isinstance(model, HardSharing)
    seen: list[bool] = []

    def record(module: nn.Module, args: object) -> None:
        seen.append(module.training)

    hooks = [model.encoder.register_forward_pre_hook(record)]
    hooks.append(model.head("topic").register_forward_pre_hook(record))
    try:
        model.predict("topic", batches["topic"])
    finally:
        for hook in hooks:
            hook.remove()
    assert seen == [False, False]
    assert model.training


@pytest.mark.parametrize("name", ["soft", "cross_stitch", "mmoe"])
def test_column_architectures_start_as_the_plain_encoder_on_a_padded_batch(
    name: str,
    tiny_encoder: Callable[..., EncoderBundle],
    three_tasks: list[HeadSpec],
    batches: Batches,
) -> None:
    # The columns start as copies of the encoder's layers, and every mix of equal columns is
    # the column itself: until training moves them, each task reads what the plain encoder
    # gives, padding masked out as it does.
    bundle = tiny_encoder()
    batch = batches["topic"]
    assert bool((batch["attention_mask"] == 0).any()), "the batch must have padding"
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.no_grad():
        expected = bundle.model.eval()(**inputs).last_hidden_state
    model = build_model(sharing=name, encoder=bundle, heads=three_tasks).eval()
    attended = batch["attention_mask"].bool()
    with torch.no_grad():
        for task in model.tasks:
            hidden = model.encode(task, batch)
            assert torch.allclose(hidden[attended], expected[attended], atol=1e-5), task


def test_soft_penalty_stays_exact_for_large_weights_close_together(
    tiny_encoder: Callable[..., EncoderBundle], three_tasks: list[HeadSpec]
) -> None:
    # Late in training the copies are large and close: the penalty must come from their
    # differences, not from the difference of two large sums (float32 cancellation).
    model = build_model(
        sharing="soft", encoder=tiny_encoder(), heads=three_tasks, params={"lambda": 1.0}
    )
    assert isinstance(model, SoftSharing)
    torch.manual_seed(0)
    with torch.no_grad():
        for task in model.tasks:
            for parameter in model.column(task).parameters():
                parameter.fill_(30.0)
        assert float(model.regularization_loss()) == 0.0
        for parameter in model.column("deps").parameters():
            parameter.add_(1e-3 * torch.randn_like(parameter))
        columns = [[p.double() for p in model.column(t).parameters()] for t in model.tasks]
        exact = sum(
            float(((a - b) ** 2).sum())
            for i in range(3)
            for j in range(i + 1, 3)
            for a, b in zip(columns[i], columns[j], strict=True)
        )
        assert float(model.regularization_loss()) == pytest.approx(exact, rel=1e-3)


def test_soft_sharing_accepts_lambda_zero_as_independent_columns(
    tiny_encoder: Callable[..., EncoderBundle], three_tasks: list[HeadSpec]
) -> None:
    # lambda = 0 is the no-penalty end of soft sharing (the docs: a number >= 0).
    model = build_model(
        sharing="soft", encoder=tiny_encoder(), heads=three_tasks, params={"lambda": 0}
    )
    assert isinstance(model, SoftSharing)
    with torch.no_grad():
        for parameter in model.column("ner").parameters():
            parameter.add_(1.0)
    assert float(model.regularization_loss()) == 0.0


def test_cross_stitch_final_mix_gives_every_task_its_own_row(
    tiny_encoder: Callable[..., EncoderBundle], three_tasks: list[HeadSpec], batches: Batches
) -> None:
    # With alpha a permutation, task t's output is the one column row t of alpha points at;
    # checking every task (not only the middle one) catches a mis-numbered task index.
    model = build_model(
        sharing="cross_stitch",
        encoder=tiny_encoder(),
        heads=three_tasks,
        params={"top_k_layers": 1},
    ).eval()
    assert isinstance(model, CrossStitchSharing) and isinstance(model.alphas, nn.ParameterList)
    batch = batches["ner"]
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in model.columns.parameters():  # make the columns distinguishable
            parameter.add_(0.05 * torch.randn_like(parameter))
        model.alphas[0].copy_(cyclic_alpha(model.tasks))
        hidden, bias = model.encode_shared(batch)
        for reader, source in CYCLIC_READS.items():
            expected = run_layers(model.column(source), hidden, bias)
            assert torch.allclose(model.encode(reader, batch), expected, atol=1e-6), reader
