"""The application layer: the one place that composes spec -> engine -> runner -> storage -> affinity.

Each function is the call behind a command of the CLI and part of the Python API exported from
:mod:`taskgraph` (``taskgraph.run_study``...).  Importing this package imports Optuna and
SQLAlchemy but not torch or Ray.

>>> import taskgraph
>>> summary = taskgraph.run_study("searchspaces/demo.yaml", storage="sqlite:////tmp/demo.db")  # doctest: +SKIP
>>> for r in taskgraph.recommend("synth_target", storage="sqlite:////tmp/demo.db", k=3):  # doctest: +SKIP
...     print(r.auxiliaries, r.predicted_gain)
"""

from __future__ import annotations

from taskgraph.app.affinity import (
    GraphReport,
    GroupingReport,
    RecommendationReport,
    affinity_graph,
    fit_and_save,
    fit_estimator,
    graph_report,
    grouping_report,
    groupings,
    load_records,
    recommend,
    recommendation_report,
    records_long_table,
)
from taskgraph.app.bench import bench
from taskgraph.app.results.build import results_table
from taskgraph.app.results.table import ResultsTable
from taskgraph.app.results.writing import write_results
from taskgraph.app.screening import screen_report, screen_study
from taskgraph.app.studies import (
    build_engine,
    delete_study,
    list_studies,
    load_study_spec,
    resume_study,
    run_spec,
    run_study,
    runner_of,
    study_status,
    study_summary,
)

__all__ = [
    "GraphReport",
    "GroupingReport",
    "RecommendationReport",
    "ResultsTable",
    "affinity_graph",
    "bench",
    "build_engine",
    "delete_study",
    "fit_and_save",
    "fit_estimator",
    "graph_report",
    "grouping_report",
    "groupings",
    "list_studies",
    "load_records",
    "load_study_spec",
    "recommend",
    "recommendation_report",
    "records_long_table",
    "results_table",
    "resume_study",
    "run_spec",
    "run_study",
    "runner_of",
    "screen_report",
    "screen_study",
    "study_status",
    "study_summary",
    "write_results",
]
