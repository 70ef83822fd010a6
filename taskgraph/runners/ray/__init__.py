"""The ``ray`` runner: a study's trials as Ray Tune trials, on this machine or a cluster.

The only package that imports Ray (``worker``: what runs in a Tune trial; ``driver``: the
searcher and callback in this process; ``runner``: :class:`RayTuneRunner`; ``submit``:
``taskgraph study submit``).  The driver (this process) opens the study with the same
:class:`~taskgraph.search.engine.StudyEngine` as the local runner, then runs a Tune ``Tuner``:

* ``OptunaSearch(space=<define-by-run>, storage=<the engine's RDBStorage>, study_name=...)``
  asks the same Optuna study, so optuna-dashboard shows Tune's trials with the local ones, and
  enqueued trials (the baseline, retries) run first;
* ``ASHAScheduler`` (pruner ``asha``/``successive_halving``) or ``MedianStoppingRule``
  (``median``) stop poor trials, counting evaluations as the time attribute;
* ``tune.with_resources`` gives each trial its CPUs and (fractional) GPUs; ``reuse_actors``
  and ``max_concurrent_trials`` come from the spec; Tune's state goes to the experiment dir.

Tune reports a trial its scheduler stopped as COMPLETE.  :class:`~taskgraph.runners.ray.driver.TruthfulOptunaSearch`
finishes every trial itself through the engine instead, with its true state (PRUNED when the
scheduler stopped it, FAILED with the reason when it failed) and writes its records, in the
driver, in one place.  The workers only train and report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from taskgraph.registry import lazy_exports

if TYPE_CHECKING:
    from taskgraph.runners.ray.runner import QUIET_RAY_ENV, RayTuneRunner
    from taskgraph.runners.ray.submit import submit_study
    from taskgraph.runners.ray.worker import TuneReportCallback, local_evaluator

# name -> module: a Ray worker unpickles `worker.train_in_worker` without importing the
# driver's Tune searcher, Optuna and the engine; the first use of a name imports its module.
_LAZY: dict[str, str] = {
    "QUIET_RAY_ENV": "taskgraph.runners.ray.runner",
    "RayTuneRunner": "taskgraph.runners.ray.runner",
    "TuneReportCallback": "taskgraph.runners.ray.worker",
    "local_evaluator": "taskgraph.runners.ray.worker",
    "submit_study": "taskgraph.runners.ray.submit",
}

__all__ = [
    "QUIET_RAY_ENV",
    "RayTuneRunner",
    "TuneReportCallback",
    "local_evaluator",
    "submit_study",
]


# PEP 562 (taskgraph.registry.lazy_exports): each name is imported on its first use.
__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
