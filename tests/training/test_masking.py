"""Masking schemes of the pretraining stage (numpy only): BERT's rate and 80/10/10 split, and
the adaptive curriculum's move towards harder positions as accuracy rises."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from taskgraph.errors import ConfigError
from taskgraph.training.masking import (
    MASKING_SCHEMES,
    AdaptiveMasking,
    RandomMasking,
    build_masking,
    corrupt,
)

MASK, VOCAB = 103, 30522
B, L = 400, 64


def batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return token ids and the candidate mask ([CLS] at 0, [SEP] at -1 are not candidates)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, 2000, size=(B, L))
    candidates = np.ones((B, L), dtype=bool)
    candidates[:, 0] = candidates[:, -1] = False
    return ids, candidates


def within(observed: float, p: float, n: int, sigmas: float = 5.0) -> bool:
    return abs(observed - p) <= sigmas * math.sqrt(p * (1 - p) / n)


def test_random_masking_rate_and_80_10_10_split_hold() -> None:
    ids, candidates = batch()
    rng = np.random.default_rng(1)
    chosen = RandomMasking().choose(np.arange(B), ids, candidates, rng)
    n = int(candidates.sum())
    assert not chosen[~candidates].any()
    assert within(chosen.sum() / n, 0.15, n)
    inputs, labels = corrupt(ids, chosen, mask_token_id=MASK, vocab_size=VOCAB, rng=rng)
    m = int(chosen.sum())
    assert (labels[chosen] == ids[chosen]).all() and (labels[~chosen] == -100).all()
    assert (inputs[~chosen] == ids[~chosen]).all()
    masked = inputs[chosen] == MASK
    unchanged = inputs[chosen] == ids[chosen]
    replaced = ~masked & ~unchanged
    assert within(masked.mean(), 0.8, m)
    assert within(replaced.mean(), 0.1, m)  # a random draw equal to the original is ~1/30522
    assert within(unchanged.mean(), 0.1, m, sigmas=6.0)


def test_a_wrong_rate_fails_the_test_it_should() -> None:
    # The statistical checks above can fail: a 30 % rate is far outside their band.
    ids, candidates = batch()
    chosen = RandomMasking(mask_rate=0.3).choose(
        np.arange(B), ids, candidates, np.random.default_rng(0)
    )
    assert not within(chosen.sum() / candidates.sum(), 0.15, int(candidates.sum()))


def bound(**options: float) -> AdaptiveMasking:
    masking = AdaptiveMasking(**options)  # type: ignore[arg-type]
    masking.bind(n_sequences=B, length=L, vocab_size=VOCAB)
    return masking


def test_adaptive_masks_a_rounded_count_per_sequence_and_never_special_tokens() -> None:
    ids, candidates = batch()
    masking = bound()
    chosen = masking.choose(np.arange(B), ids, candidates, np.random.default_rng(0))
    assert not chosen[~candidates].any()
    # 0.15 * 62 = 9.3: each sequence masks 9 or 10 positions, 10 about 30 % of the time
    counts = chosen.sum(axis=1)
    assert set(counts.tolist()) == {9, 10}
    assert within(float((counts == 10).mean()), 0.3, B)


def test_both_schemes_mask_the_same_number_of_tokens_in_expectation() -> None:
    # Sequences of varied lengths, many of them short (where rounding to at least one mask
    # would overshoot): the two schemes' mean count per sequence must agree within the
    # standard error of their difference.
    n, width = 20_000, 32
    gen = np.random.default_rng(5)
    ids = gen.integers(1000, 2000, size=(n, width))
    lengths = gen.integers(1, 25, size=n)
    candidates = np.arange(width)[None, :] < lengths[:, None]
    rows = np.arange(n)
    for rate in (0.15, 0.1, 0.4):
        masking = AdaptiveMasking(mask_rate=rate)
        masking.bind(n_sequences=n, length=width, vocab_size=VOCAB)
        adaptive = masking.choose(rows, ids, candidates, np.random.default_rng(6)).sum(axis=1)
        uniform = RandomMasking(mask_rate=rate).choose(
            rows, ids, candidates, np.random.default_rng(7)
        )
        randomly = uniform.sum(axis=1)
        error = math.sqrt((adaptive.var(ddof=1) + randomly.var(ddof=1)) / n)
        assert abs(adaptive.mean() - randomly.mean()) < 4 * error, rate
        # and both are mask_rate * candidates on average
        assert abs(adaptive.mean() - rate * lengths.mean()) < 4 * adaptive.std() / math.sqrt(n)


def known_difficulty(
    masking: AdaptiveMasking, ids: np.ndarray, candidates: np.ndarray
) -> np.ndarray:
    """Give every position a measured difficulty that grows with its column."""
    difficulty = np.tile(np.linspace(0.0, 10.0, L), (B, 1))
    masking.observe(np.arange(B), ids, candidates, difficulty)
    return difficulty


def test_adaptive_masks_move_towards_harder_positions_as_accuracy_rises() -> None:
    ids, candidates = batch()
    masking = bound()
    difficulty = known_difficulty(masking, ids, candidates)
    rng = np.random.default_rng(0)
    rows = np.arange(B)

    def mean_difficulty() -> float:
        chosen = masking.choose(rows, ids, candidates, rng)
        return float(difficulty[chosen].mean())

    low = mean_difficulty()  # competence 0: target quantile q_start = 0.2
    for accuracy in (0.1, 0.2, 0.3):
        masking.observe_refresh(accuracy)
    middle = mean_difficulty()
    for _ in range(10):
        masking.observe_refresh(0.9)  # above full_accuracy: competence -> 1, quantile -> 0.9
    high = mean_difficulty()
    assert masking.competence > 0.99 and masking.target == pytest.approx(0.9, abs=0.01)
    assert low < middle < high
    # The masks sit near the target quantile of difficulty (0..10 uniform): 2 then 9,
    # pulled towards the middle (5) by the exploration floor.
    assert low < 3.5 and high > 6.5


def test_explore_zero_with_a_narrow_bandwidth_masks_the_requested_count() -> None:
    # Every weight exp(-(r - q)^2 / (2 b^2)) underflows to 0 here (r ~ 0.9-1, q = 0,
    # b = 0.02); in log space the draw still masks the requested count, and the positions
    # nearest the target.
    n, width = 8, 42
    gen = np.random.default_rng(0)
    ids = gen.integers(5, 100, size=(n, width))
    candidates = np.ones((n, width), dtype=bool)
    candidates[:, 0] = candidates[:, -1] = False
    masking = AdaptiveMasking(mask_rate=0.25, explore=0.0, bandwidth=0.02, q_start=0.0, q_end=0.0)
    masking.bind(n_sequences=n, length=width, vocab_size=100)
    rows = np.arange(n)
    history = np.tile(np.linspace(0.0, 1.0, width, dtype=np.float32), (n, 1))
    masking.observe(rows, ids, candidates, history)
    masking.difficulty[:, 1:-1] = 0.99
    masking.difficulty[:, 5:15] = 0.9  # closer to the target quantile 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        chosen = masking.choose(rows, ids, candidates, np.random.default_rng(0))
    assert (chosen.sum(axis=1) == 10).all()  # 0.25 * 40 candidates
    expected = np.zeros((n, width), dtype=bool)
    expected[:, 5:15] = True
    assert (chosen == expected).all()


def test_random_masking_ignores_difficulty() -> None:
    ids, candidates = batch()
    difficulty = np.tile(np.linspace(0.0, 10.0, L), (B, 1))
    chosen = RandomMasking().choose(np.arange(B), ids, candidates, np.random.default_rng(0))
    assert 4.5 < difficulty[chosen].mean() < 5.5


def test_unmeasured_positions_take_their_tokens_prior() -> None:
    ids, _ = batch()
    masking = bound()
    seen = np.zeros((B, L), dtype=bool)
    seen[0, 1] = True
    losses = np.full((B, L), 7.0)
    masking.observe(np.arange(B), ids, seen, losses)
    token = ids[0, 1]
    estimates = masking.estimates(np.arange(B), ids)
    assert estimates[0, 1] == pytest.approx(7.0)
    elsewhere = (ids == token) & ~seen
    assert np.allclose(estimates[elsewhere], 7.0)  # the token's mean loss
    assert np.allclose(estimates[ids != token], 7.0)  # no prior: the mean of everything


def test_the_registry_and_unknown_options() -> None:
    assert MASKING_SCHEMES.names() == ["adaptive", "random"]
    assert isinstance(build_masking("adaptive", {"q_end": 0.8}), AdaptiveMasking)
    with pytest.raises(ConfigError, match="unknown option 'q_end' for scheme 'random'"):
        build_masking("random", {"q_end": 0.8})
    with pytest.raises(ConfigError, match="`q_start` must be a number in"):
        build_masking("adaptive", {"q_start": 1.5})
    with pytest.raises(ConfigError, match="`mask_rate` must be in"):
        build_masking("random", {"mask_rate": 0.0})
