"""Task affinity: records in, gains, estimators, graphs, recommendations and groupings out.

Pure numpy/scipy/networkx: no SQL, torch, Optuna or Ray here (storage converts rows into
:class:`ScoreRecord`; the CLI computes task embeddings).
"""

from __future__ import annotations

from taskgraph.affinity.estimators import (
    ESTIMATORS,
    AffinityEstimator,
    HigherOrderEstimator,
    LookaheadEstimator,
    NotFittedError,
    PairwiseEstimator,
    SetFunctionEstimator,
    SourceRankEstimator,
    TextEmbEstimator,
    make_estimator,
)
from taskgraph.affinity.gain_queries import pair_gains
from taskgraph.affinity.gains import Gain, GainKind, GainTable, compute_gains
from taskgraph.affinity.graph import affinity_graph, read_graph, write_graph
from taskgraph.affinity.grouping import Grouping, predicted_network_scores, select_networks
from taskgraph.affinity.longtable import LongRow, LongTable, read_long_csv, write_long_csv
from taskgraph.affinity.recommend import Recommendation, recommend_auxiliaries
from taskgraph.affinity.records import ScoreRecord

__all__ = [
    "ESTIMATORS",
    "AffinityEstimator",
    "Gain",
    "GainKind",
    "GainTable",
    "Grouping",
    "HigherOrderEstimator",
    "LongRow",
    "LongTable",
    "LookaheadEstimator",
    "NotFittedError",
    "PairwiseEstimator",
    "Recommendation",
    "ScoreRecord",
    "SetFunctionEstimator",
    "SourceRankEstimator",
    "TextEmbEstimator",
    "affinity_graph",
    "compute_gains",
    "make_estimator",
    "pair_gains",
    "predicted_network_scores",
    "read_graph",
    "read_long_csv",
    "recommend_auxiliaries",
    "select_networks",
    "write_graph",
    "write_long_csv",
]
