"""From words to model inputs: subword alignment, dependency heads, QA windows, MLM masking.

Every encoder here uses a Hugging Face *fast* tokenizer (offsets and word ids come from it).
Conventions (what the heads in :mod:`taskgraph.models` expect):

- **token tagging**: a word's label sits on its *first* subword; other subwords and special
  tokens get ``-100`` (ignored by the loss), after Devlin et al. 2019 (BERT, section 5.3).
- **dependency parsing**: ``word_starts[i]`` is the position of word ``i``'s first subword;
  ``heads[i]`` is 0 for the root (the ``[CLS]`` vector stands for ROOT) and ``1..n`` for words.
- **extractive QA**: question + context windows of at most ``max_length`` tokens overlapping by
  ``doc_stride`` tokens (Hugging Face's ``stride``, as in its ``run_qa.py``); the answer's
  start/end token positions, or 0 (``[CLS]``) when the question is unanswerable or the answer is
  not wholly inside the window.
- **masked LM**: 15% of the non-special tokens are chosen; 80% of those become ``[MASK]``, 10% a
  random token, 10% stay (Devlin et al. 2019); labels are ``-100`` elsewhere.

Words cut off by ``max_length`` are counted (``truncated_words``, and the examples that lost any
in ``truncated_examples``) so the trainer can report them; for tagging and parsing their
predictions fall back to a default label at scoring time.  For classification a word is one
of the tokenizer's pre-tokenized words, counted when any of its subwords is cut.  No torch here: features are
plain lists and numpy arrays; :mod:`taskgraph.training` pads them into tensors.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from taskgraph.errors import ConfigError
from taskgraph.tasks.types import (
    Example,
    ParsedSentence,
    QAExample,
    TaggedSentence,
    TaskDef,
    TaskType,
    TextExample,
)

__all__ = [
    "IGNORE_INDEX",
    "EncodedSplit",
    "encode_classification",
    "encode_examples",
    "encode_masked_lm",
    "encode_parsing",
    "encode_qa",
    "encode_tagging",
    "mask_tokens",
    "tokenizer_fingerprint",
]

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
    inputs = input_ids.copy()
    chosen = (rng.random(inputs.shape) < probability) & (special_tokens_mask == 0)
    labels = np.where(chosen, inputs, IGNORE_INDEX)
    draw = rng.random(inputs.shape)
    to_mask = chosen & (draw < 0.8)
    to_random = chosen & (draw >= 0.8) & (draw < 0.9)
    inputs[to_mask] = mask_token_id
    inputs[to_random] = rng.integers(0, vocab_size, size=int(to_random.sum()))
    return inputs, labels


def _label_id(label_to_id: Mapping[str, int], label: str) -> int:
    try:
        return label_to_id[label]
    except KeyError:
        known = ", ".join(sorted(label_to_id)[:20])
        raise ConfigError(
            f"label {label!r} is not in the task's label vocabulary (known: {known}"
            f"{', ...' if len(label_to_id) > 20 else ''})"
        ) from None


def encode_examples(
    task: TaskDef,
    examples: Sequence[Example],
    tokenizer: Any,
    *,
    labels: Sequence[str] | None,
    max_length: int,
    doc_stride: int = 128,
) -> EncodedSplit:
    """Return the features of ``examples`` for ``task``'s type (dispatches on ``task.type``).

    ``labels`` is the task's label vocabulary (tags, dependency relations or classes; ``None``
    for QA and masked LM); a label's id is its index there.
    """
    label_to_id = {label: i for i, label in enumerate(labels)} if labels is not None else None
    kind = task.type
    if kind in (TaskType.TOKEN_TAGGING, TaskType.DEPENDENCY_PARSING) and label_to_id is None:
        raise ConfigError(f"task {task.name!r}: a label vocabulary is needed for {kind.value}")
    if kind is TaskType.TOKEN_TAGGING:
        return encode_tagging(
            _typed(examples, TaggedSentence, task),
            tokenizer,
            label_to_id=label_to_id or {},
            max_length=max_length,
        )
    if kind is TaskType.DEPENDENCY_PARSING:
        return encode_parsing(
            _typed(examples, ParsedSentence, task),
            tokenizer,
            deprel_to_id=label_to_id or {},
            max_length=max_length,
        )
    if kind is TaskType.EXTRACTIVE_QA:
        return encode_qa(
            _typed(examples, QAExample, task),
            tokenizer,
            max_length=max_length,
            # Clamped for the default (128), which short windows cannot take; a doc_stride a
            # spec sets is refused before the study when too large (search.checks).
            doc_stride=min(doc_stride, max_length // 2 - 1),
        )
    if kind is TaskType.MASKED_LM:
        return encode_masked_lm(
            _typed(examples, TextExample, task), tokenizer, max_length=max_length
        )
    return encode_classification(
        _typed(examples, TextExample, task),
        tokenizer,
        label_to_id=label_to_id,
        max_length=max_length,
    )


def _typed(examples: Sequence[Example], kind: type, task: TaskDef) -> list[Any]:
    for example in examples:
        if not isinstance(example, kind):
            raise ConfigError(
                f"task {task.name!r} ({task.type.value}) expects {kind.__name__} examples, "
                f"got {type(example).__name__}"
            )
    return list(examples)
