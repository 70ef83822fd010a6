"""Encoders: tiny random BERT, the packaged MiniLM, local directories, layer-by-layer runs."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import (
    BertConfig,
    BertModel,
    CamembertConfig,
    CamembertModel,
    DebertaV2Config,
    DebertaV2Model,
    ElectraConfig,
    ElectraModel,
    MPNetConfig,
    MPNetModel,
    PreTrainedModel,
    RobertaConfig,
    RobertaModel,
    XLMRobertaConfig,
    XLMRobertaModel,
)

from taskgraph.errors import ConfigError
from taskgraph.models import EncoderBundle, HeadSpec, build_model, load_encoder
from taskgraph.models.frozen import FROZEN_KEY, freeze_bottom, frozen_prefix
from taskgraph.models.layerwise import (
    LAYERWISE_MODEL_TYPES,
    attention_bias,
    embed,
    run_layers,
    split_encoder,
)
from taskgraph.tasks.types import TaskType


def _inputs(bundle: EncoderBundle) -> dict[str, torch.Tensor]:
    encoded = bundle.tokenizer(
        ["Ankara is the capital of Turkey.", "Short one"], padding=True, return_tensors="pt"
    )
    return dict(encoded)


def test_tiny_bert_is_seeded_small_and_configurable(
    tiny_encoder: Callable[..., EncoderBundle],
) -> None:
    first, again, other = tiny_encoder(), tiny_encoder(), tiny_encoder(seed=1)
    assert (first.hidden_size, first.num_layers, first.name) == (128, 2, "tiny-bert")
    assert first.model.config.vocab_size == first.tokenizer.vocab_size and first.tokenizer.is_fast
    weights = first.model.embeddings.word_embeddings.weight
    assert torch.equal(weights, again.model.embeddings.word_embeddings.weight)
    assert not torch.equal(weights, other.model.embeddings.word_embeddings.weight)
    deeper = tiny_encoder(num_hidden_layers=4, hidden_size=64, num_attention_heads=4)
    assert (deeper.num_layers, deeper.hidden_size) == (4, 64)
    with pytest.raises(ConfigError, match=r"unknown option.*hidden_sise"):
        tiny_encoder(hidden_sise=64)
    with pytest.raises(ConfigError, match="multiple of num_attention_heads"):
        tiny_encoder(hidden_size=30, num_attention_heads=4)


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [("num_hidden_layers", "x", "expected int, got str"), ("hidden_dropout_prob", "x", "float")],
)
def test_a_wrong_typed_tiny_bert_option_is_a_config_error_naming_it(
    tiny_encoder: Callable[..., EncoderBundle], option: str, value: Any, expected: str
) -> None:
    with pytest.raises(ConfigError, match=rf"^encoder 'tiny-bert': option {option}: .*{expected}"):
        tiny_encoder(**{option: value})


def test_a_wrong_typed_pretrained_config_option_is_a_config_error_naming_it() -> None:
    # from_pretrained raises huggingface_hub's strict-dataclass error, a traceback per trial.
    with pytest.raises(ConfigError, match=r"^encoder 'minilm': cannot load .*num_hidden_layers"):
        load_encoder("minilm", options={"num_hidden_layers": 2.5})


def test_tiny_bert_does_not_disturb_the_global_rng(
    tiny_encoder: Callable[..., EncoderBundle],
) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tiny_encoder()
    assert torch.equal(torch.rand(3), expected)


def test_minilm_loads_offline_and_runs() -> None:
    started = time.perf_counter()
    bundle = load_encoder("minilm")
    assert (bundle.hidden_size, bundle.num_layers, bundle.name) == (384, 6, "minilm")
    assert getattr(bundle.model, "pooler", None) is None  # unused by every head: dropped
    with torch.no_grad():
        hidden = bundle.model(**_inputs(bundle)).last_hidden_state
    assert hidden.shape[0] == 2 and hidden.shape[2] == 384 and torch.isfinite(hidden).all()
    # Real weights: the two sentences get clearly different mean embeddings.
    assert float((hidden[0].mean(0) - hidden[1].mean(0)).abs().max()) > 0.05
    assert time.perf_counter() - started < 60  # sanity bound only; it takes about a second


def test_local_directory_round_trip(
    tiny_encoder: Callable[..., EncoderBundle], tmp_path: Path
) -> None:
    bundle = tiny_encoder()
    bundle.model.save_pretrained(tmp_path)
    bundle.tokenizer.save_pretrained(tmp_path)
    loaded = load_encoder(str(tmp_path))
    assert loaded.name == str(tmp_path)
    with torch.no_grad():
        a = bundle.model.eval()(**_inputs(bundle)).last_hidden_state
        b = loaded.model.eval()(**_inputs(loaded)).last_hidden_state
    assert torch.equal(a, b)


def test_missing_or_invalid_directories_are_config_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError, match=re.escape(f"no such directory '{missing}'")):
        load_encoder(str(missing))
    with pytest.raises(ConfigError, match=r"has no config\.json"):
        load_encoder(str(tmp_path))
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="has no tokenizer files"):
        load_encoder(str(tmp_path))
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n")
    with pytest.raises(ConfigError, match="cannot load a model from"):
        load_encoder(str(tmp_path))


@pytest.mark.parametrize("implementation", ["eager", "sdpa"])
def test_layer_by_layer_run_matches_the_model(
    tiny_encoder: Callable[..., EncoderBundle], implementation: str
) -> None:
    bundle = tiny_encoder(num_hidden_layers=3, attn_implementation=implementation)
    model = bundle.model.eval()
    assert model.config._attn_implementation == implementation
    inputs = _inputs(bundle)
    assert bool((inputs["attention_mask"] == 0).any()), "padding must be present to test the mask"
    parts = split_encoder(model, architecture="test")
    with torch.no_grad():
        expected = model(**inputs).last_hidden_state
        hidden = embed(parts.embeddings, inputs)
        got = run_layers(
            parts.layers, hidden, attention_bias(parts.config, hidden, inputs["attention_mask"])
        )
    assert torch.allclose(got, expected, atol=1e-6)


def test_split_encoder_rejects_models_without_bert_layout() -> None:
    with pytest.raises(
        ConfigError, match="'soft' runs the encoder layer by layer and needs a BERT-like"
    ):
        split_encoder(torch.nn.Linear(2, 2), architecture="soft")  # type: ignore[arg-type]


def _tiny_electra(tokenizer: Any, **options: Any) -> EncoderBundle:
    """Return a random ELECTRA whose embeddings (32) are narrower than its layers (64)."""
    torch.manual_seed(0)
    config = ElectraConfig(
        vocab_size=30522,
        embedding_size=32,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        **options,
    )
    model = ElectraModel(config).eval()
    assert hasattr(model, "embeddings_project")
    return EncoderBundle(model=model, tokenizer=tokenizer, name="tiny-electra")


@pytest.mark.parametrize("implementation", ["eager", "sdpa"])
def test_layer_by_layer_run_applies_electras_embedding_projection(
    tiny_encoder: Callable[..., EncoderBundle], implementation: str
) -> None:
    bundle = _tiny_electra(tiny_encoder().tokenizer, attn_implementation=implementation)
    inputs = _inputs(bundle)
    parts = split_encoder(bundle.model, architecture="test")
    with torch.no_grad():
        expected = bundle.model(**inputs).last_hidden_state
        hidden = embed(parts.embeddings, inputs)
        assert hidden.shape[-1] == 64
        got = run_layers(
            parts.layers, hidden, attention_bias(parts.config, hidden, inputs["attention_mask"])
        )
    assert torch.allclose(got, expected, atol=1e-6)


def _layerwise_model_matching_its_encoder(
    bundle: EncoderBundle, sharing: str
) -> tuple[Any, dict[str, torch.Tensor]]:
    """Build ``sharing`` (``frozen``: hard with a frozen bottom layer) on ``bundle`` with two
    classification heads, check it computes the encoder's own output, and return the model (in
    eval mode) and the batch it read."""
    inputs = _inputs(bundle)
    with torch.no_grad():
        expected = bundle.model(**inputs).last_hidden_state
    heads = [
        HeadSpec("a", TaskType.SENTENCE_CLASSIFICATION, 3),
        HeadSpec("b", TaskType.SENTENCE_CLASSIFICATION, 2),
    ]
    model = build_model(
        sharing="hard" if sharing == "frozen" else sharing, encoder=bundle, heads=heads
    ).eval()
    batch = dict(inputs)
    if sharing == "frozen":
        freeze_bottom(model, 1, architecture="hard")
        batch[FROZEN_KEY] = frozen_prefix(
            model, inputs, architecture="hard", batch_size=4, device=torch.device("cpu")
        )
    # Columns and experts start as copies of the layers, so every architecture (hierarchical:
    # classification reads the top layer) computes the encoder's own output.
    with torch.no_grad():
        got = model.encode("a", batch)
    mask = inputs["attention_mask"].bool()
    assert torch.allclose(got[mask], expected[mask], atol=1e-5)
    return model, batch


@pytest.mark.parametrize("sharing", ["hierarchical", "soft", "cross_stitch", "mmoe", "frozen"])
def test_electra_with_narrow_embeddings_runs_in_every_layerwise_architecture(
    tiny_encoder: Callable[..., EncoderBundle], sharing: str
) -> None:
    bundle = _tiny_electra(tiny_encoder().tokenizer)
    model, batch = _layerwise_model_matching_its_encoder(bundle, sharing)
    labels = torch.tensor([0, 2])
    model.train()("a", {**batch, "labels": labels}).loss.backward()
    projection = bundle.model.get_submodule("embeddings_project").weight
    assert (projection.grad is not None) == (sharing != "frozen")


_TINY: dict[str, Any] = {
    "vocab_size": 30522,
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 128,
}
_ROBERTA_LIKE: dict[str, Any] = {
    "pad_token_id": 0,
    "max_position_embeddings": 130,
    "type_vocab_size": 1,
}
_LAYERWISE_ENCODERS: dict[str, Callable[[], PreTrainedModel]] = {
    "bert": lambda: BertModel(BertConfig(**_TINY), add_pooling_layer=False),
    "camembert": lambda: CamembertModel(
        CamembertConfig(**_TINY, **_ROBERTA_LIKE), add_pooling_layer=False
    ),
    "electra": lambda: ElectraModel(ElectraConfig(**_TINY)),
    "roberta": lambda: RobertaModel(
        RobertaConfig(**_TINY, **_ROBERTA_LIKE), add_pooling_layer=False
    ),
    "xlm-roberta": lambda: XLMRobertaModel(
        XLMRobertaConfig(**_TINY, **_ROBERTA_LIKE), add_pooling_layer=False
    ),
}
_OTHER_ENCODERS: dict[str, Callable[[], PreTrainedModel]] = {
    "deberta-v2": lambda: DebertaV2Model(
        DebertaV2Config(
            **_TINY,
            relative_attention=True,
            position_biased_input=False,
            pos_att_type=["p2c", "c2p"],
        )
    ),
    "deberta-v2 without relative attention": lambda: DebertaV2Model(
        DebertaV2Config(**_TINY, relative_attention=False, position_biased_input=True)
    ),
    "mpnet": lambda: MPNetModel(
        MPNetConfig(**_TINY, pad_token_id=0, max_position_embeddings=130), add_pooling_layer=False
    ),
}


def _bundle(make: Callable[[], PreTrainedModel], tokenizer: Any) -> EncoderBundle:
    torch.manual_seed(0)
    return EncoderBundle(model=make().eval(), tokenizer=tokenizer, name="tiny")


def test_every_accepted_model_type_has_a_layer_by_layer_test() -> None:
    assert sorted(LAYERWISE_MODEL_TYPES) == sorted(_LAYERWISE_ENCODERS)


@pytest.mark.parametrize("model_type", sorted(_LAYERWISE_ENCODERS))
def test_layer_by_layer_runs_match_every_accepted_model_type(
    tiny_encoder: Callable[..., EncoderBundle], model_type: str
) -> None:
    tokenizer = tiny_encoder().tokenizer
    bundle = _bundle(_LAYERWISE_ENCODERS[model_type], tokenizer)
    assert bundle.model.config.model_type == model_type
    inputs = _inputs(bundle)
    with torch.no_grad():
        expected = bundle.model(**inputs).last_hidden_state
        parts = split_encoder(bundle.model, architecture="test")
        hidden = embed(parts.embeddings, inputs)
        got = run_layers(
            parts.layers, hidden, attention_bias(parts.config, hidden, inputs["attention_mask"])
        )
    mask = inputs["attention_mask"].bool()
    assert torch.allclose(got[mask], expected[mask], atol=1e-5)


@pytest.mark.parametrize("model_type", sorted(_LAYERWISE_ENCODERS))
@pytest.mark.parametrize("sharing", ["hierarchical", "soft", "cross_stitch", "mmoe", "frozen"])
def test_every_accepted_model_type_runs_in_every_layerwise_architecture(
    tiny_encoder: Callable[..., EncoderBundle], model_type: str, sharing: str
) -> None:
    bundle = _bundle(_LAYERWISE_ENCODERS[model_type], tiny_encoder().tokenizer)
    _layerwise_model_matching_its_encoder(bundle, sharing)


@pytest.mark.parametrize("encoder", sorted(_OTHER_ENCODERS))
@pytest.mark.parametrize("sharing", ["hierarchical", "soft", "cross_stitch", "mmoe", "frozen"])
def test_encoders_laid_out_like_bert_but_run_otherwise_are_refused_with_one_line(
    tiny_encoder: Callable[..., EncoderBundle], encoder: str, sharing: str
) -> None:
    # DeBERTa-v2 and MPNet have model.embeddings and model.encoder.layer, but their layers
    # cannot run as BERT's: refused up front, not a TypeError at the first forward.
    bundle = _bundle(_OTHER_ENCODERS[encoder], tiny_encoder().tokenizer)
    model_type = bundle.model.config.model_type
    heads = [HeadSpec("a", TaskType.SENTENCE_CLASSIFICATION, 3)]
    architecture = "hard" if sharing == "frozen" else sharing
    message = (
        rf"sharing architecture '{architecture}' runs the encoder layer by layer, which works "
        rf"only for the model types bert, .*; got \w+ \(model_type '{model_type}'\)"
    )
    with pytest.raises(ConfigError, match=message):
        model = build_model(sharing=architecture, encoder=bundle, heads=heads)
        if sharing == "frozen":
            freeze_bottom(model, 1, architecture="hard")
