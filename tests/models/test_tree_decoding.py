"""Chu-Liu/Edmonds with one root word: optimal and well formed on random scores."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from taskgraph.models.heads.tree_decoding import (
    is_well_formed_tree,
    maximum_spanning_tree,
    tree_score,
)


def _brute_force(scores: np.ndarray, *, single_root: bool) -> float:
    n = scores.shape[0] - 1
    best = -np.inf
    for assignment in itertools.product(range(n + 1), repeat=n):
        heads = np.array((0, *assignment))
        if any(heads[d] == d for d in range(1, n + 1)):
            continue
        if is_well_formed_tree(heads, single_root=single_root):
            best = max(best, tree_score(scores, heads))
    return best


def _scores(max_words: int) -> st.SearchStrategy[np.ndarray]:
    return st.integers(1, max_words).flatmap(
        lambda n: arrays(
            np.float64, (n + 1, n + 1), elements=st.floats(-20, 20, allow_nan=False, width=32)
        )
    )


@settings(max_examples=150, deadline=None)
@given(scores=_scores(5), single_root=st.booleans())
def test_tree_is_optimal_against_brute_force(scores: np.ndarray, single_root: bool) -> None:
    heads = maximum_spanning_tree(scores, single_root=single_root)
    assert is_well_formed_tree(heads, single_root=single_root)
    assert tree_score(scores, heads) == pytest.approx(
        _brute_force(scores, single_root=single_root), abs=1e-6
    )


@settings(max_examples=60, deadline=None)
@given(scores=_scores(40))
def test_tree_is_well_formed_on_larger_random_scores(scores: np.ndarray) -> None:
    heads = maximum_spanning_tree(scores)
    assert heads[0] == 0 and len(heads) == scores.shape[0]
    assert is_well_formed_tree(heads)


def test_many_root_children_are_reduced_to_one() -> None:
    # Every word prefers the root: the unconstrained tree is a star of root children.
    n = 6
    scores = np.full((n + 1, n + 1), -5.0)
    scores[1:, 0] = np.arange(n, dtype=float)  # word 6 is the best root
    heads = maximum_spanning_tree(scores)
    assert is_well_formed_tree(heads)
    assert list(np.flatnonzero(heads[1:] == 0) + 1) == [6]
    unconstrained = maximum_spanning_tree(scores, single_root=False)
    assert (unconstrained[1:] == 0).all()


def test_cycles_are_broken_non_projective_trees_are_allowed() -> None:
    # 1 <-> 2 prefer each other (a cycle); the best tree attaches 3 across 1..2 non-projectively.
    scores = np.full((5, 5), -10.0)
    scores[1, 2], scores[2, 1] = 5.0, 5.0
    scores[2, 0] = 1.0
    scores[3, 1] = 4.0
    scores[4, 2] = 4.0
    heads = maximum_spanning_tree(scores)
    assert list(heads) == [0, 2, 0, 1, 2]
    assert is_well_formed_tree(heads)


@pytest.mark.parametrize(
    ("heads", "ok"),
    [([0, 0], True), ([0, 2, 0], True), ([0, 0, 0], False), ([0, 2, 1], False), ([0, 3], False)],
)
def test_well_formedness_check(heads: list[int], ok: bool) -> None:
    assert is_well_formed_tree(heads) is ok


def test_bad_score_matrices_are_rejected() -> None:
    with pytest.raises(ValueError, match="square"):
        maximum_spanning_tree(np.zeros((2, 3)))
    scores = np.zeros((3, 3))
    scores[1:, 0] = -np.inf
    with pytest.raises(ValueError, match="root"):
        maximum_spanning_tree(scores)


def test_word_that_can_only_attach_to_the_root_becomes_the_root() -> None:
    # Word 1 has no allowed word head; word 2 prefers the root too, so the single-root search
    # runs and must pick word 1 as the root (its bound once came out NaN and the search gave up).
    scores = np.full((3, 3), -np.inf)
    scores[1, 0] = 0.0
    scores[2, 0], scores[2, 1] = 5.0, 1.0
    heads = maximum_spanning_tree(scores)
    assert list(heads) == [0, 0, 1]


@settings(max_examples=150, deadline=None)
@given(
    scores=_scores(5),
    forbidden=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), max_size=12),
)
def test_tree_is_optimal_with_forbidden_arcs(
    scores: np.ndarray, forbidden: list[tuple[int, int]]
) -> None:
    n = scores.shape[0] - 1
    for d, h in forbidden:
        if d <= n and h <= n and (d, h) != (1, 0):  # keep one root arc so the root check passes
            scores[d, h] = -np.inf
    best = _brute_force(scores, single_root=True)
    if not np.isfinite(best):
        return  # no tree avoids the forbidden arcs: nothing to compare against
    heads = maximum_spanning_tree(scores)
    assert is_well_formed_tree(heads)
    assert tree_score(scores, heads) == pytest.approx(best, abs=1e-6)
