"""Fixtures for the model tests: a tiny random BERT and small real-tokenizer batches."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
import torch

from taskgraph.models import EncoderBundle, HeadSpec, load_encoder
from taskgraph.tasks.types import TaskType

SENTENCES = [
    ["Ankara", "is", "the", "capital", "of", "Turkey", "."],
    ["Tokenization", "splits", "unbelievably", "long", "words"],
    ["Hi"],
    ["The", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "today"],
]

NUM_TAGS, NUM_RELS, NUM_CLASSES = 5, 4, 3

THREE_TASKS = [
    HeadSpec("ner", TaskType.TOKEN_TAGGING, NUM_TAGS, {"crf": True}),
    HeadSpec("deps", TaskType.DEPENDENCY_PARSING, NUM_RELS, {"arc_size": 32, "label_size": 16}),
    HeadSpec("topic", TaskType.SENTENCE_CLASSIFICATION, NUM_CLASSES),
]


@pytest.fixture
def tiny_encoder() -> Callable[..., EncoderBundle]:
    """Return a loader of tiny random BERTs (seeded; options override the config)."""

    def load(**options: object) -> EncoderBundle:
        return load_encoder("tiny-bert", options=options)

    return load


def encode_words(
    tokenizer: object, sentences: list[list[str]]
) -> tuple[dict[str, torch.Tensor], list[list[int]]]:
    """Return padded encoder inputs and, per sentence, the first-subword position of each word."""
    encoded = tokenizer(sentences, is_split_into_words=True, padding=True, return_tensors="pt")  # type: ignore[operator]
    starts = []
    for row in range(len(sentences)):
        word_ids = encoded.word_ids(row)
        first: list[int] = []
        for position, word in enumerate(word_ids):
            if word is not None and word == len(first):
                first.append(position)
        starts.append(first)
    inputs = {key: encoded[key] for key in ("input_ids", "attention_mask", "token_type_ids")}
    return inputs, starts


def make_batches(
    tokenizer: object, *, seed: int = 0, sentences: list[list[str]] | None = None
) -> dict[str, dict[str, torch.Tensor]]:
    """Return one labelled batch per task of :data:`THREE_TASKS` (the batch contract)."""
    rng = random.Random(seed)
    sentences = sentences or SENTENCES
    inputs, starts = encode_words(tokenizer, sentences)
    width = max(len(s) for s in sentences)

    labels = torch.full_like(inputs["input_ids"], -100)
    word_starts = torch.zeros(len(sentences), width, dtype=torch.long)
    word_mask = torch.zeros(len(sentences), width, dtype=torch.bool)
    heads = torch.full((len(sentences), width), -100, dtype=torch.long)
    rels = torch.full((len(sentences), width), -100, dtype=torch.long)
    for row, first in enumerate(starts):
        n = len(first)
        word_starts[row, :n] = torch.tensor(first)
        word_mask[row, :n] = True
        root = rng.randrange(n) + 1
        for word in range(1, n + 1):  # a random tree: each word attaches to an earlier-built one
            heads[row, word - 1] = (
                0 if word == root else (root if word < root else rng.randrange(root, word))
            )
            rels[row, word - 1] = rng.randrange(NUM_RELS)
            labels[row, first[word - 1]] = rng.randrange(NUM_TAGS)
    return {
        "ner": {**inputs, "labels": labels},
        "deps": {
            **inputs,
            "word_starts": word_starts,
            "word_mask": word_mask,
            "heads": heads,
            "deprels": rels,
        },
        "topic": {
            **inputs,
            "labels": torch.tensor([rng.randrange(NUM_CLASSES) for _ in sentences]),
        },
    }


@pytest.fixture
def batches(tiny_encoder: Callable[..., EncoderBundle]) -> dict[str, dict[str, torch.Tensor]]:
    """Return labelled batches for the three contract tasks."""
    return make_batches(tiny_encoder().tokenizer)


@pytest.fixture
def three_tasks() -> list[HeadSpec]:
    """Return the contract's three tasks: tagging with CRF, parsing, sentence classification."""
    return list(THREE_TASKS)


@pytest.fixture
def batch_maker() -> Callable[..., dict[str, dict[str, torch.Tensor]]]:
    """Return :func:`make_batches` (test modules cannot import conftest under importlib mode)."""
    return make_batches


@pytest.fixture
def word_encoder() -> Callable[..., tuple[dict[str, torch.Tensor], list[list[int]]]]:
    """Return :func:`encode_words`."""
    return encode_words
