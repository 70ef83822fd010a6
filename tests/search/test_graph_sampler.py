"""The graph-guided sampler: valid subsets under constraints, delegation, prior records, efficiency."""

from __future__ import annotations

import itertools
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from taskgraph.affinity.longtable import LongRow, LongTable, write_long_csv
from taskgraph.affinity.records import ScoreRecord
from taskgraph.errors import ConfigError
from taskgraph.search.benchmarking import run_search
from taskgraph.search.graph_sampler import (
    GraphGuidedSampler,
    popular_source_scores,
    startup_order,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)
SOURCES = ("s1", "s2", "s3", "s4", "s5")


def additive_table(seed: int = 0) -> LongTable:
    """Return a table for target t over every subset of SOURCES: gain = mean effect + pair bonus."""
    rng = np.random.default_rng(seed)
    effect = dict(zip(SOURCES, rng.normal(0, 0.05, len(SOURCES)), strict=True))
    rows = [LongRow("t", frozenset({"t"}), "val", 1.0, True)]
    for size in range(1, len(SOURCES) + 1):
        for combo in itertools.combinations(SOURCES, size):
            gain = float(np.mean([effect[s] for s in combo])) + (
                0.03 if {"s1", "s2"} <= set(combo) else 0.0
            )
            rows.append(LongRow("t", frozenset({"t", *combo}), "val", 1.0 + gain, True))
    return LongTable(rows=rows, source="synthetic")


def ask_subset(study: optuna.Study, candidates: list[str]) -> tuple[optuna.Trial, frozenset[str]]:
    trial = study.ask()
    chosen = frozenset(
        t for t in candidates if trial.suggest_categorical(f"aux/{t}", [False, True])
    )
    return trial, chosen


def test_proposals_respect_size_include_and_exclude() -> None:
    candidates = ["a", "b", "c", "d", "e", "x", "y"]
    sampler = GraphGuidedSampler(target="t", candidates=candidates, include=["x"], exclude=["y"],
                                 min_size=2, max_size=3, seed=0)  # fmt: skip
    study = optuna.create_study(direction="maximize", sampler=sampler)
    free = ["a", "b", "c", "d", "e"]
    rng = np.random.default_rng(0)
    effect = {t: rng.normal() for t in free}
    seen = []
    for _ in range(14):
        trial, chosen = ask_subset(study, free)
        assert set(trial.params) == {f"aux/{t}" for t in free}  # no flag for include/exclude tasks
        assert 1 <= len(chosen) <= 2  # plus "x": 2..3 tasks
        seen.append(chosen)
        study.tell(trial, sum(effect[t] for t in chosen))
    assert [len(s) for s in seen[:5]] == [1] * 5  # start-up: each free candidate alone
    assert len(set(seen)) == len(seen)  # a deterministic table is never asked twice
    with pytest.raises(ConfigError, match="no subset fits"):
        GraphGuidedSampler(target="t", candidates=["a"], min_size=3)


class _RecordingSampler(optuna.samplers.RandomSampler):
    def __init__(self) -> None:
        super().__init__(seed=0)
        self.names: list[str] = []

    def sample_independent(self, study: Any, trial: Any, name: str, distribution: Any) -> Any:
        self.names.append(name)
        return super().sample_independent(study, trial, name, distribution)


def test_other_parameters_go_to_the_inner_sampler() -> None:
    inner = _RecordingSampler()
    sampler = GraphGuidedSampler(
        target="t", candidates=["a", "b"], independent_sampler=inner, seed=0
    )
    study = optuna.create_study(sampler=sampler)
    for _ in range(4):
        trial, _ = ask_subset(study, ["a", "b"])
        trial.suggest_float("lr", 1e-5, 1e-3, log=True)
        study.tell(trial, 0.5)
    assert inner.names == ["lr"] * 4


def test_prior_records_of_an_earlier_study_find_the_best_set_at_once() -> None:
    table = additive_table()
    earlier = table.to_records(family="earlier-study")
    hits = []
    for seed in range(5):
        run = run_search(table, "t", "graph", seed=seed, prior_records=earlier, max_trials=64)
        hits.append(run.trials)
    # Trial 1 is this study's baseline; the informed model proposes the best set right after.
    assert statistics.median(hits) <= 3


def test_finds_the_best_set_faster_than_random_on_average() -> None:
    table = additive_table(seed=1)
    graph, random = [], []
    for seed in range(6):
        run = run_search(table, "t", "graph", seed=seed)
        assert run.trials == run.distinct  # never re-asks a set
        graph.append(run.trials)
        random.append(run_search(table, "t", "random", seed=seed).trials)
    assert np.mean(graph) < np.mean(random)
    assert max(graph) <= 32  # at most every subset once


def test_study_records_use_the_baseline_trial_and_stored_subsets() -> None:
    sampler = GraphGuidedSampler(target="t", candidates=["a", "b"], include=["b"], seed=0)
    study = optuna.create_study(sampler=sampler)
    for subset, value in (([], 0.5), (["b"], 0.6)):
        trial = study.ask()
        trial.set_user_attr("auxiliaries", subset)
        study.tell(trial, value)
    records, proposed = sampler._study_records(study)
    values = {"+".join(sorted(r.task_set)): r.value for r in records}
    # The baseline trial stays a single-task record although "b" is always included.
    assert values == {"t": 0.5, "b+t": 0.6}
    assert all(isinstance(r, ScoreRecord) and r.task == "t" for r in records)
    # Only sets that hold the include tasks count (the free part): the baseline trial does not.
    assert proposed == Counter({frozenset(): 1})


def test_a_spec_with_sampler_graph_runs_on_the_tabular_runner(tmp_path: Path) -> None:
    from taskgraph.app.studies.running import run_spec as run_study
    from taskgraph.spec import spec_from_dict
    from taskgraph.storage import open_repository

    table_path = tmp_path / "synthetic.csv"
    write_long_csv(additive_table(), table_path)
    spec = spec_from_dict({
        "name": "graph-on-table", "target": "t", "candidates": list(SOURCES),
        "objective": {"metric": "score", "split": "dev", "direction": "maximize"},
        "runner": {"name": "tabular", "table": str(table_path), "split": "val"},
        "sampler": {"name": "graph", "seed": 0}, "budget": {"trials": 10},
    })  # fmt: skip
    url = f"sqlite:///{tmp_path / 'records.db'}"
    run_study(spec, storage_url=url)
    with open_repository(url) as repo:
        sets = [r.task_set for r in repo.score_records(target="t", split="dev")]
    assert len(sets) == 10 and len(set(sets)) == 10  # ten different subsets, baseline included
    assert frozenset({"t"}) in sets


def _run_pruned_study(
    sampler: GraphGuidedSampler, candidates: list[str], n: int
) -> list[frozenset[str]]:
    """Ask ``n`` trials: the baseline completes, every other trial is pruned after one step."""
    study = optuna.create_study(direction="maximize", sampler=sampler)
    seen = []
    for _ in range(n):
        trial, chosen = ask_subset(study, candidates)
        seen.append(chosen)
        trial.report(0.5 if not chosen else 0.3, step=1)
        if chosen:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            trial.report(0.6, step=2)
            study.tell(trial, 0.6)
    return seen


def test_pruned_sets_count_as_proposed_and_none_exceeds_max_repeats() -> None:
    candidates = ["a", "b", "c"]
    # 7 valid sets (the empty one, 3 singles, 3 pairs) at most twice each: 14 proposals.
    sampler = GraphGuidedSampler(target="t", candidates=candidates, max_size=2, max_repeats=2,
                                 seed=0)  # fmt: skip
    seen = _run_pruned_study(sampler, candidates, 14)
    counts = {s: seen.count(s) for s in set(seen)}
    assert len(counts) == 7 and max(counts.values()) == 2
    # Every set is proposed once before any is proposed again.
    assert len(set(seen[:7])) == 7
    study = optuna.create_study(direction="maximize", sampler=sampler)
    assert not sampler.exhausted(study)


def test_exhausted_once_every_set_reached_the_limit() -> None:
    candidates = ["a", "b"]
    sampler = GraphGuidedSampler(target="t", candidates=candidates, max_repeats=1, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for _ in range(4):  # {}, {a}, {b}, {a, b}
        assert not sampler.exhausted(study)
        trial, _ = ask_subset(study, candidates)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)  # a failed set was proposed too
    assert sampler.exhausted(study)
    with pytest.raises(ConfigError, match="max_repeats"):
        GraphGuidedSampler(target="t", candidates=candidates, max_repeats=0)


def test_a_pruned_trial_enters_the_model_with_its_step_matched_value() -> None:
    sampler = GraphGuidedSampler(target="t", candidates=["a", "b"], seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    baseline = study.ask()
    baseline.set_user_attr("auxiliaries", [])
    for step, value in ((1, 0.40), (2, 0.55), (3, 0.60)):
        baseline.report(value, step=step)
    study.tell(baseline, 0.60)
    pruned = study.ask()
    pruned.set_user_attr("auxiliaries", ["a"])
    for step, value in ((1, 0.30), (2, 0.35)):
        pruned.report(value, step=step)
    study.tell(pruned, state=optuna.trial.TrialState.PRUNED)
    records, proposed = sampler._study_records(study)
    values = {"+".join(sorted(r.task_set)): r.value for r in records}
    # 0.20 below the baseline at step 2, so 0.20 below the baseline's final value.
    assert values == {"t": 0.60, "a+t": pytest.approx(0.40)}
    assert proposed == {frozenset(): 1, frozenset({"a"}): 1}


def test_the_demo_spec_through_the_engine_repeats_no_set_beyond_the_limit(
    storage_url: str, fakes: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """searchspaces/demo.yaml (24 trials, graph sampler, median pruner) on a fake with the
    synthetic family's effects: the pruned sets were re-proposed (9 of 24 for one set)."""
    from collections import Counter

    from taskgraph.search.engine import StudyEngine
    from taskgraph.spec.loading import load_spec

    for task, effect in (("synth_related", 0.3), ("synth_cls_related", 0.3),
                         ("synth_unrelated", 0.01), ("synth_conflict", -0.16)):  # fmt: skip
        monkeypatch.setitem(fakes.EFFECTS, task, effect)
    spec = load_spec(Path(__file__).parents[2] / "searchspaces" / "demo.yaml")
    engine = StudyEngine(spec=spec, storage_url=storage_url,
                         evaluator=fakes.FakeEvaluator(n_evals=4),
                         sharing_spaces={"hard": {}, "hierarchical": {}})  # fmt: skip
    summary = engine.run()
    trials = engine.require_study().trials
    engine.close()
    counts = Counter(frozenset(t.user_attrs["auxiliaries"]) for t in trials)
    assert summary.reason == "budget" and len(trials) == 24
    assert any(t.state == optuna.trial.TrialState.PRUNED for t in trials)
    assert max(counts.values()) <= 3, counts  # GraphGuidedSampler's max_repeats
    assert len({frozenset(t.user_attrs["auxiliaries"]) for t in trials[:11]}) == 11


def test_the_engine_stops_a_study_whose_sets_are_exhausted(tmp_path: Path) -> None:
    from taskgraph.app.studies.running import run_spec as run_study
    from taskgraph.spec import spec_from_dict

    table_path = tmp_path / "synthetic.csv"
    write_long_csv(additive_table(), table_path)
    spec = spec_from_dict({
        "name": "exhausted", "target": "t", "candidates": ["s1", "s2"],
        "objective": {"metric": "score", "split": "dev", "direction": "maximize"},
        "runner": {"name": "tabular", "table": str(table_path), "split": "val"},
        "sampler": {"name": "graph", "seed": 0, "options": {"max_repeats": 2}},
        "budget": {"trials": 20},
    })  # fmt: skip
    summary = run_study(spec, storage_url=f"sqlite:///{tmp_path / 'records.db'}")
    # Four sets ({}, {s1}, {s2}, {s1, s2}) twice each, then nothing is left to propose.
    assert summary.reason == "exhausted" and summary.progress.n_done == 8


def test_startup_order_follows_the_prior_not_the_listing_order() -> None:
    rng = np.random.default_rng(0)
    # An explicit prior (a screen, text-embedding similarity) decides, best first.
    assert startup_order(["a", "b", "c"], target="t", scores={"c": 2.0, "a": 1.0}, rng=rng)[:2] == [
        "c",
        "a",
    ]
    # Records of other targets: each source's mean gain as their only auxiliary.
    records = [
        ScoreRecord(task=o, task_set=frozenset(s), value=v, higher_is_better=True, split="val")
        for o in ("u", "v")
        for s, v in (({o}, 1.0), ({o, "a"}, 0.9), ({o, "b"}, 1.0), ({o, "c"}, 1.2))
    ]
    assert startup_order(["a", "b", "c"], target="t", prior_records=records, rng=rng) == [
        "c", "b", "a"
    ]  # fmt: skip
    # No prior at all: a seeded random order, not the listing order for every seed.
    orders = {
        tuple(startup_order(list(SOURCES), target="t", rng=np.random.default_rng(seed)))
        for seed in range(8)
    }
    assert len(orders) > 1


def test_the_first_start_up_pair_is_the_prior_favourite() -> None:
    records = [
        ScoreRecord(task="u", task_set=frozenset(s), value=v, higher_is_better=True, split="val")
        for s, v in (({"u"}, 1.0), ({"u", "s1"}, 0.9), ({"u", "s4"}, 1.3), ({"u", "s2"}, 1.0))
    ]
    sampler = GraphGuidedSampler(
        target="t", candidates=list(SOURCES), prior_records=records, seed=0
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    chosen = []
    for _ in range(2):
        trial, subset = ask_subset(study, list(SOURCES))
        chosen.append(subset)
        study.tell(trial, 1.0)
    assert chosen == [frozenset(), frozenset({"s4"})]  # baseline, then the best source elsewhere


def test_past_max_enumeration_the_pool_is_one_task_flips_plus_random_sets() -> None:
    free = [f"c{i}" for i in range(8)]
    sampler = GraphGuidedSampler(target="t", candidates=free, max_size=3, max_enumeration=40,
                                 seed=0)  # fmt: skip
    proposed = frozenset({"c0", "c1"})
    pool = set(sampler._candidate_sets({proposed}))
    flips = {proposed ^ {t} for t in free}  # c0 or c1 removed, one of six added
    # Every flip (and swap: tests/search/test_graph_sampler_swaps.py), topped up with random sets.
    assert flips <= pool and len(pool) == 40


def test_a_pruned_trial_is_matched_to_the_trial_without_auxiliaries() -> None:
    sampler = GraphGuidedSampler(target="t", candidates=["a", "b"], seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for subset, curve, value in (
        (["b"], {2: 0.70}, 0.80),  # complete before the baseline: not the reference
        ([], {2: 0.55}, 0.60),
        (["a"], {2: 0.35}, None),
    ):
        trial = study.ask()
        trial.set_user_attr("auxiliaries", subset)
        for step, v in curve.items():
            trial.report(v, step=step)
        if value is None:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, value)
    records, _ = sampler._study_records(study)
    values = {"+".join(sorted(r.task_set)): r.value for r in records}
    # 0.20 below the baseline at step 2 (not 0.35 below b's trial): 0.60 - 0.20.
    assert values == {"b+t": 0.80, "t": 0.60, "a+t": pytest.approx(0.40)}


def test_the_model_takes_over_after_n_startup_trials(monkeypatch: pytest.MonkeyPatch) -> None:
    sampler = GraphGuidedSampler(target="t", candidates=list(SOURCES), n_startup_trials=2, seed=0)
    fits: list[int] = []

    def fit(records: list[ScoreRecord]) -> None:
        fits.append(len(records))

    monkeypatch.setattr(sampler, "_fit", fit)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    chosen = []
    for _ in range(3):
        trial, subset = ask_subset(study, list(SOURCES))
        chosen.append(subset)
        study.tell(trial, 1.0 + 0.1 * len(subset))
    # The baseline and one single (two start-up sets of six), then the model: fitted on both.
    assert chosen[0] == frozenset() and len(chosen[1]) == 1
    assert fits and set(fits) == {2}  # no fit before the third proposal


class _FixedModel:
    """An affinity estimator whose posterior of each set is fixed: (mean, std)."""

    def __init__(self, posterior: dict[frozenset[str], tuple[float, float]]) -> None:
        self.posterior = posterior

    def predict(self, target: str, task_set: frozenset[str]) -> tuple[float, float]:
        return self.posterior[task_set]

    def predict_many(self, target: str, sets: list[frozenset[str]]) -> tuple[Any, Any]:
        means, stds = zip(*(self.posterior[s] for s in sets), strict=True)
        return np.array(means), np.array(stds)


def test_expected_improvement_proposes_the_set_most_likely_to_beat_the_best(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sampler = GraphGuidedSampler(target="t", candidates=["a", "b", "c"], max_size=1,
                                 acquisition="ei", n_startup_trials=0, seed=0)  # fmt: skip
    model = _FixedModel({
        frozenset(): (0.2, 0.0),  # the best set evaluated so far
        frozenset({"a"}): (0.7, 0.01),  # surely better: expected improvement 0.5
        frozenset({"b"}): (0.2, 1.0),  # as good on average, uncertain: 0.4
        frozenset({"c"}): (0.0, 0.001),  # surely worse: 0
    })  # fmt: skip
    monkeypatch.setattr(sampler, "_fit", lambda records: model)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    trial = study.ask()
    trial.set_user_attr("auxiliaries", [])
    study.tell(trial, 0.2)
    assert sampler.propose(study) == frozenset({"a"})


def test_a_source_seen_alone_is_scored_by_its_gains_alone() -> None:
    records = [
        ScoreRecord(task="u", task_set=frozenset(s), value=v, higher_is_better=True, split="val")
        for s, v in (({"u"}, 1.0), ({"u", "a"}, 1.1), ({"u", "a", "b"}, 0.5))
    ]
    scores = popular_source_scores(["a", "b", "c"], target="t", prior_records=records)
    # a: +10% alone (its -50% in the triple is ignored); b, never alone: -50% within; c: unseen.
    assert scores == {"a": pytest.approx(0.1), "b": pytest.approx(-0.5)}


def test_past_max_repeats_the_least_proposed_set_is_proposed_again() -> None:
    sampler = GraphGuidedSampler(target="t", candidates=["a", "b"], max_repeats=1, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for subset in ([], [], ["a"], ["b"], ["a", "b"]):
        trial = study.ask()
        trial.set_user_attr("auxiliaries", subset)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    # Every set reached the limit: the least proposed (the baseline twice), smallest first.
    with pytest.warns(UserWarning, match="max_repeats=1 times; proposing \\['a'\\] again"):
        assert sampler.propose(study) == frozenset({"a"})


def test_at_max_enumeration_every_set_is_listed_without_random_draws() -> None:
    sampler = GraphGuidedSampler(target="t", candidates=["a", "b", "c"], max_enumeration=8,
                                 seed=0)  # fmt: skip
    state = sampler._rng.bit_generator.state
    pool = sampler._candidate_sets({frozenset({"a"})})
    assert len(pool) == 8 and set(pool) == {
        frozenset(c) for k in range(4) for c in itertools.combinations("abc", k)
    }
    assert sampler._rng.bit_generator.state == state


def test_a_set_whose_neighbours_pass_the_cap_gives_a_random_share() -> None:
    free = [f"c{i}" for i in range(8)]
    proposed = frozenset({"c0"})
    # {c0}'s neighbours: the empty set, seven pairs and seven swaps; room for five.
    neighbours = {proposed ^ {t} for t in free} | {frozenset({t}) for t in free[1:]}
    pools = []
    for seed in range(6):
        sampler = GraphGuidedSampler(target="t", candidates=free, max_size=3, max_enumeration=5,
                                     seed=seed)  # fmt: skip
        pool = frozenset(sampler._candidate_sets({proposed}))
        assert len(pool) == 5 and pool <= neighbours
        pools.append(pool)
    assert len(set(pools)) > 1  # not the first five by name for every seed


def test_the_sampler_fits_setfn_with_averaged_members_unless_told_otherwise() -> None:
    # setfn's own default pooling (bma) was chosen on gain prediction; the sampler keeps the
    # pooling its search-efficiency rows were measured with (mean) unless its options name one.
    records = additive_table(seed=1).to_records(split="val")
    base = {"target": "t", "candidates": list(SOURCES), "seed": 0}
    default = GraphGuidedSampler(**base)
    assert default.estimator_options == {"pooling": "mean"}
    fitted = default._fit_new(records)
    assert fitted is not None and fitted.describe()["pooling_weights"] == {"mean": 1.0}
    told = GraphGuidedSampler(**base, estimator_options={"pooling": "bma"})
    assert told.estimator_options == {"pooling": "bma"}
    assert told._fit_new(records).describe()["pooling"] == "bma"
    assert GraphGuidedSampler(**base, estimator="hoa").estimator_options == {}
