"""``sourcerank``: ranks of tied gains, training targets, ridge ties, spreads and standard errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from taskgraph.affinity.estimators import SourceRankEstimator, make_estimator
from taskgraph.affinity.estimators.sourcerank_features import _row_scores
from taskgraph.affinity.longtable import LongRow, LongTable
from taskgraph.affinity.records import ScoreRecord

from .conftest import records_from

NAMES = [f"t{i}" for i in range(8)]


def _table(t0_sources: int) -> LongTable:
    """Return 8 targets with a popular-source structure; t0 measured on its first ``t0_sources`` sources.

    Gains are rounded to 0.01, so the cross-validation of the ridge strengths ties (two
    strengths with the same Spearman).
    """
    rng = np.random.default_rng(3)
    quality = rng.normal(0, 0.05, size=8)
    gains = {
        (t, s): float(round(quality[j] + rng.normal(0, 0.03), 2))
        for t in NAMES for j, s in enumerate(NAMES)
        if s != t and not (t == "t0" and j > t0_sources)
    }  # fmt: skip
    rows = [LongRow(t, frozenset({t}), "val", 1.0, True) for t in NAMES]
    rows += [
        LongRow(t, frozenset({t, s}), "val", 1.0 + g, True) for (t, s), g in sorted(gains.items())
    ]
    return LongTable(rows=rows, source="synthetic")


@pytest.fixture(scope="module")
def fitted() -> SourceRankEstimator:
    """t0 has 3 measured sources (t1-t3): predicted, not a training target."""
    return SourceRankEstimator(max_draws=5).fit(_table(3).to_records(split="val"))


def test_tied_gains_get_the_same_rank() -> None:
    """Average ranks, normalised to [0, 1]: two tied lowest of three share (1.5 - 1) / 2."""
    matrix = np.array([[np.nan, 0.1, 0.1, 0.3], [0.2, np.nan, 0.0, 0.0], [0.0, 0.1, np.nan, 0.2]])
    _, ranks = _row_scores(matrix)
    assert ranks[0, 1] == ranks[0, 2] == 0.25 and ranks[0, 3] == 1.0
    assert ranks[1, 2] == ranks[1, 3] == 0.25 and ranks[1, 0] == 1.0
    assert list(ranks[2, [0, 1, 3]]) == [0.0, 0.5, 1.0]


def test_a_target_needs_n_observed_plus_two_measured_sources_to_train_on() -> None:
    """With n_observed + 1 measured sources a draw would hide one source: nothing to rank."""
    records = _table(4).to_records(split="val")  # t0: t1-t4, n_observed + 1 = 4
    fit = SourceRankEstimator(max_draws=5).fit(records)
    assert fit.n_observed == 3
    assert "t0" not in fit.training_examples()
    assert fit.describe()["training_targets"] == 7


def test_on_a_cross_validation_tie_the_smallest_ridge_strength_wins(
    fitted: SourceRankEstimator,
) -> None:
    best = max(fitted.cv_spearman.values())
    tied = sorted(lam for lam, score in fitted.cv_spearman.items() if score >= best - 1e-12)
    assert len(tied) >= 2  # the table ties, so the rule is what decides
    assert fitted.ridge == tied[0]
    predicted = [fitted.predict("t0", {s})[0] for s in NAMES[4:]]
    assert float(np.std(predicted)) > 1e-3  # the weights still tell the sources apart


def test_an_unmeasured_pair_spreads_by_the_cross_validated_error(
    fitted: SourceRankEstimator,
) -> None:
    scale = float(fitted.row_scale[fitted.index["t0"]])
    assert fitted.cv_rmse != pytest.approx(1.0, abs=0.05)
    for source in NAMES[4:]:
        assert fitted.predict("t0", {source})[1] == pytest.approx(scale * fitted.cv_rmse)


def test_a_larger_set_has_the_standard_error_of_its_members_mean(
    fitted: SourceRankEstimator,
) -> None:
    members = ["t1", "t4", "t5"]  # one measured, two predicted
    sds = [fitted.predict("t0", {s})[1] for s in members]
    means = [fitted.predict("t0", {s})[0] for s in members]
    mean, std = fitted.predict("t0", set(members))
    assert mean == pytest.approx(float(np.mean(means)))
    assert std == pytest.approx(math.sqrt(sum(sd**2 for sd in sds)) / len(members))


# ----------------------------------------------------------------- a fixed defect
def test_a_gain_measured_once_gets_the_typical_nonzero_standard_error() -> None:
    """Identical repeats (standard error 0) say nothing about another gain's noise: the default
    error is the median of the positive ones, as ``pairwise``'s (it was 0)."""
    truth = {
        ("a", frozenset({"b"})): 0.05,
        ("a", frozenset({"c"})): -0.02,
        ("b", frozenset({"a"})): 0.01,
        ("b", frozenset({"c"})): 0.03,
    }
    records = records_from(truth, lambda t, a: True, seeds=2)  # two identical seeds: se 0
    records.append(ScoreRecord(task="c", task_set=frozenset({"c"}), value=0.8, seed=0))
    records.append(ScoreRecord(task="c", task_set=frozenset({"a", "c"}), value=0.832, seed=0))
    records.append(ScoreRecord(task="c", task_set=frozenset({"b", "c"}), value=0.8, seed=0))
    records.append(ScoreRecord(task="c", task_set=frozenset({"b", "c"}), value=0.816, seed=1))
    fit = make_estimator("sourcerank").fit(records)
    pairwise = make_estimator("pairwise").fit(records)
    measured_se = pairwise.predict("c", {"b"})[1]
    assert measured_se > 0
    mean, se = fit.predict("c", {"a"})
    assert mean == pytest.approx(0.04)
    assert se == pytest.approx(measured_se)
    assert se == pytest.approx(pairwise.predict("c", {"a"})[1])
    assert fit.predict("a", {"b"})[1] == 0.0  # a gain's own error is kept, 0 included
