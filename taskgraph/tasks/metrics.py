"""Evaluation metrics, as plain functions of gold and predicted values (no task objects).

All scores are fractions in [0, 1] (the official SQuAD script prints them x100).

* Entities: seqeval in strict mode with the IOB2 scheme (an entity counts only when type and
  both boundaries match; an ``I-X`` that starts a span is not an entity).
* UAS/LAS: the CoNLL 2018 shared-task convention (``conll18_ud_eval.py``): every syntactic
  word counts, punctuation included, and labels are compared without language-specific
  subtypes (``obl:tmod`` scores as ``obl``).  ``exclude_punct=True`` gives the older CoNLL-X
  convention of skipping words whose gold UPOS is ``PUNCT``.
* SQuAD v2: the official normalisation (lower case, drop punctuation and the articles a/an/the,
  squeeze whitespace), the maximum over gold answers, and "" as the only right answer to an
  unanswerable question.
* BioASQ factoid: an answer is right when it equals a gold answer ignoring case and outer
  whitespace; strict accuracy looks at the first answer, lenient accuracy at the top five, MRR
  is 1/rank of the first right answer in the top five.
"""

from __future__ import annotations

import collections
import math
import re
import string
import warnings
from collections.abc import Sequence

from taskgraph.errors import ConfigError

__all__ = [
    "accuracy",
    "attachment_scores",
    "binary_f1",
    "entity_scores",
    "factoid_scores",
    "macro_f1",
    "matthews_corrcoef",
    "normalize_answer",
    "squad_exact",
    "squad_f1",
    "squad_v2_scores",
    "tagging_accuracy",
]


def _same_length(what: str, gold: Sequence[object], pred: Sequence[object]) -> None:
    if len(gold) != len(pred):
        raise ConfigError(
            f"{what}: expected {len(gold)} predictions (one per gold), got {len(pred)}"
        )


def entity_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, float]:
    """Return entity-level ``precision``, ``recall``, ``f1`` (micro) and per type ``f1_TYPE`` etc."""
    # imported here: seqeval pulls in scikit-learn, seconds of start-up for every CLI call
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    _same_length("entity tags", gold, pred)
    for index, (g, p) in enumerate(zip(gold, pred, strict=True)):
        _same_length(f"entity tags of sentence {index}", g, p)
    for what, sentences in (("gold", gold), ("predicted", pred)):
        for index, tags in enumerate(sentences):
            for tag in tags:
                if tag != "O" and not (len(tag) > 2 and tag[:2] in ("B-", "I-")):
                    # seqeval would fail with a bare KeyError on the tag
                    raise ConfigError(
                        f"entity scores need IOB tags (O, B-TYPE, I-TYPE), but {what} "
                        f"sentence {index} has {tag!r}"
                    )
    if not gold:  # seqeval rejects an empty list ("without list of list")
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    with warnings.catch_warnings():  # seqeval warns about types without gold support
        warnings.simplefilter("ignore")
        report = classification_report(
            [list(g) for g in gold],
            [list(p) for p in pred],
            mode="strict",
            scheme=IOB2,
            output_dict=True,
            zero_division=0,
        )
    micro = report.pop("micro avg")
    scores = {
        "precision": float(micro["precision"]),
        "recall": float(micro["recall"]),
        "f1": float(micro["f1-score"]),
    }
    for name, row in report.items():
        if name.endswith(" avg"):
            continue
        scores[f"precision_{name}"] = float(row["precision"])
        scores[f"recall_{name}"] = float(row["recall"])
        scores[f"f1_{name}"] = float(row["f1-score"])
    return scores


def tagging_accuracy(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> float:
    """Return the fraction of tokens whose predicted tag equals the gold tag."""
    _same_length("tags", gold, pred)
    right = total = 0
    for index, (g, p) in enumerate(zip(gold, pred, strict=True)):
        _same_length(f"tags of sentence {index}", g, p)
        right += sum(a == b for a, b in zip(g, p, strict=True))
        total += len(g)
    return right / total if total else 0.0


def attachment_scores(
    gold_heads: Sequence[Sequence[int]],
    gold_deprels: Sequence[Sequence[str]],
    pred_heads: Sequence[Sequence[int]],
    pred_deprels: Sequence[Sequence[str]],
    *,
    gold_upos: Sequence[Sequence[str]] | None = None,
    exclude_punct: bool = False,
    ignore_subtypes: bool = True,
) -> dict[str, float]:
    """Return ``uas`` (right head) and ``las`` (right head and relation) over scored words."""
    _same_length("heads", gold_heads, pred_heads)
    _same_length("relations", gold_deprels, pred_deprels)
    if exclude_punct and gold_upos is None:
        raise ConfigError("exclude_punct needs gold_upos (punctuation is found by UPOS PUNCT)")
    scored = heads_right = both_right = 0
    for index in range(len(gold_heads)):
        gh, gd, ph, pd = (
            gold_heads[index],
            gold_deprels[index],
            pred_heads[index],
            pred_deprels[index],
        )
        for name, seq in (
            ("gold relations", gd),
            ("predicted heads", ph),
            ("predicted relations", pd),
        ):
            _same_length(f"{name} of sentence {index}", gh, seq)
        for word in range(len(gh)):
            if exclude_punct and gold_upos is not None and gold_upos[index][word] == "PUNCT":
                continue
            scored += 1
            if gh[word] == ph[word]:
                heads_right += 1
                g, p = gd[word], pd[word]
                if ignore_subtypes:
                    g, p = g.split(":")[0], p.split(":")[0]
                both_right += g == p
    if not scored:
        return {"uas": 0.0, "las": 0.0}
    return {"uas": heads_right / scored, "las": both_right / scored}


_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """Return ``text`` normalised as the official SQuAD script does before comparing."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def squad_exact(gold: str, pred: str) -> float:
    """Return 1.0 when the normalised answers are equal, else 0.0."""
    return float(normalize_answer(gold) == normalize_answer(pred))


def squad_f1(gold: str, pred: str) -> float:
    """Return the bag-of-tokens F1 between normalised answers ("" vs "" scores 1)."""
    gold_tokens = normalize_answer(gold).split()
    pred_tokens = normalize_answer(pred).split()
    if not gold_tokens or not pred_tokens:
        return float(gold_tokens == pred_tokens)
    common = sum((collections.Counter(gold_tokens) & collections.Counter(pred_tokens)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred_tokens), common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_v2_scores(gold: Sequence[Sequence[str]], pred: Sequence[str]) -> dict[str, float]:
    """Return ``exact`` and ``f1`` (+ ``has_ans_*``/``no_ans_*`` parts) for SQuAD v2.

    ``gold[i]`` lists the gold answer texts of question ``i`` (empty: unanswerable);
    ``pred[i]`` is the predicted answer ("" = no answer).
    """
    _same_length("answers", gold, pred)
    exact: list[float] = []
    f1: list[float] = []
    has_answer: list[bool] = []
    for answers, prediction in zip(gold, pred, strict=True):
        candidates = [a for a in answers if normalize_answer(a)] or [""]
        exact.append(max(squad_exact(a, prediction) for a in candidates))
        f1.append(max(squad_f1(a, prediction) for a in candidates))
        has_answer.append(bool(answers))
    scores = {"exact": _mean(exact), "f1": _mean(f1)}
    for prefix, wanted in (("has_ans", True), ("no_ans", False)):
        chosen = [i for i, flag in enumerate(has_answer) if flag is wanted]
        if chosen:
            scores[f"{prefix}_exact"] = _mean([exact[i] for i in chosen])
            scores[f"{prefix}_f1"] = _mean([f1[i] for i in chosen])
    return scores


def factoid_scores(
    gold: Sequence[Sequence[str]], ranked: Sequence[Sequence[str]], *, top: int = 5
) -> dict[str, float]:
    """Return BioASQ ``strict_accuracy``, ``lenient_accuracy`` and ``mrr`` over the top answers."""
    _same_length("questions", gold, ranked)
    strict = lenient = reciprocal = 0.0
    for answers, candidates in zip(gold, ranked, strict=True):
        wanted = {a.strip().lower() for a in answers if a.strip()}
        for rank, candidate in enumerate(list(candidates)[:top], start=1):
            if candidate.strip().lower() in wanted:
                strict += rank == 1
                lenient += 1
                reciprocal += 1 / rank
                break
    n = len(gold)
    if not n:
        return {"strict_accuracy": 0.0, "lenient_accuracy": 0.0, "mrr": 0.0}
    return {"strict_accuracy": strict / n, "lenient_accuracy": lenient / n, "mrr": reciprocal / n}


def accuracy(gold: Sequence[str], pred: Sequence[str]) -> float:
    """Return the fraction of predictions equal to the gold label."""
    _same_length("labels", gold, pred)
    return _mean([float(g == p) for g, p in zip(gold, pred, strict=True)])


def _f1(gold: Sequence[str], pred: Sequence[str], label: str) -> float:
    tp = sum(g == label and p == label for g, p in zip(gold, pred, strict=True))
    fp = sum(g != label and p == label for g, p in zip(gold, pred, strict=True))
    fn = sum(g == label and p != label for g, p in zip(gold, pred, strict=True))
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def binary_f1(gold: Sequence[str], pred: Sequence[str], *, positive: str) -> float:
    """Return F1 of the ``positive`` label (0 when it is never right)."""
    _same_length("labels", gold, pred)
    return _f1(gold, pred, positive)


def macro_f1(gold: Sequence[str], pred: Sequence[str]) -> float:
    """Return the unweighted mean F1 over every label seen in gold or predictions."""
    _same_length("labels", gold, pred)
    labels = sorted(set(gold) | set(pred))
    return _mean([_f1(gold, pred, label) for label in labels])


def matthews_corrcoef(gold: Sequence[str], pred: Sequence[str]) -> float:
    """Return the Matthews correlation coefficient (Gorodkin's multi-class form; 0 if undefined)."""
    _same_length("labels", gold, pred)
    n = len(gold)
    true_counts = collections.Counter(gold)
    pred_counts = collections.Counter(pred)
    correct = sum(g == p for g, p in zip(gold, pred, strict=True))
    labels = set(true_counts) | set(pred_counts)
    covariance = correct * n - sum(pred_counts[k] * true_counts[k] for k in labels)
    pred_spread = n * n - sum(c * c for c in pred_counts.values())
    true_spread = n * n - sum(c * c for c in true_counts.values())
    if pred_spread == 0 or true_spread == 0:
        return 0.0
    return covariance / math.sqrt(pred_spread * true_spread)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0
