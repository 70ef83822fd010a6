"""Equal weighting: the sum of the task losses of a step (the usual multi-task baseline)."""

from __future__ import annotations

from taskgraph.training.weighting.base import LossWeighting

__all__ = ["EqualWeighting"]


class EqualWeighting(LossWeighting):
    """Every task's loss counts once: ``L = sum_t L_t``."""

    name = "equal"
