"""The evaluator seam: what turns a :class:`~taskgraph.trial.TrialConfig` into a result.

It sits at the bottom of the layering (next to :mod:`taskgraph.trial`) because two layers
meet on it: :mod:`taskgraph.search` calls evaluators and :mod:`taskgraph.runners` builds them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from taskgraph.trial import TrialConfig, TrialResult

__all__ = ["TrialEvaluator"]


@runtime_checkable
class TrialEvaluator(Protocol):
    """Evaluates one trial configuration (one seed).

    Contract: ``evaluate`` never raises for a failing trial, it returns
    ``TrialResult.failed(reason)`` (``KeyboardInterrupt`` passes through).  ``callbacks`` are
    trainer callbacks (pruning, progress) that an evaluator without a training curve ignores.
    ``checkpoint_key`` names the trial across retries (``trial-<number of the first try>``):
    an evaluator that checkpoints keeps its state under it, one that does not ignores it.
    """

    def evaluate(
        self,
        config: TrialConfig,
        *,
        callbacks: Sequence[Any] = (),
        checkpoint_key: str | None = None,
    ) -> TrialResult:
        """Return the result of training (or looking up) ``config``; never raise for a bad trial."""
        ...
