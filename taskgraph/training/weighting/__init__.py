"""Loss weightings, one file per method, looked up by name in :data:`LOSS_WEIGHTINGS`.

- ``equal``: the plain sum of task losses.
- ``uncertainty``: Kendall et al. 2018, learned homoscedastic-uncertainty weights.
- ``pcgrad``: Yu et al. 2020, projecting conflicting gradients on the shared parameters.
"""

from __future__ import annotations

from collections.abc import Sequence

from taskgraph.registry import Registry
from taskgraph.training.weighting.base import LossWeighting

__all__ = ["LOSS_WEIGHTINGS", "LossWeighting", "build_weighting"]

LOSS_WEIGHTINGS: Registry[type[LossWeighting]] = Registry(kind="loss weighting")
LOSS_WEIGHTINGS.register("equal", "taskgraph.training.weighting.equal:EqualWeighting")
LOSS_WEIGHTINGS.register(
    "uncertainty", "taskgraph.training.weighting.uncertainty:UncertaintyWeighting"
)
LOSS_WEIGHTINGS.register("pcgrad", "taskgraph.training.weighting.pcgrad:PCGradWeighting")


def build_weighting(name: str, *, tasks: Sequence[str], seed: int = 0) -> LossWeighting:
    """Return a new loss weighting ``name`` over ``tasks`` (unknown names list the known ones)."""
    return LOSS_WEIGHTINGS.get(name)(tasks=tasks, seed=seed)
