"""What ``load_encoder`` serves from memory and what the encoder checks refuse: survivors of the
mutation audit of ``taskgraph/models/encoders.py``.  Tiny random BERT directories: seconds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer
from transformers.utils import logging as hf_logging

from taskgraph.errors import ConfigError
from taskgraph.models import load_encoder
from taskgraph.models.encoders import (
    EncoderOptionError,
    check_encoder_directory,
    check_pretrained_options,
    weights_fingerprint,
)
from taskgraph.testing import SMALL_BERT, write_tiny_encoder


def test_a_tokenizer_saved_over_the_old_one_is_read_again(tmp_path: Path) -> None:
    encoder = write_tiny_encoder(tmp_path / "enc", **SMALL_BERT)
    assert "zqxwordzqx" not in load_encoder(str(encoder)).tokenizer.get_vocab()
    replacement = AutoTokenizer.from_pretrained(str(encoder))
    replacement.add_tokens(["zqxwordzqx"])
    replacement.save_pretrained(str(encoder))
    assert "zqxwordzqx" in load_encoder(str(encoder)).tokenizer.get_vocab()


def test_each_set_of_options_gets_a_model_built_with_them(tmp_path: Path) -> None:
    encoder = str(write_tiny_encoder(tmp_path / "enc", **SMALL_BERT))
    plain = load_encoder(encoder).model
    dropped = load_encoder(encoder, options={"hidden_dropout_prob": 0.3}).model
    assert dropped.config.hidden_dropout_prob == 0.3
    assert (
        plain.config.hidden_dropout_prob == load_encoder(encoder).model.config.hidden_dropout_prob
    )
    assert plain.config.hidden_dropout_prob != 0.3


def test_a_boolean_seed_of_tiny_bert_is_refused_naming_it() -> None:
    # True is an int to Python: it would build the encoder of seed 1 under the name True.
    with pytest.raises(EncoderOptionError, match=r"^encoder 'tiny-bert': option seed: ") as caught:
        load_encoder("tiny-bert", options={**SMALL_BERT, "seed": True})
    assert caught.value.option == "seed"


def test_every_config_field_option_is_checked_after_a_loading_keyword(tmp_path: Path) -> None:
    encoder = str(write_tiny_encoder(tmp_path / "enc", **SMALL_BERT))
    # attn_implementation is from_pretrained's own keyword (left alone) and sorts first.
    options = {"attn_implementation": "eager", "num_hidden_layers": 2.5}
    with pytest.raises(EncoderOptionError, match="option num_hidden_layers: ") as caught:
        check_pretrained_options(encoder, options)
    assert caught.value.option == "num_hidden_layers"


def test_a_truncated_safetensors_file_is_found_beside_a_bin_file(tmp_path: Path) -> None:
    # from_pretrained reads model.safetensors first, whatever other weights sit beside it.
    encoder = write_tiny_encoder(tmp_path / "enc", **SMALL_BERT)
    torch.save(load_encoder(str(encoder)).model.state_dict(), encoder / "pytorch_model.bin")
    check_encoder_directory(str(encoder))
    data = (encoder / "model.safetensors").read_bytes()
    (encoder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigError, match=r"model\.safetensors' is unreadable"):
        check_encoder_directory(str(encoder))


def test_the_weights_fingerprint_covers_the_tensors_names() -> None:
    # The same numbers in another role (another layer, another projection) are other weights.
    query = torch.nn.ModuleDict({"query": torch.nn.Linear(2, 2)})
    key = torch.nn.ModuleDict({"key": torch.nn.Linear(2, 2)})
    key["key"].load_state_dict(query["query"].state_dict())
    assert weights_fingerprint(query) != weights_fingerprint(key)


def test_loading_keeps_progress_bars_off_that_the_caller_turned_off(tmp_path: Path) -> None:
    encoder = str(write_tiny_encoder(tmp_path / "enc", **SMALL_BERT))  # not loaded yet
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        load_encoder(encoder)
        assert not hf_logging.is_progress_bar_enabled()
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
