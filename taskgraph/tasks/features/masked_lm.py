"""Masked-LM features and BERT's 80/10/10 masking, drawn per batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from taskgraph.errors import ConfigError
from taskgraph.tasks.features.encoded_split import IGNORE_INDEX, EncodedSplit
from taskgraph.tasks.types import TaskType, TextExample


def encode_masked_lm(
    examples: Sequence[TextExample], tokenizer: Any, *, max_length: int
) -> EncodedSplit:
    """Return masked-LM features: token ids and the special-token mask (masking is per batch)."""
    batch = tokenizer(
        [e.text for e in examples],
        truncation=True,
        max_length=max_length,
        return_special_tokens_mask=True,
    )
    features = [
        {"input_ids": ids, "special_tokens_mask": special}
        for ids, special in zip(batch["input_ids"], batch["special_tokens_mask"], strict=True)
    ]
    return EncodedSplit(
        task_type=TaskType.MASKED_LM,
        features=features,
        example_index=list(range(len(examples))),
        n_examples=len(examples),
        meta=[{} for _ in examples],
    )


def mask_tokens(
    input_ids: np.ndarray,
    special_tokens_mask: np.ndarray,
    *,
    mask_token_id: int,
    vocab_size: int,
    rng: np.random.Generator,
    probability: float = 0.15,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (masked input ids, labels) after BERT's 80/10/10 scheme; labels -100 elsewhere.

    ``special_tokens_mask`` is 1 for special and padding tokens, which are never chosen.
    """
    if not 0.0 < probability < 1.0:
        raise ConfigError(f"`probability` must be in (0, 1), but got {probability}")
    chosen = (rng.random(input_ids.shape) < probability) & (special_tokens_mask == 0)
    return corrupt(input_ids, chosen, mask_token_id=mask_token_id, vocab_size=vocab_size, rng=rng)


def corrupt(
    input_ids: np.ndarray,
    chosen: np.ndarray,
    *,
    mask_token_id: int,
    vocab_size: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (inputs, labels): BERT's 80/10/10 corruption of the ``chosen`` positions."""
    inputs = input_ids.copy()
    labels = np.where(chosen, input_ids, IGNORE_INDEX)
    draw = rng.random(inputs.shape)
    to_mask = chosen & (draw < 0.8)
    to_random = chosen & (draw >= 0.8) & (draw < 0.9)
    inputs[to_mask] = mask_token_id
    inputs[to_random] = rng.integers(0, vocab_size, size=int(to_random.sum()))
    return inputs, labels
