"""Seed statistics of a results table: a cell's mean and Student-t interval, a paired difference.

Plain numbers in, numbers out: :func:`mean_interval`, :class:`Cell` (one metric over seeds) and
:class:`Paired` (per-seed differences from a reference row, with a paired t-test).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from taskgraph.errors import ConfigError

__all__ = ["Cell", "Paired", "mean_interval"]

#: a paired standard error at most this (relative to the differences, at least 1) is rounding
_ROUNDING = 1e-12


def mean_interval(values: Sequence[float], *, confidence: float = 0.95) -> tuple[float, float]:
    """Return the mean of ``values`` and the half-width of its Student-t interval.

    The half-width is ``t(1 - (1 - confidence) / 2, n - 1) * s / sqrt(n)`` with ``s`` the sample
    standard deviation; NaN for fewer than two values (no interval exists).
    """
    if not values:
        raise ConfigError("`values` must hold at least one number, but got none")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"`confidence` must be in (0, 1), but got {confidence}")
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.nan
    from scipy.stats import t

    quantile = float(t.ppf(1.0 - (1.0 - confidence) / 2.0, len(values) - 1))
    return mean, quantile * statistics.stdev(values) / math.sqrt(len(values))


@dataclass(frozen=True)
class Cell:
    """One metric of one row on one split: the per-seed values, their mean and interval."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        """Return the number of values (seeds)."""
        return len(self.values)

    @property
    def mean(self) -> float:
        """Return the mean over seeds (NaN without values)."""
        return mean_interval(self.values)[0] if self.values else math.nan

    @property
    def half_width(self) -> float:
        """Return the 95 % t-interval's half-width (NaN for fewer than two seeds)."""
        return mean_interval(self.values)[1] if self.values else math.nan

    def text(self, digits: int = 3) -> str:
        """Return ``mean ± half-width`` (``mean`` alone for one seed, "not run" for none)."""
        if not self.values:
            return "not run"
        if math.isnan(self.half_width):
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.half_width:.{digits}f}"


@dataclass(frozen=True)
class Paired:
    """A row's per-seed differences from the reference row (the table's first) on one metric."""

    differences: tuple[float, ...]
    #: the largest magnitude of the scores subtracted (their rounding bounds the differences')
    scale: float = 0.0

    @property
    def n(self) -> int:
        """Return the number of seeds both rows ran."""
        return len(self.differences)

    @property
    def mean(self) -> float:
        """Return the mean difference (NaN without a common seed)."""
        return statistics.fmean(self.differences) if self.differences else math.nan

    @property
    def se(self) -> float:
        """Return the standard error of the mean difference (NaN for fewer than two seeds)."""
        if self.n < 2:
            return math.nan
        return statistics.stdev(self.differences) / math.sqrt(self.n)

    @property
    def no_spread(self) -> bool:
        """Return True when two or more seeds all differ by the same amount (s.e. 0).

        Differences of unequal scores may disagree in their last bits (0.3 - 0.2 is not
        0.4 - 0.3 in floating point), so a standard error within rounding of the scores
        subtracted (``scale``) or of the differences counts as none.
        """
        if self.n < 2:
            return False
        scale = max(1.0, self.scale, max(abs(d) for d in self.differences))
        return self.se <= _ROUNDING * scale

    @property
    def p_value(self) -> float:
        """Return the two-sided paired t-test's p-value.

        NaN for fewer than two seeds, and when every seed differs by the same amount
        (:attr:`no_spread`): a t-test has no variance to weigh the mean against then, and
        0 (or 1) would claim a certainty that the seeds cannot give.
        """
        if self.n < 2 or self.no_spread:
            return math.nan
        from scipy.stats import t

        return float(2.0 * t.sf(abs(self.mean / self.se), self.n - 1))

    def text(self, digits: int = 3) -> str:
        """Return ``+mean ± s.e. (p 0.04)``, or ``(no spread over N seeds)`` for a standard
        error of 0; the mean alone for one seed, empty for none."""
        if not self.differences:
            return ""
        if self.n < 2:
            return f"{self.mean:+.{digits}f}"
        if self.no_spread:
            return f"{self.mean:+.{digits}f} ± {0.0:.{digits}f} (no spread over {self.n} seeds)"
        return f"{self.mean:+.{digits}f} ± {self.se:.{digits}f} (p {self.p_value:.2f})"
