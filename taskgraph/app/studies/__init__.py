"""Studies: the one place that composes spec -> engine -> runner -> storage.

Every function here is a documented Python API (exported from :mod:`taskgraph`) and the call
behind a ``taskgraph study`` command, which parses arguments, calls it and prints (``study
submit`` alone calls :func:`taskgraph.runners.ray.submit_study` directly).

One module per concept:

- :mod:`~taskgraph.app.studies.specs`: a spec file or object with its overrides, checked for
  its runner;
- :mod:`~taskgraph.app.studies.running`: running a study with its runner, and resuming one;
- :mod:`~taskgraph.app.studies.stored`: the studies in the database: report, progress, list,
  deleting one.
"""

from __future__ import annotations

from taskgraph.app.studies.running import (
    build_engine,
    invocation_wall_time,
    resumable_spec,
    resume_study,
    run_spec,
    run_study,
)
from taskgraph.app.studies.specs import check_study_spec, load_study_spec, runner_of
from taskgraph.app.studies.stored import delete_study, list_studies, study_status, study_summary

__all__ = [
    "build_engine",
    "check_study_spec",
    "delete_study",
    "invocation_wall_time",
    "list_studies",
    "load_study_spec",
    "resumable_spec",
    "resume_study",
    "run_spec",
    "run_study",
    "runner_of",
    "study_status",
    "study_summary",
]
