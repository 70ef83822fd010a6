"""Standard deviations (error bars) of ``pairwise``, ``hoa``, ``lookahead`` and ``textemb``.

Each expected value is computed here from the inputs with numpy, following the documented
formulas, not by calling the estimator's own helpers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from taskgraph.affinity.estimators import (
    HigherOrderEstimator,
    LookaheadEstimator,
    PairwiseEstimator,
    TextEmbEstimator,
)
from taskgraph.affinity.estimators.base import pooled_std
from taskgraph.affinity.records import ScoreRecord
from taskgraph.trial import LookaheadMatrix

from .conftest import records_from

# Seed values (absolute scores) of each target alone and with one auxiliary task.
_BASELINES = {"a": [0.50, 0.52, 0.47], "b": [0.30, 0.31], "e": [0.70]}
_PAIRS = {
    ("a", "b"): [0.60, 0.63],
    ("a", "c"): [0.41, 0.45, 0.40, 0.44],
    ("b", "a"): [0.36, 0.30, 0.33],
    ("e", "a"): [0.75],  # one seed on each side: its error is unknown
}


def _pair_records() -> list[ScoreRecord]:
    records = [
        ScoreRecord(task=t, task_set=frozenset({t}), value=v, seed=s)
        for t, values in _BASELINES.items()
        for s, v in enumerate(values)
    ]
    records += [
        ScoreRecord(task=t, task_set=frozenset({t, source}), value=v, seed=s)
        for (t, source), values in _PAIRS.items()
        for s, v in enumerate(values)
    ]
    return records


def _gain(target: str, source: str) -> tuple[float, float]:
    """Return the absolute gain and its unpaired standard error (NaN with one seed each side)."""
    ours, base = np.array(_PAIRS[(target, source)]), np.array(_BASELINES[target])
    mean = float(ours.mean() - base.mean())
    if len(ours) < 2 and len(base) < 2:
        return mean, math.nan
    se = math.sqrt(ours.var(ddof=1) / len(ours) + base.var(ddof=1) / len(base))
    return mean, se


def _prior_std() -> float:
    """The spread (ddof=1) of all measured pair gains."""
    return float(np.std([_gain(*pair)[0] for pair in _PAIRS], ddof=1))


def test_pairwise_adds_pair_errors_in_quadrature_and_the_prior_for_unmeasured_members() -> None:
    model = PairwiseEstimator(gain_kind="absolute").fit(_pair_records())
    (m_ab, se_ab), (m_ac, se_ac) = _gain("a", "b"), _gain("a", "c")
    mean, std = model.predict("a", {"b", "c"})
    assert mean == pytest.approx(m_ab + m_ac)
    assert std == pytest.approx(math.sqrt(se_ab**2 + se_ac**2))  # a std, not a variance
    # ("a", "e") was never measured: it adds nothing to the mean and the prior to the variance.
    mean, std = model.predict("a", {"b", "e"})
    assert mean == pytest.approx(m_ab)
    assert std == pytest.approx(math.sqrt(se_ab**2 + _prior_std() ** 2))


def test_pairwise_borrows_the_median_positive_error_for_a_pair_measured_once() -> None:
    model = PairwiseEstimator(gain_kind="absolute").fit(_pair_records())
    ses = [_gain(*pair)[1] for pair in _PAIRS if pair != ("e", "a")]
    assert np.median(ses) != pytest.approx(np.mean(ses))  # the input tells the two apart
    mean, std = model.predict("e", {"a"})
    assert mean == pytest.approx(_gain("e", "a")[0])
    assert std == pytest.approx(float(np.median(ses)))


def test_hoa_std_is_the_error_of_the_mean_and_the_prior_without_a_measured_pair() -> None:
    model = HigherOrderEstimator(gain_kind="absolute").fit(_pair_records())
    (m_ab, se_ab), (m_ac, se_ac) = _gain("a", "b"), _gain("a", "c")
    mean, std = model.predict("a", {"b", "c"})
    assert mean == pytest.approx((m_ab + m_ac) / 2)
    assert std == pytest.approx(math.sqrt(se_ab**2 + se_ac**2) / 2)
    assert model.predict("a", {"e"}) == pytest.approx((0.0, _prior_std()))


def test_pooled_std_is_the_sample_std_of_the_finite_values_or_the_fallback() -> None:
    assert pooled_std([0.3], fallback=7.0) == 7.0
    assert pooled_std([0.3, math.nan], fallback=7.0) == 7.0
    assert pooled_std([1.0, 2.0, math.nan, 4.0]) == pytest.approx(np.std([1.0, 2.0, 4.0], ddof=1))
    # One measured pair: no spread to take, so the prior is the fallback of 1.
    one = HigherOrderEstimator().fit(
        records_from({("a", frozenset({"b"})): 0.05}, lambda t, a: True)
    )
    assert one.predict("d", {"a"}) == (0.0, 1.0)


# values[i][j] = Z(tasks[i] -> tasks[j]); Z(a -> d) and Z(d -> c) were not measured.
_Z = [
    [0.0, 0.2, 0.1, math.nan],
    [0.3, 0.0, 0.05, 0.1],
    [-0.1, 0.0, 0.0, 0.2],
    [0.05, 0.1, math.nan, 0.0],
]
_TASKS = ["a", "b", "c", "d"]


def _z(target: str, source: str) -> float:
    return _Z[_TASKS.index(source)][_TASKS.index(target)]


def _z_spread() -> float:
    values = np.array(_Z)
    off_diagonal = values[~np.eye(4, dtype=bool)]
    return float(np.std(off_diagonal[np.isfinite(off_diagonal)], ddof=1))


def _lookahead(truth: dict[tuple[str, frozenset[str]], float]) -> LookaheadEstimator:
    matrix = LookaheadMatrix(tasks=_TASKS, values=_Z)
    return LookaheadEstimator(lookahead=[matrix]).fit(records_from(truth, lambda t, a: True))


def test_lookahead_uncalibrated_std_is_the_spread_of_z() -> None:
    # Two measured pairs are too few to calibrate (three are needed).
    model = _lookahead({("a", frozenset({"b"})): 0.05, ("b", frozenset({"a"})): 0.04})
    assert model.calibrated is False
    spread = _z_spread()
    mean, std = model.predict("a", {"b", "c"})
    assert mean == pytest.approx((_z("a", "b") + _z("a", "c")) / 2)
    assert std == pytest.approx(spread / math.sqrt(2))
    assert model.predict("a", {"b"}) == pytest.approx((_z("a", "b"), spread))
    # No lookahead value relates the target to the set: alpha, with twice the spread.
    assert model.predict("zz", {"a"}) == pytest.approx((0.0, 2 * spread))
    # A NaN in the matrix is no value: Z(a -> d) is unknown, so d from {a} has no evidence.
    assert model.predict("d", {"a"}) == pytest.approx((0.0, 2 * spread))


def test_lookahead_calibrated_std_is_the_residual_spread() -> None:
    truth = {
        ("a", frozenset({"b"})): 0.05,
        ("b", frozenset({"a"})): 0.04,
        ("a", frozenset({"c"})): -0.03,
        ("c", frozenset({"a"})): 0.01,
    }
    model = _lookahead(truth)
    assert model.calibrated is True
    x = np.array([_z(t, next(iter(s))) for t, s in truth])
    y = np.array(list(truth.values()))
    design = np.column_stack([np.ones_like(x), x])
    (alpha, beta), *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = float(np.std(y - design @ np.array([alpha, beta]), ddof=1))
    assert residual > 0
    mean, std = model.predict("a", {"b", "c"})
    assert mean == pytest.approx(alpha + beta * (_z("a", "b") + _z("a", "c")) / 2)
    assert std == pytest.approx(residual / math.sqrt(2))
    assert model.predict("zz", {"a"}) == pytest.approx((alpha, 2 * residual))


def test_lookahead_n_evidence_counts_matrices_holding_z_from_the_set_to_the_target() -> None:
    model = _lookahead({("a", frozenset({"b"})): 0.05})
    assert math.isfinite(_z("d", "c")) and math.isnan(_z("c", "d"))
    assert model.n_evidence("d", {"c"}) == 1  # Z(c -> d) is measured
    assert math.isnan(_z("d", "a")) and math.isfinite(_z("a", "d"))
    assert model.n_evidence("d", {"a"}) == 0  # Z(a -> d) is not


_EMBEDDINGS = {
    "a": np.array([1.0, 0.0, 0.0]),
    "b": np.array([2.0, 2.0, 0.0]),
    "c": np.array([0.0, 3.0, 1.0]),
    "d": np.array([1.0, 1.0, 1.0]),
}


def _cosine(s: str, t: str) -> float:
    u, v = _EMBEDDINGS[s], _EMBEDDINGS[t]
    return float((u / np.linalg.norm(u)) @ (v / np.linalg.norm(v)))


def test_textemb_uncalibrated_predicts_the_cosine_with_std_one() -> None:
    model = TextEmbEstimator(task_embeddings=_EMBEDDINGS).fit([])
    assert model.predict("d", {"a"}) == pytest.approx((_cosine("d", "a"), 1.0))
    assert model.predict("d", {"a", "b"}) == pytest.approx(
        ((_cosine("d", "a") + _cosine("d", "b")) / 2, 1.0)
    )
    assert model.predict("a", {"zz"}) == pytest.approx((0.0, 2.0))


def test_textemb_calibrates_on_three_pairs_and_doubles_the_residual_without_similarity() -> None:
    truth = {
        ("a", frozenset({"b"})): 0.05,
        ("a", frozenset({"c"})): -0.03,
        ("b", frozenset({"c"})): 0.02,
    }
    model = TextEmbEstimator(task_embeddings=_EMBEDDINGS).fit(
        records_from(truth, lambda t, a: True)
    )
    x = np.array([_cosine(t, next(iter(s))) for t, s in truth])
    y = np.array(list(truth.values()))
    assert np.ptp(x) > 0
    design = np.column_stack([np.ones_like(x), x])
    (alpha, beta), *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = float(np.std(y - design @ np.array([alpha, beta]), ddof=1))
    assert residual > 0
    assert model.predict("d", {"a"}) == pytest.approx((alpha + beta * _cosine("d", "a"), residual))
    assert model.predict("a", {"zz"}) == pytest.approx((alpha, 2 * residual))
