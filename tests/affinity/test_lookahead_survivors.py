"""The ``lookahead`` estimator where a mutation audit found it unpinned: several screens are
averaged, three measured pairs are enough to calibrate, a measured pair that no matrix holds
stays out of the calibration, evidence counts every matrix of the set, and ``describe`` says
whether the scores were calibrated."""

from __future__ import annotations

import math

import pytest

from taskgraph.affinity.estimators import LookaheadEstimator
from taskgraph.affinity.estimators.lookahead import average_lookahead
from taskgraph.affinity.gains import GainTable
from taskgraph.trial import LookaheadMatrix

from .conftest import records_from

NAN = math.nan


def _screen(values: dict[str, float]) -> LookaheadMatrix:
    """Return a screen of target ``t``: ``values[s]`` is Z(s -> t); every other cell is NaN."""
    tasks = ["t", *values]
    rows = [[NAN] * len(tasks) for _ in tasks]
    for i, source in enumerate(tasks):
        if source in values:
            rows[i][0] = values[source]
    return LookaheadMatrix(tasks=tasks, values=rows, n_probes=3)


def test_two_screens_are_averaged_not_added() -> None:
    first = _screen({"a": 0.25, "b": NAN})
    second = _screen({"a": 0.75, "b": 0.125})
    assert average_lookahead([first, second]) == {
        ("t", "a"): (0.5, 2),
        ("t", "b"): (0.125, 1),  # the first screen did not measure it
    }
    model = LookaheadEstimator(lookahead=[first, second]).fit_gains(GainTable(gains=[]))
    assert model.predict("t", {"a"})[0] == pytest.approx(0.5)


def test_three_measured_pair_gains_are_enough_to_calibrate() -> None:
    z = {"a": 0.1, "b": 0.3, "c": -0.2}
    truth = {("t", frozenset({s})): 0.01 + 0.5 * value for s, value in z.items()}
    model = LookaheadEstimator(lookahead=[_screen(z)]).fit(records_from(truth, lambda t, a: True))
    assert model.calibrated is True
    assert (model.alpha, model.beta) == (pytest.approx(0.01), pytest.approx(0.5))
    assert model.predict("t", {"a", "b"})[0] == pytest.approx(0.01 + 0.5 * 0.2)


def test_a_measured_pair_that_no_matrix_holds_is_left_out_of_the_calibration() -> None:
    # The screen measured t's column only; `a` was a study's target elsewhere, so the gain of
    # `a` from `t` is measured but Z(t -> a) is NaN: the fit must not look it up.
    z = {"a": 0.1, "b": 0.3, "c": -0.2}
    truth = {("t", frozenset({s})): 0.01 + 0.5 * value for s, value in z.items()}
    truth[("a", frozenset({"t"}))] = 0.9  # far off the line: it would bend the calibration
    model = LookaheadEstimator(lookahead=[_screen(z)]).fit(records_from(truth, lambda t, a: True))
    assert model.calibrated is True
    assert (model.alpha, model.beta) == (pytest.approx(0.01), pytest.approx(0.5))


def test_n_evidence_counts_the_matrices_of_every_member_of_the_set() -> None:
    # Each screen measured one of the two candidates: together they are two pieces of evidence.
    first = _screen({"a": 0.2, "b": NAN})
    second = _screen({"a": NAN, "b": 0.1})
    model = LookaheadEstimator(lookahead=[first, second]).fit_gains(GainTable(gains=[]))
    assert model.n_evidence("t", {"a"}) == model.n_evidence("t", {"b"}) == 1
    assert model.n_evidence("t", {"a", "b"}) == 2


def test_describe_says_whether_the_scores_were_calibrated() -> None:
    z = {"a": 0.1, "b": 0.3, "c": -0.2}
    truth = {("t", frozenset({s})): 0.5 * value for s, value in z.items()}
    records = records_from(truth, lambda t, a: True)
    calibrated = LookaheadEstimator(lookahead=[_screen(z)]).fit(records).describe()
    assert calibrated["method"] == "lookahead" and calibrated["calibrated"] is True
    scores = LookaheadEstimator(lookahead=[_screen(z)]).fit_gains(GainTable(gains=[]))
    assert scores.describe()["calibrated"] is False
