"""taskgraph: find out which tasks help which in multi-task and transfer learning.

The package is layered (docs/architecture.md), bottom to top: ``errors``/``trial``/
``registry``/``evaluator`` -> ``tasks``, ``affinity`` -> ``models``, ``storage``, ``spec`` ->
``training`` -> ``search`` (Optuna) -> ``runners`` (local, Ray Tune, tabular) -> ``app`` (the
Python API below) -> ``cli``.

The Python API (:mod:`taskgraph.app`) is exported here lazily: ``import taskgraph`` stays
cheap (no Optuna, torch or Ray) until one of these names is used.

>>> import taskgraph
>>> summary = taskgraph.run_study("searchspaces/demo.yaml", storage="sqlite:////tmp/demo.db")  # doctest: +SKIP
>>> taskgraph.recommend("synth_target", storage="sqlite:////tmp/demo.db", k=3)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from taskgraph.registry import lazy_exports

__version__ = "0.1.0"

#: name -> module of the application layer that defines it
_API = {
    "run_study": "taskgraph.app.studies",
    "resume_study": "taskgraph.app.studies",
    "delete_study": "taskgraph.app.studies",
    "study_summary": "taskgraph.app.studies",
    "study_status": "taskgraph.app.studies",
    "list_studies": "taskgraph.app.studies",
    "load_study_spec": "taskgraph.app.studies",
    "screen_study": "taskgraph.app.screening",
    "screen_report": "taskgraph.app.screening",
    "recommend": "taskgraph.app.affinity",
    "recommendation_report": "taskgraph.app.affinity",
    "fit_and_save": "taskgraph.app.affinity",
    "groupings": "taskgraph.app.affinity",
    "grouping_report": "taskgraph.app.affinity",
    "affinity_graph": "taskgraph.app.affinity",
    "graph_report": "taskgraph.app.affinity",
    "fit_estimator": "taskgraph.app.affinity",
    "bench": "taskgraph.app.bench",
    "results_table": "taskgraph.app.results.build",
}

__all__ = [
    "__version__",
    "affinity_graph",
    "bench",
    "delete_study",
    "fit_and_save",
    "fit_estimator",
    "graph_report",
    "grouping_report",
    "groupings",
    "list_studies",
    "load_study_spec",
    "recommend",
    "recommendation_report",
    "results_table",
    "resume_study",
    "run_study",
    "screen_report",
    "screen_study",
    "study_status",
    "study_summary",
]

if TYPE_CHECKING:
    from taskgraph.app.affinity import (
        affinity_graph,
        fit_and_save,
        fit_estimator,
        graph_report,
        grouping_report,
        groupings,
        recommend,
        recommendation_report,
    )
    from taskgraph.app.bench import bench
    from taskgraph.app.results.build import results_table
    from taskgraph.app.screening import screen_report, screen_study
    from taskgraph.app.studies import (
        delete_study,
        list_studies,
        load_study_spec,
        resume_study,
        run_study,
        study_status,
        study_summary,
    )


# PEP 562: the API's modules import Optuna and SQLAlchemy; only a caller who uses one pays.
__getattr__, __dir__ = lazy_exports(__name__, globals(), _API)
