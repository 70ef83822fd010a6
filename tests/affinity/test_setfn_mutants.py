"""``setfn``: the per-target scale, cold starts, unseen members, draws and kernels, pinned down."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from taskgraph.affinity.estimators import SetFunctionEstimator
from taskgraph.affinity.estimators.setfn import _A, _B, _D

from .conftest import additive_truth, records_from

Truth = dict[tuple[str, frozenset[str]], float]


def _three_sources(factor: float = 1.0) -> Truth:
    """Return 4 targets whose gain from s1 is about +0.05, from s2 about -0.05, from s3 about 0."""
    rng = np.random.default_rng(0)
    truth = {}
    for target in ("a", "b", "c", "d"):
        for source, gain in (("s1", 0.05), ("s2", -0.05), ("s3", 0.0)):
            truth[(target, frozenset({source}))] = factor * (gain + float(rng.normal(0, 0.005)))
    return truth


def _fit(
    truth: Truth, keep: Callable[[str, frozenset[str]], bool] = lambda t, a: True, **options: Any
) -> SetFunctionEstimator:
    return SetFunctionEstimator(**options).fit(records_from(truth, keep))


@pytest.fixture(scope="module")
def pairs_fit() -> SetFunctionEstimator:
    """A fit on every single and pair of the additive truth (no interactions of 3)."""
    return _fit(additive_truth(seed=1), lambda t, a: len(a) <= 2)


# ----------------------------------------------------------------- cold start (a fixed defect)
def test_a_cold_target_is_predicted_on_the_scale_of_the_measured_gains() -> None:
    """A target outside the fit got the unit-scale b_s: +1.2 ± 1.0 for gains of +0.05."""
    truth = _three_sources()
    fit = _fit(truth)
    measured = np.mean([truth[(t, frozenset({"s1"}))] for t in "abcd"])
    mean, std = fit.predict("new", {"s1"})
    assert 0.5 * measured < mean < 2.0 * measured
    assert fit.predict("new", {"s2"})[0] < 0 < mean
    assert std < 0.2  # the gains vary by 0.05; the unit scale gave 1.0
    # Every gain 20 times larger: the same fit on the unit scale, 20 times the cold predictions.
    big = _fit(_three_sources(20.0))
    for query in ({"s1"}, {"s2"}, {"s1", "s3"}):
        assert np.allclose(big.predict("new", query), 20.0 * np.array(fit.predict("new", query)))


def test_the_cold_scale_is_that_of_a_target_with_no_gains_and_carries_the_offset_variance() -> None:
    fit = _fit(_three_sources())
    values = np.array(list(_three_sources().values()))
    assert fit.cold_scale == pytest.approx(float(np.std(values)))
    variances = fit.fit_.group_variances
    for query, k in (({"s1"}, 1), ({"s1", "s2"}, 2), ({"s1", "zz", "yy"}, 3)):
        _, std = fit.predict("new", query)
        expected = variances[_A] + (variances[_B] + variances[_D]) * k / k**2
        assert (std / fit.cold_scale) ** 2 == pytest.approx(expected)


def test_an_unseen_member_of_a_cold_query_adds_nothing_to_the_mean_of_its_effects() -> None:
    fit = _fit(_three_sources())
    alone = fit.predict("new", {"s1"})[0]
    assert fit.predict("new", {"s1", "zz"})[0] == pytest.approx(alone / 2)
    assert fit.predict("new", {"s1", "s2", "zz"})[0] == pytest.approx(
        (alone + fit.predict("new", {"s2"})[0]) / 3
    )


# ----------------------------------------------------------------- the per-target scale
def test_each_target_scale_is_its_spread_shrunk_toward_the_pooled_one_by_three_gains() -> None:
    truth = additive_truth(seed=2)
    truth = {k: (20.0 * v if k[0] == "a" else v + 0.03) for k, v in truth.items()}
    keep = lambda t, a: len(a) == 1 or (t in "ab" and len(a) == 2)  # noqa: E731
    fit = _fit(truth, keep)
    kept = {k: v for k, v in truth.items() if keep(*k)}
    values = np.array(list(kept.values()))
    pooled = float(np.var(values))
    for target, t in fit.index.items():
        own = np.array([v for (u, _), v in kept.items() if u == target])
        ss = float(((own - own.mean()) ** 2).sum())
        assert fit.scale[t] == pytest.approx(math.sqrt((ss + 3 * pooled) / (len(own) + 3)))
    assert fit.cold_scale == pytest.approx(math.sqrt(pooled))


def test_one_gain_sets_the_scale_so_the_fit_follows_its_size() -> None:
    """With a single gain the scale is its size: the same table 20 times larger, 20 times the predictions."""
    one = {("a", frozenset({"b"})): 0.05}
    fit = _fit(one)
    big = _fit({k: 20.0 * v for k, v in one.items()})
    assert fit.scale == pytest.approx(np.full(fit.n, 0.05))
    for target, query in (("a", {"b"}), ("a", {"c"}), ("b", {"a"})):
        assert np.allclose(big.predict(target, query), 20.0 * np.array(fit.predict(target, query)))
    # and the measured gain is predicted on its own scale (shrunk, not toward 0 on a scale of 1)
    assert 0.3 * 0.05 < fit.predict("a", {"b"})[0] <= 0.05


# ----------------------------------------------------------------- unseen members
def test_an_unseen_member_counts_in_the_mean_with_no_effect() -> None:
    """Mean pooling, no size term: a+{b,zz} is the mean of a+{b} and a+{zz} (the offset alone)."""
    fit = _fit(additive_truth(seed=1), lambda t, a: len(a) == 1, size_effect=False)
    for known in ("b", "c"):
        both = fit.predict("a", {known, "zz"})[0]
        assert both == pytest.approx(
            (fit.predict("a", {known})[0] + fit.predict("a", {"zz"})[0]) / 2
        )


def test_the_size_term_counts_the_unseen_members() -> None:
    """Without interactions, a pair's excess over its singles' mean is the size term at 2,
    whether its members were seen or not."""
    fit = _fit(additive_truth(seed=1), lambda t, a: len(a) <= 2, interactions="none")
    size_term = (
        fit.predict("a", {"b", "c"})[0]
        - (fit.predict("a", {"b"})[0] + fit.predict("a", {"c"})[0]) / 2
    )
    assert size_term < 0  # the truth's -0.02 log|A|
    unseen = fit.predict("a", {"zz", "yy"})[0] - fit.predict("a", {"zz"})[0]
    assert unseen == pytest.approx(size_term)
    assert fit.predict("a", {"b", "zz"})[0] - (
        fit.predict("a", {"b"})[0] + fit.predict("a", {"zz"})[0]
    ) / 2 == pytest.approx(size_term)


def test_an_unseen_member_adds_its_weighted_prior_variance(pairs_fit: SetFunctionEstimator) -> None:
    """Each unseen task adds (tau_b + tau_d) times its weight squared (1/k^2) to the variance."""
    fit = pairs_fit
    variances = fit.fit_.group_variances
    prior = variances[_B] + variances[_D]
    scale = fit.scale[fit.index["a"]]
    for query, k, unseen in (
        ({"b", "zz"}, 2, 1),
        ({"b", "c", "zz"}, 3, 1),
        ({"b", "zz", "yy"}, 3, 2),
    ):
        rows, extra = fit._encode("a", [frozenset(query)])
        assert extra[0] == pytest.approx(unseen * prior / k**2)
        _, std = fit.fit_.predict(rows)
        assert fit.predict("a", query)[1] == pytest.approx(
            math.sqrt(std[0] ** 2 + extra[0]) * scale
        )


def test_draws_of_a_set_with_an_unseen_task_spread_as_its_prediction(
    pairs_fit: SetFunctionEstimator,
) -> None:
    fit = pairs_fit
    draws = fit.sample_gains([("a", {"b", "zz"})], np.random.default_rng(0), n_samples=4000)
    mean, std = fit.predict("a", {"b", "zz"})
    assert float(draws.std()) == pytest.approx(std, rel=0.05)
    assert float(draws.mean()) == pytest.approx(mean, abs=4 * std / math.sqrt(4000))


# ----------------------------------------------------------------- fit structure
def test_a_singles_only_fit_has_no_interactions() -> None:
    truth = additive_truth(seed=1)
    keep = lambda t, a: len(a) == 1  # noqa: E731
    default = _fit(truth, keep)
    without = _fit(truth, keep, interactions="none")
    # no prior-only interaction terms: the same means and spreads as without interactions
    for query in ({"b", "c"}, {"b", "c", "d"}):
        assert default.predict("a", query) == pytest.approx(without.predict("a", query))
    assert default._interactions == "none"


def test_describe_reports_the_fitted_rho(pairs_fit: SetFunctionEstimator) -> None:
    assert pairs_fit.fit_.rho != pytest.approx(0.5, abs=1e-3)
    assert pairs_fit.describe()["rho"] == round(pairs_fit.fit_.rho, 4)


def test_the_candidate_kernels_are_the_profile_powers_and_the_embedding_mix() -> None:
    truth = additive_truth(seed=1)
    rng = np.random.default_rng(0)
    embeddings = {t: rng.normal(size=4) for t in "abcdef"}
    fit = SetFunctionEstimator(task_embeddings=embeddings).fit(
        records_from(truth, lambda t, a: len(a) == 1)
    )
    kernels = dict(fit._similarities(sorted(fit.index), fit.table))
    profile = kernels["profile^1"]
    assert not np.allclose(profile, profile**2)
    assert np.allclose(kernels["profile^2"], profile**2)
    assert np.allclose(kernels["profile^3"], profile**3)
    assert np.allclose(kernels["textemb+profile"], 0.5 * (kernels["textemb"] + profile))
    assert not np.allclose(kernels["textemb"], profile)


def test_one_gain_of_exactly_zero_leaves_the_unit_scale_as_two_do() -> None:
    """One gain of 0 (the same score on both sides) set the scale to 1e-12, so every cold-start
    prediction after it came out certain (std about 1e-15); two gains of 0 gave the unit scale."""
    from taskgraph.affinity.gains import Gain, GainTable

    def fitted(sources: str) -> SetFunctionEstimator:
        gains = [Gain("t", frozenset({s}), 0.0, float("nan"), 2) for s in sources]
        return SetFunctionEstimator().fit_gains(GainTable(gains=gains))

    one, two = fitted("a"), fitted("ab")
    assert one.cold_scale == two.cold_scale == 1.0
    cold_one, cold_two = one.predict("z", {"a"})[1], two.predict("z", {"a"})[1]
    assert cold_one > 1e-6 and cold_two > 1e-6
    assert one.predict("t", {"c"})[1] > 1e-6  # the fit's own target: the same scale
