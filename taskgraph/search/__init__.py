"""Search: a study's space compiled into Optuna suggestions, samplers, pruners and the engine.

A study is run through the application layer (``taskgraph.run_study``), which composes the
spec, this package's :class:`StudyEngine` and the spec's runner (:mod:`taskgraph.runners`).

Importing this package does not import torch or Ray; the pruning callback
(:class:`taskgraph.search.pruning.OptunaPruningCallback`) lives apart because it subclasses the
trainer's callback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from taskgraph.registry import lazy_exports

if TYPE_CHECKING:
    from taskgraph.search.checks import check_spec
    from taskgraph.search.engine import EngineObserver, RunSummary, StudyEngine
    from taskgraph.search.outcome import SeedRun, TrialOutcome, run_seeds
    from taskgraph.search.progress import StudyProgress, study_progress, trial_state
    from taskgraph.search.report import study_report
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
    from taskgraph.search.stored_studies import list_progress, open_study
    from taskgraph.search.study import stored_spec

# name -> module: a Ray worker imports taskgraph.search.outcome without the engine, Optuna
# and SQLAlchemy; the first use of a name imports its module.
_LAZY: dict[str, str] = {
    "AUX_PARAM_PREFIX": "taskgraph.search.space",
    "BASELINE_ROLE": "taskgraph.search.space",
    "EngineObserver": "taskgraph.search.engine",
    "ROLE_ATTR": "taskgraph.search.space",
    "RunSummary": "taskgraph.search.engine",
    "SAMPLERS": "taskgraph.search.samplers",
    "SUBSET_ATTR": "taskgraph.search.space",
    "SearchSpace": "taskgraph.search.space",
    "SeedRun": "taskgraph.search.outcome",
    "StudyEngine": "taskgraph.search.engine",
    "StudyProgress": "taskgraph.search.progress",
    "TrialOutcome": "taskgraph.search.outcome",
    "aux_param": "taskgraph.search.space",
    "build_pruner": "taskgraph.search.samplers",
    "build_sampler": "taskgraph.search.samplers",
    "check_spec": "taskgraph.search.checks",
    "list_progress": "taskgraph.search.stored_studies",
    "open_study": "taskgraph.search.stored_studies",
    "repair_subset": "taskgraph.search.space",
    "run_seeds": "taskgraph.search.outcome",
    "stored_spec": "taskgraph.search.study",
    "study_progress": "taskgraph.search.progress",
    "study_report": "taskgraph.search.report",
    "trial_state": "taskgraph.search.progress",
}

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


# PEP 562 (taskgraph.registry.lazy_exports): each name is imported on its first use.
__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
