"""Example-level data-selection features: the math, on token lists and arrays (no state).

Ruder and Plank 2017, "Learning to select data for transfer learning with Bayesian
Optimization" (EMNLP), score every example of an auxiliary dataset by a weighted sum of
*similarity* features (how close the example is to the target's training data) and
*diversity* features (how varied the example is in itself), and keep the best-scoring ones;
Bayesian optimisation learns the weights.  This module computes the features; the trainer
(:mod:`taskgraph.training.selection`) caches them and applies a selection.

A *term distribution* is the relative frequency of each word (lowercased).  The target's is
over all its training examples together; an example's over its own words.

Similarity features (oriented so that **higher means closer to the target**: divergences and
distances are negated in :func:`feature_matrix`; the functions below return them raw):

========================  ===========================================================================
``jsd``                   Jensen-Shannon divergence of P (example) and Q (target), base 2, in [0, 1]
``renyi``                 Rényi divergence D_α(P‖Q) = log2(Σ p^α q^(1-α)) / (α - 1), α = 0.99 (as the
                          paper), Q smoothed: (count + λ) / (N + λ·|V|), λ = 0.01, V = both vocabularies
``cosine``                cosine similarity of P and Q
``euclidean``             Euclidean distance ‖P - Q‖₂
``embedding_cosine``      cosine of the example's mean input embedding and the target's centroid
``ngram_overlap``         mean over n = 1, 2 of the share of the example's n-gram occurrences that
                          also occur in the target's training text
========================  ===========================================================================

Diversity features (of the example's own words, N tokens, n_i occurrences of type i, p_i = n_i / N):

================  =====================================================
``types``         number of word types
``ttr``           type-token ratio, types / N
``entropy``       Shannon entropy -Σ p_i log2 p_i (bits)
``simpson``       Simpson's index Σ p_i² (1 / types for all-distinct words)
================  =====================================================

An example with no words is treated as a distribution with no mass (P = 0): its similarities
are 0, ``jsd`` is 1/2 (all of Q's mass outside P's support), ``euclidean`` is ‖Q‖₂, and
``renyi``, +∞ for P = 0, is capped at the largest divergence any example can have,
-log2(min Q) (all of P on the least likely word); its diversity features are 0.  So it ranks
far from the target, never closest.  (The features are standardised before weighting, so only
ranks within an auxiliary matter.)  The selection score of an example is ``w · z`` where ``z``
are its features standardised (z-scores) over its own auxiliary dataset; the top ``keep`` share
of each auxiliary is kept (:func:`select_top`; ties in a fixed random order, so all-zero
weights keep a random subset: the random baseline).
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from scipy import sparse

__all__ = [
    "DIVERSITY_FEATURES",
    "NEGATED_FEATURES",
    "RENYI_ALPHA",
    "SELECTION_FEATURES",
    "SIMILARITY_FEATURES",
    "cosine",
    "decode_ids",
    "encode_ids",
    "entropy",
    "euclidean",
    "feature_matrix",
    "jensen_shannon",
    "ngram_overlap",
    "renyi",
    "select_top",
    "selection_record",
    "selection_scores",
    "simpson",
    "standardise",
    "target_ngrams",
    "term_distribution",
    "type_token_ratio",
]

SIMILARITY_FEATURES = ("jsd", "renyi", "cosine", "euclidean", "embedding_cosine", "ngram_overlap")
DIVERSITY_FEATURES = ("types", "ttr", "entropy", "simpson")
#: Every feature name a spec may use, in the order of :func:`feature_matrix`'s columns.
SELECTION_FEATURES = SIMILARITY_FEATURES + DIVERSITY_FEATURES
#: Features whose raw value grows with distance: negated so that higher means closer.
NEGATED_FEATURES = frozenset({"jsd", "renyi", "euclidean"})
RENYI_ALPHA = 0.99
_SMOOTHING = 0.01
_NGRAM_ORDERS = (1, 2)


# -- the features of one example (plain Python; the reference the vector code is tested on) ----


def term_distribution(tokens: Iterable[str]) -> dict[str, float]:
    """Return the relative frequency of each (lowercased) word of ``tokens``."""
    counts = Counter(t.lower() for t in tokens)
    total = sum(counts.values())
    return {w: c / total for w, c in counts.items()} if total else {}


def jensen_shannon(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """Return the Jensen-Shannon divergence of two distributions, in bits (0 = equal, 1 = disjoint)."""
    total = 0.0
    for word in set(p) | set(q):
        a, b = p.get(word, 0.0), q.get(word, 0.0)
        m = (a + b) / 2
        if a > 0:
            total += a * math.log2(a / m) / 2
        if b > 0:
            total += b * math.log2(b / m) / 2
    return total


def renyi(p: Mapping[str, float], q: Mapping[str, float], *, alpha: float = RENYI_ALPHA) -> float:
    """Return the Rényi divergence D_alpha(p ‖ q) in bits (``q`` must cover ``p``'s support).

    An empty ``p`` (no mass: +∞) gets the largest finite value, ``-log2(min q)``.
    """
    if not p:
        return -math.log2(min(q.values())) if q else 0.0
    total = sum(a**alpha * q[w] ** (1 - alpha) for w, a in p.items() if a > 0)
    return math.log2(total) / (alpha - 1)


def cosine(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """Return the cosine similarity of two sparse vectors (0 when either is empty)."""
    dot = sum(a * q.get(w, 0.0) for w, a in p.items())
    norm = math.sqrt(sum(a * a for a in p.values())) * math.sqrt(sum(b * b for b in q.values()))
    return dot / norm if norm > 0 else 0.0


def euclidean(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """Return the Euclidean distance of two sparse vectors."""
    return math.sqrt(sum((p.get(w, 0.0) - q.get(w, 0.0)) ** 2 for w in set(p) | set(q)))


def _ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def ngram_overlap(
    tokens: Sequence[str],
    target_ngrams: Mapping[int, set[tuple[str, ...]]],
    *,
    orders: Sequence[int] = _NGRAM_ORDERS,
) -> float:
    """Return the mean over ``orders`` of the share of ``tokens``' n-grams found in the target.

    Orders the example is too short for are left out of the mean; an empty example gives 0.
    """
    words = [t.lower() for t in tokens]
    shares = []
    for n in orders:
        grams = _ngrams(words, n)
        if grams:
            known = target_ngrams.get(n, set())
            shares.append(sum(g in known for g in grams) / len(grams))
    return sum(shares) / len(shares) if shares else 0.0


def type_token_ratio(tokens: Sequence[str]) -> float:
    """Return the number of word types divided by the number of tokens (0 for no tokens)."""
    return len({t.lower() for t in tokens}) / len(tokens) if tokens else 0.0


def entropy(tokens: Sequence[str]) -> float:
    """Return the Shannon entropy (bits) of the example's own word distribution."""
    return -sum(p * math.log2(p) for p in term_distribution(tokens).values())


def simpson(tokens: Sequence[str]) -> float:
    """Return Simpson's index Σ p_i² of the example's word distribution (0 for no tokens)."""
    return sum(p * p for p in term_distribution(tokens).values())


def target_ngrams(
    examples: Iterable[Sequence[str]], *, orders: Sequence[int] = _NGRAM_ORDERS
) -> dict[int, set[tuple[str, ...]]]:
    """Return the set of the target's n-grams of each order (lowercased words)."""
    out: dict[int, set[tuple[str, ...]]] = {n: set() for n in orders}
    for tokens in examples:
        words = [t.lower() for t in tokens]
        for n in orders:
            out[n].update(_ngrams(words, n))
    return out


# -- every feature of a whole dataset at once (vectorised) -------------------------------------


def _counts(examples: Sequence[Sequence[str]], vocabulary: dict[str, int]) -> sparse.csr_matrix:
    """Return the (examples x vocabulary) word-count matrix, growing ``vocabulary`` as needed."""
    indptr = [0]
    indices: list[int] = []
    for tokens in examples:
        for token in tokens:
            indices.append(vocabulary.setdefault(token.lower(), len(vocabulary)))
        indptr.append(len(indices))
    data = np.ones(len(indices), dtype=np.float64)
    matrix = sparse.csr_matrix(
        (data, np.asarray(indices, dtype=np.int64), np.asarray(indptr, dtype=np.int64)),
        shape=(len(examples), max(len(vocabulary), 1)),
    )
    matrix.sum_duplicates()
    return matrix


def feature_matrix(
    examples: Sequence[Sequence[str]],
    target: Sequence[Sequence[str]],
    *,
    embeddings: np.ndarray | None = None,
    target_embeddings: np.ndarray | None = None,
) -> np.ndarray:
    """Return the (examples x :data:`SELECTION_FEATURES`) matrix of raw-oriented feature values.

    ``examples`` are the auxiliary's examples and ``target`` the target's training examples,
    each a list of words.  ``embeddings`` (examples x d) and ``target_embeddings`` (target
    examples x d) are mean input embeddings per example; without them ``embedding_cosine`` is
    0.  Columns in :data:`NEGATED_FEATURES` are negated, so every similarity column grows with
    closeness to the target.
    """
    vocabulary: dict[str, int] = {}
    target_counts = _counts(target, vocabulary)
    counts = _counts(examples, vocabulary)
    size = max(len(vocabulary), 1)
    target_counts.resize((target_counts.shape[0], size))
    counts.resize((counts.shape[0], size))
    q_counts = np.asarray(target_counts.sum(axis=0)).ravel()
    q = q_counts / max(q_counts.sum(), 1.0)
    q_smooth = (q_counts + _SMOOTHING) / (q_counts.sum() + _SMOOTHING * size)

    lengths = np.asarray(counts.sum(axis=1)).ravel()
    safe = np.where(lengths > 0, lengths, 1.0)
    p = sparse.csr_matrix(sparse.diags(1.0 / safe) @ counts)
    rows = np.repeat(np.arange(p.shape[0]), np.diff(p.indptr))
    values = p.data
    qv = q[p.indices]
    n = p.shape[0]

    def row_sum(terms: np.ndarray) -> np.ndarray:
        return np.bincount(rows, weights=terms, minlength=n)

    # JSD over the example's support; the target's mass outside it adds q·log2(2)/2 = q/2
    # (all of it for an empty example: 1/2, as for P = 0).
    m = (values + qv) / 2
    inside_p = values * np.log2(values / m) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        inside_q = np.where(qv > 0, qv * np.log2(np.where(qv > 0, qv, 1.0) / m) / 2, 0.0)
    q_inside = row_sum(qv)
    jsd = row_sum(inside_p + inside_q) + (q.sum() - q_inside) / 2

    mass = row_sum(values**RENYI_ALPHA * q_smooth[p.indices] ** (1 - RENYI_ALPHA))
    renyi_div = np.where(
        mass > 0,
        np.log2(np.where(mass > 0, mass, 1.0)) / (RENYI_ALPHA - 1),
        -np.log2(q_smooth.min()),  # no mass (an empty example): the largest divergence
    )

    dot = row_sum(values * qv)
    p_norm = np.sqrt(row_sum(values * values))
    q_norm = float(np.sqrt(q @ q))
    denominator = p_norm * q_norm
    cos = np.divide(dot, denominator, out=np.zeros(n), where=denominator > 0)
    euclid = np.sqrt(np.maximum(p_norm**2 + q_norm**2 - 2 * dot, 0.0))

    emb = np.zeros(n)
    if embeddings is not None and target_embeddings is not None and len(target_embeddings):
        centroid = target_embeddings.mean(axis=0)
        norms = np.linalg.norm(embeddings, axis=1) * np.linalg.norm(centroid)
        emb = np.divide(embeddings @ centroid, norms, out=np.zeros(n), where=norms > 0)

    grams = target_ngrams(target)
    overlap = np.array([ngram_overlap(tokens, grams) for tokens in examples], dtype=np.float64)

    types = np.diff(p.indptr).astype(np.float64)
    ttr = np.divide(types, lengths, out=np.zeros(n), where=lengths > 0)
    ent = -row_sum(values * np.log2(values))
    simp = row_sum(values * values)

    columns = {
        "jsd": -jsd,
        "renyi": -renyi_div,
        "cosine": cos,
        "euclidean": -euclid,
        "embedding_cosine": emb,
        "ngram_overlap": overlap,
        "types": types,
        "ttr": ttr,
        "entropy": ent + 0.0,
        "simpson": simp,
    }
    return np.stack([columns[name] for name in SELECTION_FEATURES], axis=1)


def standardise(values: np.ndarray) -> np.ndarray:
    """Return ``values`` z-scored per column (a constant column becomes 0)."""
    mean = values.mean(axis=0) if len(values) else np.zeros(values.shape[1])
    std = values.std(axis=0) if len(values) else np.ones(values.shape[1])
    return np.divide(values - mean, std, out=np.zeros_like(values), where=std > 1e-12)


def selection_scores(
    values: np.ndarray,
    weights: Mapping[str, float],
    *,
    features: Sequence[str] = SELECTION_FEATURES,
) -> np.ndarray:
    """Return ``w · z`` per example: ``values`` has one column per name of ``features``.

    Features without a weight count 0.  An unknown weight name raises ``ValueError``.
    """
    unknown = sorted(set(weights) - set(features))
    if unknown:
        raise ValueError(f"weights for unknown features {unknown}; known: {', '.join(features)}")
    w = np.array([float(weights.get(name, 0.0)) for name in features])
    return standardise(values) @ w


def select_top(scores: np.ndarray, keep: float, *, seed: int = 0) -> np.ndarray:
    """Return the sorted indices of the ``ceil(keep · n)`` best scores.

    Ties are broken by a fixed random order drawn from ``seed``, so equal scores (all weights
    0) select a uniformly random subset, the same one for the same seed.  ``keep`` is in
    (0, 1]; a non-empty dataset keeps at least one example.
    """
    if not 0 < keep <= 1:
        raise ValueError(f"`keep` must be in (0, 1], but got {keep}")
    n = len(scores)
    count = min(n, max(1, math.ceil(keep * n - 1e-9))) if n else 0
    tiebreak = np.random.default_rng(seed).permutation(n)
    order = np.lexsort((tiebreak, -np.asarray(scores, dtype=np.float64)))
    return np.sort(order[:count])


# -- recording a selection with the run ---------------------------------------------------------


def encode_ids(ids: Sequence[int] | np.ndarray, size: int) -> str:
    """Return the kept ``ids`` of ``size`` examples as a base64 bitmask (bit i = example i)."""
    mask = np.zeros(size, dtype=np.uint8)
    mask[np.asarray(ids, dtype=np.int64)] = 1
    return base64.b64encode(np.packbits(mask, bitorder="little").tobytes()).decode("ascii")


def decode_ids(encoded: str, size: int) -> list[int]:
    """Return the example ids of a bitmask written by :func:`encode_ids`."""
    raw = np.frombuffer(base64.b64decode(encoded), dtype=np.uint8)
    return np.flatnonzero(np.unpackbits(raw, bitorder="little")[:size]).tolist()


def selection_record(ids: Sequence[int] | np.ndarray, size: int) -> dict[str, object]:
    """Return what a run records about one auxiliary's selection (counts, bitmask, digest)."""
    kept = sorted(int(i) for i in ids)
    digest = hashlib.sha256(",".join(map(str, kept)).encode("ascii")).hexdigest()
    return {
        "examples": size,
        "kept": len(kept),
        "selected": encode_ids(kept, size),
        "sha256": digest,
    }
