"""Type checks of the Python API's arguments, so a notebook gets a ConfigError naming the keyword.

The command line parses its options into the right types before it calls :mod:`taskgraph.app`;
a caller from Python can pass anything (``k="3"``, ``tasks="ner"``), which would otherwise
surface as a ``TypeError`` deep inside an estimator, or as a string read one letter at a time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from taskgraph.errors import ConfigError

__all__ = ["integer", "names", "number", "study_name"]


def integer(value: object, keyword: str, *, minimum: int | None = None) -> int:
    """Return ``value`` when it is an int (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"`{keyword}` must be an integer, but got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"`{keyword}` must be >= {minimum}, but got {value}")
    return value


def number(value: object, keyword: str) -> float:
    """Return ``value`` as a float when it is a finite real number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"`{keyword}` must be a finite number, but got {value!r}")
    return float(value)


def study_name(value: object, keyword: str = "name") -> str:
    """Return ``value`` when it is a study name (Optuna would take ``None`` to mean the
    database's only study)."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"`{keyword}` must be a non-empty study name, but got {value!r}")
    return value


def names(value: str | Iterable[str] | None, keyword: str) -> list[str] | None:
    """Return a list of names from ``"a,b"``, ``"a"`` or an iterable of strings (None stays None).

    A name given twice is kept once, in its first place: a metric is one column, a sampler one
    search.
    """
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    if not all(isinstance(item, str) for item in items):
        raise ConfigError(f"`{keyword}` must be names (strings), but got {value!r}")
    return list(dict.fromkeys(item.strip() for item in items if item.strip()))
