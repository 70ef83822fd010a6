"""``setfn``, ``pairwise``, ``hoa`` and the shared estimator base: behaviour the other tests left open.

Each test pins a promise of docs/affinity.md ("Estimators") on a few tasks with known gains.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any

import numpy as np
import pytest

from taskgraph.affinity.estimators import (
    HigherOrderEstimator,
    NotFittedError,
    PairwiseEstimator,
    SetFunctionEstimator,
)
from taskgraph.affinity.estimators import setfn as setfn_module
from taskgraph.affinity.estimators.base import pooled_std
from taskgraph.affinity.estimators.setfn import SMALL_DATA_HYPERPRIOR
from taskgraph.affinity.gains import Gain, GainTable
from taskgraph.affinity.records import ScoreRecord
from taskgraph.errors import ConfigError
from taskgraph.trial import LookaheadMatrix

from .conftest import additive_truth, records_from

Truth = dict[tuple[str, frozenset[str]], float]


def _pair_table(pairs: dict[tuple[str, str], tuple[float, float]]) -> GainTable:
    """Return a gain table of single-auxiliary gains: (target, source) -> (mean, standard error)."""
    return GainTable(
        gains=[
            Gain(target, frozenset({source}), mean, se, 2)
            for (target, source), (mean, se) in pairs.items()
        ]
    )


# ----------------------------------------------------------------- the shared base
def test_an_empty_string_is_refused_with_a_usable_example() -> None:
    fitted = HigherOrderEstimator().fit_gains(_pair_table({("a", "b"): (0.1, 0.01)}))
    with pytest.raises(ConfigError, match=r"not the string ''; pass a set or list of names$"):
        fitted.predict("a", "")


def test_predicting_before_the_fit_is_refused_even_for_the_target_alone() -> None:
    """A set holding only the target has gain 0 once fitted, but unfitted it is still an error."""
    for estimator in (HigherOrderEstimator(), PairwiseEstimator(), SetFunctionEstimator()):
        with pytest.raises(NotFittedError, match="call fit"):
            estimator.predict("a", {"a"})


def test_predict_many_of_no_sets_gives_empty_arrays() -> None:
    table = _pair_table({("a", "b"): (0.1, 0.01), ("a", "c"): (-0.2, 0.02)})
    for estimator in (PairwiseEstimator(), HigherOrderEstimator()):
        means, stds = estimator.fit_gains(table).predict_many("a", [])
        assert means.shape == stds.shape == (0,)


def test_default_draws_are_normal_around_each_prediction() -> None:
    """``pairwise`` and ``hoa`` draw each query from N(mean, std): Thompson sampling sees their spread."""
    table = _pair_table({("a", "b"): (0.1, 0.04), ("a", "c"): (-0.2, 0.09)})
    queries = [("a", {"b"}), ("a", {"b", "c"}), ("a", {"a"})]
    for estimator in (PairwiseEstimator(), HigherOrderEstimator()):
        estimator.fit_gains(table)
        draws = estimator.sample_gains(queries, np.random.default_rng(0), n_samples=20000)
        assert draws.shape == (20000, 3)
        for column, (target, task_set) in enumerate(queries[:2]):
            mean, std = estimator.predict(target, task_set)
            assert draws[:, column].mean() == pytest.approx(mean, abs=4 * std / math.sqrt(20000))
            assert draws[:, column].std() == pytest.approx(std, rel=0.03)
        assert np.all(draws[:, 2] == 0.0)  # the target alone: no gain, no spread


def test_fit_reads_only_the_named_split_and_metric() -> None:
    """Records of another split or metric must not leak into the gains the estimator learns."""

    def records(split: str, metric: str, gain: float) -> list[ScoreRecord]:
        alone = ScoreRecord("a", frozenset({"a"}), 0.5, split=split, metric=metric)
        joint = ScoreRecord(
            "a", frozenset({"a", "b"}), 0.5 * (1 + gain), split=split, metric=metric
        )
        return [alone, joint]

    everything = (
        records("dev", "acc", 0.10)
        + records("test", "acc", -0.30)
        + records("dev", "f1", 0.50)
        + records("test", "f1", 0.70)
    )
    for split, metric, gain in (("dev", "acc", 0.1), ("test", "acc", -0.3), ("test", "f1", 0.7)):
        fitted = PairwiseEstimator(split=split, metric=metric).fit(everything)
        assert fitted.predict("a", {"b"})[0] == pytest.approx(gain)
        assert len(fitted.table.gains) == 1


def test_describe_counts_targets_not_every_task() -> None:
    """Tasks seen only as auxiliaries are not targets: 2 targets of 4 tasks."""
    table = _pair_table({("a", "b"): (0.1, 0.01), ("a", "c"): (0.2, 0.01), ("d", "b"): (0.0, 0.01)})
    described = HigherOrderEstimator().fit_gains(table).describe()
    assert described == {"method": "hoa", "gains": 3, "targets": 2}


def test_pooled_std_of_two_identical_values_is_the_fallback_not_zero() -> None:
    assert pooled_std([0.2, 0.2], fallback=7.0) == 7.0
    # both pair gains equal: an unmeasured pair is not predicted with certainty
    equal = HigherOrderEstimator().fit_gains(
        _pair_table({("a", "b"): (0.1, 0.01), ("c", "b"): (0.1, 0.01)})
    )
    assert equal.predict("a", {"c"}) == (0.0, 1.0)


# ----------------------------------------------------------------- pairwise and hoa
def test_hoa_leaves_unmeasured_pairs_out_of_the_mean() -> None:
    """docs: "Pairs that were never measured are left out of the mean"."""
    table = _pair_table({("a", "b"): (0.3, 0.03), ("a", "c"): (0.1, 0.04), ("d", "e"): (-0.5, 0.1)})
    hoa = HigherOrderEstimator().fit_gains(table)
    mean, std = hoa.predict("a", {"b", "c", "zz", "d"})
    assert mean == pytest.approx(0.2)  # (0.3 + 0.1) / 2, not / 4
    assert std == pytest.approx(math.hypot(0.03, 0.04) / 2)


def test_pairs_measured_once_borrow_the_spread_of_the_gains_when_no_pair_has_an_error() -> None:
    """Every pair measured with one seed: no standard error to borrow, so the prior spread is used
    (the pair gains' standard deviation), not a unit error of 100 %."""
    nan = math.nan
    table = _pair_table(
        {("a", "b"): (0.02, nan), ("a", "c"): (0.05, nan), ("b", "c"): (-0.01, nan)}
    )
    spread = float(np.std([0.02, 0.05, -0.01], ddof=1))
    pairwise = PairwiseEstimator().fit_gains(table)
    assert pairwise.predict("a", {"b"}) == pytest.approx((0.02, spread))
    assert pairwise.predict("a", {"b", "c"}) == pytest.approx((0.07, math.sqrt(2) * spread))


# ----------------------------------------------------------------- setfn
def _interaction_truth() -> Truth:
    """Return mean-pooled gains of 5 tasks in which only target "a" gains +0.1 from {b, c}
    together and only "b" loses 0.1 from {c, d} together (target-specific interactions)."""
    tasks = "abcde"
    rng = np.random.default_rng(0)
    effect = {(t, s): float(rng.normal(0, 0.05)) for t in tasks for s in tasks if s != t}
    bonus = {("a", frozenset("bc")): 0.1, ("b", frozenset("cd")): -0.1}
    truth = {}
    for target in tasks:
        others = [s for s in tasks if s != target]
        for size in (1, 2, 3):
            for members in itertools.combinations(others, size):
                pairs = [frozenset(p) for p in itertools.combinations(members, 2)]
                extra = float(np.mean([bonus.get((target, p), 0.0) for p in pairs])) if pairs else 0
                truth[(target, frozenset(members))] = (
                    float(np.mean([effect[(target, s)] for s in members])) + extra
                )
    return truth


def test_per_target_interactions_carry_each_targets_own_pair_effect_to_larger_sets() -> None:
    """``interactions="target"`` (for few tasks) gives every target its own pair interactions:
    fitted on singles and pairs, it predicts the held-out triples with a's {b, c} bonus and b's
    {c, d} penalty, which the shared interactions average away over the targets."""
    truth = _interaction_truth()
    records = records_from(truth, lambda t, a: len(a) <= 2)
    held = [("a", "bcd"), ("a", "bce"), ("b", "acd"), ("c", "abd")]
    errors = {}
    for interactions in ("target", "shared"):
        model = SetFunctionEstimator(interactions=interactions, pooling="mean", size_effect=False)
        model.fit(records)
        predicted = [model.predict(t, set(a))[0] for t, a in held]
        errors[interactions] = np.abs(
            np.subtract(predicted, [truth[(t, frozenset(a))] for t, a in held])
        )
    assert errors["target"].max() < 0.006
    assert errors["shared"][:3].min() > 0.015  # the sets with a target-specific interaction


def test_per_target_interactions_are_refused_beyond_the_parameter_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """19 tasks need 19^2 * 18 / 2 = 3249 interaction parameters (at most 3000): a clear error
    naming the way out, before any fit is attempted (that fit took over 4 minutes)."""
    tasks = [f"t{i:02d}" for i in range(19)]
    truth = {(tasks[0], frozenset(tasks[i : i + 2])): 0.01 * i for i in range(1, 18)}
    records = records_from(truth, lambda t, a: True)

    def no_fit(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was fitted instead of refused")

    plain_fit = setfn_module.fit_evidence
    monkeypatch.setattr(setfn_module, "fit_evidence", no_fit)
    with pytest.raises(
        ConfigError, match=r"19\^2 \* 18 / 2 parameters for 19 tasks .*use 'shared'"
    ):
        SetFunctionEstimator(interactions="target").fit(records)
    monkeypatch.setattr(setfn_module, "fit_evidence", plain_fit)
    # with singles only there are no interactions to fit, so no limit to pass
    singles = {(tasks[0], frozenset({t})): 0.01 * i for i, t in enumerate(tasks[1:])}
    SetFunctionEstimator(interactions="target").fit(records_from(singles, lambda t, a: True))


@pytest.mark.parametrize("hyperprior", [(1.0, 2.0, 3.0), (0.0, 2.0), (-1.0, 2.0), (1.0,)])
def test_a_malformed_hyperprior_is_refused(hyperprior: tuple[float, ...]) -> None:
    with pytest.raises(ConfigError, match=r"`hyperprior` must be \(center, width\) with both > 0"):
        SetFunctionEstimator(hyperprior=hyperprior)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def pairs_fit() -> SetFunctionEstimator:
    """A default (bma) fit on every single and pair of 6 tasks, with a little noise."""
    return SetFunctionEstimator().fit(
        records_from(additive_truth(seed=1), lambda t, a: len(a) <= 2, noise=0.002, seeds=2)
    )


def test_the_target_inside_its_own_set_is_ignored(pairs_fit: SetFunctionEstimator) -> None:
    """``predict_many`` and ``sample_gains`` take sets with or without the target, as ``predict``."""
    fit = pairs_fit
    with_target, without = (
        fit.predict_many("a", [{"a", "b", "c"}, {"a"}]),
        fit.predict_many("a", [{"b", "c"}, set()]),
    )
    np.testing.assert_array_equal(with_target[0], without[0])
    np.testing.assert_array_equal(with_target[1], without[1])
    assert (with_target[0][1], with_target[1][1]) == (0.0, 0.0)
    draws_with = fit.sample_gains([("a", {"a", "b"}), ("a", {"a"})], np.random.default_rng(3))
    draws_without = fit.sample_gains([("a", {"b"}), ("a", set())], np.random.default_rng(3))
    np.testing.assert_array_equal(draws_with, draws_without)
    assert draws_with[0, 1] == 0.0


def test_setfn_refuses_every_query_before_the_fit() -> None:
    model = SetFunctionEstimator()
    with pytest.raises(NotFittedError, match="setfn estimator is not fitted; call fit"):
        model.predict_many("a", [{"b"}])
    with pytest.raises(NotFittedError, match="setfn estimator is not fitted; call fit"):
        model.sample_gains([("a", {"b"})], np.random.default_rng(0))


def test_an_unmeasured_lookahead_entry_is_no_evidence_not_a_nan() -> None:
    """A NaN in a lookahead matrix (a pair never probed) is skipped: predictions stay finite."""
    tasks = ["a", "b", "c", "d"]
    rng = np.random.default_rng(2)
    z = rng.normal(size=(4, 4))
    truth = {
        (tasks[j], frozenset({tasks[i]})): 0.05 * z[i, j]
        for i in range(4)
        for j in range(4)
        if i != j
    }
    values = z.tolist()
    values[1][0] = math.nan  # Z(b -> a) never measured
    model = SetFunctionEstimator(lookahead=[LookaheadMatrix(tasks=tasks, values=values)])
    model.fit(records_from(truth, lambda t, a: t != "a" or a == frozenset({"c"})))
    means, stds = model.predict_many("a", [{"b"}, {"d"}, {"b", "d"}])
    assert np.all(np.isfinite(means)) and np.all(np.isfinite(stds))


def test_a_lookahead_diagonal_is_not_evidence() -> None:
    """Z(t -> t), a task's affinity with itself, says nothing about auxiliaries: whatever it
    holds, the predictions are the same."""
    tasks = ["a", "b", "c", "d"]
    z = np.random.default_rng(2).normal(size=(4, 4))
    truth = {
        (tasks[j], frozenset({tasks[i]})): 0.05 * z[i, j]
        for i in range(4)
        for j in range(4)
        if i != j
    }
    records = records_from(truth, lambda t, a: t != "a" or a == frozenset({"c"}))
    predictions = []
    for diagonal in (0.0, 50.0):
        values = z.copy()
        np.fill_diagonal(values, diagonal)
        matrix = LookaheadMatrix(tasks=tasks, values=values.tolist())
        model = SetFunctionEstimator(lookahead=[matrix]).fit(records)
        predictions.append(model.predict_many("a", [{"b"}, {"d"}, {"b", "d"}]))
    np.testing.assert_allclose(predictions[0], predictions[1], rtol=1e-9)


def test_gains_that_are_all_equal_keep_their_own_scale() -> None:
    """Every gain +0.05 (no spread at all): the scale is their size, so a cold start is
    predicted about as uncertain as the gains are large (not on the unit scale, 20 times
    that), and the table 20 times larger gives 20 times the predictions."""
    truth = {("a", frozenset({s})): 0.05 for s in "bcd"} | {
        ("b", frozenset({s})): 0.05 for s in "acd"
    }
    fits = [
        SetFunctionEstimator(hyperprior=SMALL_DATA_HYPERPRIOR).fit(
            records_from({key: factor * gain for key, gain in truth.items()}, lambda t, a: True)
        )
        for factor in (1.0, 20.0)
    ]
    assert fits[0].cold_scale == pytest.approx(0.05)
    assert fits[0].predict("zz", {"b"})[1] < 0.2
    for target, query in (("a", {"b"}), ("a", {"e"}), ("zz", {"b"}), ("c", {"a", "b"})):
        assert np.allclose(
            fits[1].predict(target, query), 20.0 * np.array(fits[0].predict(target, query))
        )


def _bma_with_sum_ahead_by(
    log_factor: float, monkeypatch: pytest.MonkeyPatch
) -> SetFunctionEstimator:
    """Return a bma fit whose sum pooling's best evidence is mean's plus ``log_factor`` exactly."""
    truth = additive_truth(seed=4, pooling="mean")
    rng = np.random.default_rng(1)
    seen = {key for key in truth if len(key[1]) == 1 or rng.random() < 0.25}
    records = records_from(truth, lambda t, a: (t, a) in seen)
    mean_best = SetFunctionEstimator(pooling="mean").fit(records).fit_.log_posterior
    sum_best = SetFunctionEstimator(pooling="sum").fit(records).fit_.log_posterior
    model = SetFunctionEstimator(pooling="bma")
    plain = setfn_module.fit_evidence

    def shifted(*args: Any, **kwargs: Any) -> Any:
        fit = plain(*args, **kwargs)
        if model.pooling == "sum":  # the best sum fit lands exactly log_factor above mean's
            lifted = mean_best + log_factor if fit.log_posterior == sum_best else -1e9
            fit = dataclasses.replace(fit, log_posterior=lifted, log_evidence=lifted)
        return fit

    monkeypatch.setattr(setfn_module, "fit_evidence", shifted)
    return model.fit(records)


def test_bma_keeps_a_pooling_of_small_but_not_negligible_weight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A log Bayes factor of -5 gives sum a weight of 0.0067: small, but it moves the
    predictions, so it stays in the mixture; at -30 (1e-13) it is left out."""
    model = _bma_with_sum_ahead_by(-5.0, monkeypatch)
    w = 1.0 / (1.0 + math.exp(5.0))
    assert model.describe()["pooling_weights"] == {
        "mean": pytest.approx(1 - w, abs=1e-6),
        "sum": pytest.approx(w, abs=1e-6),
    }
    assert [c.pooling for c in model.components] == ["mean", "sum"]
    negligible = _bma_with_sum_ahead_by(-30.0, monkeypatch)
    assert negligible.describe()["pooling_weights"] == {"mean": 1.0}


def test_bma_describes_mean_on_an_exact_tie(monkeypatch: pytest.MonkeyPatch) -> None:
    """Equal evidence: weights 0.5 each, and the described fit is mean's (the documented tie-break)."""
    model = _bma_with_sum_ahead_by(0.0, monkeypatch)
    assert model.describe()["pooling_weights"] == {"mean": 0.5, "sum": 0.5}
    monkeypatch.undo()
    records = model.table
    alone = SetFunctionEstimator(pooling="mean").fit_gains(records).describe()
    described = model.describe()
    assert (described["kernel"], described["tau"], described["noise"]) == (
        alone["kernel"],
        alone["tau"],
        alone["noise"],
    )


def test_lookahead_in_any_unit_gives_the_same_predictions() -> None:
    """Z is put on a common scale before its coefficient is learned: lookahead affinities a
    thousand times smaller (another learning rate, another loss) carry the same evidence."""
    tasks = ["a", "b", "c", "d"]
    z = np.random.default_rng(2).normal(size=(4, 4))
    truth = {
        (tasks[j], frozenset({tasks[i]})): 0.05 * z[i, j]
        for i in range(4)
        for j in range(4)
        if i != j
    }
    records = records_from(truth, lambda t, a: t != "a" or a == frozenset({"c"}))
    predictions = [
        SetFunctionEstimator(lookahead=[LookaheadMatrix(tasks=tasks, values=(unit * z).tolist())])
        .fit(records)
        .predict_many("a", [{"b"}, {"d"}, {"b", "d"}])
        for unit in (1.0, 1e-3)
    ]
    np.testing.assert_allclose(predictions[0], predictions[1], rtol=1e-6)


def test_a_target_that_gains_from_everything_keeps_its_offset_with_an_unseen_task() -> None:
    """Target "a" gains about +0.1 from every auxiliary: a set of one task never seen gets
    that offset a_t (the prior of its member's own effect is 0), not 0."""
    rng = np.random.default_rng(5)
    truth = {
        (t, frozenset({s})): (0.1 if t == "a" else 0.0) + float(rng.normal(0, 0.01))
        for t in "abcde"
        for s in "abcde"
        if s != t
    }
    model = SetFunctionEstimator(pooling="mean").fit(records_from(truth, lambda t, a: True))
    mean, _ = model.predict("a", {"zz"})
    assert 0.05 < mean < 0.15
    assert model.predict("a", {"zz", "yy"})[0] > 0.05


def test_lookahead_enters_a_larger_set_as_the_mean_over_its_members() -> None:
    """The gain follows ``beta * mean_{s in A} Z(s -> t)``: a target measured once is predicted
    on its pairs and triples from Z averaged over the set, not added up."""
    tasks = ["a", "b", "c", "d", "e"]
    z = np.random.default_rng(4).normal(size=(5, 5))  # values[i][j] = Z(tasks[i] -> tasks[j])
    truth = {}
    for j, target in enumerate(tasks):
        others = [i for i in range(5) if i != j]
        for size in (1, 2, 3):
            for members in itertools.combinations(others, size):
                aux = frozenset(tasks[i] for i in members)
                truth[(target, aux)] = 0.05 * float(np.mean([z[i, j] for i in members]))
    records = records_from(truth, lambda t, a: t != "e" or a == frozenset({"a"}))
    matrix = LookaheadMatrix(tasks=tasks, values=z.tolist())
    model = SetFunctionEstimator(lookahead=[matrix], pooling="mean").fit(records)
    held = [key for key in truth if key[0] == "e" and len(key[1]) >= 2]
    predicted = np.array([model.predict(t, a)[0] for t, a in held])
    assert np.abs(predicted - [truth[key] for key in held]).max() < 0.01


def _size_effect_truth(spread: float) -> Truth:
    """Return mean-pooled gains of 5 tasks plus ``c_t log|A|``, ``c_t ~ N(0, spread)`` per target."""
    tasks = "abcde"
    rng = np.random.default_rng(0)
    size_effect = {t: float(rng.normal(0, spread)) for t in tasks}
    effect = {(t, s): float(rng.normal(0, 0.05)) for t in tasks for s in tasks}
    truth = {}
    for target in tasks:
        others = [s for s in tasks if s != target]
        for size in range(1, 5):
            for members in itertools.combinations(others, size):
                truth[(target, frozenset(members))] = float(
                    np.mean([effect[(target, s)] for s in members])
                    + size_effect[target] * np.log(size)
                )
    return truth


def test_describe_reports_the_learned_spread_of_the_per_target_size_effects() -> None:
    """``tau.c`` is the prior variance of c_t, learned: about 0 when no target's gain depends on
    the set's size, clearly positive when each target's does in its own way."""
    taus = {
        spread: SetFunctionEstimator(pooling="mean")
        .fit(records_from(_size_effect_truth(spread), lambda t, a: True))
        .describe()["tau"]["c"]
        for spread in (0.0, 0.05)
    }
    assert taus[0.0] < 0.01
    assert 0.1 < taus[0.05] < 5.0


# ------------------------------------------------------------ defects the audit found (fixed)
def test_setfn_describe_before_the_fit_is_refused_as_not_fitted() -> None:
    """It raised AttributeError (``fit_``) where pairwise and hoa say to call fit() first."""
    with pytest.raises(NotFittedError, match="fit"):
        SetFunctionEstimator().describe()


def test_three_equal_gains_have_no_spread_but_the_fallback() -> None:
    """np.std of three 0.2s is 3.4e-17 (rounding): a pair estimate was near-certain."""
    table = GainTable(gains=[Gain(x, frozenset({"b"}), 0.2, math.nan, 2) for x in "acd"])
    assert pooled_std([0.2, 0.2, 0.2], fallback=0.5) == 0.5
    _, std = PairwiseEstimator().fit_gains(table).predict("a", {"b"})
    _, unmeasured = HigherOrderEstimator().fit_gains(table).predict("a", {"c"})
    assert std > 0.01 and unmeasured > 0.01
