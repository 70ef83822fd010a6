"""The contract every sharing architecture passes (parametrised over the registry).

Three tasks of different head types (token tagging with a CRF, dependency parsing, sentence
classification) on a tiny random BERT: forward with labels, backward, shared parameters checked
against the gradients each task really produces, state-dict round trip, well-formed predictions,
bf16 autocast and search-space data.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import torch

from taskgraph.models import (
    SHARING_ARCHITECTURES,
    EncoderBundle,
    HeadSpec,
    MultiTaskModel,
    build_model,
)
from taskgraph.models.heads import ParsePrediction, is_well_formed_tree

ARCHITECTURES = SHARING_ARCHITECTURES.names()
Batches = dict[str, dict[str, torch.Tensor]]


def test_registry_lists_the_required_architectures() -> None:
    assert {"hard", "hierarchical", "soft", "cross_stitch", "label_embedding"} <= set(ARCHITECTURES)


def _model(
    name: str, tiny_encoder: Callable[..., EncoderBundle], specs: list[HeadSpec], seed: int = 0
) -> MultiTaskModel:
    torch.manual_seed(seed)
    return build_model(sharing=name, encoder=lambda: tiny_encoder(seed=seed), heads=specs)


def _touched_by(model: MultiTaskModel, task: str, batch: dict[str, torch.Tensor]) -> set[int]:
    """Return the ids of the parameters that get a non-zero gradient from ``task``'s loss."""
    model.zero_grad(set_to_none=True)
    output = model(task, batch)
    assert output.loss is not None
    output.loss.backward()
    return {
        id(p) for p in model.parameters() if p.grad is not None and bool(p.grad.abs().sum() > 0)
    }


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_forward_backward_and_shared_parameters_match_gradients(
    name: str,
    tiny_encoder: Callable[..., EncoderBundle],
    three_tasks: list[HeadSpec],
    batches: Batches,
) -> None:
    model = _model(name, tiny_encoder, three_tasks)
    assert model.tasks == ["ner", "deps", "topic"]
    # Zero-initialised weights (the biaffine U, as in Dozat and Manning) block some gradients
    # at step 0 only; a small perturbation stands in for a few training steps.
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    touched = {}
    for task in model.tasks:
        output = model(task, batches[task])
        assert output.loss is not None and torch.isfinite(output.loss), (task, output.loss)
        touched[task] = _touched_by(model, task, batches[task])
        assert touched[task], task

    by_gradient_shared = {
        pid for pid in set().union(*touched.values()) if sum(pid in t for t in touched.values()) > 1
    }
    shared = {id(p) for p in model.shared_parameters()}
    assert shared, "every architecture shares at least the embeddings"
    assert shared == by_gradient_shared
    for task in model.tasks:
        own = {id(p) for p in model.task_parameters(task)}
        others = set().union(*(touched[t] for t in model.tasks if t != task))
        assert own == touched[task] - others, task
        assert own.isdisjoint(shared)
        assert {id(p) for p in model.head_parameters(task)} <= touched[task] | shared
        # Nothing a task's loss reaches is missing from what the model says the task uses.
        assert touched[task] <= {id(p) for p in model.parameters_used_by(task)}

    penalty = model.regularization_loss()
    assert penalty.dim() == 0 and torch.isfinite(penalty) and float(penalty.detach()) >= 0.0


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_state_dict_round_trip_reproduces_outputs(
    name: str,
    tiny_encoder: Callable[..., EncoderBundle],
    three_tasks: list[HeadSpec],
    batches: Batches,
) -> None:
    original = _model(name, tiny_encoder, three_tasks, seed=0).eval()
    restored = _model(name, tiny_encoder, three_tasks, seed=1).eval()
    state = original.state_dict()
    differs = any(
        not torch.equal(state[k], v)
        for k, v in restored.state_dict().items()
        if v.is_floating_point()
    )
    assert differs, (
        "the second model must start from different weights for the test to mean anything"
    )
    restored.load_state_dict(state)
    with torch.no_grad():
        for task in original.tasks:
            a, b = original(task, batches[task]), restored(task, batches[task])
            assert a.loss is not None and b.loss is not None
            assert torch.equal(a.loss, b.loss), task
            for x, y in zip(_tensors(a.logits), _tensors(b.logits), strict=True):
                assert torch.equal(x, y), task
    assert original.predict("deps", batches["deps"]) == restored.predict("deps", batches["deps"])


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_predictions_are_well_formed(
    name: str,
    tiny_encoder: Callable[..., EncoderBundle],
    three_tasks: list[HeadSpec],
    batches: Batches,
) -> None:
    model = _model(name, tiny_encoder, three_tasks).train()
    lengths = batches["deps"]["word_mask"].sum(dim=1).tolist()

    tags = model.predict("ner", batches["ner"])
    assert [len(t) for t in tags] == lengths
    assert all(0 <= tag < 5 for sentence in tags for tag in sentence)

    trees = model.predict("deps", batches["deps"])
    assert [len(t.heads) for t in trees] == lengths
    for tree in trees:
        assert isinstance(tree, ParsePrediction)
        assert is_well_formed_tree([0, *tree.heads])
        assert all(0 <= rel < 4 for rel in tree.deprels)

    classes = model.predict("topic", batches["topic"])
    assert len(classes) == len(lengths) and all(isinstance(c, int) and 0 <= c < 3 for c in classes)
    assert model.training, "predict restores the train mode it found"


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_bf16_autocast_forward_and_backward(
    name: str,
    tiny_encoder: Callable[..., EncoderBundle],
    three_tasks: list[HeadSpec],
    batches: Batches,
) -> None:
    model = _model(name, tiny_encoder, three_tasks)
    for task in model.tasks:
        model.zero_grad(set_to_none=True)
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
            output = model(task, batches[task])
            assert output.loss is not None
            loss = output.loss + model.regularization_loss()
        assert torch.isfinite(loss), task
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        trees = model.predict("deps", batches["deps"])
    assert all(is_well_formed_tree([0, *t.heads]) for t in trees)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_search_space_is_plain_data_and_buildable_at_its_bounds(
    name: str,
    tiny_encoder: Callable[..., EncoderBundle],
    three_tasks: list[HeadSpec],
    batches: Batches,
) -> None:
    architecture = SHARING_ARCHITECTURES.get(name)
    space = architecture.search_space()
    assert json.loads(json.dumps(space)) == space
    assert set(space) <= set(architecture.allowed_params(three_tasks))
    for entry in space.values():
        assert entry["type"] in {"int", "float", "categorical"}
        assert entry["low"] < entry["high"] if entry["type"] != "categorical" else entry["choices"]
    for bound in ("low", "high"):
        params = {key: entry[bound] for key, entry in space.items()}
        model = build_model(sharing=name, encoder=tiny_encoder(), heads=three_tasks, params=params)
        output = model("ner", batches["ner"])
        assert output.loss is not None and torch.isfinite(output.loss)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_model_follows_to_device(
    name: str,
    tiny_encoder: Callable[..., EncoderBundle],
    three_tasks: list[HeadSpec],
    batches: Batches,
) -> None:
    model = _model(name, tiny_encoder, three_tasks).to("cuda")
    for task in model.tasks:
        batch = {k: v.to("cuda") for k, v in batches[task].items()}
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
            output = model(task, batch)
        assert output.loss is not None and output.loss.device.type == "cuda"
        output.loss.backward()
        assert model.predict(task, batch)


def _tensors(logits: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return logits if isinstance(logits, tuple) else (logits,)
