"""Metric, scoring and QA-decoding rules that a mutation audit found untested.

References: seqeval (per-type entity scores), scikit-learn (macro F1,
MCC), the official SQuAD v2 normalisation restated; otherwise hand-worked values.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seqeval.metrics import f1_score, precision_score, recall_score
from seqeval.scheme import IOB2
from sklearn.metrics import f1_score as sk_f1_score
from sklearn.metrics import matthews_corrcoef as sk_matthews_corrcoef

from taskgraph.tasks import (
    Answer,
    QAExample,
    TaskType,
    define_task,
    get_task,
    score_predictions,
)
from taskgraph.tasks import metrics as m
from taskgraph.tasks.features import EncodedSplit
from taskgraph.tasks.scoring import _merge
from taskgraph.tasks.types import ParsedSentence, TaggedSentence
from taskgraph.training.qa_decoding import decode_qa

# -- entities ----------------------------------------------------------------------------------

TAGS = st.sampled_from(["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG"])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=5), st.data())
def test_per_type_entity_scores_equal_seqeval(lengths: list[int], data: st.DataObject) -> None:
    gold = [data.draw(st.lists(TAGS, min_size=n, max_size=n)) for n in lengths]
    pred = [data.draw(st.lists(TAGS, min_size=n, max_size=n)) for n in lengths]
    scores = m.entity_scores(gold, pred)
    options: dict[str, Any] = {"mode": "strict", "scheme": IOB2, "zero_division": 0}
    # seqeval's average=None gives one value per type, types in sorted order
    types = sorted(k[len("f1_") :] for k in scores if k.startswith("f1_"))
    for name, reference in (
        ("precision", precision_score),
        ("recall", recall_score),
        ("f1", f1_score),
    ):
        expected = reference(gold, pred, average=None, **options)
        assert [scores[f"{name}_{t}"] for t in types] == pytest.approx(list(expected))


def test_per_type_entity_scores_hand_worked_and_no_average_rows() -> None:
    # PER: 2 gold, 1 predicted and right -> P 1, R 1/2, F1 2/3 (three different values)
    gold = [["B-PER", "O", "B-PER", "I-PER"]]
    pred = [["B-PER", "O", "O", "O"]]
    scores = m.entity_scores(gold, pred)
    assert scores["precision_PER"] == 1.0
    assert scores["recall_PER"] == pytest.approx(1 / 2)
    assert scores["f1_PER"] == pytest.approx(2 / 3)
    # seqeval's "macro avg" / "weighted avg" rows are not entity types
    assert set(scores) == {"precision", "recall", "f1", "precision_PER", "recall_PER", "f1_PER"}


# -- UAS / LAS ---------------------------------------------------------------------------------


def test_las_strips_subtypes_of_predicted_relations_too() -> None:
    scores = m.attachment_scores([[0, 1]], [["root", "obl:tmod"]], [[0, 1]], [["root", "obl:tmod"]])
    assert scores == {"uas": 1.0, "las": 1.0}
    scores = m.attachment_scores([[0, 1]], [["root", "nmod"]], [[0, 1]], [["root", "nmod:poss"]])
    assert scores == {"uas": 1.0, "las": 1.0}


def test_excluded_punctuation_is_found_by_gold_upos_not_by_relation() -> None:
    # word 2: UPOS PUNCT with another relation and a wrong head (skipped); word 3: relation
    # punct on a SYM with the right head (scored)
    scores = m.attachment_scores(
        [[0, 1, 1]],
        [["root", "discourse", "punct"]],
        [[0, 3, 1]],
        [["root", "discourse", "punct"]],
        gold_upos=[["VERB", "PUNCT", "SYM"]],
        exclude_punct=True,
    )
    assert scores == {"uas": 1.0, "las": 1.0}


def test_attachment_scores_of_nothing_are_zero() -> None:
    assert m.attachment_scores([], [], [], []) == {"uas": 0.0, "las": 0.0}
    punct_only = m.attachment_scores(
        [[0]], [["root"]], [[0]], [["root"]], gold_upos=[["PUNCT"]], exclude_punct=True
    )
    assert punct_only == {"uas": 0.0, "las": 0.0}


def test_parsing_tasks_score_punctuation_as_conll_2018_does() -> None:
    task = get_task("ud_en_ewt_deps")
    gold = [
        ParsedSentence(
            tokens=("She", "left", "."),
            heads=(2, 0, 2),
            deprels=("nsubj", "root", "punct"),
            upos=("PRON", "VERB", "PUNCT"),
        )
    ]
    # only the full stop's head is wrong: it counts
    scores = score_predictions(task, gold, [((2, 0, 1), ("nsubj", "root", "punct"))])
    assert scores == {"uas": pytest.approx(2 / 3), "las": pytest.approx(2 / 3)}


# -- SQuAD v2 ----------------------------------------------------------------------------------


def _official_normalize(s: str) -> str:
    # evaluate-v2.0.py: remove_punc, then remove_articles, then white_space_fix
    s = "".join(ch for ch in s.lower() if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s, flags=re.UNICODE)
    return " ".join(s.split())


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="aAnNtThHeE \t-.'x", max_size=14))
def test_normalize_answer_equals_official_on_articles_joined_by_punctuation(text: str) -> None:
    assert m.normalize_answer(text) == _official_normalize(text)


def test_normalize_answer_drops_punctuation_before_articles() -> None:
    # "A-Team" -> "ateam": the article is no word once the hyphen is gone
    assert m.normalize_answer("The A-Team") == "ateam"
    assert m.squad_exact("A-Team", "ateam") == 1.0


def test_no_answer_parts_are_left_out_when_every_question_has_an_answer() -> None:
    # as the official script: no "NoAns" block without unanswerable questions
    assert set(m.squad_v2_scores([["x"]], ["x"])) == {"exact", "f1", "has_ans_exact", "has_ans_f1"}
    assert set(m.squad_v2_scores([[]], [""])) == {"exact", "f1", "no_ans_exact", "no_ans_f1"}


def _qa_example(qid: str, answers: list[str], group: str = "") -> QAExample:
    context = " ".join(answers) or "nothing"
    return QAExample(
        id=qid,
        question="q?",
        context=context,
        answers=tuple(Answer(a, context.index(a)) for a in answers),
        is_impossible=not answers,
        group=group,
    )


def test_a_plain_string_prediction_is_one_answer() -> None:
    task = get_task("squad2")
    gold = [_qa_example("a", ["Denver Broncos"]), _qa_example("b", [])]
    scores = score_predictions(task, gold, ["Denver Broncos", ""])
    assert scores["exact"] == 1.0 and scores["f1"] == 1.0


# -- BioASQ factoid ----------------------------------------------------------------------------


def test_factoid_counts_a_question_once_however_many_right_answers() -> None:
    scores = m.factoid_scores([["p53", "TP53"]], [["MDM2", "p53", "TP53"]])
    assert scores == {"strict_accuracy": 0.0, "lenient_accuracy": 1.0, "mrr": pytest.approx(1 / 2)}


def test_rank_by_rank_merge_skips_repeated_and_empty_answers() -> None:
    # repeats (any case) and "" (no answer) take no rank: the fifth distinct answer stays
    assert _merge([["a", "", "b", "e"], ["A", "c", "", "d"]]) == ["a", "c", "b", "e", "d"]
    task = get_task("bioasq_factoid")
    gold = [_qa_example("q1:1", ["BRCA1"], group="q1"), _qa_example("q1:2", ["BRCA1"], group="q1")]
    scores = score_predictions(task, gold, [["", "x", "y", "BRCA1"], ["", "X", "Y", "z"]])
    # merged: x, y, BRCA1, z -> rank 3
    assert scores["mrr"] == pytest.approx(1 / 3) and scores["lenient_accuracy"] == 1.0


def test_entity_scores_come_with_accuracy(tmp_path: Path) -> None:
    (tmp_path / "dev.tsv").write_text("John\tB-PER\nran\tO\n", encoding="utf-8")
    task = define_task(
        "my_ner_acc",
        format="iob",
        type="token_tagging",
        label_field="ner",
        files={"dev": str(tmp_path / "dev.tsv")},
        metrics=["accuracy", "f1"],
    )
    gold = [TaggedSentence(tokens=("John", "ran"), tags=("B-PER", "O"))]
    scores = score_predictions(task, gold, [("B-PER", "O")])
    assert scores["accuracy"] == 1.0 and scores["f1"] == 1.0 and scores["f1_PER"] == 1.0


# -- classification ----------------------------------------------------------------------------

LABELS = st.sampled_from(["a", "b", "c"])


@pytest.mark.filterwarnings("ignore:A single label was found:UserWarning")
@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(LABELS, LABELS), min_size=1, max_size=30))
def test_macro_f1_and_mcc_equal_scikit_learn(pairs: list[tuple[str, str]]) -> None:
    gold = [g for g, _ in pairs]
    pred = [p for _, p in pairs]
    labels = sorted(set(gold) | set(pred))
    assert m.macro_f1(gold, pred) == pytest.approx(
        sk_f1_score(gold, pred, average="macro", labels=labels, zero_division=0)
    )
    assert m.matthews_corrcoef(gold, pred) == pytest.approx(sk_matthews_corrcoef(gold, pred))


def test_binary_f1_of_a_positive_label_nobody_uses_is_zero() -> None:
    assert m.binary_f1(["n", "n"], ["n", "n"], positive="p") == 0.0


def test_mcc_of_a_constant_gold_is_zero() -> None:
    assert m.matthews_corrcoef(["a", "a", "a"], ["a", "b", "a"]) == 0.0


# -- QA decoding -------------------------------------------------------------------------------
# Windows built by hand: offsets[i] is the character span of context token i, None for [CLS],
# question and [SEP] tokens.

CONTEXT = "aa bb cc dd ee"
WORDS = [(0, 2), (3, 5), (6, 8), (9, 11), (12, 14)]


def _encoded(windows: list[tuple[int, list[tuple[int, int] | None]]]) -> EncodedSplit:
    return EncodedSplit(
        task_type=TaskType.EXTRACTIVE_QA,
        features=[{"input_ids": [0] * len(offsets)} for _, offsets in windows],
        example_index=[owner for owner, _ in windows],
        n_examples=len({owner for owner, _ in windows}),
        meta=[{"offsets": offsets} for _, offsets in windows],
    )


def _window(owner: int = 0) -> tuple[int, list[tuple[int, int] | None]]:
    # [CLS] question [SEP] aa bb cc dd ee [SEP]: context tokens 3..7
    return owner, [None, None, None, *WORDS, None]


def _qa(context: str = CONTEXT) -> QAExample:
    return QAExample(id="q", question="q?", context=context, answers=())


def _logits(
    starts: dict[int, float], ends: dict[int, float], width: int = 9
) -> tuple[np.ndarray, np.ndarray]:
    """Return one window's start and end logits: -10 except at the given positions."""
    start = np.full((1, width), -10.0)
    end = np.full((1, width), -10.0)
    for i, v in starts.items():
        start[0, i] = v
    for i, v in ends.items():
        end[0, i] = v
    return start, end


def test_n_best_keeps_the_highest_start_and_end_logits() -> None:
    encoded = _encoded([_window()])
    start, end = _logits({4: 5.0, 5: 3.0, 0: -30.0}, {6: 5.0, 5: 4.0, 0: -30.0})
    # n_best=1: the best start (bb) with the best end (dd)
    assert decode_qa([_qa()], encoded, start, end, n_best=1) == [["bb cc dd", ""]]
    # n_best=2: starts {bb, cc} x ends {dd, cc} score 10, 9, 8, 7; the best 2 are kept and
    # "" (null -60) comes last
    assert decode_qa([_qa()], encoded, start, end, n_best=2) == [["bb cc dd", "bb cc", ""]]
    assert decode_qa([_qa()], encoded, start, end, n_best=2, allow_null=False) == [
        ["bb cc dd", "bb cc"]
    ]


def test_a_tie_between_null_and_best_span_keeps_the_span() -> None:
    # HF run_qa: "" only when null - best > threshold
    start, end = _logits({0: 1.0, 4: 1.0}, {0: 1.0, 4: 1.0})
    ranked = decode_qa([_qa()], _encoded([_window()]), start, end)
    assert ranked[0][0] == "bb"


def test_no_answer_is_placed_among_the_spans_by_its_score() -> None:
    # one-word spans bb (10), cc (4), dd (-8); null -6 ranks between cc and dd
    logits = {0: -3.0, 4: 5.0, 5: 2.0, 6: -4.0}
    start, end = _logits(logits, logits)
    ranked = decode_qa([_qa()], _encoded([_window()]), start, end, max_answer_length=1)
    assert ranked[0][:4] == ["bb", "cc", "", "dd"]


def test_each_question_is_answered_from_its_own_windows_and_context() -> None:
    encoded = _encoded([_window(0), _window(1)])
    start = np.full((2, 9), -10.0)
    end = np.full((2, 9), -10.0)
    start[:, 0] = end[:, 0] = -20.0
    start[0, 3] = end[0, 3] = 1.0  # question 0: first word
    start[1, 7] = end[1, 7] = 5.0  # question 1: last word, a higher score
    second = "AA BB CC DD EE"
    ranked = decode_qa([_qa(), _qa(second)], encoded, start, end, n_best=1, allow_null=False)
    assert ranked == [["aa"], ["EE"]]


def test_padded_logit_positions_are_never_answers() -> None:
    encoded = _encoded([_window()])
    start, end = _logits({4: 1.0, 10: 50.0, 11: 50.0}, {4: 1.0, 11: 50.0}, width=12)
    ranked = decode_qa([_qa()], encoded, start, end, allow_null=False)
    assert ranked[0][0] == "bb"


def test_a_whitespace_only_span_is_no_answer() -> None:
    # a tokenizer may map a token to a space (SentencePiece's lone "▁"); "" means no answer
    context = "aa  bb"
    encoded = _encoded([(0, [None, None, (0, 2), (2, 3), (4, 6), None])])
    start, end = _logits({3: 9.0, 2: 1.0}, {3: 9.0, 2: 1.0}, width=6)
    ranked = decode_qa([_qa(context)], encoded, start, end, allow_null=False)
    # " " scores 18; the next best span, "aa " (10), is the answer
    assert ranked[0][0] == "aa " and all(text.strip() for text in ranked[0])
