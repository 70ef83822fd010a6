"""The runner seam: a :class:`Runner` plug-in builds a trial evaluator and drives a study.

``local`` trains in-process, ``tabular`` looks a published result up, and ``ray`` runs each
trial as a Ray Tune trial.  Runners are looked up by name in :data:`taskgraph.registry.RUNNERS`
(re-exported as :data:`taskgraph.runners.RUNNERS`); a plug-in registers its own there, and a
spec naming it (``runner: {name: mine, any: setting}``) runs with it, without a change to
``search/`` or ``spec/``.

An evaluator (:class:`~taskgraph.evaluator.TrialEvaluator`) never raises for a failing trial:
it returns ``TrialResult.failed(reason)``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from taskgraph.evaluator import TrialEvaluator

if TYPE_CHECKING:
    from taskgraph.search.engine import RunSummary, StudyEngine
    from taskgraph.spec.models import StudySpec

__all__ = ["Runner", "RunnerCapabilities", "TrialEvaluator"]


@dataclass(frozen=True, kw_only=True)
class RunnerCapabilities:
    """What a runner does, so that no caller tests its name.

    ``trains``: its trials train models on task data (``False`` for a published table: the
    spec's model settings are not checked, no task file is looked for, torch is not
    imported).  ``intermediate_reports``: its trials report a training curve (pruning and
    progress callbacks are attached).  ``checkpoints``: the runner can resume a retried trial's
    training from its checkpoint (the ``local`` and ``ray`` runners, unless the spec says
    ``runner.checkpoints: false``); nothing in taskgraph branches on it, it tells a caller or
    a plug-in what an interrupted trial costs.  ``parallel``: several trials run at once.
    """

    trains: bool = True
    intermediate_reports: bool = True
    checkpoints: bool = False
    parallel: bool = False


@runtime_checkable
class Runner(Protocol):
    """A way to run a study's trials.

    Contract: :meth:`build_evaluator` returns the evaluator the engine's local loop calls, or
    ``None`` when the runner evaluates trials elsewhere (its :meth:`run` does not use
    ``engine.evaluator``).  :meth:`run` is given an *opened* engine
    (:meth:`~taskgraph.search.engine.StudyEngine.open` was called) and runs the study until
    its budget, wall time or failure limit; it finishes every trial it started through the
    engine's public API (``finish``/``interrupt``) and returns why it stopped.  The caller
    closes the engine.

    A runner may also define ``check_spec(spec, *, source) -> None``, raising
    :class:`~taskgraph.errors.SpecError` for a runner setting that cannot work.  ``study
    validate`` and every command that loads a spec call it, without side effects (no cluster
    contacted, no directory created); ``tabular`` checks its table there.

    A runner whose scores come from somewhere other than the tasks' datasets (a published
    table) may define ``data_fingerprints(spec) -> dict[str, str]``: each task's fingerprint
    of what answers its scores.  The records store it in place of the dataset's, so gains
    never compare a task's numbers from two tables, or from a table and trained runs (each
    data version of a task is read as a family of its own, see ``Repository.score_records``).
    """

    name: str
    capabilities: RunnerCapabilities

    def build_evaluator(
        self, spec: StudySpec, *, data_dir: str | os.PathLike[str] | None = None
    ) -> TrialEvaluator | None:
        """Return the evaluator for ``spec``'s trials (``None``: :meth:`run` needs none)."""
        ...

    def run(self, engine: StudyEngine) -> RunSummary:
        """Run the opened study to its budget; return why it stopped."""
        ...
