"""Maximum spanning dependency trees with exactly one root word (Chu-Liu/Edmonds).

Pure numpy, no torch: ``scores[d, h]`` is the score of word ``h`` being the head of word ``d``
over nodes ``0..n`` where node 0 is the artificial ROOT (row 0 is ignored).  The result is a
``heads`` array with ``heads[0] = 0`` and, for every word ``d >= 1``, ``heads[d]`` in ``0..n``,
such that the arcs form a tree rooted at node 0 with exactly one child of the root: the
well-formedness UD requires.  Non-projective trees are allowed (Turkish, Czech, ... need them).

Method: Chu-Liu/Edmonds (Chu and Liu 1965; Edmonds 1967) by recursive cycle contraction.  If
the unconstrained maximum tree has several root children, the best single-root tree is found
exactly by solving the problem once per candidate root word with every other root arc
removed; candidates are visited in decreasing order of an upper bound on their best tree and
the search stops as soon as no remaining candidate can beat the best tree found (so a trained
parser, whose bounds are sharp, usually needs one or two extra solves).  This is the
constrained problem of Gabow and Tarjan (1984) as discussed by Zmigrod et al. (2020), "Please
Mind the Root: Decoding Arborescences for Dependency Parsing".
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["is_well_formed_tree", "maximum_spanning_tree", "tree_score"]

_NEG = -np.inf


def maximum_spanning_tree(
    scores: NDArray[np.floating], *, single_root: bool = True
) -> NDArray[np.int64]:
    """Return the heads (``heads[0] = 0``) of the highest-scoring tree over ``scores[d, h]``.

    ``scores`` is ``(n + 1, n + 1)``; ``-inf`` marks forbidden arcs.  With ``single_root`` the
    tree has exactly one word attached to the root.
    """
    work: NDArray[np.float64] = np.array(scores, dtype=np.float64)  # a copy: edited below
    size = work.shape[0]
    if work.ndim != 2 or work.shape[1] != size:
        raise ValueError(f"scores must be square (n+1, n+1), but got shape {work.shape}")
    if size == 1:
        return np.zeros(1, dtype=np.int64)
    work[0, :] = _NEG  # the root has no head
    np.fill_diagonal(work, _NEG)  # no self loops
    if not np.isfinite(work[1:, 0]).any():
        raise ValueError("no word can attach to the root: every root score is -inf")
    heads = _chu_liu_edmonds(work)
    root_children = np.flatnonzero(heads[1:] == 0) + 1
    if not single_root or len(root_children) == 1:
        return heads
    return _best_single_root_tree(work)


def tree_score(scores: NDArray[np.floating], heads: NDArray[np.integer]) -> float:
    """Return the sum of ``scores[d, heads[d]]`` over the words ``d >= 1``."""
    words = np.arange(1, len(heads))
    return float(np.asarray(scores, dtype=np.float64)[words, np.asarray(heads)[1:]].sum())


def is_well_formed_tree(
    heads: NDArray[np.integer] | list[int], *, single_root: bool = True
) -> bool:
    """Return whether ``heads`` (``heads[0]`` ignored) is a tree rooted at 0 (with one root child)."""
    heads = np.asarray(heads)
    n = len(heads) - 1
    if n == 0:
        return True
    if heads[1:].min() < 0 or heads[1:].max() > n:
        return False
    if single_root and int((heads[1:] == 0).sum()) != 1:
        return False
    for start in range(1, n + 1):  # every word must reach the root in at most n steps
        node, steps = start, 0
        while node != 0 and steps <= n:
            node, steps = int(heads[node]), steps + 1
        if node != 0:
            return False
    return True


def _best_single_root_tree(scores: NDArray[np.float64]) -> NDArray[np.int64]:
    # For root word r, no tree can score more than its root arc plus every other word's best
    # non-root arc; trying candidates in decreasing bound order lets us stop early, exactly.
    best_non_root = scores[1:, 1:].max(axis=1)  # (n,) best head among the words, per word
    # The sum over the *other* words without subtracting: ``-inf - -inf`` would be NaN when
    # the candidate itself is the one word whose every non-root arc is forbidden.
    forbidden = ~np.isfinite(best_non_root)
    finite_total = best_non_root[~forbidden].sum()
    candidates = np.flatnonzero(np.isfinite(scores[1:, 0])) + 1
    own = best_non_root[candidates - 1]
    others_forbidden = forbidden.sum() - forbidden[candidates - 1]
    others = np.where(
        others_forbidden > 0, _NEG, finite_total - np.where(np.isfinite(own), own, 0.0)
    )
    bounds = scores[candidates, 0] + others
    best_heads: NDArray[np.int64] | None = None
    best = _NEG
    for index in np.argsort(-bounds, kind="stable"):
        if bounds[index] <= best:
            break
        root = int(candidates[index])
        constrained = scores.copy()
        constrained[1:, 0] = _NEG
        constrained[root, 0] = scores[root, 0]
        heads = _chu_liu_edmonds(constrained)
        value = tree_score(constrained, heads)
        if value > best:
            best, best_heads = value, heads
    if best_heads is None:
        raise ValueError(
            "no single-root spanning tree exists for these scores (too many -inf arcs)"
        )
    return best_heads


def _chu_liu_edmonds(scores: NDArray[np.float64]) -> NDArray[np.int64]:
    """Return the maximum spanning arborescence rooted at 0 (any number of root children)."""
    heads = scores.argmax(axis=1).astype(np.int64)
    heads[0] = 0
    cycle = _find_cycle(heads)
    if cycle is None:
        return heads

    in_cycle = np.zeros(len(heads), dtype=bool)
    in_cycle[cycle] = True
    cyc = np.flatnonzero(in_cycle)
    rest = np.flatnonzero(~in_cycle)  # contains the root, at position 0
    k = len(rest)
    contracted = np.full((k + 1, k + 1), _NEG)
    contracted[:k, :k] = scores[np.ix_(rest, rest)]
    # An arc from the cycle to an outside word leaves from the cycle node that scores best.
    leaving = scores[np.ix_(rest, cyc)]
    leave_from = cyc[leaving.argmax(axis=1)]
    contracted[:k, k] = leaving.max(axis=1)
    # An arc into the cycle at node v replaces v's cycle arc: its score is the difference.
    entering = scores[np.ix_(cyc, rest)] - scores[cyc, heads[cyc]][:, None]
    enter_at = cyc[entering.argmax(axis=0)]
    contracted[k, :k] = entering.max(axis=0)

    sub = _chu_liu_edmonds(contracted)
    result = heads.copy()  # cycle words keep their cycle arcs except the one broken below
    for index in range(1, k):
        head = int(sub[index])
        result[rest[index]] = leave_from[index] if head == k else rest[head]
    outside_head = int(sub[k])
    result[enter_at[outside_head]] = rest[outside_head]
    return result


def _find_cycle(heads: NDArray[np.int64]) -> list[int] | None:
    """Return the nodes of one cycle in the head graph, or ``None`` when there is none."""
    state = np.zeros(len(heads), dtype=np.int8)  # 0 new, 1 on the current path, 2 finished
    state[0] = 2
    for start in range(1, len(heads)):
        if state[start]:
            continue
        path: list[int] = []
        node = start
        while state[node] == 0:
            state[node] = 1
            path.append(node)
            node = int(heads[node])
        if state[node] == 1:
            return path[path.index(node) :]
        state[path] = 2
    return None
