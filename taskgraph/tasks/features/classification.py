"""Sentence(-pair) classification features, with the words truncation cut off counted."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from taskgraph.errors import ConfigError
from taskgraph.tasks.features.encoded_split import EncodedSplit, Feature, _label_id
from taskgraph.tasks.types import TaskType, TextExample


def encode_classification(
    examples: Sequence[TextExample],
    tokenizer: Any,
    *,
    label_to_id: Mapping[str, int] | None,
    max_length: int,
) -> EncodedSplit:
    """Return sentence(-pair) classification features (``labels`` omitted for unlabeled rows)."""
    firsts = [e.text for e in examples]
    pairs = [e.text_pair for e in examples]
    has_pairs = any(p is not None for p in pairs)
    if has_pairs and any(p is None for p in pairs):
        raise ConfigError("a classification split mixes single sentences and sentence pairs")
    batch = (
        tokenizer(firsts, pairs, truncation="longest_first", max_length=max_length)
        if has_pairs
        else tokenizer(firsts, truncation=True, max_length=max_length)
    )
    features: list[Feature] = []
    truncated_words = truncated_examples = 0
    for i, example in enumerate(examples):
        feature: Feature = {"input_ids": batch["input_ids"][i]}
        if has_pairs and "token_type_ids" in batch:
            feature["token_type_ids"] = batch["token_type_ids"][i]
        if example.label is not None and label_to_id is not None:
            feature["labels"] = _label_id(label_to_id, example.label)
        features.append(feature)
        if len(feature["input_ids"]) >= max_length:  # only a full-length row can have been cut
            cut = _cut_words(tokenizer, batch, i, example)
            truncated_words += cut
            truncated_examples += cut > 0
    return EncodedSplit(
        task_type=TaskType.SENTENCE_PAIR_CLASSIFICATION
        if has_pairs
        else TaskType.SENTENCE_CLASSIFICATION,
        features=features,
        example_index=list(range(len(examples))),
        n_examples=len(examples),
        meta=[{} for _ in examples],
        truncated_words=truncated_words,
        truncated_examples=truncated_examples,
    )


def _cut_words(tokenizer: Any, batch: Any, index: int, example: TextExample) -> int:
    """Return how many words of ``example`` truncation cut off, wholly or in part (0 if none).

    Words are the tokenizer's pre-tokenized words (its ``word_ids``); a slow tokenizer has
    none, so its cut tokens are counted instead.
    """
    full = tokenizer(example.text, example.text_pair, truncation=False, verbose=False)
    if len(full["input_ids"]) <= len(batch["input_ids"][index]):
        return 0
    if not getattr(tokenizer, "is_fast", False):
        return len(full["input_ids"]) - len(batch["input_ids"][index])
    whole = Counter(zip(full.sequence_ids(), full.word_ids(), strict=True))
    kept = Counter(zip(batch.sequence_ids(index), batch.word_ids(index), strict=True))
    return sum(1 for word, n in whole.items() if word[1] is not None and kept[word] < n)
