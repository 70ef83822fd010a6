"""Search: the study's space compiled into Optuna suggestions, samplers, pruners and the engine."""

from __future__ import annotations

from taskgraph.search.space import (
    AUX_PARAM_PREFIX,
    BASELINE_ROLE,
    ROLE_ATTR,
    SUBSET_ATTR,
    SearchSpace,
    aux_param,
    repair_subset,
)

__all__ = [
    "AUX_PARAM_PREFIX",
    "BASELINE_ROLE",
    "ROLE_ATTR",
    "SUBSET_ATTR",
    "SearchSpace",
    "aux_param",
    "repair_subset",
]
