"""Masking schemes for masked-LM pretraining: which positions of a batch to mask.

Both schemes mask the same number of tokens per sequence in expectation (``mask_rate`` of its
non-special tokens) and corrupt the chosen positions the same way (BERT, Devlin et al. 2019:
80 % become the mask token, 10 % a random token, 10 % stay unchanged); they differ only in
*which* positions are chosen, so at an equal token budget the comparison is about the choice.

``random`` (:class:`RandomMasking`)
    Each non-special position is chosen independently with probability ``mask_rate`` (0.15).

``adaptive`` (:class:`AdaptiveMasking`): a self-paced curriculum over positions (Bengio et al.
2009, curriculum learning; Jiang et al. 2015, self-paced curriculum learning).

    *Difficulty* of position p of sequence i is d(i, p), the model's own masked-LM loss
    (cross-entropy of the true token) the last time p was masked in sequence i, i.e. in that
    context.  It is refreshed as training goes: every training step records the loss at every
    position it masked (no extra compute), and every ``refresh_every`` steps a no-gradient
    pass over the next ``refresh_size`` corpus sequences (cycling), each with random masks at
    ``mask_rate``, records theirs (positions the curriculum avoids are re-measured too).  A
    position never measured gets its token's prior: the mean loss measured so far for that
    token id (else the mean of all measurements).

    *Competence* c in [0, 1] is the model's masked-token accuracy (top-1, on the positions of
    the refresh pass, whose masks are random and so unbiased by the curriculum), divided by
    ``full_accuracy`` and clipped to 1; it is smoothed (exponential moving average, weight
    ``0.5`` on the newest refresh).

    *Target level*: the quantile q = q_start + (q_end - q_start) * c of the difficulty
    distribution (the last ``history`` measured losses); the level thus rises from easy
    (q_start) towards hard (q_end) as accuracy rises.  Quantiles keep the target meaningful
    while all losses fall.

    *Drawing masks*: each candidate position gets its difficulty's rank r in [0, 1] (its
    quantile in the same distribution) and the weight
    w = (1 - explore) * exp(-(r - q)^2 / (2 * bandwidth^2)) + explore, kept as log w
    (``logaddexp`` of the two terms) so that a narrow bandwidth never underflows to 0.  A
    sequence with c candidates masks n positions, n = floor(mask_rate * c) plus one with
    probability frac(mask_rate * c) (stochastic rounding: E[n] = mask_rate * c exactly, as
    for random masking), drawn without replacement with probabilities proportional to w
    (Gumbel top-k).  So the mean difficulty of the masks is held near the target level;
    ``explore`` keeps every position reachable.

    Parameters (``options`` of the spec; defaults): ``mask_rate`` 0.15, ``q_start`` 0.2,
    ``q_end`` 0.9, ``full_accuracy`` 0.5, ``bandwidth`` 0.15, ``explore`` 0.1,
    ``refresh_every`` 10, ``refresh_size`` 32, ``history`` 8192.

    *Cost*: a table of one float32 per corpus token (4 bytes x tokens: 1 MB per 250,000
    tokens) and one per vocabulary entry; per step, a sort of the history (8,192 values) and
    O(B x L) numpy work; the refresh passes add refresh_size / (refresh_every x batch size)
    forward passes without gradients (32 / (10 x 16) = 20 % of the steps' sequences, about
    7 % of their compute since a training step is a forward and a backward pass).

The numpy here is deterministic given the generator, so a seed reproduces the masks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from taskgraph.errors import ConfigError
from taskgraph.registry import Registry
from taskgraph.tasks.features.masked_lm import corrupt

__all__ = [
    "MASKING_SCHEMES",
    "AdaptiveMasking",
    "Masking",
    "RandomMasking",
    "corrupt",
    "masking_options",
]


@dataclass
class RandomMasking:
    """BERT's masking: each non-special position independently with probability ``mask_rate``."""

    mask_rate: float = 0.15

    def __post_init__(self) -> None:
        _check_rate("mask_rate", self.mask_rate)

    def choose(
        self,
        rows: np.ndarray,
        input_ids: np.ndarray,
        candidates: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Return the (B, L) bool mask of positions to mask (``rows``: corpus indices)."""
        return (rng.random(input_ids.shape) < self.mask_rate) & candidates

    def observe(
        self, rows: np.ndarray, input_ids: np.ndarray, chosen: np.ndarray, losses: np.ndarray
    ) -> None:
        """Record the per-position losses of a batch (random masking keeps nothing)."""

    def observe_refresh(self, accuracy: float) -> None:
        """Record the masked-token accuracy of a refresh pass (random masking keeps nothing)."""

    def state(self) -> dict[str, float]:
        """Return the scheme's state for the curve (empty for random masking)."""
        return {}


@dataclass
class AdaptiveMasking:
    """The self-paced curriculum of the module docstring (call :meth:`bind` before use)."""

    mask_rate: float = 0.15
    q_start: float = 0.2
    q_end: float = 0.9
    full_accuracy: float = 0.5
    bandwidth: float = 0.15
    explore: float = 0.1
    refresh_every: int = 10
    refresh_size: int = 32
    history: int = 8192

    def __post_init__(self) -> None:
        _check_rate("mask_rate", self.mask_rate)
        for name in ("q_start", "q_end", "explore"):
            value = getattr(self, name)
            if not _is_number(value) or not 0.0 <= value <= 1.0:
                raise ConfigError(f"`{name}` must be a number in [0, 1], but got {value!r}")
        for name in ("full_accuracy", "bandwidth"):
            value = getattr(self, name)
            if not _is_number(value) or not 0.0 < value <= 1.0:
                raise ConfigError(f"`{name}` must be a number in (0, 1], but got {value!r}")
        for name in ("refresh_every", "refresh_size", "history"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"`{name}` must be an integer >= 1, but got {value!r}")
        self.difficulty = np.zeros((0, 0), dtype=np.float32)
        self.token_sum = np.zeros(0, dtype=np.float64)
        self.token_count = np.zeros(0, dtype=np.int64)
        self.recent = np.zeros(0, dtype=np.float32)
        self.competence = 0.0

    def bind(self, *, n_sequences: int, length: int, vocab_size: int) -> None:
        """Allocate the difficulty table for a corpus of ``n_sequences`` x ``length`` tokens."""
        self.difficulty = np.full((n_sequences, length), np.nan, dtype=np.float32)
        self.token_sum = np.zeros(vocab_size, dtype=np.float64)
        self.token_count = np.zeros(vocab_size, dtype=np.int64)

    @property
    def target(self) -> float:
        """Return the target quantile of difficulty for the current competence."""
        return self.q_start + (self.q_end - self.q_start) * self.competence

    def estimates(self, rows: np.ndarray, input_ids: np.ndarray) -> np.ndarray:
        """Return the (B, L) difficulty estimates: measured in context, else the token prior."""
        width = input_ids.shape[1]
        measured = self.difficulty[rows, :width]
        seen = self.token_count[input_ids] > 0
        overall = float(self.token_sum.sum() / max(self.token_count.sum(), 1))
        prior = np.where(
            seen, self.token_sum[input_ids] / np.maximum(self.token_count[input_ids], 1), overall
        )
        return np.where(np.isnan(measured), prior, measured)

    def ranks(self, values: np.ndarray) -> np.ndarray:
        """Return each value's quantile in the recent measurements (0.5 before any)."""
        if self.recent.size == 0:
            return np.full(values.shape, 0.5)
        ordered = np.sort(self.recent)
        below = np.searchsorted(ordered, values, side="left")
        upto = np.searchsorted(ordered, values, side="right")
        return (below + upto) / (2.0 * ordered.size)

    def log_weights(self, rows: np.ndarray, input_ids: np.ndarray) -> np.ndarray:
        """Return the (B, L) log sampling weights log w of the module docstring."""
        rank = self.ranks(self.estimates(rows, input_ids))
        # In log space: exp(-(r - q)^2 / (2 b^2)) is 0.0 in float64 once the exponent is below
        # about -745, and a key of log(0) = -inf would tie a candidate with the non-candidates.
        log_bump = -((rank - self.target) ** 2) / (2.0 * self.bandwidth**2)
        if self.explore == 0.0:
            return log_bump
        if self.explore == 1.0:
            return np.zeros_like(log_bump)
        return np.logaddexp(math.log1p(-self.explore) + log_bump, math.log(self.explore))

    def choose(
        self,
        rows: np.ndarray,
        input_ids: np.ndarray,
        candidates: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Return the (B, L) bool mask: ``mask_rate * candidates`` positions per row on average.

        Each row's count is ``mask_rate * c`` stochastically rounded (``c`` its candidates), so
        its expectation is that of :class:`RandomMasking`.
        """
        log_weights = self.log_weights(rows, input_ids)
        gumbel = -np.log(-np.log(rng.random(input_ids.shape) + 1e-12) + 1e-12)
        keys = np.where(candidates, log_weights + gumbel, -np.inf)
        expected = self.mask_rate * candidates.sum(axis=1)
        whole = np.floor(expected)
        wanted = whole + (rng.random(expected.shape) < expected - whole)
        order = np.argsort(-keys, axis=1, kind="stable")
        rank_of = np.empty_like(order)
        np.put_along_axis(rank_of, order, np.arange(order.shape[1])[None, :], axis=1)
        return (rank_of < wanted[:, None]) & candidates

    def observe(
        self, rows: np.ndarray, input_ids: np.ndarray, chosen: np.ndarray, losses: np.ndarray
    ) -> None:
        """Record the loss at every ``chosen`` position (``losses``: (B, L), any value elsewhere)."""
        batch_rows, cols = np.nonzero(chosen)
        values = losses[batch_rows, cols].astype(np.float32)
        if values.size == 0:
            return
        self.difficulty[rows[batch_rows], cols] = values
        tokens = input_ids[batch_rows, cols]
        np.add.at(self.token_sum, tokens, values.astype(np.float64))
        np.add.at(self.token_count, tokens, 1)
        self.recent = np.concatenate([self.recent, values])[-self.history :]

    def observe_refresh(self, accuracy: float) -> None:
        """Move the competence towards ``accuracy / full_accuracy`` (clipped to [0, 1])."""
        level = min(max(accuracy / self.full_accuracy, 0.0), 1.0)
        self.competence = 0.5 * self.competence + 0.5 * level

    def state(self) -> dict[str, float]:
        """Return the competence and the target quantile (recorded with the curve)."""
        return {"competence": round(self.competence, 4), "target_quantile": round(self.target, 4)}


Masking = RandomMasking | AdaptiveMasking

MASKING_SCHEMES: Registry[type[Any]] = Registry(kind="pretraining scheme")
MASKING_SCHEMES.register("random", RandomMasking)
MASKING_SCHEMES.register("adaptive", AdaptiveMasking)


def masking_options(scheme: str) -> list[str]:
    """Return the option names ``scheme`` accepts (its dataclass fields)."""
    return [f.name for f in fields(MASKING_SCHEMES.get(scheme))]


def build_masking(scheme: str, options: Mapping[str, Any]) -> Masking:
    """Return the masking of ``scheme`` with ``options``; unknown options raise ConfigError."""
    cls = MASKING_SCHEMES.get(scheme)
    allowed = masking_options(scheme)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(
            f"pretraining.options: unknown option {unknown[0]!r} for scheme {scheme!r}; "
            f"allowed: {', '.join(allowed)}"
        )
    try:
        masking: Masking = cls(**dict(options))
    except ConfigError as error:
        raise ConfigError(f"pretraining.options: {error}") from None
    return masking


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_rate(name: str, value: float) -> None:
    if not _is_number(value) or not 0.0 < value < 1.0:
        raise ConfigError(f"`{name}` must be in (0, 1), but got {value!r}")
