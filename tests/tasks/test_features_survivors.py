"""What a mutation audit of the feature encoders found untested: answers on a window's edge,
heads on the last kept word, label ids in vocabulary order, the dispatcher's stride and label
checks, masked-LM truncation, slow tokenizers and the tokenizer fingerprint."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from taskgraph.errors import ConfigError
from taskgraph.tasks.features import (
    IGNORE_INDEX,
    encode_classification,
    encode_examples,
    encode_masked_lm,
    encode_parsing,
    encode_qa,
    encode_tagging,
    mask_tokens,
    tokenizer_fingerprint,
)
from taskgraph.tasks.types import (
    Answer,
    ParsedSentence,
    QAExample,
    SplitSource,
    TaggedSentence,
    TaskDef,
    TaskType,
    TextExample,
)

X = IGNORE_INDEX


def _load_minilm(**options: Any) -> Any:
    from transformers import AutoTokenizer

    from taskgraph.models.encoders import minilm_path

    return AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True, **options)


@pytest.fixture(scope="module")
def tok() -> Any:
    return _load_minilm()


class _SlowTokenizer:
    """The real tokenizer reporting itself as slow (transformers 5 gives MiniLM a fast one only)."""

    is_fast = False

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._tokenizer(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tokenizer, name)


def _task(kind: TaskType) -> TaskDef:
    return TaskDef(
        name="t",
        type=kind,
        format="x",
        dataset="d",
        splits={"train": SplitSource("x")},
        label_field="x",
        metrics=("f1",),
    )


# --- dependency parsing ---------------------------------------------------------------------


def test_a_head_on_the_last_kept_word_is_trained_on(tok: Any) -> None:
    rels = {"amod": 0, "nsubj": 1, "root": 2}
    # "the cat": the last word is the head of the first
    short = ParsedSentence(("the", "cat"), (2, 0), ("amod", "root"), ("DET", "NOUN"))
    feature = encode_parsing([short], tok, deprel_to_id=rels, max_length=16).features[0]
    assert feature["heads"] == [2, 0]
    assert feature["deprels"] == [0, 2]
    # [CLS] mer ##hab ##a dun [SEP]: two words kept; word 1's head is word 2, still there
    cut = ParsedSentence(
        ("Merhaba", "dünya", "güzel"), (2, 0, 2), ("nsubj", "root", "amod"), ("X", "X", "X")
    )
    feature = encode_parsing([cut], tok, deprel_to_id=rels, max_length=6).features[0]
    assert feature["word_starts"] == [1, 4]
    assert feature["heads"] == [2, 0]
    assert feature["deprels"] == [1, 2]


# --- extractive QA --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("context", "answer", "start"),
    [
        # the answer opens the context, so it opens the first window
        ("the mat was red and the cat sat on it all day long in the warm sun", "the mat", 0),
        # the answer closes the context, so it closes the last window
        ("all day long in the warm sun the cat sat on the mat", "the mat", 44),
        # "(" ends where the answer starts and ")" starts where it ends
        ("in the end the cat sat on (the mat) all day long", "the mat", 27),
        # an answer of one character
        ("the cat is 5 years old and it sat on the mat all day", "5", 11),
    ],
)
def test_qa_positions_hold_the_answer_in_every_window_that_contains_it(
    tok: Any, context: str, answer: str, start: int
) -> None:
    assert context[start : start + len(answer)] == answer
    example = QAExample(
        id="q", question="where?", context=context, answers=(Answer(answer, start),)
    )
    encoded = encode_qa([example], tok, max_length=16, doc_stride=4)
    assert len(encoded.features) > 1 and encoded.n_examples == 1
    labelled = 0
    for feature, meta in zip(encoded.features, encoded.meta, strict=True):
        spans = [o for o in meta["offsets"] if o is not None]
        inside = spans[0][0] <= start and spans[-1][1] >= start + len(answer)
        s, e = feature["start_positions"], feature["end_positions"]
        if inside:
            labelled += 1
            assert 0 < s <= e
            assert context[meta["offsets"][s][0] : meta["offsets"][e][1]] == answer
        else:
            assert (s, e) == (0, 0)
    assert labelled


def test_qa_trains_on_the_first_gold_answer(tok: Any) -> None:
    context = "The cat sat on the mat. Then it slept on the sofa."
    answers = (
        Answer("the mat", context.index("the mat")),
        Answer("the sofa", context.index("the sofa")),
    )
    example = QAExample(id="q", question="where?", context=context, answers=answers)
    encoded = encode_qa([example], tok, max_length=64, doc_stride=8)
    feature, meta = encoded.features[0], encoded.meta[0]
    s, e = feature["start_positions"], feature["end_positions"]
    assert 0 < s <= e
    assert context[meta["offsets"][s][0] : meta["offsets"][e][1]] == "the mat"


def test_qa_window_with_no_room_for_a_question_is_refused(tok: Any) -> None:
    example = QAExample(
        id="q",
        question="where did the cat sit?",
        context="The cat sat on the mat.",
        answers=(Answer("the mat", 15),),
    )
    # 6 tokens less 3 specials and doc_stride 2 (the context must keep more than that) leave 0
    with pytest.raises(ConfigError, match="leaves no room for a question"):
        encode_qa([example], tok, max_length=6, doc_stride=2)


def test_encode_examples_uses_the_given_doc_stride(tok: Any) -> None:
    context = "The cat sat on the mat. Then it slept in the warm sun all day long."
    example = QAExample(
        id="q", question="where?", context=context, answers=(Answer("the mat", 15),)
    )
    direct = encode_qa([example], tok, max_length=16, doc_stride=2)
    dispatched = encode_examples(
        _task(TaskType.EXTRACTIVE_QA), [example], tok, labels=None, max_length=16, doc_stride=2
    )
    assert len(dispatched.features) == len(direct.features) > 1
    assert dispatched.features == direct.features


# --- the dispatcher's label vocabulary ------------------------------------------------------


def test_label_ids_follow_the_vocabulary_order(tok: Any) -> None:
    sentence = TaggedSentence(("a", "b", "c"), ("O", "B-LOC", "I-LOC"))
    encoded = encode_examples(
        _task(TaskType.TOKEN_TAGGING),
        [sentence],
        tok,
        labels=["O", "B-LOC", "I-LOC"],
        max_length=16,
    )
    assert encoded.features[0]["labels"] == [X, 0, 1, 2, X]


def test_parsing_without_a_label_vocabulary_is_refused(tok: Any) -> None:
    sentence = ParsedSentence(("a",), (0,), ("root",), ("X",))
    with pytest.raises(ConfigError, match="label vocabulary is needed for dependency_parsing"):
        encode_examples(
            _task(TaskType.DEPENDENCY_PARSING), [sentence], tok, labels=None, max_length=8
        )


def test_unknown_label_message_lists_the_known_labels(tok: Any) -> None:
    many = {f"L{i:02d}": i for i in range(25)}
    sentence = TaggedSentence(("a",), ("B-PER",))
    with pytest.raises(ConfigError) as raised:
        encode_tagging([sentence], tok, label_to_id=many, max_length=8)
    message = str(raised.value)
    assert "'B-PER'" in message
    assert "known: L00, L01," in message and "L19" in message and "L20" not in message
    assert message.endswith(", ...)")
    with pytest.raises(ConfigError, match=r"\(known: O\)$"):
        encode_tagging([sentence], tok, label_to_id={"O": 0}, max_length=8)


# --- classification -------------------------------------------------------------------------


def test_a_split_mixing_single_sentences_and_pairs_is_refused(tok: Any) -> None:
    rows = [TextExample("a cat", "a dog", "yes"), TextExample("a cat", None, "no")]
    for order in (rows, rows[::-1]):
        with pytest.raises(ConfigError, match="mixes single sentences and sentence pairs"):
            encode_classification(order, tok, label_to_id={"no": 0, "yes": 1}, max_length=16)


def test_a_slow_tokenizer_counts_the_tokens_cut(tok: Any) -> None:
    # [CLS] mer ##hab ##a dun ##ya gu ##zel [SEP] cut to 7: two tokens (one word) go
    rows = [TextExample("Merhaba dünya güzel")]
    slow = encode_classification(rows, _SlowTokenizer(tok), label_to_id=None, max_length=7)
    assert (slow.truncated_examples, slow.truncated_words) == (1, 2)
    fast = encode_classification(rows, tok, label_to_id=None, max_length=7)
    assert (fast.truncated_examples, fast.truncated_words) == (1, 1)


def test_word_level_encoders_refuse_a_slow_tokenizer(tok: Any) -> None:
    sentence = TaggedSentence(("a",), ("O",))
    with pytest.raises(ConfigError, match=r"not a fast tokenizer.*use_fast=True"):
        encode_tagging([sentence], _SlowTokenizer(tok), label_to_id={"O": 0}, max_length=8)


# --- masked LM ------------------------------------------------------------------------------


def test_masked_lm_features_are_cut_to_max_length(tok: Any) -> None:
    text = "the cat sat on the mat and then it slept in the warm sun all day long"
    feature = encode_masked_lm([TextExample(text)], tok, max_length=8).features[0]
    assert len(feature["input_ids"]) == 8
    assert tok.convert_ids_to_tokens(feature["input_ids"])[-1] == "[SEP]"
    assert feature["special_tokens_mask"] == [1, 0, 0, 0, 0, 0, 0, 1]


def test_mask_tokens_follows_the_probability_and_refuses_its_bounds() -> None:
    ids = np.random.default_rng(0).integers(1000, 2000, size=(100, 100))
    special = np.zeros_like(ids)
    _, labels = mask_tokens(
        ids,
        special,
        mask_token_id=103,
        vocab_size=30522,
        rng=np.random.default_rng(1),
        probability=0.5,
    )
    assert abs((labels != X).mean() - 0.5) < 0.03
    for probability in (0.0, 1.0):
        with pytest.raises(ConfigError, match="`probability` must be in"):
            mask_tokens(
                ids,
                special,
                mask_token_id=103,
                vocab_size=30522,
                rng=np.random.default_rng(1),
                probability=probability,
            )


# --- tokenizer fingerprint (the feature cache's key) -----------------------------------------


def test_fingerprint_ignores_the_truncation_a_call_left_behind(tok: Any) -> None:
    used = _load_minilm()
    encode_tagging(
        [TaggedSentence(("a", "b", "c"), ("O",) * 3)], used, label_to_id={"O": 0}, max_length=4
    )
    assert tokenizer_fingerprint(used) == tokenizer_fingerprint(_load_minilm())


def test_fingerprint_tells_left_from_right_truncation() -> None:
    left = _load_minilm(truncation_side="left")
    right = _load_minilm()
    # They encode the same text differently, so a cache must not hand one the other's features.
    assert (
        left("a b c d e", truncation=True, max_length=4)["input_ids"]
        != right("a b c d e", truncation=True, max_length=4)["input_ids"]
    )
    assert tokenizer_fingerprint(left) != tokenizer_fingerprint(right)
