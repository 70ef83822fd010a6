"""From start/end logits over all windows of a question back to ranked answer strings.

Follows the post-processing of Hugging Face's ``run_qa.py`` (``postprocess_qa_predictions``
with ``version_2_with_negative``): for every window, the ``n_best`` highest start and end
logits are paired; pairs outside the context, reversed, or longer than ``max_answer_length``
tokens are dropped; a span's score is ``start_logit + end_logit``.  The null (no-answer) score
of a question is the *lowest* ``start[0] + end[0]`` over its windows.  The question is answered
"" when ``null_score - best_span_score > null_score_diff_threshold``.

The result per question is a ranked list of distinct answer strings (best first, "" = no
answer, placed by its score), the shape :func:`taskgraph.tasks.score_predictions` expects for
extractive QA (top-1 for EM/F1, top-5 for BioASQ's lenient accuracy and MRR).  With
``with_scores=True`` each answer comes with its score, ``(text, start_logit + end_logit)``:
BioASQ's scoring then merges the snippets of one question by score (the best span of all its
snippets first) instead of rank by rank.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from taskgraph.tasks.features import EncodedSplit
from taskgraph.tasks.types import QAExample

__all__ = ["decode_qa"]


def decode_qa(
    examples: Sequence[QAExample],
    encoded: EncodedSplit,
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    *,
    n_best: int = 20,
    max_answer_length: int = 30,
    null_score_diff_threshold: float = 0.0,
    allow_null: bool = True,
    with_scores: bool = False,
) -> list[list[Any]]:
    """Return, per example, its answer strings ranked best first ("" = no answer).

    ``with_scores``: ``(text, score)`` pairs instead of strings ("" scored by the null score).

    ``start_logits[f]`` / ``end_logits[f]`` are the logits of feature ``f`` of ``encoded``
    (padded positions may follow; they are never context tokens so never chosen).
    """
    if len(start_logits) != len(encoded.features) or len(end_logits) != len(encoded.features):
        raise ValueError(
            f"got logits for {len(start_logits)}/{len(end_logits)} features, "
            f"expected {len(encoded.features)}"
        )
    by_example: dict[int, list[int]] = {}
    for feature, owner in enumerate(encoded.example_index):
        by_example.setdefault(owner, []).append(feature)
    results: list[list[Any]] = []
    for index, example in enumerate(examples):
        candidates: list[tuple[float, str]] = []
        null_score: float | None = None
        for feature in by_example.get(index, []):
            offsets = encoded.meta[feature]["offsets"]
            length = len(offsets)
            starts = np.asarray(start_logits[feature][:length], dtype=np.float64)
            ends = np.asarray(end_logits[feature][:length], dtype=np.float64)
            feature_null = float(starts[0] + ends[0])
            null_score = feature_null if null_score is None else min(null_score, feature_null)
            top_starts = np.argsort(starts)[::-1][:n_best]
            top_ends = np.argsort(ends)[::-1][:n_best]
            for s in top_starts.tolist():
                if offsets[s] is None:
                    continue
                for e in top_ends.tolist():
                    if offsets[e] is None or e < s or e - s + 1 > max_answer_length:
                        continue
                    score = float(starts[s] + ends[e])
                    if math.isfinite(score):  # masked positions carry -inf or finfo.min
                        text = example.context[offsets[s][0] : offsets[e][1]]
                        candidates.append((score, text))
        candidates.sort(key=lambda c: c[0], reverse=True)
        unique = _unique(candidates)[:n_best]
        ranked: list[Any] = [(text, score) if with_scores else text for score, text in unique]
        if allow_null and null_score is not None:
            null: Any = ("", null_score) if with_scores else ""
            if not unique or null_score - unique[0][0] > null_score_diff_threshold:
                ranked.insert(0, null)
            else:
                # The best span stays first; "" is ranked among the others by its score.
                ranked.insert(1 + sum(score > null_score for score, _ in unique[1:]), null)
        results.append(ranked)
    return results


def _unique(candidates: Sequence[tuple[float, str]]) -> list[tuple[float, str]]:
    seen: set[str] = set()
    out = []
    for score, text in candidates:
        if text.strip() and text not in seen:
            seen.add(text)
            out.append((score, text))
    return out
