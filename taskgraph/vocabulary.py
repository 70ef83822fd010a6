"""Rules every layer shares, each in one place: task-set keys, metric directions, stable seeds,
JSON without NaN.

At the bottom of the layering (docs/architecture.md): it imports nothing of taskgraph.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

__all__ = [
    "direction_mismatch",
    "first_names",
    "higher_is_better",
    "json_safe",
    "metric_direction",
    "stable_seed",
    "task_set_key",
    "unknown_metric",
]

# A metric whose first `_`-separated word names a score is maximised whatever follows: a
# per-type entity score is the score's name + `_` + the type (`f1_error`, `precision_MAE`).
_MAXIMIZE = re.compile(
    r"(f1|precision|recall|accuracy|acc|exact|em|mcc|auc|uas|las|mrr)(_.*)?", re.IGNORECASE
)
# Otherwise a metric is minimised when its last `_`-separated word names an error: `loss`,
# `val_loss`, `perplexity`, `rmse`, `wer`.
_MINIMIZE = re.compile(r"(.*_)?(loss|perplexity|error|mse|mae|rmse|wer|cer)", re.IGNORECASE)


def task_set_key(tasks: Iterable[str]) -> str:
    """Return the canonical key of a task set: its names sorted and joined by ``+``."""
    return "+".join(sorted(tasks))


def first_names(names: Iterable[str], limit: int = 5) -> str:
    """Return up to ``limit`` names joined by commas, then how many more (a note's list)."""
    names = list(names)
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def metric_direction(metric: str) -> Literal["maximize", "minimize"]:
    """Return ``"minimize"`` for losses, perplexity and error rates, ``"maximize"`` otherwise.

    A name that starts with a score (``f1_``, ``precision_``, ``accuracy``...) is maximised
    before the error words are looked at, so ``f1_error`` (F1 of the type ``error``) is an F1.
    """
    if _MAXIMIZE.fullmatch(metric):
        return "maximize"
    return "minimize" if _MINIMIZE.fullmatch(metric) else "maximize"


def higher_is_better(metric: str) -> bool:
    """Return whether a larger value of ``metric`` is better (:func:`metric_direction`)."""
    return metric_direction(metric) == "maximize"


def direction_mismatch(*, source: str, direction: str, wanted: str, scores: str) -> str:
    """Return the message for an objective going ``direction`` against scores that go
    ``wanted``: where (``source``), what the scores are (``scores``: "accuracy is", "t's rows
    in t.csv are"), and the line that fixes it."""
    better = "higher" if wanted == "maximize" else "lower"
    return (
        f"{source}: objective.direction: {direction}, but {scores} {better}-is-better; "
        f"write `direction: {wanted}`"
    )


def unknown_metric(*, source: str, metric: str, task: str, allowed: Iterable[str]) -> str:
    """Return the message for an objective ``metric`` the target ``task`` does not score,
    where (``source``) and the metrics it does (``allowed``)."""
    return (
        f"{source}: objective.metric: {metric!r} is not a metric of {task}; "
        f"allowed: {', '.join(allowed)}"
    )


def stable_seed(*parts: object, bits: int = 63) -> int:
    """Return a ``bits``-bit seed derived from ``parts``, the same in every process and platform.

    Python's ``hash()`` is salted per process; sha256 is not.  63 bits (the default) fit a
    signed 64-bit integer (torch's generators); the synthetic task family draws its data with
    64, which its published figures were measured with.
    """
    if not 1 <= bits <= 64:
        raise ValueError(f"bits must be in [1, 64], got {bits}")
    digest = hashlib.sha256("/".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") >> (64 - bits)


def json_safe(value: Any) -> Any:
    """Return ``value`` with every non-finite float (in dicts, lists, tuples) replaced by None.

    JSON has no NaN or infinity, and strict parsers (``jq``, ``json.loads`` in strict mode)
    reject Python's ``NaN``: what ``--json`` prints and what ``records export`` writes.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value
