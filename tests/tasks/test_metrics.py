"""Metrics against references: seqeval itself, the official SQuAD v2 formula, scipy, hand work."""

from __future__ import annotations

import math
import re
import string
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import pearsonr
from seqeval.metrics import f1_score, precision_score, recall_score
from seqeval.scheme import IOB2

from taskgraph.errors import ConfigError
from taskgraph.tasks import metrics as m

# -- entities (reference: seqeval strict IOB2) -----------------------------------------------

TAGS = st.sampled_from(["O", "B-PER", "I-PER", "B-LOC", "I-LOC"])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=5), st.data())
def test_entity_scores_equal_seqeval_strict(lengths: list[int], data: st.DataObject) -> None:
    gold = [data.draw(st.lists(TAGS, min_size=n, max_size=n)) for n in lengths]
    pred = [data.draw(st.lists(TAGS, min_size=n, max_size=n)) for n in lengths]
    scores = m.entity_scores(gold, pred)
    options = {"mode": "strict", "scheme": IOB2, "zero_division": 0}
    assert scores["f1"] == pytest.approx(f1_score(gold, pred, **options))
    assert scores["precision"] == pytest.approx(precision_score(gold, pred, **options))
    assert scores["recall"] == pytest.approx(recall_score(gold, pred, **options))


def test_entity_scores_hand_worked() -> None:
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-LOC", "O"]]
    # PER right; LOC typed wrong; an I-LOC opening a span is no entity in strict IOB2
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["I-LOC", "O"]]
    scores = m.entity_scores(gold, pred)
    assert scores["precision"] == pytest.approx(1 / 2)  # 1 right of 2 predicted entities
    assert scores["recall"] == pytest.approx(1 / 3)  # 1 found of 3 gold entities
    assert scores["f1"] == pytest.approx(2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3))
    assert scores["f1_PER"] == 1.0 and scores["f1_LOC"] == 0.0 and scores["precision_ORG"] == 0.0


def test_entity_scores_of_no_sentences_and_of_non_iob_tags() -> None:
    # an empty dev split: seqeval raised TypeError ("without list of list")
    assert m.entity_scores([], []) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    # a POS tag set scored with entity F1 (a user task with scheme none): seqeval's KeyError
    with pytest.raises(ConfigError, match="gold sentence 1 has 'NN'"):
        m.entity_scores([["O"], ["NN"]], [["O"], ["O"]])
    with pytest.raises(ConfigError, match="predicted sentence 0 has 'B-'"):
        m.entity_scores([["O"]], [["B-"]])


def test_tagging_accuracy_and_length_checks() -> None:
    assert m.tagging_accuracy([["A", "B"], ["C"]], [["A", "X"], ["C"]]) == pytest.approx(2 / 3)
    with pytest.raises(ConfigError, match="sentence 1"):
        m.tagging_accuracy([["A"], ["B"]], [["A"], ["B", "C"]])


# -- UAS / LAS (hand-worked) -----------------------------------------------------------------


def test_attachment_scores_hand_worked() -> None:
    # "She left yesterday ." : heads 2 0 2 2, relations nsubj root obl:tmod punct
    gold_heads, gold_rels = [[2, 0, 2, 2]], [["nsubj", "root", "obl:tmod", "punct"]]
    upos = [["PRON", "VERB", "NOUN", "PUNCT"]]
    # word 3: right head, relation "obl" (subtype differs); word 4 (punct): wrong head
    pred_heads, pred_rels = [[2, 0, 2, 3]], [["nsubj", "root", "obl", "punct"]]
    scores = m.attachment_scores(gold_heads, gold_rels, pred_heads, pred_rels, gold_upos=upos)
    assert scores == {"uas": 3 / 4, "las": 3 / 4}  # punctuation counts; subtypes ignored
    strict = m.attachment_scores(
        gold_heads, gold_rels, pred_heads, pred_rels, ignore_subtypes=False
    )
    assert strict == {"uas": 3 / 4, "las": 2 / 4}
    no_punct = m.attachment_scores(
        gold_heads, gold_rels, pred_heads, pred_rels, gold_upos=upos, exclude_punct=True
    )
    assert no_punct == {"uas": 1.0, "las": 1.0}
    wrong_label = m.attachment_scores(
        gold_heads, gold_rels, gold_heads, [["nsubj", "root", "obj", "punct"]]
    )
    assert wrong_label == {"uas": 1.0, "las": 3 / 4}


# -- SQuAD v2 (reference: the official evaluate-v2.0.py formula) -----------------------------
# Restated from the official script's definitions (normalize_answer, compute_exact,
# compute_f1, get_raw_scores): lower-case, strip ASCII punctuation, remove the words a/an/the,
# collapse whitespace; F1 over token multisets; an empty side scores 1 only if both are empty;
# gold answers that normalise to nothing are dropped, and no gold answer means gold = [""].


def official_normalize(s: str) -> str:
    s = s.lower().translate(str.maketrans("", "", string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s, flags=re.UNICODE)
    return " ".join(s.split())


def official_f1(gold: str, pred: str) -> float:
    g, p = official_normalize(gold).split(), official_normalize(pred).split()
    if not g or not p:
        return float(g == p)
    same = sum((Counter(g) & Counter(p)).values())
    return 0.0 if same == 0 else 2 * same / (len(g) + len(p))


def official_scores(gold: list[list[str]], pred: list[str]) -> tuple[float, float]:
    exact = f1 = 0.0
    for answers, prediction in zip(gold, pred, strict=True):
        candidates = [a for a in answers if official_normalize(a)] or [""]
        exact += max(
            float(official_normalize(a) == official_normalize(prediction)) for a in candidates
        )
        f1 += max(official_f1(a, prediction) for a in candidates)
    return exact / len(gold), f1 / len(gold)


WORDS = st.sampled_from(
    ["the", "a", "An", "Denver", "Broncos", "broncos!", "50", "", " ", ",", "é", "The."]
)
ANSWER = st.lists(WORDS, max_size=4).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.lists(ANSWER, max_size=3), ANSWER), min_size=1, max_size=6))
def test_squad_v2_equals_official_formula(items: list[tuple[list[str], str]]) -> None:
    gold = [g for g, _ in items]
    pred = [p for _, p in items]
    scores = m.squad_v2_scores(gold, pred)
    exact, f1 = official_scores(gold, pred)
    assert scores["exact"] == pytest.approx(exact)
    assert scores["f1"] == pytest.approx(f1)


def test_squad_v2_hand_worked() -> None:
    gold = [["Denver Broncos", "The Broncos"], [], ["Carolina Panthers"], []]
    pred = ["the broncos.", "", "Panthers", "Denver"]
    scores = m.squad_v2_scores(gold, pred)
    # q1 exact (matches "The Broncos"), q2 right abstention, q3 F1 2/3, q4 wrong answer
    assert scores["exact"] == pytest.approx(2 / 4)
    assert scores["f1"] == pytest.approx((1 + 1 + 2 / 3 + 0) / 4)
    assert scores["has_ans_exact"] == pytest.approx(1 / 2)
    assert scores["has_ans_f1"] == pytest.approx((1 + 2 / 3) / 2)
    assert scores["no_ans_exact"] == scores["no_ans_f1"] == pytest.approx(1 / 2)
    assert m.normalize_answer("  The  Eiffel-Tower!! ") == "eiffeltower"


# -- BioASQ factoid (hand-worked) ------------------------------------------------------------


def test_factoid_scores_hand_worked() -> None:
    gold = [["BRCA1"], ["p53", "TP53"], ["insulin"], ["EGFR"]]
    ranked = [
        ["brca1 ", "x"],  # rank 1 (case and spaces ignored)
        ["MDM2", "tp53"],  # rank 2
        ["a", "b", "c", "d", "e", "insulin"],  # rank 6: outside the top 5
        [],  # no answer
    ]
    scores = m.factoid_scores(gold, ranked)
    assert scores["strict_accuracy"] == pytest.approx(1 / 4)
    assert scores["lenient_accuracy"] == pytest.approx(2 / 4)
    assert scores["mrr"] == pytest.approx((1 + 1 / 2) / 4)


# -- classification (references: hand work and scipy's Pearson correlation) ------------------


def test_classification_hand_worked() -> None:
    gold = ["p", "p", "p", "n", "n", "n", "n", "n"]
    pred = ["p", "p", "n", "p", "n", "n", "n", "n"]
    # tp=2 fp=1 fn=1 tn=4
    assert m.accuracy(gold, pred) == pytest.approx(6 / 8)
    assert m.binary_f1(gold, pred, positive="p") == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    f1_n = 2 * 4 / (2 * 4 + 1 + 1)
    assert m.macro_f1(gold, pred) == pytest.approx((2 / 3 + f1_n) / 2)
    mcc = (2 * 4 - 1 * 1) / math.sqrt((2 + 1) * (2 + 1) * (4 + 1) * (4 + 1))
    assert m.matthews_corrcoef(gold, pred) == pytest.approx(mcc)
    assert m.matthews_corrcoef(gold, gold) == pytest.approx(1.0)
    assert m.matthews_corrcoef(gold, ["n"] * 8) == 0.0  # undefined -> 0, as sklearn does
    assert m.binary_f1(gold, ["n"] * 8, positive="p") == 0.0


def test_macro_f1_counts_labels_that_only_the_predictions_use() -> None:
    # "b" is never gold but is predicted once: its F1 of 0 enters the mean.
    assert m.macro_f1(["a", "a"], ["a", "b"]) == pytest.approx((2 / 3 + 0.0) / 2)


def test_multiclass_mcc_hand_worked() -> None:
    # confusion (rows gold a,b,c / cols pred): [[2,1,0],[0,2,0],[1,0,1]]
    gold = ["a", "a", "a", "b", "b", "c", "c"]
    pred = ["a", "a", "b", "b", "b", "a", "c"]
    c, s = 5, 7
    t = {"a": 3, "b": 2, "c": 2}
    p = {"a": 3, "b": 3, "c": 1}
    expected = (c * s - sum(t[k] * p[k] for k in t)) / math.sqrt(
        (s * s - sum(v * v for v in p.values())) * (s * s - sum(v * v for v in t.values()))
    )
    assert m.matthews_corrcoef(gold, pred) == pytest.approx(expected)
    assert expected == pytest.approx((35 - 17) / math.sqrt((49 - 19) * (49 - 17)))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=2, max_size=40))
def test_binary_mcc_equals_pearson_correlation(pairs: list[tuple[bool, bool]]) -> None:
    gold = [int(g) for g, _ in pairs]
    pred = [int(p) for _, p in pairs]
    ours = m.matthews_corrcoef([str(g) for g in gold], [str(p) for p in pred])
    if len(set(gold)) < 2 or len(set(pred)) < 2:
        assert ours == 0.0
    else:
        assert ours == pytest.approx(pearsonr(gold, pred).statistic)
