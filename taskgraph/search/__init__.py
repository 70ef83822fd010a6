"""Search: a study's space compiled into Optuna suggestions, samplers, pruners and the engine.

A study is run through the application layer (``taskgraph.run_study``), which composes the
spec, this package's :class:`StudyEngine` and the spec's runner (:mod:`taskgraph.runners`).

Importing this package does not import torch or Ray; the pruning callback
(:class:`taskgraph.search.pruning.OptunaPruningCallback`) lives apart because it subclasses the
trainer's callback.
"""

from __future__ import annotations

from taskgraph.search.checks import check_spec
from taskgraph.search.engine import EngineObserver, RunSummary, StudyEngine
from taskgraph.search.outcome import SeedRun, TrialOutcome, run_seeds
from taskgraph.search.progress import StudyProgress, study_progress, trial_state
from taskgraph.search.report import list_progress, open_study, study_report
from taskgraph.search.samplers import SAMPLERS, build_pruner, build_sampler
from taskgraph.search.space import (
    AUX_PARAM_PREFIX,
    BASELINE_ROLE,
    ROLE_ATTR,
    SUBSET_ATTR,
    SearchSpace,
    aux_param,
    repair_subset,
)
from taskgraph.search.study import stored_spec

__all__ = [
    "AUX_PARAM_PREFIX",
    "BASELINE_ROLE",
    "ROLE_ATTR",
    "SAMPLERS",
    "SUBSET_ATTR",
    "EngineObserver",
    "RunSummary",
    "SearchSpace",
    "SeedRun",
    "StudyEngine",
    "StudyProgress",
    "TrialOutcome",
    "aux_param",
    "build_pruner",
    "build_sampler",
    "check_spec",
    "list_progress",
    "open_study",
    "repair_subset",
    "run_seeds",
    "stored_spec",
    "study_progress",
    "study_report",
    "trial_state",
]
