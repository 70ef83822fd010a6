"""Each data-selection feature against a value computed by hand (Ruder and Plank 2017)."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from taskgraph.tasks import selection as sel

# Target: "a b" and "a c" -> Q = {a: 1/2, b: 1/4, c: 1/4}; example "a a d" -> P = {a: 2/3, d: 1/3}.
TARGET = [["a", "b"], ["A", "c"]]
EXAMPLE = ["a", "a", "d"]
P = {"a": 2 / 3, "d": 1 / 3}
Q = {"a": 1 / 2, "b": 1 / 4, "c": 1 / 4}


def column(values: np.ndarray, name: str) -> np.ndarray:
    return values[:, sel.SELECTION_FEATURES.index(name)]


def test_term_distribution_lowercases_and_normalises() -> None:
    assert sel.term_distribution(["a", "A", "b", "c"]) == {"a": 0.5, "b": 0.25, "c": 0.25}
    assert sel.term_distribution([]) == {}


def test_jensen_shannon_by_hand() -> None:
    # M = {a: 7/12, b: 1/8, c: 1/8, d: 1/6}
    by_hand = (2 / 3 * math.log2((2 / 3) / (7 / 12)) + 1 / 3 * math.log2(2)) / 2 + (
        1 / 2 * math.log2((1 / 2) / (7 / 12)) + 2 * (1 / 4 * math.log2(2))
    ) / 2
    assert sel.jensen_shannon(P, Q) == pytest.approx(by_hand)
    assert sel.jensen_shannon(P, P) == pytest.approx(0.0)
    assert sel.jensen_shannon({"x": 1.0}, {"y": 1.0}) == pytest.approx(1.0)


def test_renyi_by_hand() -> None:
    q = {"a": 0.5, "d": 0.5}
    by_hand = math.log2((2 / 3) ** 0.99 * 0.5**0.01 + (1 / 3) ** 0.99 * 0.5**0.01) / (0.99 - 1)
    assert sel.renyi(P, q) == pytest.approx(by_hand)
    assert sel.renyi(q, q) == pytest.approx(0.0, abs=1e-12)


def test_cosine_and_euclidean_by_hand() -> None:
    assert sel.cosine(P, Q) == pytest.approx(4 / math.sqrt(30))
    assert sel.euclidean(P, Q) == pytest.approx(math.sqrt(38) / 12)
    assert sel.cosine({}, Q) == 0.0


def test_ngram_overlap_by_hand() -> None:
    grams = sel.target_ngrams(TARGET)
    assert grams[2] == {("a", "b"), ("a", "c")}
    # unigrams a a d: 2 of 3 known; bigrams (a a) (a d): 0 of 2 -> mean 1/3
    assert sel.ngram_overlap(EXAMPLE, grams) == pytest.approx(1 / 3)
    assert sel.ngram_overlap(["b"], grams) == pytest.approx(1.0)  # too short for bigrams
    assert sel.ngram_overlap([], grams) == 0.0


def test_diversity_features_by_hand() -> None:
    assert sel.type_token_ratio(EXAMPLE) == pytest.approx(2 / 3)
    assert sel.entropy(EXAMPLE) == pytest.approx(
        -(2 / 3 * math.log2(2 / 3) + 1 / 3 * math.log2(1 / 3))
    )
    assert sel.simpson(EXAMPLE) == pytest.approx(5 / 9)
    assert sel.entropy(["x", "y", "z", "w"]) == pytest.approx(2.0)
    assert sel.simpson(["x", "y", "z", "w"]) == pytest.approx(0.25)


def test_feature_matrix_matches_the_hand_values_and_orientation() -> None:
    values = sel.feature_matrix(
        [EXAMPLE, ["a", "b", "a", "c"], []],
        TARGET,
        embeddings=np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]),
        target_embeddings=np.array([[1.0, 1.0], [1.0, -1.0]]),
    )
    assert values.shape == (3, len(sel.SELECTION_FEATURES))
    first = dict(zip(sel.SELECTION_FEATURES, values[0], strict=True))
    assert first["jsd"] == pytest.approx(-sel.jensen_shannon(P, Q))
    # Q smoothed over V = {a, b, c, d}: (count + 0.01) / (4 + 0.04)
    smooth = {"a": 2.01 / 4.04, "b": 1.01 / 4.04, "c": 1.01 / 4.04, "d": 0.01 / 4.04}
    assert first["renyi"] == pytest.approx(-sel.renyi(P, smooth))
    assert first["cosine"] == pytest.approx(4 / math.sqrt(30))
    assert first["euclidean"] == pytest.approx(-math.sqrt(38) / 12)
    assert first["embedding_cosine"] == pytest.approx(1.0)  # centroid (1, 0)
    assert first["ngram_overlap"] == pytest.approx(1 / 3)
    assert first["types"] == 2
    assert first["ttr"] == pytest.approx(2 / 3)
    assert first["entropy"] == pytest.approx(sel.entropy(EXAMPLE))
    assert first["simpson"] == pytest.approx(5 / 9)
    assert column(values, "embedding_cosine")[1] == pytest.approx(0.0)
    # "a b a c" has the target's own distribution: the closest on every similarity measure
    assert column(values, "jsd")[1] == pytest.approx(0.0)
    assert column(values, "cosine")[1] == pytest.approx(1.0)
    assert column(values, "euclidean")[1] == pytest.approx(0.0)
    for name in ("jsd", "renyi", "cosine", "euclidean", "ngram_overlap"):
        assert column(values, name)[1] > column(values, name)[0], name
    assert np.all(np.isfinite(values))
    # the empty example: as for P = 0 (checked against the reference functions below)
    empty = dict(zip(sel.SELECTION_FEATURES, values[2], strict=True))
    assert empty["jsd"] == pytest.approx(-0.5)
    assert empty["euclidean"] == pytest.approx(-math.sqrt(sum(v * v for v in Q.values())))
    assert empty["renyi"] == pytest.approx(math.log2(0.01 / 4.04))  # -(-log2 min Q)
    assert all(
        empty[name] == 0.0 for name in sel.SELECTION_FEATURES if name not in sel.NEGATED_FEATURES
    )


def test_an_empty_example_is_never_the_closest_and_matches_the_reference() -> None:
    target = [["the", "cat", "sat"], ["a", "dog", "ran"]]
    # the audit's case, plus an example closer to the target than all of them
    examples = [
        [],
        ["the", "cat", "sat"],
        ["zebra", "quux"],
        ["the", "dog"],
        ["the", "cat", "sat", "a"],
    ]
    values = sel.feature_matrix(examples, target)
    q = sel.term_distribution([w for t in target for w in t])
    vocabulary = {w.lower() for t in target + examples for w in t}
    smooth = {w: (q.get(w, 0.0) * 6 + 0.01) / (6 + 0.01 * len(vocabulary)) for w in vocabulary}
    grams = sel.target_ngrams(target)
    for i, example in enumerate(examples):
        p = sel.term_distribution(example)
        reference = {
            "jsd": -sel.jensen_shannon(p, q),
            "renyi": -sel.renyi(p, smooth),
            "cosine": sel.cosine(p, q),
            "euclidean": -sel.euclidean(p, q),
            "embedding_cosine": 0.0,
            "ngram_overlap": sel.ngram_overlap(example, grams),
            "types": len(set(example)),
            "ttr": sel.type_token_ratio(example),
            "entropy": sel.entropy(example),
            "simpson": sel.simpson(example),
        }
        got = dict(zip(sel.SELECTION_FEATURES, values[i], strict=True))
        assert got == pytest.approx(reference), example
    assert sel.jensen_shannon({}, q) == pytest.approx(0.5)
    # Ranked by one similarity, the empty example is never kept first (it was: distance 0).
    for name in ("jsd", "renyi", "euclidean", "cosine"):
        scores = sel.selection_scores(values, {name: 1.0})
        assert sel.select_top(scores, 0.2).tolist() == [4], name
        assert scores[0] < scores[4] and scores[0] <= scores[1], name
    assert column(values, "renyi")[0] == column(values, "renyi").min()


def test_jsd_against_an_empty_target_matches_the_reference() -> None:
    values = sel.feature_matrix([["a"], []], [])
    assert column(values, "jsd").tolist() == pytest.approx(
        [-sel.jensen_shannon({"a": 1.0}, {}), -sel.jensen_shannon({}, {})]
    )


def test_standardise_zscores_and_zeroes_constant_columns() -> None:
    z = sel.standardise(np.array([[1.0, 5.0], [3.0, 5.0]]))
    assert z.tolist() == [[-1.0, 0.0], [1.0, 0.0]]


def test_selection_scores_weight_standardised_features() -> None:
    values = np.array([[1.0, 10.0], [3.0, 30.0], [2.0, 20.0]])
    scores = sel.selection_scores(values, {"x": 1.0}, features=("x", "y"))
    assert scores.tolist() == pytest.approx([-math.sqrt(1.5), math.sqrt(1.5), 0.0])
    with pytest.raises(ValueError, match="unknown features"):
        sel.selection_scores(values, {"z": 1.0}, features=("x", "y"))


def test_select_top_keeps_the_best_share() -> None:
    scores = np.array([0.1, 0.5, 0.4, -1.0])
    assert sel.select_top(scores, 0.5).tolist() == [1, 2]
    assert sel.select_top(scores, 0.25).tolist() == [1]
    assert sel.select_top(scores, 0.3).tolist() == [1, 2]  # ceil(1.2) = 2
    assert sel.select_top(scores, 0.01).tolist() == [1]  # at least one
    # even when keep · n rounds up to nothing
    assert sel.select_top(np.arange(10.0), 1e-12).tolist() == [9]
    assert sel.select_top(np.array([]), 0.5).tolist() == []
    assert sel.select_top(scores, 1.0).tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="`keep` must be in"):
        sel.select_top(scores, 0.0)


def test_select_top_breaks_ties_in_a_seeded_random_order() -> None:
    flat = np.zeros(1000)
    first = sel.select_top(flat, 0.1, seed=1)
    assert len(first) == 100
    assert sel.select_top(flat, 0.1, seed=1).tolist() == first.tolist()
    assert sel.select_top(flat, 0.1, seed=2).tolist() != first.tolist()
    # a random subset, not the first hundred
    assert first.max() > 500 and first.min() < 500
    # ties only among equals: the strictly best example always stays
    flat[999] = 1.0
    assert 999 in sel.select_top(flat, 0.01, seed=1).tolist()


def test_selection_record_round_trips_the_ids() -> None:
    record = sel.selection_record([9, 0, 3], 10)
    assert record["examples"] == 10 and record["kept"] == 3
    assert sel.decode_ids(str(record["selected"]), 10) == [0, 3, 9]
    assert sel.decode_ids(sel.encode_ids([], 5), 5) == []


def test_bitmask_format_by_hand() -> None:
    # bit i = example i, least significant bit first within each byte, then base64
    assert sel.encode_ids([0], 8) == "AQ=="  # 0b00000001
    assert sel.encode_ids([0, 1, 2], 8) == "Bw=="  # 0b00000111
    assert sel.encode_ids([9], 16) == "AAI="  # bytes 0x00 0x02
    assert sel.decode_ids("AAI=", 16) == [9]
    assert sel.decode_ids("Bw==", 5) == [0, 1, 2]


def test_selection_record_digest_by_hand() -> None:
    record = sel.selection_record([2, 0], 3)
    # the sha256 of the sorted ids joined by commas
    assert record["sha256"] == hashlib.sha256(b"0,2").hexdigest()
    assert record == {"examples": 3, "kept": 2, "selected": "BQ==", "sha256": record["sha256"]}


def test_negative_weights_reverse_the_scores() -> None:
    values = np.array([[1.0], [2.0], [4.0]])
    up = sel.selection_scores(values, {"x": 1.0}, features=("x",))
    down = sel.selection_scores(values, {"x": -1.0}, features=("x",))
    assert down.tolist() == pytest.approx((-up).tolist())
    assert down[0] > down[2]


def test_ngram_overlap_lowercases_the_example() -> None:
    target = {1: {("the",), ("cat",)}, 2: {("the", "cat")}}
    assert sel.ngram_overlap(["The", "CAT"], target, orders=(1, 2)) == 1.0


def test_standardise_keeps_a_small_spread() -> None:
    # a real, if small, spread is scaled like any other; only a constant column becomes 0
    assert sel.standardise(np.array([[0.0], [1e-4]]))[:, 0].tolist() == pytest.approx([-1.0, 1.0])
