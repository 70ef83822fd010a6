"""Estimators on synthetic records with known structure."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from taskgraph.affinity.estimators import (
    ESTIMATORS,
    HigherOrderEstimator,
    LookaheadEstimator,
    NotFittedError,
    PairwiseEstimator,
    SetFunctionEstimator,
    TextEmbEstimator,
    make_estimator,
)
from taskgraph.affinity.estimators.setfn import SMALL_DATA_HYPERPRIOR
from taskgraph.errors import ConfigError, UnknownNameError
from taskgraph.trial import LookaheadMatrix

from .conftest import TASKS, additive_truth, records_from


def test_hoa_is_the_mean_and_pairwise_the_sum_of_pair_gains() -> None:
    truth = additive_truth()
    records = records_from(truth, lambda t, a: len(a) == 1)
    hoa = HigherOrderEstimator().fit(records)
    pairwise = PairwiseEstimator().fit(records)
    pair = {s: truth[("a", frozenset({s}))] for s in "bcd"}
    mean, std = hoa.predict("a", {"a", "b", "c", "d"})
    assert mean == pytest.approx(np.mean(list(pair.values())))
    assert pairwise.predict("a", {"b", "c", "d"})[0] == pytest.approx(sum(pair.values()))
    assert pairwise.predict("a", {"b"})[0] == pytest.approx(pair["b"])
    assert hoa.predict("a", {"a"}) == (0.0, 0.0)
    assert std > 0 and hoa.n_evidence("a", {"b", "c"}) == 2


def test_setfn_recovers_additive_gains_and_the_size_effect() -> None:
    truth = additive_truth(seed=3)
    rng = np.random.default_rng(0)
    seen = {key for key in truth if len(key[1]) == 1 or rng.random() < 0.25}
    records = records_from(truth, lambda t, a: (t, a) in seen)
    model = SetFunctionEstimator().fit(records)
    held = [key for key in truth if key not in seen]
    predicted = np.array([model.predict(t, a)[0] for t, a in held])
    true = np.array([truth[k] for k in held])
    hoa = HigherOrderEstimator().fit(records)
    hoa_predicted = np.array([hoa.predict(t, a)[0] for t, a in held])
    assert np.abs(predicted - true).max() < 0.01  # noise-free data: the model's form is exact
    assert spearmanr(predicted, true).statistic > 0.99
    assert (
        np.abs(predicted - true).mean() < np.abs(hoa_predicted - true).mean() / 3
    )  # HOA misses log|A|


@pytest.mark.parametrize("pooling", ["mean", "sum"])
def test_setfn_pooling_auto_picks_how_the_members_combine(pooling: str) -> None:
    # Gains that add (or average) the members' effects: the matching pooling is exact, the
    # other is not, and "auto" finds the matching one by the evidence alone.
    truth = additive_truth(seed=4, pooling=pooling)
    other = "sum" if pooling == "mean" else "mean"
    rng = np.random.default_rng(1)
    seen = {key for key in truth if len(key[1]) == 1 or rng.random() < 0.25}
    records = records_from(truth, lambda t, a: (t, a) in seen)
    held = [key for key in truth if key not in seen]
    true = np.array([truth[k] for k in held])
    errors = {}
    for option in ("mean", "sum", "auto", "bma"):
        model = SetFunctionEstimator(pooling=option).fit(records)
        predicted = np.array([model.predict(t, a)[0] for t, a in held])
        errors[option] = float(np.abs(predicted - true).mean())
        if option == "auto":
            assert model.describe()["pooling"] == pooling
        if option == "bma":  # overwhelming evidence either way: the other pooling is left out
            assert model.describe()["pooling_weights"] == {pooling: 1.0}
            assert [c.pooling for c in model.components] == [pooling]
    assert errors[pooling] < 0.002 and errors["auto"] == errors[pooling]
    assert errors["bma"] == pytest.approx(errors[pooling], abs=1e-9)
    assert errors[other] > 3 * errors[pooling]
    with pytest.raises(
        ConfigError, match="`pooling` must be mean, sum, auto or bma, but got 'max'"
    ):
        SetFunctionEstimator(pooling="max")


def _half_mean_half_sum(noise: float = 0.05, share_of_sum: float = 0.5) -> list:
    """Noisy gains between averaged and summed members (halfway by default: the evidence is
    undecided), every single and a quarter of the larger sets seen."""
    mean, summed = additive_truth(seed=0, pooling="mean"), additive_truth(seed=0, pooling="sum")
    truth = {key: (1 - share_of_sum) * mean[key] + share_of_sum * summed[key] for key in mean}
    rng = np.random.default_rng(0)
    seen = {key for key in truth if len(key[1]) == 1 or rng.random() < 0.25}
    return records_from(truth, lambda t, a: (t, a) in seen, noise=noise, seeds=2, seed=0)


def test_setfn_default_bma_is_the_evidence_weighted_mixture_of_the_two_poolings() -> None:
    records = _half_mean_half_sum()
    bma = SetFunctionEstimator().fit(records)  # the default pooling
    mean = SetFunctionEstimator(pooling="mean").fit(records)
    summed = SetFunctionEstimator(pooling="sum").fit(records)
    # Bayesian model averaging with equal prior odds: sum's weight is the sigmoid of the log
    # Bayes factor of the two fits (each at its own evidence-maximising hyperparameters).
    log_factor = summed.fit_.log_posterior - mean.fit_.log_posterior
    w = 1.0 / (1.0 + np.exp(-log_factor))
    described = bma.describe()
    assert described["pooling"] == "bma"
    assert described["pooling_weights"] == {
        "mean": pytest.approx(1 - w, abs=1e-6),
        "sum": pytest.approx(w, abs=1e-6),
    }
    assert 0.2 < w < 0.8  # undecided, so the mixture is a real one
    # The heavier component's kernel and evidence are the ones described.
    heavier = mean if w < 0.5 else summed
    assert described["log_evidence"] == heavier.describe()["log_evidence"]
    sets = [{"b", "c"}, {"b", "c", "d"}, {"c"}, {"b", "c", "d", "e"}]
    before = bma.predict_many("a", sets)[0]
    for target in ("a", "outsider"):  # a fitted target, and a cold start
        got_mean, got_std = bma.predict_many(target, sets)
        m0, s0 = mean.predict_many(target, sets)
        m1, s1 = summed.predict_many(target, sets)
        expected = (1 - w) * m0 + w * m1
        variance = (1 - w) * (s0**2 + m0**2) + w * (s1**2 + m1**2) - expected**2
        np.testing.assert_allclose(got_mean, expected, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(got_std, np.sqrt(variance), rtol=1e-6, atol=1e-12)
        assert bma.predict(target, sets[1]) == (
            pytest.approx(got_mean[1]),
            pytest.approx(got_std[1]),
        )
    # Posterior draws come from the mixture: their mean and spread are the mixture's.
    # (The cold start first: the fitted target's draws after it must still be their component's.)
    queries = [("outsider", frozenset({"b", "c"})), ("a", frozenset({"b", "c", "d"}))]
    draws = bma.sample_gains(queries, np.random.default_rng(0), n_samples=20000)
    for column, (target, aux) in enumerate(queries):
        m, sd = bma.predict(target, aux)
        assert draws[:, column].mean() == pytest.approx(m, abs=4 * sd / np.sqrt(20000))
        assert draws[:, column].std() == pytest.approx(sd, rel=0.05)
    # Afterwards the heavier component is active again (predictions do not drift).
    np.testing.assert_array_equal(bma.predict_many("a", sets)[0], before)
    assert bma.fit_ is (bma.components[0].fit if w < 0.5 else bma.components[1].fit)


def test_setfn_poolings_coincide_without_a_set_of_two_auxiliaries(monkeypatch) -> None:
    import taskgraph.affinity.estimators.setfn as setfn_module

    truth = additive_truth(seed=2)
    records = records_from(truth, lambda t, a: len(a) == 1)
    calls = []
    fit_evidence = setfn_module.fit_evidence
    monkeypatch.setattr(
        setfn_module, "fit_evidence", lambda *a, **k: calls.append(1) or fit_evidence(*a, **k)
    )
    fitted = {}
    for pooling in ("mean", "bma", "auto"):
        calls.clear()
        fitted[pooling] = SetFunctionEstimator(pooling=pooling).fit(records)
        fitted[pooling].fits_made = len(calls)
    # One fit per kernel, not two: the poolings give the same features for single auxiliaries.
    assert fitted["bma"].fits_made == fitted["auto"].fits_made == fitted["mean"].fits_made
    assert fitted["bma"].describe()["pooling_weights"] == {"mean": 1.0}
    sets = [{"b", "c"}, {"b", "c", "d"}]
    np.testing.assert_array_equal(
        fitted["bma"].predict_many("a", sets)[0], fitted["mean"].predict_many("a", sets)[0]
    )


@pytest.mark.parametrize(("bonus", "chosen"), [(1.0, "mean"), (2.9, "mean"), (3.5, "sum")])
def test_setfn_pooling_auto_adds_only_on_strong_evidence(
    bonus: float, chosen: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``auto`` keeps ``sum`` only when its log evidence beats ``mean``'s by more than 3 (ETTm1's
    fits differ by a coin flip's worth, under 2.5, and flipped to sum in half of them)."""
    import dataclasses

    from taskgraph.affinity.estimators import setfn

    truth = additive_truth(seed=4, pooling="mean")
    rng = np.random.default_rng(1)
    seen = {key for key in truth if len(key[1]) == 1 or rng.random() < 0.25}
    records = records_from(truth, lambda t, a: (t, a) in seen)
    mean_fit = SetFunctionEstimator(pooling="mean").fit(records)
    sum_fit = SetFunctionEstimator(pooling="sum").fit(records)
    gap = sum_fit.fit_.log_posterior - mean_fit.fit_.log_posterior  # sum's evidence is worse
    model = SetFunctionEstimator(pooling="auto")
    plain = setfn.fit_evidence

    def favour_sum(*args, **kwargs):  # type: ignore[no-untyped-def]
        fit = plain(*args, **kwargs)
        if model.pooling == "sum":  # lift every sum fit to `bonus` above the best mean fit
            lifted = fit.log_posterior - gap + bonus
            fit = dataclasses.replace(fit, log_posterior=lifted, log_evidence=lifted)
        return fit

    monkeypatch.setattr(setfn, "fit_evidence", favour_sum)
    model.fit(records)
    assert model.describe()["pooling"] == chosen


def test_setfn_shares_source_effects_across_targets() -> None:
    # Every target gains the same from each source; target "f" has seen only one source.
    effect = dict(zip(TASKS, np.linspace(-0.05, 0.05, len(TASKS)), strict=True))
    truth = {(t, frozenset({s})): float(effect[s]) for t in TASKS for s in TASKS if s != t}
    records = records_from(truth, lambda t, a: t != "f" or a == frozenset({"a"}))
    model = SetFunctionEstimator().fit(records)
    sources = [s for s in TASKS if s not in ("f", "a")]
    predicted = model.predict_many("f", [{s} for s in sources])[0]
    assert spearmanr(predicted, [effect[s] for s in sources]).statistic > 0.9
    assert (
        HigherOrderEstimator().fit(records).predict("f", {"e"})[0] == 0.0
    )  # HOA has nothing to go on


def test_setfn_cold_start_from_task_embeddings() -> None:
    # "new" has no record at all; its embedding equals "a"'s, so it should rank sources like "a".
    truth = {}
    for t, scale in (("a", 1.0), ("b", -1.0), ("c", 1.0), ("d", -1.0)):
        for s, w in (("s1", 0.05), ("s2", -0.05), ("s3", 0.0)):
            truth[(t, frozenset({s}))] = scale * w
    rng = np.random.default_rng(0)
    base = {k: rng.normal(size=8) for k in ("pos", "neg", "src")}
    embeddings = {"a": base["pos"], "c": base["pos"] + 0.01, "new": base["pos"] + 0.02,
                  "b": base["neg"], "d": base["neg"] + 0.01,
                  "s1": base["src"], "s2": base["src"] + 0.3, "s3": base["src"] - 0.3}  # fmt: skip
    records = records_from(truth, lambda t, a: True)
    model = SetFunctionEstimator(task_embeddings=embeddings).fit(records)
    assert model.describe()["kernel"].startswith("textemb")
    predicted = model.predict_many("new", [{"s1"}, {"s2"}])[0]
    assert predicted[0] > predicted[1]
    unknown_mean, unknown_std = model.predict("stranger", {"s1"})
    assert np.isfinite(unknown_mean) and unknown_std > 0


def test_setfn_posterior_draws_are_centred_on_the_prediction() -> None:
    truth = additive_truth(seed=1)
    model = SetFunctionEstimator().fit(records_from(truth, lambda t, a: len(a) <= 2, noise=0.002))
    queries = [("a", {"b", "c"}), ("b", {"a", "c", "d"})]
    draws = model.sample_gains(queries, np.random.default_rng(0), n_samples=4000)
    means = [model.predict(t, s)[0] for t, s in queries]
    stds = [model.predict(t, s)[1] for t, s in queries]
    assert draws.shape == (4000, 2)
    assert np.allclose(draws.mean(axis=0), means, atol=4 * max(stds) / np.sqrt(4000) + 1e-9)
    assert np.allclose(draws.std(axis=0), stds, rtol=0.1)


def test_lookahead_is_calibrated_on_measured_pairs_with_the_documented_orientation() -> None:
    tasks = ["a", "b", "c", "d"]
    # values[i][j] = Z(tasks[i] -> tasks[j]); make the pair gain of j from i equal 0.1 * Z(i -> j).
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4, 4))
    truth = {
        (tasks[j], frozenset({tasks[i]})): 0.1 * z[i, j]
        for i in range(4)
        for j in range(4)
        if i != j
    }
    matrix = LookaheadMatrix(tasks=tasks, values=z.tolist(), n_probes=5)
    measured = records_from(truth, lambda t, a: t != "d")
    model = LookaheadEstimator(lookahead=[matrix]).fit(measured)
    assert model.beta == pytest.approx(0.1) and model.alpha == pytest.approx(0.0, abs=1e-9)
    assert model.predict("d", {"a"})[0] == pytest.approx(truth[("d", frozenset({"a"}))])
    # One matrix holds both pairs: it is counted once (one screen or joint run, not two).
    assert model.n_evidence("d", {"a", "b"}) == 1
    assert LookaheadEstimator(lookahead=[matrix, matrix]).fit(measured).n_evidence("d", {"a"}) == 2


def test_textemb_ranks_by_cosine_without_records_of_the_target() -> None:
    embeddings = {
        "t": np.array([1.0, 0.0]),
        "near": np.array([0.9, 0.1]),
        "far": np.array([0.0, 1.0]),
    }
    model = TextEmbEstimator(task_embeddings=embeddings).fit([])
    assert model.predict("t", {"near"})[0] > model.predict("t", {"far"})[0]
    with pytest.raises(ConfigError, match="task_embeddings"):
        TextEmbEstimator()


def test_registry_and_errors() -> None:
    assert {"pairwise", "hoa", "setfn", "sourcerank", "lookahead", "textemb"} <= set(
        ESTIMATORS.names()
    )
    with pytest.raises(
        UnknownNameError, match="known: hoa, lookahead, pairwise, setfn, sourcerank, textemb"
    ):
        make_estimator("magic")
    with pytest.raises(ConfigError, match="options of affinity estimator 'hoa'"):
        make_estimator("hoa", bogus=1)
    with pytest.raises(NotFittedError, match="fit"):
        HigherOrderEstimator().predict("a", {"b"})
    with pytest.raises(ConfigError, match="interactions"):
        SetFunctionEstimator(interactions="all")


def test_setfn_takes_lookahead_as_a_learned_prior_feature() -> None:
    tasks = ["a", "b", "c", "d", "e"]
    rng = np.random.default_rng(4)
    z = rng.normal(size=(5, 5))  # values[i][j] = Z(tasks[i] -> tasks[j])
    truth = {
        (tasks[j], frozenset({tasks[i]})): 0.05 * z[i, j]
        for i in range(5)
        for j in range(5)
        if i != j
    }
    # Target "e" has a single measured pair; the others are fully measured.
    records = records_from(truth, lambda t, a: t != "e" or a == frozenset({"a"}))
    matrix = LookaheadMatrix(tasks=tasks, values=z.tolist(), n_probes=3)
    with_z = SetFunctionEstimator(lookahead=[matrix]).fit(records)
    without = SetFunctionEstimator().fit(records)
    sources = ["b", "c", "d"]
    true = [truth[("e", frozenset({s}))] for s in sources]
    assert spearmanr(
        with_z.predict_many("e", [{s} for s in sources])[0], true
    ).statistic == pytest.approx(1.0)
    error_with = np.abs(with_z.predict_many("e", [{s} for s in sources])[0] - true).mean()
    error_without = np.abs(without.predict_many("e", [{s} for s in sources])[0] - true).mean()
    assert error_with < error_without / 2


def test_pairwise_never_falls_back_to_an_error_of_zero() -> None:
    """The audit's std.db: five tabular studies of one table repeat each run with seed 0.
    Counted as seeds, their identical values gave standard errors of 0, and the typical error
    that pairs measured once borrow was 0 too: every prediction claimed certainty."""
    from taskgraph.affinity.records import ScoreRecord

    def record(task: str, tasks: str, value: float, seed: int = 0) -> ScoreRecord:
        return ScoreRecord(task=task, task_set=frozenset(tasks.split("+")), value=value, seed=seed)

    studies = [record("a", "a", 0.5), record("a", "a+b", 0.6), record("a", "a+b", 0.6)]
    studies += [record("b", "b", 0.4), record("b", "a+b", 0.5), record("b", "b+c", 0.3)]
    model = PairwiseEstimator().fit(studies)
    assert np.isnan(model.pairs[("a", "b")][1])  # one seed on each side: unknown
    assert model.default_se > 0 and model.predict("a", {"b"})[1] > 0
    # Two seeds that agree exactly give an error of 0 for their own pair, not for the others.
    seeds = [record("a", "a", 0.5, s) for s in (0, 1)] + [
        record("a", "a+b", 0.6, s) for s in (0, 1)
    ]
    seeds += [record("c", "c", 0.4), record("c", "a+c", 0.5), record("c", "b+c", 0.3)]
    model = PairwiseEstimator().fit(seeds)
    assert model.pairs[("a", "b")][1] == 0.0
    assert model.default_se > 0 and model.predict("c", {"a"})[1] > 0


def test_setfn_bma_counts_pairs_of_auxiliaries_as_larger_sets() -> None:
    # Summed truth seen through singles and pairs only: two auxiliaries already tell the
    # poolings apart, so bma fits both and follows the evidence to sum.
    records = records_from(additive_truth(seed=4, pooling="sum"), lambda t, a: len(a) <= 2)
    bma = SetFunctionEstimator().fit(records)
    summed = SetFunctionEstimator(pooling="sum").fit(records)
    assert bma.describe()["pooling_weights"] == {"sum": 1.0}
    assert bma.predict("a", {"b", "c"}) == summed.predict("a", {"b", "c"})


def test_setfn_bma_describes_its_heavier_pooling_right_after_the_fit() -> None:
    # Undecided evidence leaning to sum (the summed truth with noise): the described kernel and
    # evidence are sum's from the start, not only after a prediction re-activates it.
    records = _half_mean_half_sum(share_of_sum=1.0)
    bma = SetFunctionEstimator().fit(records)
    weights = bma.describe()["pooling_weights"]
    assert 0.5 < weights["sum"] < 0.999, weights
    alone = SetFunctionEstimator(pooling="sum").fit(records).describe()
    described = bma.describe()
    assert (described["log_evidence"], described["tau"]) == (alone["log_evidence"], alone["tau"])


def test_a_single_pooling_draws_as_its_own_fit_does() -> None:
    # One component: no draw of which pooling to use, so a seed's draws are the plain fit's,
    # the very numbers setfn drew before bma existed (commit 0a43556, same records and seed):
    # the graph-guided sampler's Thompson proposals do not change with bma's arrival.
    records = _half_mean_half_sum()
    queries = [("a", frozenset({"b", "c"})), ("outsider", frozenset({"b"}))]
    before = {
        "mean": [[-0.023534012215549814, 0.023074315570391114],
                 [-0.01165366383409672, -0.007773947447132868],
                 [-0.01812971984102659, 0.022499071738375138]],
        "sum": [[-0.014521049315567185, 0.013389969956779456],
                [0.0036124556102195868, -0.00451105200492234],
                [-0.0007840122656374771, 0.0130561601580105]],
    }  # fmt: skip
    for pooling, drawn in before.items():
        model = SetFunctionEstimator(pooling=pooling).fit(records)
        draws = model.sample_gains(queries, np.random.default_rng(0), n_samples=3)
        np.testing.assert_allclose(draws, drawn, rtol=1e-9, atol=1e-15)
        np.testing.assert_array_equal(
            draws, model._sample_active(queries, np.random.default_rng(0), 3)
        )


def test_auto_keeps_mean_at_exactly_the_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    import taskgraph.affinity.estimators.setfn as setfn_module

    records = _half_mean_half_sum()
    factor = (
        SetFunctionEstimator(pooling="sum").fit(records).fit_.log_posterior
        - SetFunctionEstimator(pooling="mean").fit(records).fit_.log_posterior
    )
    monkeypatch.setattr(setfn_module, "AUTO_POOLING_LOG_BAYES_FACTOR", factor)
    assert SetFunctionEstimator(pooling="auto").fit(records).describe()["pooling"] == "mean"
    monkeypatch.setattr(setfn_module, "AUTO_POOLING_LOG_BAYES_FACTOR", factor - 1e-9)
    assert SetFunctionEstimator(pooling="auto").fit(records).describe()["pooling"] == "sum"


def test_with_a_hyperprior_bma_weighs_by_each_fits_map_ii_objective() -> None:
    # The command line fits with the small-data hyperprior: each pooling's weight then comes
    # from the objective its fit maximised (log evidence + log hyperprior), as auto compares.
    records = _half_mean_half_sum()
    fits = {
        pooling: SetFunctionEstimator(pooling=pooling, hyperprior=SMALL_DATA_HYPERPRIOR).fit(
            records
        )
        for pooling in ("mean", "sum", "bma")
    }
    posterior = fits["sum"].fit_.log_posterior - fits["mean"].fit_.log_posterior
    evidence = fits["sum"].fit_.log_evidence - fits["mean"].fit_.log_evidence
    expected, evidence_only = (1.0 / (1.0 + np.exp(-x)) for x in (posterior, evidence))
    assert abs(expected - evidence_only) > 0.01  # the two readings differ on this table
    assert fits["bma"].describe()["pooling_weights"]["sum"] == pytest.approx(expected, abs=1e-6)
