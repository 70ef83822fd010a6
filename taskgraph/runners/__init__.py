"""Runners: turn a trial configuration into a result.

``local`` (:class:`LocalEvaluator`, in-process training), ``tabular``
(:class:`taskgraph.runners.tabular.TabularEvaluator`, published results) and ``ray``
(:class:`taskgraph.runners.ray.RayTuneRunner`, Ray Tune trials; imported on demand because it
imports Ray).
"""

from __future__ import annotations

from taskgraph.runners.base import TrialEvaluator
from taskgraph.runners.local import LocalEvaluator

__all__ = ["LocalEvaluator", "TrialEvaluator"]
