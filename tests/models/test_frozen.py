"""Frozen bottom layers: what their fingerprint covers, and how masked-LM batches run them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from taskgraph.models import EncoderBundle, HeadSpec, build_model, load_encoder
from taskgraph.models.frozen import FROZEN_KEY, freeze_bottom, frozen_fingerprint, frozen_prefix
from taskgraph.tasks.types import TaskType

TOPIC = HeadSpec("topic", TaskType.SENTENCE_CLASSIFICATION, 3)
MLM = HeadSpec("mlm", TaskType.MASKED_LM, 0)


def _frozen(bundle: EncoderBundle, layers: int = 1, heads: list[HeadSpec] | None = None) -> Any:
    model = build_model(sharing="hard", encoder=bundle, heads=heads or [TOPIC])
    freeze_bottom(model, layers, architecture="hard")
    return model


def _inputs(bundle: EncoderBundle) -> dict[str, torch.Tensor]:
    encoded = bundle.tokenizer(
        ["Ankara is the capital of Turkey.", "Short one"], padding=True, return_tensors="pt"
    )
    return {k: encoded[k] for k in ("input_ids", "attention_mask", "token_type_ids")}


def test_fingerprint_covers_the_encoder_config_but_not_where_it_was_loaded_from(
    tiny_encoder: Callable[..., EncoderBundle], tmp_path: Path
) -> None:
    bundle = tiny_encoder()
    inputs = _inputs(bundle)
    base = _frozen(bundle)
    fingerprint = frozen_fingerprint(base, architecture="hard")
    prefix = frozen_prefix(
        base, inputs, architecture="hard", batch_size=8, device=torch.device("cpu")
    )
    # The same seeded weights under another config compute other frozen outputs, so they must
    # not share cached ones.
    for options in (
        {"hidden_act": "relu"},
        {"layer_norm_eps": 1e-3},
        {"attn_implementation": "eager"},
    ):
        other = _frozen(tiny_encoder(**options))
        assert frozen_fingerprint(other, architecture="hard") != fingerprint, options
    relu = _frozen(tiny_encoder(hidden_act="relu"))
    relu_prefix = frozen_prefix(
        relu, inputs, architecture="hard", batch_size=8, device=torch.device("cpu")
    )
    assert not torch.allclose(relu_prefix, prefix, atol=1e-3)
    # The same model saved to a directory and loaded from there shares them.
    bundle.model.save_pretrained(tmp_path)
    bundle.tokenizer.save_pretrained(tmp_path)
    loaded = _frozen(load_encoder(str(tmp_path)))
    assert frozen_fingerprint(loaded, architecture="hard") == fingerprint
    assert frozen_fingerprint(_frozen(tiny_encoder()), architecture="hard") == fingerprint
    assert frozen_fingerprint(_frozen(tiny_encoder(), 2), architecture="hard") != fingerprint


def test_masked_lm_batches_run_the_frozen_layers_without_dropout(
    tiny_encoder: Callable[..., EncoderBundle],
) -> None:
    # Every layer frozen: only the frozen layers could add dropout noise to the hidden states.
    bundle = tiny_encoder(hidden_dropout_prob=0.5, attention_probs_dropout_prob=0.5)
    model = _frozen(bundle, layers=2, heads=[TOPIC, MLM]).train()
    inputs = _inputs(bundle)
    torch.manual_seed(0)
    first = model.encode("mlm", inputs)
    second = model.encode("mlm", inputs)
    assert torch.equal(first, second)
    stored = frozen_prefix(
        model, inputs, architecture="hard", batch_size=8, device=torch.device("cpu")
    )
    with_stored = model.encode("topic", {**inputs, FROZEN_KEY: stored})
    mask = inputs["attention_mask"].bool()
    assert torch.allclose(first[mask], with_stored[mask], atol=1e-5)
    # The caller's train/eval modes are left as they were.
    assert model.training and all(m.training for m in model.encoder.modules())
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model.encode("mlm", inputs), first, atol=1e-5)
    assert not any(m.training for m in model.modules())


def test_masked_lm_with_frozen_layers_trains_its_head_but_not_the_tied_projection(
    tiny_encoder: Callable[..., EncoderBundle],
) -> None:
    bundle = tiny_encoder(num_hidden_layers=3)
    model = _frozen(bundle, layers=1, heads=[TOPIC, MLM]).train()
    inputs = _inputs(bundle)
    labels = torch.full_like(inputs["input_ids"], -100)
    labels[:, 1] = inputs["input_ids"][:, 1]
    model("mlm", {**inputs, "labels": labels}).loss.backward()
    head = model.head("mlm")
    # tie=True: the vocabulary projection is the frozen word-embedding matrix (documented).
    assert head.decoder_weight is model.word_embeddings().weight
    assert not head.decoder_weight.requires_grad and head.decoder_weight.grad is None
    assert head.bias.grad is not None and head.transform[0].weight.grad is not None
    assert model.encoder.encoder.layer[0].output.dense.weight.grad is None  # frozen
    assert model.encoder.encoder.layer[2].output.dense.weight.grad is not None
