"""``sourcerank``: behaviour that mutation testing found unasserted (scores, spreads, choices, checks)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
from scipy.stats import zscore

from taskgraph.affinity.estimators import SourceRankEstimator
from taskgraph.affinity.estimators.sourcerank import (
    DEFAULT_FEATURES,
    RIDGE_GRID,
    _spearman_rows,
)
from taskgraph.affinity.estimators.sourcerank_features import _feature_similarity, _Features
from taskgraph.affinity.gains import Gain, GainTable
from taskgraph.affinity.records import ScoreRecord
from taskgraph.errors import ConfigError

from .test_sourcerank import _pair_records, _pair_table, _two_camps
from .test_sourcerank_metadata import _camp_metadata
from .test_sourcerank_mutants import _table

N = np.nan


def test_a_row_with_one_gain_is_no_other_target_of_the_popular_scores() -> None:
    """``popular_z`` averages the other targets with at least two gains: one gain has no spread."""
    pairs = np.array(
        [
            [N, 0.1, 0.2, 0.3],
            [0.0, N, 1.0, 2.0],
            [3.0, 1.0, N, 2.0],
            [N, 5.0, N, N],  # one gain: no standardised score
        ]
    )
    features = _Features(pairs)
    assert np.isnan(features.z[3]).all() and np.isnan(features.ranks[3]).all()
    z1, z2 = zscore([0.0, 1.0, 2.0]), zscore([3.0, 1.0, 2.0])
    popular_z = features.base(0)[:, 1]
    assert popular_z[1] == pytest.approx(z2[1])  # row 1 does not measure source 1
    assert popular_z[3] == pytest.approx((z1[2] + z2[2]) / 2)


def test_a_source_no_other_target_measured_gets_the_middle_rank() -> None:
    """The ``popular*`` scores of a source no other target measured are neutral: rank 0.5, z 0."""
    pairs = np.array(
        [
            [N, 0.1, 0.2, 0.3],
            [0.0, N, 1.0, N],
            [3.0, 1.0, N, N],
            [1.0, 2.0, 3.0, N],
        ]
    )
    base = _Features(pairs).base(0)
    assert base[3, 2] == 0.5  # popular_rank
    assert base[3, 1] == 0.0 and base[3, 0] == 0.0  # popular_z, popular
    assert base[1, 2] == pytest.approx(np.mean([0.0, 0.5]))  # ranks in rows 2 and 3


def test_source_scores_are_minus_the_mean_and_minus_the_log_spread_of_its_own_gains() -> None:
    pairs = np.array(
        [
            [N, 0.1, 0.2, 0.3],
            [0.0, N, 1.0, 2.0],
            [3.0, 1.0, N, 2.0],
            [0.5, 0.5, 2.0, N],
        ]
    )
    base = _Features(pairs).base(0)
    for s in (1, 2, 3):
        own = pairs[s][~np.isnan(pairs[s])]
        assert base[s, 5] == pytest.approx(-own.mean())  # source_self_gain
        assert base[s, 4] == pytest.approx(-math.log(own.std()))  # source_steadiness


def test_observed_transitive_divides_by_the_summed_absolute_centred_gains() -> None:
    """``sum_o x_o z(o <- s) / sum_o |x_o|`` with unequal ``x``: not a plain mean over ``o``."""
    pairs = np.array(
        [
            [N, 1.0, -1.0, N, N],
            [0.0, N, 0.0, 2.0, -2.0],
            [0.0, 0.0, N, -2.0, 2.0],
            [0.0, 0.0, 0.0, N, 0.0],
            [0.0, 0.0, 0.0, 0.0, N],
        ]
    )
    features = _Features(pairs)
    centred = np.array([3.0, -1.0])
    score = features.observed_transitive(np.array([1, 2]), centred)
    # z(1 <- 3) = sqrt2, z(2 <- 3) = -sqrt2: (3 sqrt2 + sqrt2) / 4.
    assert score[3] == pytest.approx(math.sqrt(2))
    assert score[4] == pytest.approx(-math.sqrt(2))


def test_the_knn_scores_ignore_targets_unlike_the_target() -> None:
    """``text_knn``: ``popular_z`` weighted by the clipped similarity; an unrelated (0) or opposite
    (-1) target has no weight, so only the alike target's standardised gains count."""
    pairs = np.array(
        [
            [N, 0.1, 0.2, 0.3, 0.4],
            [0.0, N, 1.0, 2.0, 4.0],
            [3.0, 1.0, N, 2.0, 0.0],
            [1.0, 4.0, 2.0, N, 3.0],
            [2.0, 1.0, 5.0, 0.0, N],
        ]
    )
    kernel = np.eye(5)
    kernel[0, 1:] = kernel[1:, 0] = [1.0, 0.0, -1.0, 0.0]
    features = _Features(pairs, text_kernel=kernel)
    base = features.base(0)
    knn = features.metadata(0, ["text_knn", "text_similarity"], base[:, 1])
    assert knn["text_knn"][2:] == pytest.approx(features.z[1, 2:])
    assert knn["text_similarity"].tolist() == kernel[0].tolist()


def test_feature_similarity_is_exp_of_minus_the_mean_squared_difference() -> None:
    numeric = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, N], [N, N]])
    similarity = _feature_similarity(numeric, 0)
    assert similarity[:3] == pytest.approx([1.0, math.exp(-1.0), math.exp(-4.0)])
    assert np.isnan(similarity[3])  # no feature shared


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_draws": 0}, r"`max_draws` must be at least 1, but got 0"),
        ({"ridge_grid": []}, r"`ridge_grid` must hold positive strengths, but got \[\]"),
        ({"features": []}, r"`features` must be a non-empty subset of .* but got \[\]"),
    ],
)
def test_empty_or_zero_options_are_refused_by_name(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SourceRankEstimator(**options)


def _gain_table(stderrs: tuple[float, ...]) -> GainTable:
    """Return pair gains of a, b, c (plus the set {b, c} of a) with the given standard errors."""
    keys = [("a", "b"), ("a", "c"), ("b", "a"), ("b", "c"), ("c", "a"), ("c", "b")]
    means = [0.05, 0.02, 0.01, 0.03, 0.04, -0.06]
    gains = [
        Gain(target=t, auxiliaries=frozenset({s}), mean=m, stderr=se, n_records=2)
        for (t, s), m, se in zip(keys, means, stderrs, strict=True)
    ]
    gains.append(
        Gain(target="a", auxiliaries=frozenset({"b", "c"}), mean=0.07, stderr=N, n_records=1)
    )
    return GainTable(gains=gains)


def test_an_unknown_standard_error_is_the_median_of_the_known_positive_ones() -> None:
    fit = SourceRankEstimator().fit_gains(_gain_table((0.001, 0.002, 0.1, N, N, 0.0)))
    assert fit.predict("b", {"c"}) == (0.03, 0.002)  # median of 0.001, 0.002, 0.1 (0 says nothing)
    assert fit.predict("a", {"b", "c"}) == (0.07, 0.002)  # a measured set: as measured
    assert fit.predict("c", {"b"}) == (-0.06, 0.0)  # a gain's own error is kept


def test_without_any_known_standard_error_it_is_the_spread_of_the_pair_gains() -> None:
    fit = SourceRankEstimator().fit_gains(_gain_table((N,) * 6))
    spread = float(np.std([0.05, 0.02, 0.01, 0.03, 0.04, -0.06], ddof=1))
    mean, se = fit.predict("b", {"c"})
    assert mean == 0.03 and se == pytest.approx(spread)
    assert fit.predict("a", {"b", "c"})[1] == pytest.approx(spread)


def test_features_are_kept_in_the_fixed_order_whatever_order_they_are_named_in() -> None:
    estimator = SourceRankEstimator(features=["reciprocal", "popular", "popular_z"])
    assert estimator.feature_names == ["popular", "popular_z", "reciprocal"]
    fitted = estimator.fit(_table(3).to_records(split="val"))
    assert list(fitted.describe()["weights"]) == ["popular", "popular_z", "reciprocal"]


def _few_targets(measured: int) -> list[ScoreRecord]:
    """Return pair records of a, b, c, d where the first ``measured`` targets measure all 3 sources."""
    gains = {
        (t, s): 0.01 * (i + 1) * (j - 1.5) + 0.003 * i * j
        for i, t in enumerate("abcd") for j, s in enumerate("abcd")
        if s != t and (i < measured or j < 2)
    }  # fmt: skip
    return _pair_records(gains)


def test_three_training_targets_are_enough_to_fit_the_ridge() -> None:
    fit = SourceRankEstimator(n_observed=1).fit(_few_targets(3))
    described = fit.describe()
    assert described["training_targets"] == 3
    assert described["ridge"] in RIDGE_GRID
    assert described["cv_spearman"]


def test_with_too_few_targets_and_no_popular_z_every_feature_weighs_one() -> None:
    fit = SourceRankEstimator(n_observed=1, features=["popular", "reciprocal"]).fit(_few_targets(2))
    assert fit.describe()["ridge"] is None
    assert fit.describe()["weights"] == {"popular": 1.0, "reciprocal": 1.0}
    assert float(np.nanstd(fit.scores[fit.index["a"]])) > 0.1  # the scores still rank sources


def _camps8_fit(features: list[str], *alternatives: list[str]) -> dict[str, Any]:
    records = _pair_table(_two_camps(n=8, seed=1)).to_records(split="val")
    fit = SourceRankEstimator(features=features, alternatives=alternatives, max_draws=5)
    return fit.fit(records).describe()


def test_the_reported_cross_validation_is_the_kept_lists() -> None:
    described = _camps8_fit(list(DEFAULT_FEATURES), ["popular_z"])
    assert list(described["weights"]) == list(DEFAULT_FEATURES)
    kept = described["cv_by_features"]["+".join(DEFAULT_FEATURES)]
    assert described["cv_spearman"][str(described["ridge"])] == kept
    assert kept > described["cv_by_features"]["popular_z"] + 0.1


def test_the_cross_validated_error_is_a_root_mean_square_in_z_units() -> None:
    """A ridge so strong the held-out predictions are about 0: the RMSE is that of the standardised
    hidden truths (one draw per target, so their mean square is not 1), and an unmeasured pair
    spreads by the target's scale times it."""
    fit = SourceRankEstimator(max_draws=1, ridge_grid=[1e6]).fit(_table(3).to_records(split="val"))
    truths = [y for _, y in fit.training_examples().values()]
    rms = math.sqrt(float(np.mean([np.mean(y**2) for y in truths])))
    assert abs(rms - 1.0) > 0.05
    assert fit.cv_rmse == pytest.approx(rms, rel=1e-3)
    scale = float(fit.row_scale[fit.index["t0"]])
    assert fit.predict("t0", {"t5"})[1] == pytest.approx(scale * rms, rel=1e-3)


def test_a_target_scale_is_its_own_mean_and_spread_shrunk_toward_the_pooled_ones() -> None:
    """Three observations' worth of the pooled mean / variance (population) join each target's."""
    fit = SourceRankEstimator().fit_gains(_gain_table((N,) * 6))
    rows = {"a": [0.05, 0.02], "b": [0.01, 0.03], "c": [0.04, -0.06]}
    pooled_mean = float(np.mean([np.mean(v) for v in rows.values()]))
    pooled_var = float(np.mean([np.var(v) for v in rows.values()]))
    for target, values in rows.items():
        mean = (sum(values) + 3 * pooled_mean) / (len(values) + 3)
        scale = math.sqrt((len(values) * np.var(values) + 3 * pooled_var) / (len(values) + 3))
        # A source the fit never saw: the target's typical gain, spread by its scale.
        assert fit.predict(target, {"nobody"}) == pytest.approx((mean, scale))


def test_a_source_the_fit_never_saw_spreads_by_the_target_scale_not_the_cv_error() -> None:
    fit = SourceRankEstimator(max_draws=5).fit(_table(3).to_records(split="val"))
    t0 = fit.index["t0"]
    assert fit.cv_rmse != pytest.approx(1.0, abs=0.05)
    expected = (float(fit.row_mean[t0]), float(fit.row_scale[t0]))
    assert fit.predict("t0", {"nobody"}) == pytest.approx(expected)


def test_a_target_the_fit_never_saw_gets_the_column_mean_and_the_pooled_scale() -> None:
    fit = SourceRankEstimator(max_draws=5).fit(_table(3).to_records(split="val"))
    gains = {(t, s): m for (t, s), (m, _, _) in fit.pairs.items()}
    column = [m for (t, s), m in gains.items() if s == "t1"]
    assert len(column) == 7 and np.mean(column) != pytest.approx(np.median(column))
    pooled = math.sqrt(float(np.mean(fit.row_scale**2)))
    assert pooled != pytest.approx(float(np.mean(fit.row_scale)), rel=1e-6)
    mean, std = fit.predict("stranger", {"t1"})
    assert mean == pytest.approx(float(np.mean(column))) and std == pytest.approx(pooled)
    assert fit.predict("stranger", {"nobody"}) == pytest.approx((0.0, pooled))


def test_an_alternative_better_by_less_than_one_standard_error_is_not_kept() -> None:
    # ["popular"] scores 0.39 against 0.36, a mean paired gain of 0.03 over 8 targets whose
    # standard error is 0.057 (the one-standard-error rule keeps the first list).
    described = _camps8_fit(["popular", "popular_z"], ["popular"])
    scores = described["cv_by_features"]
    assert scores["popular"] > scores["popular+popular_z"]
    assert list(described["weights"]) == ["popular", "popular_z"]


def test_an_alternative_better_by_more_than_one_standard_error_is_kept() -> None:
    # + reciprocal: a mean paired gain of 0.035 with a standard error of 0.028 over 8 targets
    # (0.078 when the spread is not divided by sqrt(8)).
    described = _camps8_fit(["popular_z"], ["popular_z", "reciprocal"])
    assert list(described["weights"]) == ["popular_z", "reciprocal"]


def test_of_several_alternatives_that_beat_the_first_the_best_is_kept() -> None:
    # Both beat popular_z by more than a standard error; profile_knn (0.66) beats popular (0.39).
    described = _camps8_fit(["popular_z"], ["profile_knn"], ["popular"])
    scores = described["cv_by_features"]
    assert scores["profile_knn"] > scores["popular"] > scores["popular_z"]
    assert list(described["weights"]) == ["profile_knn"]


def test_a_constant_row_has_no_spearman_so_the_mean_over_draws_skips_it() -> None:
    predicted = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    truth = np.array([[1.0, 2.0, 3.0], [2.0, 2.0, 2.0], [3.0, 2.0, 1.0]])
    rho = _spearman_rows(predicted, truth)
    assert rho[0] == pytest.approx(1.0) and np.isnan(rho[1:]).all()


def test_a_task_without_an_embedding_gets_the_average_text_scores() -> None:
    embeddings, _ = _camp_metadata(n=8)
    del embeddings["t03"]
    fit = SourceRankEstimator(
        task_embeddings=embeddings, features=["popular_z", "text_similarity", "text_knn"]
    ).fit(_pair_table(_two_camps(n=8, seed=1)).to_records(split="val"))
    t00, t03 = fit.index["t00"], fit.index["t03"]
    base = fit.features.base(t00)
    scores = fit.features.metadata(t00, ["text_similarity", "text_knn"], base[:, 1])
    assert np.isnan(scores["text_similarity"][t03])  # not a similarity of 0
    assert np.isfinite(np.delete(scores["text_similarity"], t03)).all()
    candidates = np.array([s for s in range(8) if s != t00])
    observed = fit.features.observed(t00, np.array([], dtype=int), np.array([]), base)
    design = fit.features.matrix(base, observed, candidates, fit.feature_names, scores)
    assert design[list(candidates).index(t03), 1] == pytest.approx(0.0)  # the average score
    # The target itself without an embedding: no text_knn at all, the average for every source.
    base = fit.features.base(t03)
    assert np.isnan(fit.features.metadata(t03, ["text_knn"], base[:, 1])["text_knn"]).all()


def test_more_than_ten_targets_are_held_out_in_ten_interleaved_folds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sorted training targets are dealt round-robin into 10 folds: with 12, the first two
    folds hold targets 0 and 10, 1 and 11 (a fixed assignment, so the cross-validation repeats)."""
    trained_on: list[list[int]] = []
    examples = SourceRankEstimator._examples

    def spy(
        self: SourceRankEstimator, features: _Features, targets: list[int] | None = None
    ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        if targets is not None:
            trained_on.append(list(targets))
        return examples(self, features, targets)

    monkeypatch.setattr(SourceRankEstimator, "_examples", spy)
    records = _pair_table(_two_camps(n=12)).to_records(split="val")
    SourceRankEstimator(max_draws=1, features=["popular_z"]).fit(records)
    held_out = [sorted(set(range(12)) - set(t)) for t in trained_on]
    assert held_out == [[0, 10], [1, 11], *([k] for k in range(2, 10))]


def test_a_target_no_source_changes_is_left_out_of_the_cross_validation() -> None:
    # t00's gains are all 0: no draw of its hidden sources can be ranked (Spearman undefined).
    # It used to make every cross-validated Spearman NaN: the ridge fell to the grid's first
    # value, no alternative could be kept, and numpy warned "Mean of empty slice".
    gains = _two_camps(n=8, seed=1)
    for source in [f"t{i:02d}" for i in range(1, 8)]:
        gains[("t00", source)] = 0.0
    records = _pair_table(gains).to_records(split="val")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = SourceRankEstimator(max_draws=5).fit(records)
    scores = fit.describe()["cv_spearman"]
    assert all(math.isfinite(score) for score in scores.values())
    per_target = fit._cv_per_target
    assert np.isnan(per_target).sum() == 1  # t00, and only t00
    assert scores[str(fit.ridge)] == pytest.approx(np.nanmean(per_target), abs=1e-4)
    assert fit.ridge == max(fit.cv_spearman, key=lambda lam: fit.cv_spearman[lam])


def test_an_alternative_is_still_kept_beside_a_target_no_source_changes() -> None:
    # With t00's gains all 0, the paired comparison of the lists is over the targets both
    # could rank; before, every score was NaN and no alternative could win.
    gains = _two_camps(n=8, seed=1)
    for source in [f"t{i:02d}" for i in range(1, 8)]:
        gains[("t00", source)] = 0.0
    records = _pair_table(gains).to_records(split="val")
    fit = SourceRankEstimator(features=["popular_z"], alternatives=[["profile_knn"]], max_draws=5)
    described = fit.fit(records).describe()
    assert list(described["weights"]) == ["profile_knn"]
    scores = described["cv_by_features"]
    assert scores["profile_knn"] > scores["popular_z"] + 0.3
