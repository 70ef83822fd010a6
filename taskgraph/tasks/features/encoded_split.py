"""What every encoder shares: the ``EncodedSplit`` it returns, ``IGNORE_INDEX``, the tokenizer
fingerprint that keys feature caches, and the fast-tokenizer and label-vocabulary checks."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from taskgraph.errors import ConfigError
from taskgraph.tasks.types import TaskType

IGNORE_INDEX = -100  # the label value torch's cross-entropy ignores

Feature = dict[str, Any]


@dataclass
class EncodedSplit:
    """Model inputs of one task split, one *feature* per model input sequence.

    ``example_index[f]`` is the example feature ``f`` came from (QA windows map many to one).
    ``meta[f]`` holds what decoding needs but the model does not: ``n_words`` for tagging and
    parsing (before truncation), ``offsets`` (character spans of context tokens, ``None`` elsewhere) for QA.
    """

    task_type: TaskType
    features: list[Feature]
    example_index: list[int]
    n_examples: int
    meta: list[Feature] = field(default_factory=list)
    truncated_words: int = 0
    truncated_examples: int = 0

    def __len__(self) -> int:
        return len(self.features)


# id(tokenizer) -> (tokenizer, fingerprint); the tokenizer is kept so its id is never reused
_FINGERPRINTS: dict[int, tuple[Any, str]] = {}


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """Return a sha256 of what decides a fast tokenizer's output (vocabulary, rules, specials).

    Feature caches are keyed by it: two tokenizers with the same fingerprint encode every
    text the same way, whatever directory they were loaded from.
    """
    entry = _FINGERPRINTS.get(id(tokenizer))
    if entry is None or entry[0] is not tokenizer:
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is not None:
            # Truncation and padding are set by each call (max_length is part of a cache key
            # anyway), so they are left out: a used and a fresh tokenizer agree.
            config = json.loads(backend.to_str())
            config.pop("truncation", None)
            config.pop("padding", None)
            state = json.dumps(config, sort_keys=True)
        else:
            state = repr(sorted(tokenizer.get_vocab().items()))
        parts = [
            type(tokenizer).__name__,
            state,
            repr(sorted(tokenizer.special_tokens_map.items())),
            str(getattr(tokenizer, "padding_side", "")),
            str(getattr(tokenizer, "truncation_side", "")),
        ]
        digest = hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()
        entry = _FINGERPRINTS[id(tokenizer)] = (tokenizer, digest)
    return entry[1]


def _require_fast(tokenizer: Any) -> None:
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(
            f"tokenizer {type(tokenizer).__name__} is not a fast tokenizer; word alignment and "
            "answer offsets need one (load it with use_fast=True)"
        )


def _label_id(label_to_id: Mapping[str, int], label: str) -> int:
    try:
        return label_to_id[label]
    except KeyError:
        known = ", ".join(sorted(label_to_id)[:20])
        raise ConfigError(
            f"label {label!r} is not in the task's label vocabulary (known: {known}"
            f"{', ...' if len(label_to_id) > 20 else ''})"
        ) from None
