"""Extractive QA features: question + context windows with the answer's token span."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from taskgraph.errors import ConfigError
from taskgraph.tasks.features.encoded_split import EncodedSplit, Feature, _require_fast
from taskgraph.tasks.types import QAExample, TaskType


def encode_qa(
    examples: Sequence[QAExample],
    tokenizer: Any,
    *,
    max_length: int,
    doc_stride: int,
    max_query_length: int | None = None,
) -> EncodedSplit:
    """Return QA windows: question + a slice of the context, with the answer's token span.

    ``doc_stride`` is the number of context tokens consecutive windows share.  The start/end
    positions are 0 (``[CLS]``) when the question is unanswerable or the first gold answer is
    not wholly inside the window.  ``meta[f]["offsets"]`` maps each context token to its
    character span (``None`` for question and special tokens), for decoding.
    """
    _require_fast(tokenizer)
    if doc_stride >= max_length // 2:
        raise ConfigError(
            f"`doc_stride` must be < max_length / 2 ({max_length // 2}), but got {doc_stride}"
        )
    # A quarter of the window by default (run_qa.py: 64 of 384): with a stride just below
    # max_length / 2, a question of half the window would leave windows that advance by one
    # token (hundreds of windows for one long question); a quarter keeps each step at
    # about max_length / 4 tokens.
    query_cap = max_query_length if max_query_length is not None else max_length // 4
    # The tokenizer panics (a BaseException) unless every window keeps more than doc_stride
    # context tokens, so the question may use at most what is left after those and the
    # special tokens.
    room = max_length - tokenizer.num_special_tokens_to_add(pair=True) - doc_stride - 1
    if room < 1:
        raise ConfigError(
            f"`max_length` {max_length} leaves no room for a question beside "
            f"doc_stride={doc_stride} context tokens"
        )
    query_cap = min(query_cap, room)
    questions = []
    for example in examples:
        # Long questions would leave no room for the context; keep their first tokens, cut
        # at a character offset so that the kept text re-tokenizes to at most query_cap tokens.
        question = example.question.lstrip()
        encoded = tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)
        keep = query_cap
        while len(encoded["input_ids"]) > query_cap and keep > 0:
            question = question[: encoded["offset_mapping"][keep - 1][1]]
            encoded = tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)
            keep -= 1  # a BPE cut inside a word can re-tokenize longer: cut one more
        questions.append(question)
    batch = tokenizer(
        questions,
        [e.context for e in examples],
        truncation="only_second",
        max_length=max_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    mapping = batch["overflow_to_sample_mapping"]
    features: list[Feature] = []
    meta: list[Feature] = []
    for f, example_id in enumerate(mapping):
        example = examples[example_id]
        sequence_ids = batch.sequence_ids(f)
        offsets = batch["offset_mapping"][f]
        context_offsets: list[tuple[int, int] | None] = [
            (int(o[0]), int(o[1])) if s == 1 else None
            for o, s in zip(offsets, sequence_ids, strict=True)
        ]
        start_position = end_position = 0
        if not example.is_impossible and example.answers:
            answer = example.answers[0]
            start_char, end_char = answer.start, answer.start + len(answer.text)
            spans = [(i, o) for i, o in enumerate(context_offsets) if o is not None]
            if spans and spans[0][1][0] <= start_char and spans[-1][1][1] >= end_char:
                start_position = next(i for i, (s, e) in spans if e > start_char)
                end_position = next(i for i, (s, e) in reversed(spans) if s < end_char)
        feature: Feature = {
            "input_ids": batch["input_ids"][f],
            "start_positions": start_position,
            "end_positions": end_position,
        }
        if "token_type_ids" in batch:
            feature["token_type_ids"] = batch["token_type_ids"][f]
        features.append(feature)
        meta.append({"offsets": context_offsets})
    return EncodedSplit(
        task_type=TaskType.EXTRACTIVE_QA,
        features=features,
        example_index=list(mapping),
        n_examples=len(examples),
        meta=meta,
    )
