"""The benchmark protocols' splits, draws and scored inputs, on tiny tables (mutation audit).

A spy estimator stands in for the real ones: it records what each fit saw and predicts what the
test chooses, so a held-out cell leaking into a fit, a wrong split, a moved draw or a metric fed
the wrong arrays changes an exact number here.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pytest

from taskgraph.affinity.evaluation import (
    evaluate_gain_prediction,
    evaluate_pair_gains,
    evaluate_source_ranking,
    gain_prediction_cells,
    ndcg,
    regret_at_k,
    spearman,
    with_stand_in_baselines,
)
from taskgraph.affinity.evaluation import gains as gains_module
from taskgraph.affinity.evaluation import ranking as ranking_module
from taskgraph.affinity.longtable import LongRow, LongTable
from taskgraph.affinity.records import ScoreRecord
from taskgraph.errors import ConfigError

TASKS = ("a", "b", "c", "d", "e")


class _Spy:
    """An estimator that keeps its fit records and predicts ``oracle(target, auxiliaries)``."""

    def __init__(self, options: Any, oracle: Callable[[str, frozenset[str]], float]) -> None:
        self.options = options
        self.oracle = oracle
        self.records: list[ScoreRecord] = []
        self.queries: list[tuple[str, list[frozenset[str]]]] = []

    def fit(self, records: Sequence[ScoreRecord]) -> _Spy:
        self.records = list(records)
        return self

    def predict_many(
        self, target: str, task_sets: Sequence[Iterable[str]]
    ) -> tuple[np.ndarray, np.ndarray]:
        sets = [frozenset(s) - {target} for s in task_sets]
        self.queries.append((target, sets))
        means = np.array([self.oracle(target, s) for s in sets], dtype=float)
        return means, np.full(len(sets), 7.0)  # a constant spread: ranked by it, no Spearman


def _spy_on(
    monkeypatch: pytest.MonkeyPatch, oracle: Callable[[str, frozenset[str]], float]
) -> list[_Spy]:
    built: list[_Spy] = []

    def build(method: str, options: Any) -> _Spy:
        built.append(_Spy(options, oracle))
        return built[-1]

    monkeypatch.setattr(gains_module, "_build", build)
    monkeypatch.setattr(ranking_module, "_build", build)
    return built


# ---------------------------------------------------------------- gain prediction
_RNG = np.random.default_rng(11)
#: a target's gain from one source on val; test moves each a little, so its order differs
EFFECT_VAL = _RNG.normal(0, 0.05, size=(len(TASKS), len(TASKS)))
EFFECT_TEST = EFFECT_VAL + _RNG.normal(0, 0.02, size=EFFECT_VAL.shape)


def _effect(target: str, source: str, split: str) -> float:
    effect = EFFECT_VAL if split == "val" else EFFECT_TEST
    return float(effect[TASKS.index(target), TASKS.index(source)])


def _subsets(missing_baseline: dict[str, str] | None = None) -> LongTable:
    """Every subset of five tasks on val and test; value = 0.6 * (1 + summed effects)."""
    rows = []
    for size in range(1, 6):
        for combo in itertools.combinations(TASKS, size):
            for target in combo:
                for split in ("val", "test"):
                    if size == 1 and (missing_baseline or {}).get(target) == split:
                        continue
                    gain = sum(_effect(target, s, split) for s in combo if s != target)
                    rows.append(LongRow(target, frozenset(combo), split, 0.6 * (1 + gain), True))
    return LongTable(rows=rows, source="subsets")


def _gain(target: str, auxiliaries: frozenset[str], split: str) -> float:
    return sum(_effect(target, s, split) for s in auxiliaries)  # (v - b) / |b|, b = 0.6


LARGE = sorted(
    (frozenset(c) for n in (3, 4, 5) for c in itertools.combinations(TASKS, n)),
    key=lambda s: sorted(s),
)


def test_gain_prediction_fits_pairs_and_the_drawn_groups_and_scores_every_other_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built = _spy_on(monkeypatch, lambda t, s: _gain(t, s, "test"))
    table = _subsets()
    result = evaluate_gain_prediction(
        table, ["spy"], fit_fraction=0.25, seed=3, options={"spy": {"alpha": 2}},
        keep_predictions=True,
    )  # fmt: skip
    (spy,) = built
    assert spy.options == {"alpha": 2}
    assert {r.split for r in spy.records} == {"val"}
    fitted = {r.task_set for r in spy.records if len(r.task_set) >= 3}
    assert result["n_fit_groups"] == len(fitted) == 4 and result["n_large_groups"] == 16
    small = {(r.task, r.task_set) for r in table.to_records(split="val") if len(r.task_set) <= 2}
    assert small <= {(r.task, r.task_set) for r in spy.records}
    # every member of each group the seed did not fit is scored, and nothing else
    expected = {(t, g - {t}) for g in LARGE if g not in fitted for t in g}
    assert set(result["queries"]) == expected and result["n_queries"] == len(expected)
    assert result["scored_on"] == "test"
    # the truths are relative gains on each split; the spy predicts the test ones exactly
    queries = result["queries"]
    assert result["truth"] == pytest.approx([_gain(t, s, "test") for t, s in queries])
    assert result["truth_val"] == pytest.approx([_gain(t, s, "val") for t, s in queries])
    assert result["spy"]["predicted"] == pytest.approx(result["truth"])
    assert result["spy"]["spearman"] == pytest.approx(1.0)
    assert result["spy"]["spearman_val"] < 0.99


def test_gain_prediction_draws_are_the_published_ones() -> None:
    # `taskgraph bench` reports these draws: a moved draw changes the published Spearman.
    table = _subsets()
    cells = gain_prediction_cells(table, fit_fraction=0.1, seeds=range(4))
    fitted = {
        seed: sorted("".join(sorted(g)) for g in LARGE if not any(g == s | {t} for t, s in c))
        for seed, c in cells.items()
    }
    assert fitted == {
        0: ["ade", "bcde"],
        1: ["acd", "acde"],
        2: ["abd", "bcde"],
        3: ["abcd", "bcde"],
    }


def test_a_target_without_a_score_split_baseline_has_no_gain_to_score(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = _subsets(missing_baseline={"a": "test"})
    cells = gain_prediction_cells(table, fit_fraction=0.0, seeds=[0])[0]
    assert cells and not [c for c in cells if c[0] == "a"]
    assert {t for t, _ in cells} == {"b", "c", "d", "e"}


def test_fit_fraction_bounds_are_inclusive(monkeypatch: pytest.MonkeyPatch) -> None:
    _spy_on(monkeypatch, lambda t, s: _gain(t, s, "test"))
    table = _subsets()
    none = evaluate_gain_prediction(table, ["spy"], fit_fraction=0.0)
    assert none["n_fit_groups"] == 0 and none["n_queries"] == 10 * 3 + 5 * 4 + 5
    every = evaluate_gain_prediction(table, ["spy"], fit_fraction=1.0)
    assert every["n_fit_groups"] == 16 and every["n_queries"] == 0
    for bad in (-0.1, 1.5):
        with pytest.raises(
            ConfigError, match=rf"`fit_fraction` must be in \[0, 1\], but got {bad}"
        ):
            evaluate_gain_prediction(table, ["spy"], fit_fraction=bad)


def test_exactly_min_ranked_gains_get_a_spearman(monkeypatch: pytest.MonkeyPatch) -> None:
    _spy_on(monkeypatch, lambda t, s: _gain(t, s, "test"))
    table = _subsets()
    exact = evaluate_gain_prediction(table, ["spy"], fit_fraction=0.0, min_ranked=55)
    assert exact["spy"]["spearman"] == pytest.approx(1.0)
    assert math.isnan(
        evaluate_gain_prediction(table, ["spy"], fit_fraction=0.0, min_ranked=56)["spy"]["spearman"]
    )


# ------------------------------------------------------------------------ pair gains
#: target -> source -> value on val; `z` has no baseline row (rank-only), `y` two pairs only
PAIRS = {
    "a": {"a": 0.50, "b": 0.56, "c": 0.44, "d": 0.61, "e": 0.52, "x": 0.40, "z": 0.53},
    "b": {"b": 0.30, "a": 0.34, "c": 0.29, "d": 0.36, "e": 0.27, "z": 0.31},
    "c": {"c": 0.70, "a": 0.73, "b": 0.69, "d": 0.64, "e": 0.77, "z": 0.71},
    "d": {"d": 0.40, "a": 0.38, "b": 0.45, "c": 0.41, "e": 0.43, "z": 0.35},
    "e": {"e": 0.80, "a": 0.86, "b": 0.79, "c": 0.83, "d": 0.74, "z": 0.90},
    "y": {"y": 0.60, "a": 0.62, "b": 0.58},
    "z": {"a": 0.20, "b": 0.26, "c": 0.23, "d": 0.29, "e": 0.21},
}
#: groups of size 3: a fit must drop them with any held-out member
GROUPS = {("a", "b", "c"): 0.90, ("b", "c", "d"): 0.10, ("c", "a", "e"): 0.95}


def _pair_rows(split: str = "val") -> list[LongRow]:
    rows = [
        LongRow(t, frozenset({t, s}), split, v, True)
        for t, row in PAIRS.items()
        for s, v in row.items()
    ]
    rows += [LongRow(t, frozenset(g), split, v, True) for g, v in GROUPS.items() for t in g[:1]]
    return rows


def _truth(target: str, source: str) -> float:
    row = PAIRS[target]
    if target not in row:  # rank-only: the value itself
        return row[source]
    return (row[source] - row[target]) / abs(row[target])


def test_each_pair_fold_fits_everything_but_the_targets_rows_with_a_held_out_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built = _spy_on(monkeypatch, _truth_of_one)
    table = LongTable(rows=_pair_rows(), source="pairs")
    records = table.to_records(split="val")
    result = evaluate_pair_gains(table, ["spy"], folds=3, seed=0)
    assert built
    for spy in built:
        ((target, held_sets),) = spy.queries
        held = set().union(*held_sets)
        kept = [r for r in records if r.task != target or not (r.auxiliaries & held)]
        fitted = [r for r in spy.records if r.task != "z" or not r.is_baseline]
        assert fitted == kept
        # the rank-only target gets a stand-in baseline: the mean of its fitted values
        (stand_in,) = [r for r in spy.records if r.task == "z" and r.is_baseline]
        assert stand_in.value == pytest.approx(np.mean([r.value for r in kept if r.task == "z"]))
    # the spy predicts the truths: a Spearman of 1 on every target, better than the prior
    assert result["spy"]["spearman"] == pytest.approx(1.0)
    assert result["rank_only"] == ["z"] and result["too_few_pairs"] == ["y"]
    versus = result["versus_prior"]["spy"]["spearman"]
    assert versus["worse"] == 0 and versus["better"] >= 1 and versus["diff"] > 0


def _truth_of_one(target: str, auxiliaries: frozenset[str]) -> float:
    (source,) = auxiliaries
    return _truth(target, source)


def test_pair_folds_are_the_published_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    # The two-pair target `y` is shuffled too, so the other targets' folds stay as published.
    built = _spy_on(monkeypatch, _truth_of_one)
    table = LongTable(rows=_pair_rows(), source="pairs")
    evaluate_pair_gains(table, ["spy"], folds=3, seed=1)
    folds: dict[str, list[str]] = {}
    for spy in built:
        ((target, held_sets),) = spy.queries
        folds.setdefault(target, []).append("".join(sorted(next(iter(s)) for s in held_sets)))
    assert folds == {
        "a": ["bx", "cd", "ez"], "b": ["dz", "ae", "c"], "c": ["ab", "de", "z"],
        "d": ["ab", "ez", "c"], "e": ["bd", "ac", "z"], "z": ["cd", "be", "a"],
    }  # fmt: skip


def test_pair_gains_count_what_they_scored(monkeypatch: pytest.MonkeyPatch) -> None:
    _spy_on(monkeypatch, _truth_of_one)
    rows = [*_pair_rows(), LongRow("w", frozenset({"w"}), "val", 0.5, True)]
    rows.append(LongRow("w", frozenset({"w", "a"}), "val", 0.55, True))  # one pair: not named
    result = evaluate_pair_gains(LongTable(rows=rows, source="pairs"), ["spy"], folds=10)
    assert result["too_few_pairs"] == ["y"]
    assert result["n_pairs"] == {"a": 6, "b": 5, "c": 5, "d": 5, "e": 5, "z": 5}
    assert result["folds_used"] == result["n_pairs"]  # min(10, n): leave-one-out
    assert result["n_targets"] == 6 and result["folds"] == 10
    with pytest.raises(ConfigError, match="`folds` must be >= 2, but got 1"):
        evaluate_pair_gains(LongTable(rows=rows, source="pairs"), ["spy"], folds=1)


def test_a_target_without_a_baseline_on_either_split_is_rank_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _spy_on(monkeypatch, _truth_of_one)
    rows = [r for r in _pair_rows("val") if r.target != "z"]
    rows += [r for r in _pair_rows("test") if r.target != "z"]
    # `b` has no baseline on val (the fit split), `c` none on test (the score split)
    rows = [r for r in rows if not (r.task_set == {"b"} and r.split == "val")]
    rows = [r for r in rows if not (r.task_set == {"c"} and r.split == "test")]
    # a pair the score split lacks is not scored: it has no truth there
    rows = [r for r in rows if not (r.task_set == {"d", "e"} and r.split == "test")]
    result = evaluate_pair_gains(LongTable(rows=rows, source="two"), ["spy"], folds=3)
    assert result["fitted_on"] == "val" and result["scored_on"] == "test"
    assert result["rank_only"] == ["b", "c"]
    assert result["n_pairs"]["d"] == 4 and result["n_pairs"]["a"] == 6


def _by_hand_prior(target: str, source: str) -> float:
    """The popular-source prior: the source's mean gain over the other targets, 0 without one.

    A rank-only target's gains are against its stand-in baseline, the mean of its values.
    """
    gains = []
    for other, row in PAIRS.items():
        if other == target or source not in row:
            continue
        base = row[other] if other in row else float(np.mean(list(row.values())))
        gains.append((row[source] - base) / abs(base))
    return float(np.mean(gains)) if gains else 0.0


def test_the_pair_gains_prior_is_each_sources_mean_gain_over_the_other_targets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _spy_on(monkeypatch, _truth_of_one)
    per_target = []
    for target, row in PAIRS.items():
        sources = sorted(s for s in row if s != target)
        if len(sources) >= 3:
            prior = [_by_hand_prior(target, s) for s in sources]
            per_target.append(spearman(prior, [_truth(target, s) for s in sources]))
    table = LongTable(rows=_pair_rows(), source="pairs")
    result = evaluate_pair_gains(table, ["spy"], folds=3, seed=0)
    assert result["prior"]["spearman"] == pytest.approx(float(np.mean(per_target)), abs=1e-12)


# -------------------------------------------------------------------- source ranking
#: target -> (baseline or None, higher_is_better, source -> value); `m` and `w` are rank-only
RANKED: dict[str, tuple[float | None, bool, dict[str, float]]] = {
    "t": (0.50, True, {"s1": 0.55, "s2": 0.47, "s3": 0.58, "s4": 0.51, "s5": 0.44}),
    "u": (0.40, True, {"s1": 0.42, "s2": 0.39, "s3": 0.45, "s4": 0.37}),
    "v": (0.30, True, {"s1": 0.31, "s2": 0.36, "s3": 0.27, "s4": 0.33, "s5": 0.29, "s6": 0.35}),
    "w": (None, True, {"s1": 0.61, "s2": 0.66, "s3": 0.59, "s4": 0.70}),
    "m": (None, False, {"s1": 2.1, "s2": 1.7, "s3": 2.6, "s4": 1.9, "s5": 2.3, "s6": 1.5}),
}


def _ranked_table() -> LongTable:
    rows = []
    for split, shift in (("val", 0.0), ("test", 0.01)):
        for target, (base, higher, row) in RANKED.items():
            if base is not None:
                rows.append(LongRow(target, frozenset({target}), split, base + shift, higher))
            for i, (source, value) in enumerate(row.items()):
                # test reorders the sources: a ranking scored on it would differ
                moved = value + shift * (i % 3) * (1 if i % 2 else -1) * 5
                rows.append(LongRow(target, frozenset({target, source}), split, moved, higher))
        # a group with `q`, no pair source of `t`: not a source to rank
        rows.append(LongRow("t", frozenset({"t", "s1", "q"}), split, 0.9, True))
        rows.append(LongRow("t", frozenset({"t", "q", "r"}), split, 0.8, True))
    return LongTable(rows=rows, source="ranked")


def _rank_truth(target: str, source: str) -> float:
    base, higher, row = RANKED[target]
    sign = 1.0 if higher else -1.0
    if base is None:
        return sign * row[source]
    return sign * (row[source] - base) / abs(base)


def _rank_truth_of_one(target: str, auxiliaries: frozenset[str]) -> float:
    (source,) = auxiliaries
    return _rank_truth(target, source)


def test_source_ranking_ranks_the_hidden_pair_sources_of_val(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built = _spy_on(monkeypatch, _rank_truth_of_one)
    result = evaluate_source_ranking(_ranked_table(), ["spy"], exhaustive=True, k=1, min_ranked=3)
    assert result["split"] == "val"
    # rankable: more than n_observed + 1 pairs (`t` 5, `v` and `m` 6; `u` and `w` 4)
    assert {s.queries[0][0] for s in built} == {"t", "v", "m"}
    assert all(set().union(*q[1]) <= set(RANKED[q[0]][2]) for s in built for q in s.queries)
    assert result["n_draws"] == 10 + 20 + 20
    assert result["rank_only"] == ["m"] and result["too_few_hidden"] == ["t"]
    assert result["n_targets"] == 5 and result["too_few_pairs"] == ["u", "w"]
    # the spy predicts each truth, the rank-only lower-is-better `m` by its negated values
    assert result["spy"]["spearman"] == pytest.approx(1.0)
    assert result["spy"]["ndcg"] == pytest.approx(1.0)
    assert result["spy"]["regret@1"] == 0.0
    assert math.isnan(result["spread"]["spy"]["spearman"]["sd_over_seeds"])
    regret = result["versus_prior"]["spy"]["regret@1"]
    assert regret["worse"] == 0 and regret["better"] >= 1 and regret["diff"] < 0


SCORE = {"s1": 0.3, "s2": 0.9, "s3": 0.1, "s4": 0.5, "s5": 0.7, "s6": 0.2}


def test_source_ranking_metrics_are_of_the_hidden_sources_gains(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _spy_on(monkeypatch, lambda t, s: SCORE[next(iter(s))])
    result = evaluate_source_ranking(_ranked_table(), ["spy"], exhaustive=True, k=1)
    expected: dict[str, list[float]] = {"spearman": [], "ndcg": [], "regret@1": []}
    for target in ("m", "t", "v"):
        sources = sorted(RANKED[target][2])
        per: dict[str, list[float]] = {name: [] for name in expected}
        for observed in itertools.combinations(sources, 3):
            hidden = [s for s in sources if s not in observed]
            predicted = [SCORE[s] for s in hidden]
            true = [_rank_truth(target, s) for s in hidden]
            per["spearman"].append(spearman(predicted, true))
            per["ndcg"].append(ndcg(predicted, true))
            per["regret@1"].append(regret_at_k(predicted, true, 1))
        for name, values in per.items():
            expected[name].append(float(np.nanmean(values)))
    for name, values in expected.items():
        assert result["spy"][name] == pytest.approx(float(np.mean(values)), abs=1e-12), name
    # the prior counts the rank-only targets' gains against their stand-in baselines
    assert result["prior"] == pytest.approx(
        {"spearman": 0.5, "ndcg": 0.9177952717549, "regret@1": 0.0268888888889}, abs=1e-12
    )


def test_source_ranking_draws_do_not_depend_on_the_files_row_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The draws are of the sorted sources, one generator per seed: the published draws.
    built = _spy_on(monkeypatch, _rank_truth_of_one)
    rows = _ranked_table().rows
    draws = []
    for ordered in (rows, rows[::-1]):
        built.clear()
        evaluate_source_ranking(LongTable(rows=list(ordered), source="r"), ["spy"], seeds=[0, 1])
        draws.append([
            (s.queries[0][0], "".join(sorted(x for h in s.queries[0][1] for x in h))) for s in built
        ])  # fmt: skip
    # the hidden sources of each target, seed 0 then seed 1
    assert draws[0] == draws[1] == [
        ("m", "s1s2s3"), ("m", "s1s4s6"), ("t", "s2s3"), ("t", "s2s3"),
        ("v", "s1s2s6"), ("v", "s1s5s6"),
    ]  # fmt: skip


def test_a_stand_in_baseline_is_the_mean_of_the_finite_values() -> None:
    def record(task_set: set[str], value: float) -> ScoreRecord:
        return ScoreRecord(task="m", task_set=frozenset(task_set), value=value, split="val")

    def stand_in(records: list[ScoreRecord]) -> float:
        (added,) = with_stand_in_baselines(records)[len(records) :]
        assert added.task_set == {"m"} and added.higher_is_better
        return added.value

    assert stand_in([record({"m", "a"}, 0.4), record({"m", "b"}, math.nan),
                     record({"m", "c"}, 0.6)]) == pytest.approx(0.5)  # fmt: skip
    # a mean of 0 would divide every relative gain by 0: the largest magnitude stands in
    assert stand_in([record({"m", "a"}, -0.2), record({"m", "b"}, 0.1),
                     record({"m", "c"}, 0.1)]) == pytest.approx(0.2)  # fmt: skip
