"""Benchmark protocols on published tables: what ``taskgraph bench`` and ``benchmarks/`` measure.

Validation numbers are used for fitting and choosing; test numbers only for scoring (tables
with a single split are scored on it, and the result says so).

* :func:`evaluate_gain_prediction`: fit on every single and pair plus a seeded fraction of
  the larger groups; Spearman between predicted and true per-task gains on the other groups
  of size >= 3, pooled over targets (MTG-Net's protocol).
* :func:`evaluate_source_ranking`: for each target, all other targets' rows plus 3 random
  entries of its own row are known (its baseline, those pairs and its groups of only those
  sources); rank its remaining sources (Spearman, NDCG, Regret@3), beside the popular-source
  prior (a source's mean gain over the other targets).  Fitted and scored on one split: the
  scored cells are the hidden pairs of that split.
* :func:`evaluate_pair_gains`: k-fold over each target's pair rows: fit on every other row,
  predict the held-out pairs' gains; per-target Spearman beside the popular-source prior.
* :func:`evaluate_grouping`: choose a grouping under an inference budget with at most
  ``max_evaluations`` measured task sets; total test score of the chosen grouping.

Targets without a baseline row are *rank-only* in the source ranking and the pair gains:
scored against their values (sign-normalised), whose order is their gains' order whatever the
baseline, and fitted with a stand-in baseline, the mean of their fitted rows
(:func:`with_stand_in_baselines`), so the estimators see the order of their rows and a level
the target offset absorbs.  A target with one fitted row gets no stand-in (its one gain would
be 0 by construction): it adds nothing to the fit nor to the other targets' prior.

Modules: :mod:`.gains` (gain prediction and pair gains), :mod:`.ranking` (source ranking),
:mod:`.grouping` (grouping) and :mod:`.metrics` (the rank metrics they report).
"""

from __future__ import annotations

from taskgraph.affinity.evaluation._tables import with_stand_in_baselines
from taskgraph.affinity.evaluation.gains import (
    evaluate_gain_prediction,
    evaluate_pair_gains,
    gain_prediction_cells,
)
from taskgraph.affinity.evaluation.grouping import evaluate_grouping
from taskgraph.affinity.evaluation.metrics import MIN_RANKED, ndcg, regret_at_k, spearman
from taskgraph.affinity.evaluation.ranking import evaluate_source_ranking

__all__ = [
    "MIN_RANKED",
    "evaluate_gain_prediction",
    "evaluate_grouping",
    "evaluate_pair_gains",
    "evaluate_source_ranking",
    "gain_prediction_cells",
    "ndcg",
    "regret_at_k",
    "spearman",
    "with_stand_in_baselines",
]
