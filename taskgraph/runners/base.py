"""The runner seam: something that turns a :class:`~taskgraph.trial.TrialConfig` into a
:class:`~taskgraph.trial.TrialResult`.

``local`` trains in-process, ``tabular`` looks a published result up, and ``ray`` wraps an
evaluator in a Ray Tune trainable.  An evaluator never raises for a failing trial: it returns
``TrialResult.failed(reason)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from taskgraph.trial import TrialConfig, TrialResult

__all__ = ["TrialEvaluator"]


@runtime_checkable
class TrialEvaluator(Protocol):
    """Evaluates one trial configuration."""

    def evaluate(self, config: TrialConfig, *, callbacks: Sequence[Any] = ()) -> TrialResult:
        """Return the result of training (or looking up) ``config``; never raise for a bad trial."""
        ...
