"""Affinity estimators behind one interface, registered by name (:data:`ESTIMATORS`)."""

from __future__ import annotations

from taskgraph.affinity.estimators.base import (
    ESTIMATORS,
    AffinityEstimator,
    NotFittedError,
    make_estimator,
)
from taskgraph.affinity.estimators.lookahead import LookaheadEstimator
from taskgraph.affinity.estimators.pairwise import HigherOrderEstimator, PairwiseEstimator
from taskgraph.affinity.estimators.setfn import SetFunctionEstimator
from taskgraph.affinity.estimators.similarity import TextEmbEstimator
from taskgraph.affinity.estimators.sourcerank import SourceRankEstimator

__all__ = [
    "ESTIMATORS",
    "AffinityEstimator",
    "HigherOrderEstimator",
    "LookaheadEstimator",
    "NotFittedError",
    "PairwiseEstimator",
    "SetFunctionEstimator",
    "SourceRankEstimator",
    "TextEmbEstimator",
    "make_estimator",
]
