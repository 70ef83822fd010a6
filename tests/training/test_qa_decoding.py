"""QA post-processing: logits over windows back to ranked answer strings (HF run_qa rules)."""

from __future__ import annotations

import numpy as np
import pytest

from taskgraph.tasks.features import encode_qa
from taskgraph.tasks.types import Answer, QAExample
from taskgraph.training.qa_decoding import decode_qa

CONTEXT = "The cat sat on the mat. Then it slept in the warm sun all day long."


@pytest.fixture(scope="module")
def tok():  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    from taskgraph.models.encoders import minilm_path

    return AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True)


def _example() -> QAExample:
    return QAExample(
        id="q",
        question="Where did the cat sit?",
        context=CONTEXT,
        answers=(Answer("the mat", CONTEXT.index("the mat")),),
    )


def _logits(encoded, spans, low=-10.0):  # type: ignore[no-untyped-def]
    """Low logits everywhere except the given (feature, start, end, score) spans."""
    width = max(len(f["input_ids"]) for f in encoded.features)
    start = np.full((len(encoded.features), width), low)
    end = np.full((len(encoded.features), width), low)
    for feature, s, e, value in spans:
        start[feature, s] = value
        end[feature, e] = value
    return start, end


def test_best_span_over_windows_then_ranked_alternatives(tok) -> None:  # type: ignore[no-untyped-def]
    encoded = encode_qa([_example()], tok, max_length=16, doc_stride=4, max_query_length=8)
    # window 0 tokens 12..13 = "the mat"; window 1 tokens 9..10 = "the mat" (duplicate text);
    # window 2 token 11 = "slept" (weaker)
    start, end = _logits(encoded, [(0, 12, 13, 5.0), (1, 9, 10, 4.0), (2, 11, 11, 2.0)])
    start[:, 0] = end[:, 0] = -3.0  # null score -6 everywhere
    ranked = decode_qa([_example()], encoded, start, end)[0]
    assert ranked[0] == "the mat"
    assert "slept" in ranked and ranked.index("slept") < ranked.index("")
    assert ranked.count("the mat") == 1


def test_null_answer_wins_by_threshold(tok) -> None:  # type: ignore[no-untyped-def]
    encoded = encode_qa([_example()], tok, max_length=16, doc_stride=4, max_query_length=8)
    start, end = _logits(encoded, [(0, 12, 13, 1.0)])
    start[:, 0] = end[:, 0] = 2.0  # null score 4 > span score 2 in every window
    assert decode_qa([_example()], encoded, start, end)[0][0] == ""
    # a large enough threshold keeps the span
    ranked = decode_qa([_example()], encoded, start, end, null_score_diff_threshold=5.0)[0]
    assert ranked[0] == "the mat"
    # The null score is the minimum over windows: one window with a low null score suffices.
    start[1, 0] = end[1, 0] = -5.0
    assert decode_qa([_example()], encoded, start, end)[0][0] == "the mat"


def test_spans_outside_context_reversed_or_too_long_are_skipped(tok) -> None:  # type: ignore[no-untyped-def]
    encoded = encode_qa([_example()], tok, max_length=16, doc_stride=4, max_query_length=8)
    start, end = _logits(encoded, [(0, 2, 3, 9.0)], low=-np.inf)  # question tokens
    start[0, 13], end[0, 12] = 8.0, 8.0  # reversed
    start[:, 0] = end[:, 0] = 0.0
    assert decode_qa([_example()], encoded, start, end)[0] == [""]
    start, end = _logits(encoded, [(0, 8, 14, 9.0)], low=-np.inf)
    start[0, 12], end[0, 13] = 1.0, 1.0  # "the mat", short enough
    # pairs of {8, 12} x {13, 14}, scored 18, 10, 10, 2; null = -inf comes last
    assert decode_qa([_example()], encoded, start, end)[0] == [
        "The cat sat on the mat.",
        "The cat sat on the mat",
        "the mat.",
        "the mat",
        "",
    ]
    assert decode_qa([_example()], encoded, start, end, max_answer_length=3, allow_null=False)[
        0
    ] == ["the mat.", "the mat"]


def test_logit_count_must_match_features(tok) -> None:  # type: ignore[no-untyped-def]
    encoded = encode_qa([_example()], tok, max_length=16, doc_stride=4, max_query_length=8)
    with pytest.raises(ValueError, match="expected 5"):
        decode_qa([_example()], encoded, np.zeros((2, 16)), np.zeros((2, 16)))


def test_scores_come_with_the_answers_for_merging_snippets(tok) -> None:  # type: ignore[no-untyped-def]
    encoded = encode_qa([_example()], tok, max_length=16, doc_stride=4, max_query_length=8)
    start, end = _logits(encoded, [(0, 12, 13, 5.0), (2, 11, 11, 2.0)])
    start[:, 0] = end[:, 0] = -3.0  # null score -6
    scored = decode_qa([_example()], encoded, start, end, with_scores=True)[0]
    plain = decode_qa([_example()], encoded, start, end)[0]
    assert [text for text, _ in scored] == plain
    # hand-computed: start + end logits of each span, the null score -3 + -3
    assert scored[0] == ("the mat", 10.0)
    assert ("slept", 4.0) in scored and ("", -6.0) in scored
    without_null = decode_qa([_example()], encoded, start, end, allow_null=False, with_scores=True)
    assert without_null[0][:1] == [("the mat", 10.0)] and ("", -6.0) not in without_null[0]


def test_max_answer_length_counts_tokens_inclusively(tok) -> None:  # type: ignore[no-untyped-def]
    encoded = encode_qa([_example()], tok, max_length=16, doc_stride=4, max_query_length=8)
    # window 0: start 12, ends 13 ("the mat", 2 tokens) and 14 ("the mat.", 3 tokens)
    start, end = _logits(encoded, [(0, 12, 14, 9.0)], low=-np.inf)
    end[0, 13] = 1.0
    start[:, 0] = end[:, 0] = 0.0
    ranked = decode_qa([_example()], encoded, start, end, allow_null=False, max_answer_length=3)
    assert ranked[0] == ["the mat.", "the mat"]
    ranked = decode_qa([_example()], encoded, start, end, allow_null=False, max_answer_length=2)
    assert ranked[0] == ["the mat"]
    ranked = decode_qa([_example()], encoded, start, end, allow_null=False, max_answer_length=1)
    assert ranked[0] == []
