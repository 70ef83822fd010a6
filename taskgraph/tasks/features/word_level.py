"""Word-level features: tagging and dependency parsing, aligned on each word's first subword."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from taskgraph.tasks.features.encoded_split import (
    IGNORE_INDEX,
    EncodedSplit,
    Feature,
    _label_id,
    _require_fast,
)
from taskgraph.tasks.types import ParsedSentence, TaggedSentence, TaskType


def _encode_words(
    tokenizer: Any, sentences: Sequence[Sequence[str]], max_length: int
) -> list[tuple[list[int], list[int | None]]]:
    """Return (input_ids, word_ids) per sentence; words with no subword become ``[UNK]``."""
    words = [list(s) for s in sentences]
    batch = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length)
    out: list[tuple[list[int], list[int | None]]] = []
    for i, sentence in enumerate(words):
        word_ids = batch.word_ids(i)
        present = {w for w in word_ids if w is not None}
        last = max(present, default=-1)
        empty = [w for w in range(last + 1) if w not in present]
        # A word after the last one present was cut by max_length or tokenizes to nothing
        # (a sentence-final U+0301 or soft hyphen); only tokenizing it alone tells which.
        after = sentence[last + 1 :]
        if after:
            alone = tokenizer(after, add_special_tokens=False)["input_ids"]
            empty += [last + 1 + w for w, ids in enumerate(alone) if not ids]
        if empty:
            # A word that tokenizes to nothing (a lone control or combining character) would
            # lose its label; [UNK] keeps every word visible to the model.
            fixed = [tokenizer.unk_token if w in empty else t for w, t in enumerate(sentence)]
            single = tokenizer(
                [fixed], is_split_into_words=True, truncation=True, max_length=max_length
            )
            out.append((single["input_ids"][0], single.word_ids(0)))
        else:
            out.append((batch["input_ids"][i], word_ids))
    return out


def _first_subwords(word_ids: Sequence[int | None]) -> list[int]:
    """Return, for each word present, the position of its first subword (in word order)."""
    starts: list[int] = []
    previous: int | None = None
    for position, word in enumerate(word_ids):
        if word is not None and word != previous:
            starts.append(position)
        previous = word
    return starts


#: a sentence of words: tagged (tagging) or parsed (parsing)
_Sentence = TypeVar("_Sentence", TaggedSentence, ParsedSentence)


def _encode_sentences(
    sentences: Sequence[_Sentence],
    tokenizer: Any,
    *,
    max_length: int,
    task_type: TaskType,
    sentence_feature: Callable[[_Sentence, list[int], list[int]], Feature],
) -> EncodedSplit:
    """Return the features of word-level ``sentences``: ``sentence_feature(sentence,
    input_ids, starts)`` gives a sentence's feature from its first-subword positions
    (``starts``, one per word kept); the words cut by ``max_length`` are counted."""
    _require_fast(tokenizer)
    encoded = _encode_words(tokenizer, [s.tokens for s in sentences], max_length)
    features: list[Feature] = []
    meta: list[Feature] = []
    truncated_words = truncated_examples = 0
    for sentence, (input_ids, word_ids) in zip(sentences, encoded, strict=True):
        starts = _first_subwords(word_ids)
        features.append(sentence_feature(sentence, input_ids, starts))
        missing = len(sentence.tokens) - len(starts)
        truncated_words += missing
        truncated_examples += missing > 0
        meta.append({"n_words": len(sentence.tokens)})
    return EncodedSplit(
        task_type=task_type,
        features=features,
        example_index=list(range(len(sentences))),
        n_examples=len(sentences),
        meta=meta,
        truncated_words=truncated_words,
        truncated_examples=truncated_examples,
    )


def encode_tagging(
    sentences: Sequence[TaggedSentence],
    tokenizer: Any,
    *,
    label_to_id: Mapping[str, int],
    max_length: int,
) -> EncodedSplit:
    """Return token-tagging features: each word's label on its first subword, -100 elsewhere."""

    def tagged(sentence: TaggedSentence, input_ids: list[int], starts: list[int]) -> Feature:
        labels = [IGNORE_INDEX] * len(input_ids)
        for word, position in enumerate(starts):
            labels[position] = _label_id(label_to_id, sentence.tags[word])
        # word_starts lets a CRF head find the words without looking at the gold labels.
        return {"input_ids": input_ids, "labels": labels, "word_starts": starts}

    return _encode_sentences(
        sentences, tokenizer, max_length=max_length, task_type=TaskType.TOKEN_TAGGING,
        sentence_feature=tagged,
    )  # fmt: skip


def encode_parsing(
    sentences: Sequence[ParsedSentence],
    tokenizer: Any,
    *,
    deprel_to_id: Mapping[str, int],
    max_length: int,
) -> EncodedSplit:
    """Return dependency-parsing features: first-subword positions, heads (0 = ROOT) and labels.

    A kept word whose head was truncated away gets ``-100`` for head and label (not trained on).
    """

    def parsed(sentence: ParsedSentence, input_ids: list[int], starts: list[int]) -> Feature:
        kept = len(starts)
        heads: list[int] = []
        deprels: list[int] = []
        for word in range(kept):
            head = sentence.heads[word]
            if head > kept:
                heads.append(IGNORE_INDEX)
                deprels.append(IGNORE_INDEX)
            else:
                heads.append(head)
                deprels.append(_label_id(deprel_to_id, sentence.deprels[word]))
        return {"input_ids": input_ids, "word_starts": starts, "heads": heads, "deprels": deprels}

    return _encode_sentences(
        sentences, tokenizer, max_length=max_length, task_type=TaskType.DEPENDENCY_PARSING,
        sentence_feature=parsed,
    )  # fmt: skip
