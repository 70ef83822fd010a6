"""Caches of what an encoder's weights give key on the weights, not on the encoder's path.

An encoder directory whose weights were replaced (a newer checkpoint saved over the old one,
or another directory at the same relative path) must not be served the data-selection
features or the pretrained encoder state that the old weights gave.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from taskgraph.models.encoders import clear_encoder_cache, load_encoder, weights_fingerprint
from taskgraph.tasks.synthetic import synthetic_family
from taskgraph.testing import SMALL_BERT
from taskgraph.training import pretraining as stage
from taskgraph.training import pretraining_cache
from taskgraph.training.run import _data_selection
from taskgraph.trial import DataSelectionConfig, PretrainingConfig, TrialConfig

FAMILY = synthetic_family(target_train=8, aux_train=120, eval_size=40)


@pytest.fixture(autouse=True)
def _own_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKGRAPH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TASKGRAPH_FEATURE_CACHE", raising=False)
    monkeypatch.delenv(pretraining_cache.PRETRAIN_CACHE_ENV, raising=False)
    pretraining_cache._MEMORY.clear_memory()


def _save_encoder(directory: Path, seed: int) -> None:
    """Write a random tiny BERT (weights drawn with ``seed``) and its tokenizer to ``directory``."""
    bundle = load_encoder("tiny-bert", options={**SMALL_BERT, "seed": seed})
    bundle.model.save_pretrained(directory)
    bundle.tokenizer.save_pretrained(directory)
    clear_encoder_cache()  # as a later process would: read the directory again


def test_weights_fingerprint_follows_every_weight() -> None:
    first = load_encoder("tiny-bert", options=SMALL_BERT).model
    again = load_encoder("tiny-bert", options=SMALL_BERT).model
    assert weights_fingerprint(first) == weights_fingerprint(again)
    with torch.no_grad():
        next(iter(again.encoder.parameters())).view(-1)[0] += 1e-3
    assert weights_fingerprint(first) != weights_fingerprint(again)


def test_selection_features_follow_the_weights_of_an_encoder_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "encoder"
    config = TrialConfig(
        target="synth_target",
        auxiliaries=("synth_related",),
        encoder=str(directory),
        max_length=32,
        data_selection=DataSelectionConfig(
            features=("embedding_cosine",), weights={"embedding_cosine": 1.0}, keep=0.25
        ),
    )

    def kept() -> list[int]:
        tokenizer = load_encoder(str(directory)).tokenizer
        selections = _data_selection(config, FAMILY.tasks, tokenizer, data_dir=None)
        positions: list[int] = selections["synth_related"].positions.tolist()
        return positions

    _save_encoder(directory, seed=1)
    old = kept()
    _save_encoder(directory, seed=2)
    new = kept()
    monkeypatch.setenv("TASKGRAPH_FEATURE_CACHE", "off")
    assert kept() == new  # what the directory's weights now give, not the cached features
    assert new != old


def test_a_pretrained_state_follows_the_weights_of_an_encoder_directory(tmp_path: Path) -> None:
    directory = tmp_path / "encoder"
    config = TrialConfig(
        target="synth_target",
        encoder=str(directory),
        max_steps=2,
        batch_size=8,
        max_length=32,
        pretraining=PretrainingConfig(scheme="random", steps=2, batch_size=4, learning_rate=1e-3),
    )

    def cached() -> bool:
        encoder = load_encoder(str(directory))
        report = stage.pretrained_encoder_state(config, encoder, tasks=FAMILY.tasks)[1]
        pretraining_cache._MEMORY.clear_memory()  # the next call reads the disk, as a process would
        return bool(report["cached"])

    _save_encoder(directory, seed=1)
    assert cached() is False
    assert cached() is True  # the same weights: the stage is not run again
    _save_encoder(directory, seed=2)
    assert cached() is False
