"""Runners: turn a trial configuration into a result, and drive a study's trials.

``local`` (:class:`LocalEvaluator`, in-process training), ``tabular``
(:class:`taskgraph.runners.tabular.TabularEvaluator`, published results) and ``ray``
(:class:`taskgraph.runners.ray.RayTuneRunner`, Ray Tune trials; imported on demand because it
imports Ray).  Each is a :class:`Runner` plug-in registered in :data:`RUNNERS`
(:mod:`taskgraph.runners.builtin`); register another there to add a runner.
"""

from __future__ import annotations

from taskgraph.registry import RUNNERS
from taskgraph.runners.base import Runner, RunnerCapabilities, TrialEvaluator
from taskgraph.runners.local import LocalEvaluator

__all__ = ["RUNNERS", "LocalEvaluator", "Runner", "RunnerCapabilities", "TrialEvaluator"]
