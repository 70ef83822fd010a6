"""Words to model inputs, checked by hand against the real all-MiniLM-L6-v2 tokenizer."""

from __future__ import annotations

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


@pytest.fixture(scope="module")
def tok():  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    from taskgraph.models.encoders import minilm_path

    return AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True)


TAGS = {"O": 0, "B-LOC": 1, "I-LOC": 2}


def test_tagging_label_on_first_subword(tok) -> None:  # type: ignore[no-untyped-def]
    # [CLS] mer ##hab ##a dun ##ya istanbul [SEP]
    sentence = TaggedSentence(("Merhaba", "dünya", "İstanbul"), ("O", "B-LOC", "I-LOC"))
    encoded = encode_tagging([sentence], tok, label_to_id=TAGS, max_length=32)
    feature = encoded.features[0]
    assert tok.convert_ids_to_tokens(feature["input_ids"]) == [
        "[CLS]",
        "mer",
        "##hab",
        "##a",
        "dun",
        "##ya",
        "istanbul",
        "[SEP]",
    ]
    assert feature["labels"] == [X, 0, X, X, 1, X, 2, X]
    assert feature["word_starts"] == [1, 4, 6]
    assert encoded.truncated_words == 0


def test_tagging_truncation_is_counted(tok) -> None:  # type: ignore[no-untyped-def]
    sentence = TaggedSentence(("Merhaba", "dünya", "İstanbul", "x"), ("O", "B-LOC", "I-LOC", "O"))
    encoded = encode_tagging([sentence], tok, label_to_id=TAGS, max_length=6)
    # [CLS] mer ##hab ##a dun [SEP]: "dünya" keeps its first subword, two words are cut
    assert encoded.features[0]["labels"] == [X, 0, X, X, 1, X]
    assert encoded.truncated_words == 2
    assert encoded.truncated_examples == 1
    assert encoded.meta[0]["n_words"] == 4


def test_word_without_subwords_becomes_unk(tok) -> None:  # type: ignore[no-untyped-def]
    sentence = TaggedSentence(("a", "\u200b", "b"), ("O", "B-LOC", "O"))
    feature = encode_tagging([sentence], tok, label_to_id=TAGS, max_length=16).features[0]
    assert tok.convert_ids_to_tokens(feature["input_ids"]) == ["[CLS]", "a", "[UNK]", "b", "[SEP]"]
    assert feature["labels"] == [X, 0, 1, 0, X]


@pytest.mark.parametrize("final", ["\u0301", "\u00ad", "\ufe0f"])
def test_sentence_final_word_without_subwords_becomes_unk(tok, final: str) -> None:  # type: ignore[no-untyped-def]
    sentence = TaggedSentence(("a", "b", final), ("O", "O", "B-LOC"))
    encoded = encode_tagging([sentence], tok, label_to_id=TAGS, max_length=16)
    feature = encoded.features[0]
    assert tok.convert_ids_to_tokens(feature["input_ids"]) == ["[CLS]", "a", "b", "[UNK]", "[SEP]"]
    assert feature["labels"] == [X, 0, 0, 1, X]
    assert (encoded.truncated_examples, encoded.truncated_words) == (0, 0)
    # an empty word after the cut is still cut, and counted
    cut = TaggedSentence(("Merhaba", "dünya", final), ("O", "B-LOC", "O"))
    encoded = encode_tagging([cut], tok, label_to_id=TAGS, max_length=6)
    assert encoded.features[0]["word_starts"] == [1, 4]
    assert (encoded.truncated_examples, encoded.truncated_words) == (1, 1)


def test_parsing_word_starts_heads_and_truncated_heads(tok) -> None:  # type: ignore[no-untyped-def]
    sentence = ParsedSentence(
        tokens=("Merhaba", "dünya", "güzel"),
        heads=(0, 1, 2),
        deprels=("root", "obj", "amod"),
        upos=("INTJ", "NOUN", "ADJ"),
    )
    rels = {"amod": 0, "obj": 1, "root": 2}
    full = encode_parsing([sentence], tok, deprel_to_id=rels, max_length=32).features[0]
    # [CLS] mer ##hab ##a dun ##ya gu ##zel [SEP]
    assert full["word_starts"] == [1, 4, 6]
    assert full["heads"] == [0, 1, 2]
    assert full["deprels"] == [2, 1, 0]
    # Cut after "dun": two words kept; the third word is gone, nothing points past word 2.
    cut = encode_parsing([sentence], tok, deprel_to_id=rels, max_length=6)
    assert cut.features[0]["word_starts"] == [1, 4]
    assert cut.features[0]["heads"] == [0, 1]
    assert cut.truncated_words == 1
    # A kept word whose head was cut is not trained on.
    backwards = ParsedSentence(
        ("Merhaba", "dünya", "güzel"), (3, 3, 0), ("obj", "obj", "root"), ("X", "X", "X")
    )
    cut = encode_parsing([backwards], tok, deprel_to_id=rels, max_length=6).features[0]
    assert cut["heads"] == [X, X]
    assert cut["deprels"] == [X, X]


CONTEXT = "The cat sat on the mat. Then it slept in the warm sun all day long."


def _qa(answerable: bool = True) -> QAExample:
    answers = (Answer("the mat", CONTEXT.index("the mat")),) if answerable else ()
    return QAExample(
        id="q1",
        question="Where did the cat sit?",
        context=CONTEXT,
        answers=answers,
        is_impossible=not answerable,
    )


def test_qa_windows_and_answer_positions(tok) -> None:  # type: ignore[no-untyped-def]
    encoded = encode_qa([_qa()], tok, max_length=16, doc_stride=4, max_query_length=8)
    assert encoded.example_index == [0] * len(encoded.features) and len(encoded.features) == 5
    positions = [(f["start_positions"], f["end_positions"]) for f in encoded.features]
    # window 0: [CLS] where did the cat sit ? [SEP] the cat sat on the mat . [SEP]
    # window 1: ... [SEP] on the mat . then it slept [SEP]; later windows lack "the mat"
    assert positions == [(12, 13), (9, 10), (0, 0), (0, 0), (0, 0)]
    for feature, meta in zip(encoded.features, encoded.meta, strict=True):
        s, e = feature["start_positions"], feature["end_positions"]
        if s:
            assert CONTEXT[meta["offsets"][s][0] : meta["offsets"][e][1]] == "the mat"
        assert feature["token_type_ids"][0] == 0
        assert all(o is None for o in meta["offsets"][:8])  # question and specials


def test_qa_unanswerable_maps_to_cls(tok) -> None:  # type: ignore[no-untyped-def]
    encoded = encode_qa([_qa(answerable=False)], tok, max_length=64, doc_stride=16)
    assert [(f["start_positions"], f["end_positions"]) for f in encoded.features] == [(0, 0)]


def test_qa_stride_must_leave_room(tok) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="doc_stride"):
        encode_qa([_qa()], tok, max_length=16, doc_stride=8)


def test_qa_long_question_leaves_more_than_stride_for_the_context(tok) -> None:  # type: ignore[no-untyped-def]
    # A question of max_length // 2 = 32 tokens left 64 - 3 - 32 < doc_stride context tokens:
    # the fast tokenizer panicked (a BaseException that escaped train_trial's handlers).
    long_question = QAExample(
        id="q2",
        question="why " * 40 + "did the cat sit?",
        context=CONTEXT,
        answers=(Answer("the mat", CONTEXT.index("the mat")),),
        is_impossible=False,
    )
    encoded = encode_qa([long_question], tok, max_length=64, doc_stride=30, max_query_length=32)
    for feature, meta in zip(encoded.features, encoded.meta, strict=True):
        assert len(feature["input_ids"]) <= 64
        question_tokens = feature["token_type_ids"].index(1) - 2  # minus [CLS] and [SEP]
        assert question_tokens == 64 - 3 - 30 - 1
        s, e = feature["start_positions"], feature["end_positions"]
        if s:
            assert CONTEXT[meta["offsets"][s][0] : meta["offsets"][e][1]] == "the mat"
    assert any(f["start_positions"] for f in encoded.features)


def test_qa_long_question_keeps_windows_advancing(tok) -> None:  # type: ignore[no-untyped-def]
    # With the question capped at half the window, the largest stride below max_length / 2
    # left windows advancing one token at a time (one question over 300 words: 769 windows).
    context = " ".join(["the cat sat on the mat"] * 50)
    question = QAExample(
        id="q3", question="why " * 200, context=context, answers=(), is_impossible=True
    )
    encoded = encode_qa([question], tok, max_length=128, doc_stride=63)
    n_context = len(tok(context, add_special_tokens=False)["input_ids"])
    # Each window advances by at least max_length / 4 - 3 tokens of context.
    assert len(encoded.features) <= n_context // (128 // 4 - 3) + 1
    question_tokens = encoded.features[0]["token_type_ids"].index(1) - 2
    assert question_tokens == 128 // 4


def test_classification_pairs_and_unlabeled_rows(tok) -> None:  # type: ignore[no-untyped-def]
    rows = [TextExample("a cat", "a dog", "yes"), TextExample("x", "y", None)]
    encoded = encode_classification(rows, tok, label_to_id={"no": 0, "yes": 1}, max_length=16)
    first = encoded.features[0]
    assert tok.convert_ids_to_tokens(first["input_ids"]) == [
        "[CLS]",
        "a",
        "cat",
        "[SEP]",
        "a",
        "dog",
        "[SEP]",
    ]
    assert first["token_type_ids"] == [0, 0, 0, 0, 1, 1, 1]
    assert first["labels"] == 1
    assert "labels" not in encoded.features[1]
    with pytest.raises(ConfigError, match="'maybe'"):
        encode_classification(
            [TextExample("a", label="maybe")], tok, label_to_id={"no": 0}, max_length=8
        )


def test_classification_truncation_is_counted(tok) -> None:  # type: ignore[no-untyped-def]
    pairs = [
        TextExample("The cat sat on the mat.", "Merhaba dünya güzel", "yes"),
        TextExample("a cat", "a dog", "no"),
    ]
    encoded = encode_classification(pairs, tok, label_to_id={"no": 0, "yes": 1}, max_length=10)
    # [CLS] the cat sat [SEP] mer ##hab ##a dun [SEP]: "on the mat ." go, "dünya" loses a
    # subword and "güzel" goes
    assert tok.convert_ids_to_tokens(encoded.features[0]["input_ids"])[4:6] == ["[SEP]", "mer"]
    assert (encoded.truncated_examples, encoded.truncated_words) == (1, 6)
    singles = [TextExample("Merhaba dünya güzel"), TextExample("Merhaba dünya")]
    cut = encode_classification(singles, tok, label_to_id=None, max_length=7)
    # the second sentence fills all 7 tokens without losing any
    assert [len(f["input_ids"]) for f in cut.features] == [7, 7]
    assert (cut.truncated_examples, cut.truncated_words) == (1, 1)


def test_mask_tokens_80_10_10_and_never_special() -> None:
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 2000, size=(200, 500))
    special = np.zeros_like(ids)
    special[:, 0] = special[:, -1] = 1
    masked, labels = mask_tokens(
        ids, special, mask_token_id=103, vocab_size=30522, rng=np.random.default_rng(1)
    )
    chosen = labels != X
    assert not chosen[:, 0].any() and not chosen[:, -1].any()
    assert abs(chosen.mean() - 0.15 * 498 / 500) < 0.005
    assert (labels[chosen] == ids[chosen]).all()
    as_mask = (masked == 103) & chosen
    unchanged = (masked == ids) & chosen
    assert abs(as_mask.sum() / chosen.sum() - 0.8) < 0.01
    assert abs(unchanged.sum() / chosen.sum() - 0.1) < 0.01  # (random hits of the same id: ~0)
    assert (masked[~chosen] == ids[~chosen]).all()


def test_masked_lm_features_keep_special_mask(tok) -> None:  # type: ignore[no-untyped-def]
    feature = encode_masked_lm([TextExample("a cat")], tok, max_length=8).features[0]
    assert feature["special_tokens_mask"] == [1, 0, 0, 1]


def test_encode_examples_dispatches_and_checks_types(tok) -> None:  # type: ignore[no-untyped-def]
    task = TaskDef(
        name="t",
        type=TaskType.TOKEN_TAGGING,
        format="iob",
        dataset="d",
        splits={"train": SplitSource("x")},
        label_field="ner",
        metrics=("f1",),
    )
    sentence = TaggedSentence(("a",), ("O",))
    encoded = encode_examples(task, [sentence], tok, labels=["O"], max_length=8)
    assert encoded.features[0]["labels"] == [X, 0, X]
    with pytest.raises(ConfigError, match="expects TaggedSentence"):
        encode_examples(task, [TextExample("a")], tok, labels=["O"], max_length=8)
    with pytest.raises(ConfigError, match="label vocabulary"):
        encode_examples(task, [sentence], tok, labels=None, max_length=8)
