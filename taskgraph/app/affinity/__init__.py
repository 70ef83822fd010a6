"""Affinity: records -> fitted estimator -> recommendations, groupings and the graph.

The composition behind ``taskgraph affinity top/groups/graph``, as a documented Python API
(exported from :mod:`taskgraph`).  Records come from the records database (``storage``, default
``TASKGRAPH_STORAGE`` or the local SQLite file) or, with ``table``, from a results table in the
long CSV format.  Bad input raises :class:`~taskgraph.errors.ConfigError` naming it.

``taskgraph/cli/affinity.py`` parses options, calls one function of this package per command
(:func:`fit_and_save`, :func:`recommendation_report`, :func:`grouping_report`,
:func:`graph_report`) and prints what it returns.

One module per concept:

- :mod:`~taskgraph.app.affinity.records`: score records from the database or a long table;
- :mod:`~taskgraph.app.affinity.objectives`: the metric records are read in by default;
- :mod:`~taskgraph.app.affinity.long_table`: the records database as a long table;
- :mod:`~taskgraph.app.affinity.scores`: measured scores of one model family;
- :mod:`~taskgraph.app.affinity.fitting`: fitting an estimator, and notes on its gains;
- :mod:`~taskgraph.app.affinity.recommendations`: auxiliary sets for a target, saving a fit;
- :mod:`~taskgraph.app.affinity.grouping`: which tasks to train together under a budget;
- :mod:`~taskgraph.app.affinity.graph`: the affinity graph.
"""

from __future__ import annotations

from taskgraph.app.affinity.fitting import fit_estimator, fit_records
from taskgraph.app.affinity.graph import GraphReport, affinity_graph, graph_report
from taskgraph.app.affinity.grouping import GroupingReport, grouping_report, groupings
from taskgraph.app.affinity.long_table import records_long_table
from taskgraph.app.affinity.objectives import ALL_METRICS
from taskgraph.app.affinity.recommendations import (
    RecommendationReport,
    fit_and_save,
    recommend,
    recommendation_report,
)
from taskgraph.app.affinity.records import load_records, lookahead_matrices, scored_by
from taskgraph.app.affinity.scores import measured_scores, score_family

__all__ = [
    "ALL_METRICS",
    "GraphReport",
    "GroupingReport",
    "RecommendationReport",
    "affinity_graph",
    "fit_and_save",
    "fit_estimator",
    "fit_records",
    "graph_report",
    "grouping_report",
    "groupings",
    "load_records",
    "lookahead_matrices",
    "measured_scores",
    "recommend",
    "recommendation_report",
    "records_long_table",
    "score_family",
    "scored_by",
]
